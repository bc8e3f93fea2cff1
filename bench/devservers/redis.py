"""A private ``redis-server`` on a loopback port for tests and the demo.

``start_redis(workdir, port, appendonly=True)`` on the same directory and port after ``stop()`` brings the
data back from the append-only file (the worklist's restart test relies on this).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.devservers import free_port
from bench.devservers._common import pid_alive, stop_pid, wait_for_port


@dataclass
class RedisServer:
    url: str  # "redis://127.0.0.1:PORT/0"
    port: int
    pid: int
    workdir: Path

    def stop(self) -> None:
        stop_pid(self.pid)


def start_redis(workdir: Path, port: int | None = None, appendonly: bool = False, timeout_s: float = 15.0) -> RedisServer:
    """Start redis-server daemonised on 127.0.0.1; returns once it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH (Debian package redis-server)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    pidfile = workdir / "redis.pid"
    pidfile.unlink(missing_ok=True)
    cmd = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(workdir),
        "--logfile", str(workdir / "redis.log"),
    ]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    # the pidfile exists a moment before its number is written: an empty read is "not yet", not pid 0 (a dead server)
    while not (pidfile.exists() and pidfile.read_text().strip()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"redis-server wrote no pidfile in {workdir} (log: {workdir / 'redis.log'})")
        time.sleep(0.02)
    pid = int(pidfile.read_text().strip())
    wait_for_port(port, timeout_s, alive=lambda: pid_alive(pid), what=f"redis-server (log: {workdir / 'redis.log'})")
    _wait_for_ping(port, deadline)  # with AOF it accepts connections before it has loaded the data
    return RedisServer(f"redis://127.0.0.1:{port}/0", port, pid, workdir)


def _wait_for_ping(port: int, deadline: float) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    try:
        while True:
            try:
                if client.ping():
                    return
            except (redis.BusyLoadingError, redis.ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()

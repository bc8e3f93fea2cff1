"""S3-compatible storage on loopback (``s3rver`` from npm) so a Tansu broker keeps its data across restarts.

``s3rver`` is pinned in ``bench/devservers/s3rver/package.json`` (and its package-lock.json); ``make tools``
installs it there with ``npm ci`` (``make test`` and ``make bench`` run it when npm is present). Data lie in
``workdir``: restarting on the same directory and port brings them back. Used by the durable-broker tests and
the chaos benchmark (``start_kafka(..., s3=...)``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.devservers import free_port
from bench.devservers._common import stop_pid, wait_for_port

PACKAGE_DIR = Path(__file__).resolve().parent / "s3rver"
BUCKET = "tansu"
ACCESS_KEY = SECRET_KEY = "S3RVER"  # s3rver's fixed development credentials (loopback only)


def s3rver_binary() -> Path | None:
    """The installed s3rver launcher, or None (``make tools`` installs it)."""
    path = PACKAGE_DIR / "node_modules" / ".bin" / "s3rver"
    return path if path.exists() and shutil.which("node") else None


@dataclass
class S3Server:
    endpoint: str  # "http://127.0.0.1:PORT"
    port: int
    pid: int
    workdir: Path
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def environment(self) -> dict[str, str]:
        """What a Tansu broker needs to use this server as its ``s3://tansu/`` storage."""
        return {"AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}

    def stop(self) -> None:
        stop_pid(self.pid)
        if self._process is not None:
            self._process.wait(timeout=10)


def start_s3(workdir: Path, port: int | None = None, timeout_s: float = 30.0) -> S3Server:
    """Start s3rver on 127.0.0.1 with the ``tansu`` bucket, data in ``workdir/data``."""
    binary = s3rver_binary()
    if binary is None:
        raise FileNotFoundError(f"s3rver is not installed in {PACKAGE_DIR} (run `make tools`; needs node and npm)")
    workdir = Path(workdir)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "s3rver.log"
    cmd = [str(binary), "-d", str(workdir / "data"), "-a", "127.0.0.1", "-p", str(port), "--configure-bucket", BUCKET, "--silent"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    server = S3Server(f"http://127.0.0.1:{port}", port, process.pid, workdir, process)
    try:
        wait_for_port(port, timeout_s, alive=lambda: process.poll() is None, what=f"s3rver (log: {log_path})")
    except Exception:
        server.stop()
        raise
    return server

"""``python -m engine workbench`` as a child process on a free loopback port, in local sign-in mode: for the
browser and API tests, the load benchmark and the demo. ``local_token`` mints the page's sign-in tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.devservers import free_port
from bench.devservers._common import stop_pid


@dataclass
class WorkbenchServer:
    url: str  # "http://127.0.0.1:PORT"
    pid: int
    log_path: Path
    key_file: Path
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def token(self, user: str, *roles: str, hours: float = 12.0) -> str:
        return local_token(self.key_file, user, list(roles) or ["coder"], hours)

    def stop(self) -> None:
        stop_pid(self.pid)
        if self._process is not None:
            self._process.wait(timeout=10)


def local_token(key_file: Path, user: str, roles: list[str], hours: float = 12.0, audience: str = "icd-coder-workbench") -> str:
    from engine.workbench.auth import mint_local_token

    return mint_local_token(key_file, user, roles, audience, hours)


def start_workbench(env: dict[str, str], workdir: Path, port: int | None = None, timeout_s: float = 60.0) -> WorkbenchServer:
    """Start the workbench with ``env`` (the engine's ``ICDCODER_*`` environment; auth is set to local with a key
    written into ``workdir`` unless ``env`` names one) and return once /readyz answers."""
    from engine.workbench.auth import write_local_key

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = Path(env.get("ICDCODER_WORKBENCH_LOCAL_KEY_FILE") or workdir / "workbench-key.pem")
    if not key_file.exists():
        write_local_key(key_file)
    port = port or free_port()
    env = {**env, "ICDCODER_WORKBENCH_AUTH": env.get("ICDCODER_WORKBENCH_AUTH", "local"), "ICDCODER_WORKBENCH_LOCAL_KEY_FILE": str(key_file)}
    log_path = workdir / "workbench.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "engine", "workbench", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=os.getcwd())
    server = WorkbenchServer(f"http://127.0.0.1:{port}", process.pid, log_path, key_file, process)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the workbench exited ({process.returncode}); log: {log_path}\n{server.logs()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(f"the workbench was not ready within {timeout_s:.0f} s; log: {log_path}")
        time.sleep(0.2)

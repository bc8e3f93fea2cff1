"""The real ``tritonserver`` (from the ``nvidia-pytriton`` wheel) on loopback: tests, the demo, fault drills.

The wheel ships Triton 2.51 with the Python backend only, so a repository served here must use the
CPU variant written by ``trainer export --variant cpu-python`` (a Python-backend model.py that runs the
same model.onnx with onnxruntime). Production runs the NGC image instead (docker-compose.yml).

What the binary needs, found by reading pytriton's own launcher (``pytriton/triton.py``):
- a backend directory holding ``python/libtriton_python.so`` and the stub built for THIS interpreter's
  minor version (the wheel keeps stubs per Python version apart; we link them into ``workdir/backends``);
- ``LD_LIBRARY_PATH`` with this interpreter's own lib dir first (the stub links libpython) and the wheel's
  ``nvidia_pytriton.libs``;
- a unique shared-memory prefix per server, so servers started by parallel test runs never collide.

Readiness is ``--strict-readiness``: ``/v2/health/ready`` is 200 only when every model is loaded.
Model control defaults to ``poll`` so a newly exported version appears without a restart
(``trainer export`` renames a finished version into place, so a poll never sees half a version).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.devservers import free_port

log = logging.getLogger(__name__)

ModelControl = Literal["none", "poll", "explicit"]
HOST = "127.0.0.1"


class TritonStartError(RuntimeError):
    """tritonserver could not be found, exited, or did not become ready; the message quotes its log."""


@dataclass(frozen=True)
class TritonDistribution:
    """Where the pieces of the tritonserver shipped by nvidia-pytriton lie in this environment."""

    binary: Path
    python_backend: Path  # directory with libtriton_python.so and triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub built for this Python's minor version
    libs: Path  # the wheel's bundled shared libraries


def find_tritonserver() -> TritonDistribution:
    """Locate the binary inside the installed ``pytriton`` package without importing it."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise TritonStartError("nvidia-pytriton is not installed: `pip install nvidia-pytriton==0.7.0` (make setup does)")
    package = Path(spec.origin).parent
    server = package / "tritonserver"
    # Wheel installs keep libs beside the package; an editable pytriton checkout keeps them inside.
    libs = package.parent / "nvidia_pytriton.libs"
    if not libs.is_dir():
        libs = server / "external_libs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    dist = TritonDistribution(
        binary=server / "bin" / "tritonserver",
        python_backend=server / "backends" / "python",
        stub=server / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=libs,
    )
    for what, path in (("binary", dist.binary), ("python backend", dist.python_backend), (f"Python {version} stub", dist.stub), ("libraries", dist.libs)):
        if not path.exists():
            raise TritonStartError(f"tritonserver {what} not found at {path} (nvidia-pytriton installation incomplete?)")
    return dist


def _backend_directory(dist: TritonDistribution, workdir: Path) -> Path:
    """``workdir/backends/python`` = the wheel's Python backend + the stub for this interpreter (links)."""
    python_dir = workdir / "backends" / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    links = {p.name: p for p in dist.python_backend.iterdir() if p.is_file()}
    links["triton_python_backend_stub"] = dist.stub
    for name, target in links.items():
        link = python_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return workdir / "backends"


def _environment(dist: TritonDistribution) -> dict[str, str]:
    env = dict(os.environ)
    python_lib = sysconfig.get_config_var("LIBDIR") or str(Path(sys.base_prefix) / "lib")
    parts = [python_lib, str(dist.libs)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    env["LD_LIBRARY_PATH"] = ":".join(parts)
    # The embedded interpreter finds its prefix by looking up "python3" on PATH: with this venv's bin first
    # it reads the venv's pyvenv.cfg and imports numpy<2/onnxruntime from the venv, not the base install.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _http_status(url: str, method: str = "GET", timeout: float = 2.0) -> int:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return 0


class TritonServer:
    """A running tritonserver child process. ``grpc_url``/``http_url`` are ``host:port`` as tritonclient
    takes them; ``metrics_url`` is the full Prometheus URL."""

    def __init__(self, process: subprocess.Popen, model_repository: Path, workdir: Path, log_path: Path,
                 http_port: int, grpc_port: int, metrics_port: int, model_control: ModelControl) -> None:
        self.process = process
        self.model_repository = model_repository
        self.workdir = workdir
        self.log_path = log_path
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.model_control = model_control

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{HOST}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    def is_running(self) -> bool:
        return self.process.poll() is None

    def is_ready(self) -> bool:
        return _http_status(f"http://{self.http_url}/v2/health/ready") == 200

    def is_model_ready(self, name: str, version: int | None = None) -> bool:
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "") + "/ready"
        return _http_status(f"http://{self.http_url}{path}") == 200

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout_s: float = 120.0) -> "TritonServer":
        """Block until the server (and, with strict readiness, every model) is ready."""
        self._wait(self.is_ready, timeout_s, "the server to become ready")
        return self

    def wait_model_ready(self, name: str, version: int | None = None, timeout_s: float = 60.0) -> None:
        """Block until a model (version) is ready, e.g. after a new export in poll mode."""
        what = f"model {name!r}" + (f" version {version}" if version is not None else "") + " to become ready"
        self._wait(lambda: self.is_model_ready(name, version), timeout_s, what)

    def load_model(self, name: str, timeout_s: float = 60.0) -> None:
        """Explicit model control: (re)load a model so new versions on disk are served."""
        status = _http_status(f"http://{self.http_url}/v2/repository/models/{name}/load", "POST", timeout=timeout_s)
        if status != 200:
            raise TritonStartError(f"loading model {name!r} failed (HTTP {status}); log tail:\n{self.log_tail()}")

    def _wait(self, condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if not self.is_running():
                raise TritonStartError(f"tritonserver exited with status {self.process.returncode} while waiting for {what}; "
                                       f"log {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TritonStartError(f"timed out after {timeout_s:.0f} s waiting for {what}; log {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, wait for a clean exit (ports released), SIGKILL the process group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("tritonserver pid %d did not stop in %.0f s; killing it", self.pid, timeout_s)
                os.killpg(self.pid, signal.SIGKILL)  # its own session: the server and its backend stubs
                self.process.wait(timeout=10)
        log.info("tritonserver pid %d stopped (status %s)", self.pid, self.process.returncode)

    def __enter__(self) -> "TritonServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_triton(model_repository: Path, workdir: Path, http_port: int | None = None, grpc_port: int | None = None,
                 metrics_port: int | None = None, *, model_control: ModelControl = "poll", poll_interval_s: int = 1,
                 model_config_name: str | None = None, ready_timeout_s: float = 120.0, wait: bool = True) -> TritonServer:
    """Start tritonserver on loopback serving ``model_repository``; returns once ready (``wait=True``).

    Ports default to free ones; pass a stopped server's ports to restart it in place. ``model_control``:
    ``poll`` rescans the repository every ``poll_interval_s`` (new versions appear by themselves),
    ``explicit`` loads everything at start and reloads on ``load_model()``, ``none`` never rescans.
    ``model_config_name`` picks ``<model>/configs/<name>.pbtxt`` instead of ``config.pbtxt``.
    """
    model_repository, workdir = Path(model_repository).resolve(), Path(workdir).resolve()
    if not model_repository.is_dir():
        raise TritonStartError(f"model repository {model_repository} is not a directory")
    workdir.mkdir(parents=True, exist_ok=True)
    dist = find_tritonserver()
    backends = _backend_directory(dist, workdir)
    http_port, grpc_port, metrics_port = (p or free_port() for p in (http_port, grpc_port, metrics_port))
    shm_prefix = f"icdcoder_{os.getpid()}_{secrets.token_hex(4)}_"
    cmd = [
        str(dist.binary),
        f"--model-repository={model_repository}",
        f"--backend-directory={backends}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        f"--http-address={HOST}", f"--http-port={http_port}",
        f"--grpc-address={HOST}", f"--grpc-port={grpc_port}",
        f"--metrics-address={HOST}", f"--metrics-port={metrics_port}",
        "--strict-readiness=true",
        "--exit-timeout-secs=5",
        f"--model-control-mode={model_control}",
    ]
    if model_control == "poll":
        cmd.append(f"--repository-poll-secs={max(1, int(poll_interval_s))}")
    if model_control == "explicit":
        cmd.append("--load-model=*")
    if model_config_name:
        cmd.append(f"--model-config-name={model_config_name}")
    log_path = workdir / "tritonserver.log"
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n==== start {time.strftime('%Y-%m-%dT%H:%M:%S')} ports http={http_port} grpc={grpc_port} metrics={metrics_port}\n".encode())
        log_file.flush()
        process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=_environment(dist), cwd=workdir, start_new_session=True)
    server = TritonServer(process, model_repository, workdir, log_path, http_port, grpc_port, metrics_port, model_control)
    log.info("tritonserver pid %d starting: grpc %s http %s, log %s", server.pid, server.grpc_url, server.http_url, log_path)
    if wait:
        try:
            server.wait_ready(ready_timeout_s)
        except BaseException:
            server.stop()
            raise
    return server

"""What the Kafka and Redis dev servers share: waiting for a port, stopping a process by pid."""

from __future__ import annotations

import os
import signal
import socket
import time


def wait_for_port(port: int, timeout_s: float, alive=lambda: True, what: str = "server") -> None:
    """Block until something accepts connections on 127.0.0.1:port, or raise naming the server."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited before listening on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; a pid that is already gone is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def pid_alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own children so they do not linger as zombies
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (e.g. a daemonised redis-server)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

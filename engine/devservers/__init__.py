"""Real servers on loopback for development, tests and the demo (never mocks): each module starts one
server as a child process on free ports and stops it by pid. Torch-free, standard library only."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (bind to 0). A race with other processes is possible but rare."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

"""Real servers on loopback for development, tests and the demo (never mocks): ``kafka``, ``redis`` and ``triton``
each start one server as a child process on free ports and stop it by pid (torch-free, standard library only);
``environment`` builds the ``ICDCODER_*`` environment of an engine run against them."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (bind to 0). A race with other processes is possible but rare."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

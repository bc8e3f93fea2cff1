"""A loopback TCP proxy in front of the Kafka broker that can act at one precise protocol moment.

Clients reach the broker only through it (start the broker with ``advertised_port=proxy.port``). Each client
request frame (4-byte size, then api_key) is read whole before it is forwarded; when ``arm(callback)`` was
called, the first OffsetCommit request (api_key 8) runs ``callback`` and is dropped with its connection.
The chaos benchmark uses it to SIGKILL the engine exactly between "every output acknowledged" and "offsets
committed" (the engine commits only after its writes are acknowledged), rather than hoping for that window.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Callable

from bench.devservers import free_port

OFFSET_COMMIT = 8


class KafkaProxy:
    def __init__(self, broker_port: int, port: int | None = None) -> None:
        self.broker_port = broker_port
        self.port = port or free_port()
        self._armed: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self.commits_seen = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, name="kafka-proxy", daemon=True).start()

    def arm(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the next OffsetCommit request, which is dropped (never reaches the broker)."""
        with self._lock:
            self._armed = callback

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.broker_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                head = _read(client, 4)
                (size,) = struct.unpack(">i", head)
                body = _read(client, size)
                (api_key,) = struct.unpack(">h", body[:2])
                if api_key == OFFSET_COMMIT:
                    with self._lock:
                        self.commits_seen += 1
                        callback, self._armed = self._armed, None
                    if callback is not None:
                        callback()
                        break  # dropped: the commit never reaches the broker
                upstream.sendall(head + body)
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            _close(client, upstream)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def close(self) -> None:
        self._closed = True
        self._server.close()


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass

"""The MLLP bridge: HL7 v2 senders without an interface engine write to the engine's input topic over MLLP.

Each framed message (python-hl7's asyncio MLLP streams) is written to ``ICDCODER_KAFKA_INPUT_TOPIC`` through
the engine's acknowledged producer (acks=all, idempotent) and answered only then:

- ``AA``: the broker acknowledged the write. The message is stored; the sender may forget it.
- ``AE``: the broker did not acknowledge (unreachable, busy): nothing may be assumed stored; resend.
- ``AR``: the bridge will never store these bytes: larger than the limit, not an ER7 message, or refused by
  the broker for good (too large for the topic). Resending the same bytes cannot help.

A sender resends what was not ``AA``-acknowledged (MLLP's rule), so a crash between the broker's
acknowledgement and the ``AA`` can write a message twice; the engine's output for a repeated note is
byte-identical (processed-note store), so a duplicate is never coded differently. The record key is a
hash of PID-3 (never the identifier in clear): one patient's messages stay in one partition, in order
(a T11 cancel after its T02). The bridge does not validate beyond MSH: the engine dead-letters bad
messages with the field named, where they can be inspected and replayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import hl7
from hl7.mllp import InvalidBlockError, start_hl7_server

from engine.infra.producer import Producer, WriteRefused
from schemas.errors import ProcessingError, TransientError

log = logging.getLogger(__name__)

_FALLBACK_MSH = "MSH|^~\\&|ICDCODER|ICDCODER|||{when}||ACK|{control}|P|2.5"


@dataclass(frozen=True)
class BridgeConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    topic: str = "ehr.hl7"
    max_message_bytes: int = 4 * 1024 * 1024
    certfile: Path | None = None  # TLS when given (with keyfile)
    keyfile: Path | None = None
    client_cafile: Path | None = None  # mutual TLS: senders must present a certificate signed by this CA


@dataclass
class BridgeCounts:
    accepted: int = 0  # AA
    errors: int = 0  # AE (resend)
    rejected: int = 0  # AR (never stored)


def tls_context(config: BridgeConfig) -> ssl.SSLContext | None:
    if config.certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.certfile), str(config.keyfile) if config.keyfile else None)
    if config.client_cafile is not None:
        context.load_verify_locations(str(config.client_cafile))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def record_key(message: bytes) -> bytes | None:
    """sha256 of PID-3's first repetition (identifier and authority): per-patient order, no MRN in clear."""
    try:
        pid = hl7.parse(message.decode("latin-1").replace("\n", "\r")).segment("PID")
        ident = str(pid(3)(1)) if len(pid) > 3 else ""
    except Exception:  # noqa: BLE001 - no PID or unreadable: no key (any partition); the engine says what is wrong
        return None
    return hashlib.sha256(ident.encode("latin-1")).hexdigest()[:32].encode() if ident else None


def ack(message: bytes | None, code: str, text: str = "") -> bytes:
    """An ACK for ``message`` (python-hl7 ``create_ack``: MSA-1 ``code``, MSA-2 its MSH-10), MSA-3 ``text``
    (a reason that never quotes the message). A message without a readable MSH gets a generic ACK."""
    try:
        parsed = hl7.parse(message.decode("latin-1").replace("\n", "\r")) if message else None
        reply = parsed.create_ack(code) if parsed is not None else None
    except Exception:  # noqa: BLE001 - not ER7: answer with a header of our own
        reply = None
    if reply is None:
        reply = hl7.parse(_FALLBACK_MSH.format(when="20000101000000", control=hl7.generate_message_control_id()))
        reply.append(reply.create_segment([reply.create_field(["MSA"])]))
        reply.segment("MSA").assign_field(code, 1)
    if text:
        reply.segment("MSA").assign_field(reply.escape(text), 3)
    return str(reply).encode("latin-1", "replace")


class MllpBridge:
    """Listens for MLLP connections; each message -> acknowledged topic write -> AA/AE/AR (module docstring)."""

    def __init__(self, config: BridgeConfig, producer: Producer, on_message: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.producer = producer
        self.counts = BridgeCounts()
        self.on_message = on_message or (lambda code: None)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port (``port=0`` picks a free one)."""
        self._server = await start_hl7_server(self._connection, self.config.host, self.config.port,
                                              limit=self.config.max_message_bytes, ssl=tls_context(self.config))
        return self._server.sockets[0].getsockname()[1]

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, reader, writer) -> None:
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    return  # the sender closed the connection
                except ValueError:  # over the limit: the rest of the stream cannot be framed again
                    self._answer(writer, ack(None, "AR", f"message exceeds {self.config.max_message_bytes} bytes"), "AR")
                    await writer.drain()
                    return
                except InvalidBlockError:
                    self._answer(writer, ack(None, "AR", "MLLP block without start character"), "AR")
                    await writer.drain()
                    return
                code, reply = await self._store(block)
                self._answer(writer, reply, code)
                await writer.drain()
        except (ConnectionError, OSError) as err:
            log.info("MLLP connection ended", extra={"fields": {"error": type(err).__name__}})
        finally:
            writer.close()

    async def _store(self, block: bytes) -> tuple[str, bytes]:
        message = block.strip(b"\r\n")
        if message[:3] != b"MSH":
            return "AR", ack(None, "AR", ProcessingError("not_hl7", "message does not start with an MSH segment").detail)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.producer.send_all, [(self.config.topic, record_key(message), message + b"\r", [])])
        except TransientError as err:
            log.warning("message not stored; answered AE", extra={"fields": {"error": type(err.__cause__ or err).__name__}})
            return "AE", ack(message, "AE", "not stored: the broker did not acknowledge the write; resend")
        except WriteRefused as err:
            return "AR", ack(message, "AR", f"refused by the broker ({', '.join(sorted(set(err.refused.values())))})")
        return "AA", ack(message, "AA")

    def _answer(self, writer, reply: bytes, code: str) -> None:
        writer.writeblock(reply)
        self.counts.accepted += code == "AA"
        self.counts.errors += code == "AE"
        self.counts.rejected += code == "AR"
        self.on_message(code)

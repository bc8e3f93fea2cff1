"""``python -m engine mllp``: the MLLP bridge (``engine.io.mllp``) for HL7 v2 senders without an interface engine.

Listens on ``--host``/``--port``; every framed message goes to ``ICDCODER_KAFKA_INPUT_TOPIC`` (the engine reads
it with ``ICDCODER_ENGINE_INPUT_FORMAT=hl7v2``) and is answered AA only after the broker acknowledged the write,
AE (resend) or AR (never stored) otherwise. Kafka connection settings come from ``ICDCODER_KAFKA_*``. Stops on
SIGTERM/SIGINT after answering the messages in hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from schemas.cli import UserError
from schemas.errors import TransientError
from schemas.settings import load_settings

log = logging.getLogger("engine.mllp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=2575, help="port to listen on (default 2575, the registered HL7 port)")
    parser.add_argument("--max-message-bytes", type=int, default=None, help="largest message accepted (default ICDCODER_KAFKA_MAX_MESSAGE_BYTES)")
    parser.add_argument("--tls-cert", type=Path, help="serve MLLP over TLS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", type=Path, help="private key of --tls-cert (PEM)")
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mutual TLS)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    from engine.infra.producer import Producer
    from engine.io.mllp import BridgeConfig, MllpBridge
    from engine.observability import setup_json_logging

    setup_json_logging("DEBUG" if getattr(args, "verbose", False) else settings.log_level)
    if (args.tls_key or args.tls_client_ca) and not args.tls_cert:
        raise UserError("--tls-key and --tls-client-ca need --tls-cert")
    for path in (args.tls_cert, args.tls_key, args.tls_client_ca):
        if path is not None and not path.is_file():
            raise UserError(f"no such file: {path}")
    max_bytes = args.max_message_bytes or settings.kafka.max_message_bytes
    if max_bytes < 1024:
        raise UserError("--max-message-bytes must be at least 1024")
    config = BridgeConfig(args.host, args.port, settings.kafka.input_topic, max_bytes, args.tls_cert, args.tls_key, args.tls_client_ca)
    try:
        producer = Producer(settings.kafka, "mllp")
    except TransientError as err:
        raise UserError(f"Kafka unavailable: {err}") from None
    try:
        bridge = MllpBridge(config, producer)
        counts = asyncio.run(_serve(bridge))
    finally:
        producer.close(timeout=10)
    print(f"engine mllp: {counts.accepted} stored (AA), {counts.errors} not stored (AE), {counts.rejected} rejected (AR)")
    return 0


async def _serve(bridge):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        port = await bridge.start()
    except OSError as err:
        raise UserError(f"cannot listen on {bridge.config.host}:{bridge.config.port}: {err.strerror}") from None
    log.info("MLLP bridge listening", extra={"fields": {"host": bridge.config.host, "port": port, "topic": bridge.config.topic,
                                                        "tls": bridge.config.certfile is not None}})
    await bridge.serve_until(stop)
    return bridge.counts

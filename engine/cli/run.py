"""``python -m engine run``: serve the stream until SIGTERM/SIGINT (exit 0 after a clean shutdown).

DocumentReference messages in (``ICDCODER_KAFKA_INPUT_TOPIC``), FHIR transaction Bundles out
(``ICDCODER_KAFKA_OUTPUT_TOPIC``), unprocessable messages to ``ICDCODER_KAFKA_DEAD_LETTER_TOPIC``.
Settings come only from the ``ICDCODER_*`` environment (``python -m engine config`` shows them).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from schemas.cli import UserError
from schemas.settings import load_settings

log = logging.getLogger("engine.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--create-topics", action="store_true", help="create the engine's topics first if missing")
    parser.add_argument("--partitions", type=int, default=3, help="partitions for topics created by --create-topics (default 3)")
    parser.add_argument("--replication-factor", type=int, default=1, help="replication factor for --create-topics (default 1)")
    parser.add_argument("--max-notes", type=int, default=None, metavar="N", help="stop after N notes (coded or dead-lettered); for demos and tests")
    parser.add_argument("--idle-exit-s", type=float, default=None, metavar="S", help="stop after S seconds without input; for demos and tests")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()  # a SettingsError is a UserError: reported without a traceback
    for name in ("max_notes", "partitions", "replication_factor"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    from engine.app import build_service
    from engine.infra.kafka import create_topics
    from engine.observability import setup_json_logging

    setup_json_logging("DEBUG" if getattr(args, "verbose", False) else settings.log_level)
    if args.create_topics:
        created = create_topics(settings.kafka, args.partitions, args.replication_factor)
        log.info("topics ready", extra={"fields": {"created": created}})

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("shutdown requested", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    with build_service(settings, stop) as service:
        summary = service.run(max_notes=args.max_notes, idle_exit_s=args.idle_exit_s)
    print(f"engine run: {summary.notes} notes ({summary.coded} coded, of which {summary.repeats} repeats and {summary.retractions} "
          f"retractions, {summary.dead_letters} dead letters, {summary.skipped} skipped), {summary.retries} retries; stopped by {summary.stopped_by}")
    # 3: stopped because retrying could not help (a write refused for good, or stuck past the stall timeout);
    # the batch in hand was not committed and is re-delivered to the next run
    return 3 if summary.stopped_by in ("write_refused", "stalled") else 0

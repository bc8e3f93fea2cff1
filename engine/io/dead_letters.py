"""Dead letters: a message that can never be processed goes, byte for byte with its original headers, to
the dead-letter topic, with ``dlq.*`` headers that say why and where it came from. Never PHI: ``detail``
names a field or a limit, and ``safe_detail`` strips anything that looks like an echoed value."""

from __future__ import annotations

import datetime as dt
import re
from typing import Sequence

from kafka import KafkaProducer

from engine.infra.kafka import send_all
from engine.pipeline.types import SourceRecord
from schemas.errors import ProcessingError

HEADER_PREFIX = "dlq."
MAX_DETAIL_CHARS = 200

# Validation libraries echo offending input ("input_value='...'", quoted strings): drop those parts.
_ECHOED_INPUT = re.compile(r"input_value=.*?(?=, input_type=|\]|$)|'[^']*'|\"[^\"]*\"", re.DOTALL)


def safe_detail(detail: str) -> str:
    """A detail string fit for a header: echoed values removed, one line, bounded length."""
    cleaned = _ECHOED_INPUT.sub("<redacted>", detail)
    cleaned = " ".join(cleaned.split())
    return cleaned[:MAX_DETAIL_CHARS]


def dead_letter_headers(record: SourceRecord, error: ProcessingError, engine_version: str, now: dt.datetime) -> list[tuple[str, bytes]]:
    """The original headers (minus any stale ``dlq.*`` ones) followed by why and where."""
    headers = [(k, v) for k, v in record.headers if not k.startswith(HEADER_PREFIX)]
    pos = record.position
    headers += [
        ("dlq.reason", error.reason.encode()),
        ("dlq.detail", safe_detail(error.detail).encode()),
        ("dlq.source.topic", (pos.topic if pos else "").encode()),
        ("dlq.source.partition", (str(pos.partition) if pos else "").encode()),
        ("dlq.source.offset", (str(pos.offset) if pos else "").encode()),
        ("dlq.engine.version", engine_version.encode()),
        ("dlq.time", now.astimezone(dt.timezone.utc).isoformat().encode()),
    ]
    return headers


class DeadLetterWriter:
    def __init__(self, producer: KafkaProducer, topic: str, engine_version: str) -> None:
        self.producer = producer
        self.topic = topic
        self.engine_version = engine_version

    def write(self, failures: Sequence[tuple[SourceRecord, ProcessingError]]) -> None:
        """Publish every failure and return once all are acknowledged (``TransientError`` otherwise)."""
        now = dt.datetime.now(dt.timezone.utc)
        send_all(
            self.producer,
            [(self.topic, rec.key, rec.value, dead_letter_headers(rec, err, self.engine_version, now)) for rec, err in failures],
        )

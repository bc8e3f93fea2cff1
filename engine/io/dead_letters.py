"""Dead letters: a message that can never be processed goes, byte for byte with its original headers, to
the dead-letter topic, with ``dlq.*`` headers that say why and where it came from. Never PHI: ``detail``
names a field or a limit, and ``safe_detail`` strips anything that looks like an echoed value.

A dead letter cannot fail on size: when the broker (or the producer's ``max_request_size``) refuses the
original bytes for good (``WriteRefused``: too large, invalid), a **reference record** goes in their place:
same key, the ``dlq.*`` headers plus ``dlq.payload: reference`` and ``dlq.refused: <error>``, and a small
JSON value naming the source topic/partition/offset, the key, the size and SHA-256 of the original bytes and
the reason (``reference_value``). The original stays on the input topic until its retention ends: fetch it
from there by offset, and compare the hash. Only if even the reference is refused (the dead-letter topic
itself is refused: authorisation, a broker limit under a kilobyte) does ``WriteRefused`` reach the service,
which stops rather than retry for ever.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Sequence

from engine.infra.producer import Producer, WriteRefused, send_all
from engine.pipeline.types import SourceRecord
from schemas.errors import ProcessingError

HEADER_PREFIX = "dlq."
MAX_DETAIL_CHARS = 200
MAX_REFERENCE_HEADER_BYTES = 16 * 1024  # a reference record keeps the original headers only up to this size

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


def reference_value(record: SourceRecord, error: ProcessingError, refused_by: str) -> bytes:
    """The value of a reference record: where the original is and how to recognise it, never its content."""
    pos = record.position
    doc = {
        "dead_letter": "reference",
        "reason": error.reason,
        "detail": safe_detail(error.detail),
        "refused_by": refused_by,
        "source": {"topic": pos.topic, "partition": pos.partition, "offset": pos.offset} if pos else None,
        "key_b64": base64.b64encode(record.key).decode() if record.key is not None else None,
        "size_bytes": len(record.value),
        "sha256": hashlib.sha256(record.value).hexdigest(),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _reference_headers(headers: list[tuple[str, bytes]], refused_by: str) -> list[tuple[str, bytes]]:
    kept, size = [], 0
    for k, v in headers:
        size += len(k) + len(v)
        if k.startswith(HEADER_PREFIX) or size <= MAX_REFERENCE_HEADER_BYTES:
            kept.append((k, v))
    return kept + [("dlq.payload", b"reference"), ("dlq.refused", refused_by.encode())]


class DeadLetterWriter:
    def __init__(self, producer: Producer, topic: str, engine_version: str) -> None:
        self.producer = producer
        self.topic = topic
        self.engine_version = engine_version
        self.references = 0  # dead letters sent as reference records (their bytes were refused)

    def write(self, failures: Sequence[tuple[SourceRecord, ProcessingError]]) -> None:
        """Publish every failure and return once all are acknowledged (``TransientError`` otherwise): the
        original bytes, or a reference record for those the broker refuses for good."""
        now = dt.datetime.now(dt.timezone.utc)
        headers = [dead_letter_headers(rec, err, self.engine_version, now) for rec, err in failures]
        try:
            send_all(self.producer, [(self.topic, rec.key, rec.value, h) for (rec, _), h in zip(failures, headers)])
            return
        except WriteRefused as refused:
            indices = sorted(refused.refused)
            references = [(self.topic, failures[i][0].key, reference_value(*failures[i], refused.refused[i]),
                           _reference_headers(headers[i], refused.refused[i])) for i in indices]
        send_all(self.producer, references)  # WriteRefused again: the topic itself refuses; the service stops
        self.references += len(references)

"""The audit topic: the ``AuditRecord`` of a processed note (``engine.io.sinks.AuditSink`` publishes it), and
reading ranges of the topic back (for replay and feedback evaluation).

An audit record holds what is needed to explain and replay a suggestion: document reference and version,
source position, model name/version, thresholds, the note's scores (aggregation already left out those
below ``ICDCODER_ENGINE_AUDIT_SCORE_FLOOR``: ``AggregationParams.score_floor``), the suggestions,
timings, and the DE-IDENTIFIED text (only with ``ICDCODER_ENGINE_AUDIT_INCLUDE_TEXT=true``; otherwise just
its SHA-256). ``ProcessedNote.note.text`` is the original text and never enters a record.
Records are keyed by document reference and written with acks=all before the batch's offsets commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tqdm import tqdm

from engine.infra.kafka import read_topic
from engine.pipeline.types import ProcessedNote
from schemas.envelopes import AuditRecord, SourcePosition
from schemas.settings import KafkaSettings


def audit_record(note: ProcessedNote, include_text: bool) -> AuditRecord:
    return AuditRecord(
        document_reference=note.note.reference,
        document_version=note.note.document_version,
        subject=note.note.subject,
        encounter=note.note.encounter,
        source=note.source,
        model=note.model,
        threshold_global=note.thresholds_global,
        deid_text=note.deid_text if include_text else None,
        deid_text_sha256=note.deid_text_sha256,
        scores=dict(sorted(note.scores.items())),  # by code (the note's map is highest first)
        suggestions=note.suggestions,
        timings_ms=dict(note.timings_ms),
        processed_at=note.processed_at,
        event="retracted" if note.action == "retract" else "coded",
        retracted_conditions=note.retracts,
    )


@dataclass(frozen=True)
class AuditRange:
    """Which audit records to read: offsets (per partition, inclusive) and/or processing times."""

    from_offset: int | None = None
    to_offset: int | None = None
    from_time: dt.datetime | None = None
    to_time: dt.datetime | None = None

    def describe(self) -> str:
        parts = []
        if self.from_offset is not None or self.to_offset is not None:
            parts.append(f"offsets {self.from_offset if self.from_offset is not None else 'start'}..{self.to_offset if self.to_offset is not None else 'end'}")
        if self.from_time or self.to_time:
            parts.append(f"times {self.from_time.isoformat() if self.from_time else 'start'}..{self.to_time.isoformat() if self.to_time else 'end'}")
        return ", ".join(parts) or "the whole topic"


def read_audit(kafka: KafkaSettings, topic: str, selection: AuditRange, idle_s: float = 0.5,
               progress: bool = False) -> tuple[list[tuple[SourcePosition, AuditRecord]], int]:
    """Audit records in ``selection`` (times compare with ``processed_at``) and the count of unreadable records."""
    out, unreadable = [], 0
    records = read_topic(kafka, topic, from_offset=selection.from_offset, to_offset=selection.to_offset,
                         from_time=selection.from_time, idle_s=idle_s)
    for r in tqdm(records, desc=f"reading {topic}", unit="record", disable=not progress):
        try:
            record = AuditRecord.model_validate_json(r.value)
        except ValueError:
            unreadable += 1
            continue
        if selection.from_time and record.processed_at < selection.from_time:
            continue
        if selection.to_time and record.processed_at > selection.to_time:
            continue
        out.append((SourcePosition(topic=r.topic, partition=r.partition, offset=r.offset), record))
    return out, unreadable

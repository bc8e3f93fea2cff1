"""The audit topic: one ``AuditRecord`` per processed note, and reading ranges of it back (for replay).

An audit record holds what is needed to explain and replay a suggestion: document reference and version,
source position, model name/version, thresholds, the note's scores (aggregation already left out those
below ``ICDCODER_ENGINE_AUDIT_SCORE_FLOOR``: ``AggregationParams.score_floor``), the suggestions,
timings, and the DE-IDENTIFIED text (only with ``ICDCODER_ENGINE_AUDIT_INCLUDE_TEXT=true``; otherwise just
its SHA-256). ``ProcessedNote.note.text`` is the original text and never enters a record.
Records are keyed by document reference and written with acks=all before the batch's offsets commit.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from tqdm import tqdm

from engine.kafka_config import consumer_kwargs
from engine.pipeline.sinks import send_all
from engine.pipeline.types import ProcessedNote
from schemas.envelopes import AuditRecord, SourcePosition
from schemas.settings import EngineSettings, KafkaSettings


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
    )


class AuditSink:
    """Publishes an AuditRecord per note to the audit topic (acks=all). Implements ``types.Sink``."""

    dependency = "kafka"  # what a TransientError from here means (retry metrics, readiness)

    def __init__(self, producer, topic: str, include_text: bool) -> None:
        self.producer = producer
        self.topic = topic
        self.include_text = include_text

    @classmethod
    def from_settings(cls, settings: EngineSettings, producer) -> "AuditSink":
        return cls(producer, settings.kafka.audit_topic, settings.audit_include_text)

    def write(self, notes: Sequence[ProcessedNote]) -> None:
        messages = []
        for n in notes:
            record = audit_record(n, self.include_text)
            headers = [("content-type", b"application/json"), ("model", f"{n.model.name}/{n.model.version}".encode())]
            messages.append((self.topic, record.document_reference.encode(), record.model_dump_json().encode(), headers))
        send_all(self.producer, messages)

    def close(self) -> None:
        """The producer is shared with the other Kafka sinks; the service closes it."""


def read_topic(kafka: KafkaSettings, topic: str, *, from_offset: int | None = None, to_offset: int | None = None,
               from_time: dt.datetime | None = None, idle_s: float = 0.5) -> Iterator[ConsumerRecord]:
    """Records of every partition of ``topic`` from ``from_offset`` (or the first at/after ``from_time``, or
    the beginning) up to ``to_offset`` inclusive (or the end), without joining a consumer group.

    The end is reached when every partition's position has reached its high watermark (as reported by a
    fetch response) and nothing new arrived for ``idle_s``."""
    kw = consumer_kwargs(kafka)
    # an offset past the end reads nothing (the default, earliest, would silently restart from the beginning)
    kw.update(group_id=None, enable_auto_commit=False, auto_offset_reset="latest")
    consumer = KafkaConsumer(**kw)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        if from_time is not None:
            found = consumer.offsets_for_times({tp: int(from_time.timestamp() * 1000) for tp in tps})
            for tp in tps:
                if found.get(tp) is None:
                    consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, found[tp].offset)
        elif from_offset is not None:
            # below the oldest retained record kafka-python would reset to the END: start at the oldest instead
            oldest = consumer.beginning_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(from_offset, oldest[tp]))
        ends = consumer.end_offsets(tps)
        finished: set[TopicPartition] = set()
        last_record = time.monotonic()
        while len(finished) < len(tps):
            polled = consumer.poll(timeout_ms=300)
            for tp, records in polled.items():
                for r in records:
                    if to_offset is not None and r.offset > to_offset:
                        finished.add(tp)
                        consumer.pause(tp)
                        break
                    last_record = time.monotonic()
                    yield r
            if not polled:
                # caught up: a fetch response has told us the partition's high watermark and we are there
                # (list-offsets alone is not enough: Tansu under-reports it after multi-record batches)
                caught_up = all(consumer.highwater(tp) is not None and consumer.position(tp) >= max(ends[tp], consumer.highwater(tp))
                                for tp in tps if tp not in finished)
                if caught_up and time.monotonic() - last_record >= idle_s:
                    break
    finally:
        consumer.close()


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

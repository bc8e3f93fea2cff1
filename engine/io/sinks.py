"""The service's three sinks, written in this order for every batch (``engine.app.build_service``):

1. ``OutputTopicSink``: each note's FHIR transaction Bundle to the output topic, keyed by encounter (or
   patient) so one encounter's suggestions stay ordered in one partition;
2. ``AuditSink``: each note's ``AuditRecord`` (``engine.audit.records``) to the audit topic;
3. ``WorklistSink``: each coded note merged into its encounter's worklist item in Redis.

Each implements ``engine.pipeline.types.Sink``: ``write()`` returns only when every write is acknowledged
(acks=all, idempotent producer; Redis applied), and an unavailable dependency is a ``TransientError`` whose
``dependency`` names it (retry metrics, readiness). Dead letters have their own writer (``dead_letters``).
"""

from __future__ import annotations

from typing import Sequence

import redis

from engine.audit.records import audit_record
from engine.infra.producer import Producer, send_all
from engine.infra.redis import redis_client
from engine.pipeline.types import ProcessedNote
from engine.worklist.store import WorklistStore
from schemas.errors import TransientError
from schemas.settings import EngineSettings, RedisSettings


class OutputTopicSink:
    """Publishes ``ProcessedNote.bundle_json`` to the output topic. Implements ``types.Sink``."""

    dependency = "kafka"  # what a TransientError from here means (retry metrics, readiness)

    def __init__(self, producer: Producer, topic: str, fhir_version: str) -> None:
        self.producer = producer
        self.topic = topic
        self.fhir_version = fhir_version

    def write(self, notes: Sequence[ProcessedNote]) -> None:
        send_all(self.producer, [(self.topic, n.output_key, n.bundle_json, self._headers(n)) for n in notes])

    def _headers(self, n: ProcessedNote) -> list[tuple[str, bytes]]:
        # Routing facts only: no identifiers beyond the key, never text.
        return [
            ("content-type", b"application/fhir+json"),
            ("fhir-version", self.fhir_version.encode()),
            ("model", f"{n.model.name}/{n.model.version}".encode()),
        ]

    def close(self) -> None:
        """The producer is shared with the dead-letter writer; the service closes it."""


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


class WorklistSink:
    """Merges each coded note into its encounter's worklist item in Redis. Implements ``types.Sink``."""

    dependency = "redis"  # what a TransientError from here means (retry metrics, readiness)

    def __init__(self, store: WorklistStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> "WorklistSink":
        return cls(WorklistStore(redis_client(settings), settings.key_prefix))

    def write(self, notes: Sequence[ProcessedNote]) -> None:
        """Returns once Redis has applied every item change; a Redis outage is a TransientError (the
        batch is retried; merging is idempotent, so a retried note changes nothing twice)."""
        try:
            self.store.add_notes(notes)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise TransientError(f"Redis unavailable for the worklist: {type(err).__name__}") from err

    def close(self) -> None:
        self.store.r.close()

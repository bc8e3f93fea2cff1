"""The output-topic sink: each note's FHIR transaction Bundle, keyed by encounter (or patient) so one
encounter's suggestions stay ordered in one partition. ``write()`` returns only when the broker has
acknowledged every record (acks=all, idempotent producer); a broker problem is a ``TransientError``."""

from __future__ import annotations

from typing import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from engine.kafka_config import producer_kwargs
from engine.pipeline.types import ProcessedNote, TransientError
from schemas.settings import KafkaSettings

ACK_TIMEOUT_S = 60.0


def make_producer(kafka: KafkaSettings, suffix: str = "producer") -> KafkaProducer:
    try:
        return KafkaProducer(**producer_kwargs(kafka, suffix))
    except KafkaError as err:
        raise TransientError(f"cannot reach the Kafka bootstrap servers: {type(err).__name__}") from err


def send_all(producer: KafkaProducer, messages: Sequence[tuple[str, bytes | None, bytes, list]]) -> None:
    """Send (topic, key, value, headers) messages and wait for every acknowledgement."""
    try:
        futures = [producer.send(topic, key=key, value=value, headers=headers) for topic, key, value, headers in messages]
        producer.flush(timeout=ACK_TIMEOUT_S)
        for f in futures:
            f.get(timeout=ACK_TIMEOUT_S)
    except KafkaError as err:
        raise TransientError(f"broker did not acknowledge a write: {type(err).__name__}") from err


class OutputTopicSink:
    """Publishes ``ProcessedNote.bundle_json`` to the output topic. Implements ``types.Sink``."""

    dependency = "kafka"  # what a TransientError from here means (retry metrics, readiness)

    def __init__(self, producer: KafkaProducer, topic: str, fhir_version: str) -> None:
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

"""The engine's Kafka producer: acknowledged writes, errors sorted by what they mean, and self-healing.

``Producer.send_all(messages)`` returns once the broker acknowledged every message, else raises:

- ``TransientError``: the broker is unreachable or busy; retry the write later (the service retries the
  unfinished part of its batch). When the idempotent producer itself is stuck (a broker restarted or
  replaced forgets the producer id: ``UnknownProducerIdError``, then ``InitProducerIdResponse
  UnknownError`` for ever after; out-of-order sequence; fenced or bumped epoch; kafka-python's fatal
  state), the client is closed and a new one built before the error is raised, so the retry writes
  through a fresh producer. It is also rebuilt after ``REBUILD_AFTER_FAILURES`` consecutive failed writes
  whatever the cause: a client that cannot recover by itself is replaced, never retried for ever.
- ``WriteRefused``: the broker (or the client's own size check) refused particular records for good: too
  large (``MessageSizeTooLargeError``, ``RecordListTooLargeError``), invalid or corrupt records, not
  authorised. Retrying the same bytes can never succeed; the caller decides (the dead-letter writer sends a
  reference record instead of bytes that do not fit; other sinks stop the engine with the reason).

Re-sent messages after a retry are the same bytes (the processed-note store), so a partial write before
a failure leaves identical duplicates at worst.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

from kafka import KafkaProducer
from kafka import errors as kerr
from kafka.errors import KafkaError

from engine.infra.kafka import producer_kwargs
from schemas.errors import TransientError
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 60.0
REBUILD_AFTER_FAILURES = 3
Message = tuple[str, bytes | None, bytes, list]  # topic, key, value, headers

# The record is at fault: it can never be written as it is.
RECORD_REFUSED = (kerr.MessageSizeTooLargeError, kerr.RecordListTooLargeError, kerr.InvalidRecordError,
                  kerr.CorruptRecordError, kerr.TopicAuthorizationFailedError)
# The producer's idempotence state is at fault: a new producer (new id and epoch) fixes it.
PRODUCER_STATE = (kerr.UnknownProducerIdError, kerr.OutOfOrderSequenceNumberError, kerr.InvalidProducerEpochError,
                  kerr.ProducerFencedError)


class WriteRefused(Exception):
    """Records the broker refused for good: ``refused`` maps their index in the write to the error type name."""

    def __init__(self, refused: dict[int, str]) -> None:
        super().__init__(f"{len(refused)} record(s) refused: {', '.join(sorted(set(refused.values())))}")
        self.refused = refused


class Producer:
    """An idempotent, acks=all producer built from ``KafkaSettings`` (``producer_kwargs``), rebuilt when stuck."""

    def __init__(self, kafka: KafkaSettings, suffix: str = "producer", factory: Callable[..., KafkaProducer] = KafkaProducer) -> None:
        self._kwargs = producer_kwargs(kafka, suffix)
        self._factory = factory
        self._lock = threading.Lock()
        self._failures = 0
        self.rebuilds = 0
        self._client = self._build()

    def _build(self) -> KafkaProducer:
        try:
            return self._factory(**self._kwargs)
        except KafkaError as err:
            raise TransientError(f"cannot reach the Kafka bootstrap servers: {type(err).__name__}") from err

    @property
    def max_request_size(self) -> int:
        return int(self._kwargs["max_request_size"])

    def send_all(self, messages: Sequence[Message]) -> None:
        """Send ``(topic, key, value, headers)`` messages and wait for every acknowledgement (see the module
        docstring for the two ways this fails)."""
        with self._lock:
            client = self._client
            if client is None:
                client = self._client = self._build()
            refused: dict[int, str] = {}
            failure: BaseException | None = None
            futures = []
            for i, (topic, key, value, headers) in enumerate(messages):
                try:
                    futures.append((i, client.send(topic, key=key, value=value, headers=headers)))
                except RECORD_REFUSED as err:  # the client's own size check, before anything is sent
                    refused[i] = type(err).__name__
                except KafkaError as err:
                    failure = failure or err
            try:
                client.flush(timeout=ACK_TIMEOUT_S)
            except KafkaError as err:
                failure = failure or err
            for i, future in futures:
                try:
                    future.get(timeout=ACK_TIMEOUT_S)
                except RECORD_REFUSED as err:
                    refused[i] = type(err).__name__
                except KafkaError as err:
                    failure = failure or err
            if failure is not None:
                self._failed(failure)
                raise TransientError(f"broker did not acknowledge a write: {type(failure).__name__}") from failure
            self._failures = 0
            if refused:
                raise WriteRefused(refused)

    def _failed(self, err: BaseException) -> None:
        self._failures += 1
        manager = getattr(self._client, "_transaction_manager", None)
        stuck = isinstance(err, PRODUCER_STATE) or bool(manager and manager.has_fatal_error())
        if stuck or self._failures >= REBUILD_AFTER_FAILURES:
            log.warning("producer cannot recover by itself; building a new one", extra={"fields": {
                "error": type(err).__name__, "fatal_state": stuck, "consecutive_failures": self._failures}})
            self._discard()
            self._failures = 0
            self.rebuilds += 1

    def _discard(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close(timeout=0)  # unsent records of a stuck producer are re-sent by the retry
            except Exception:  # noqa: BLE001 - closing a broken client must not hide the original error
                log.debug("closing the old producer failed")

    def flush(self, timeout: float | None = None) -> None:
        if self._client is not None:
            self._client.flush(timeout=timeout)

    def close(self, timeout: float | None = None) -> None:
        if self._client is not None:
            self._client.close(timeout=timeout)
            self._client = None


def make_producer(kafka: KafkaSettings, suffix: str = "producer") -> Producer:
    """The engine's producer; ``TransientError`` when the bootstrap servers cannot be reached."""
    return Producer(kafka, suffix)


def send_all(producer: Producer, messages: Sequence[Message]) -> None:
    """``producer.send_all(messages)``: every message acknowledged, else ``TransientError`` or ``WriteRefused``."""
    producer.send_all(messages)

"""The input side: a Kafka consumer-group member on the DocumentReference topic.

Manual commits only (``enable_auto_commit=False``): the service commits a batch's offsets after every
output of that batch is acknowledged, so a crash re-delivers rather than loses. Batches are bounded by
record count and wait time. While the service cannot finish the batch it holds (a dependency is down),
``hold()`` pauses every assigned partition and keeps polling, so the member stays in the group without
fetching more work (backpressure).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from engine.infra.kafka import consumer_kwargs
from engine.pipeline.types import SourceRecord
from schemas.envelopes import SourcePosition
from schemas.errors import TransientError
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: "KafkaSource") -> None:
        self.source = source

    def on_partitions_revoked(self, revoked):
        self.source.revoked.update(revoked)
        log.info("partitions revoked", extra={"fields": {"partitions": sorted(tp.partition for tp in revoked)}})

    def on_partitions_assigned(self, assigned):
        self.source.revoked.difference_update(assigned)
        self.source.paused = False
        log.info("partitions assigned", extra={"fields": {"partitions": sorted(tp.partition for tp in assigned)}})


class KafkaSource:
    """Bounded batches of ``SourceRecord`` from the input topic; ``commit()`` after outputs are acknowledged."""

    def __init__(self, kafka: KafkaSettings, consumer_factory: Callable[..., KafkaConsumer] = KafkaConsumer) -> None:
        self.topic = kafka.input_topic
        self.batch_max_records = min(kafka.max_poll_records, kafka.max_in_flight_notes)
        self.batch_max_wait_ms = kafka.batch_max_wait_ms
        self.revoked: set[TopicPartition] = set()
        self.paused = False
        try:
            self._consumer = consumer_factory(**consumer_kwargs(kafka))
        except KafkaError as err:
            raise TransientError(f"cannot reach the Kafka bootstrap servers: {type(err).__name__}") from err
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))

    def poll_batch(self) -> list[SourceRecord]:
        """Up to ``batch_max_records`` records, waiting at most ``batch_max_wait_ms`` for the batch to fill."""
        self.release()
        batch: list[SourceRecord] = []
        deadline = time.monotonic() + self.batch_max_wait_ms / 1000
        while len(batch) < self.batch_max_records:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            try:
                polled = self._consumer.poll(timeout_ms=remaining_ms, max_records=self.batch_max_records - len(batch))
            except KafkaError as err:
                if batch:  # records already taken go on through the batch (their position has advanced)
                    break
                raise TransientError(f"polling failed: {type(err).__name__}") from err
            for records in polled.values():
                batch.extend(_to_source_record(r) for r in records)
        batch.sort(key=lambda r: (r.position.partition, r.position.offset))
        return batch

    def hold(self) -> None:
        """Pause every assigned partition and poll: keeps group membership while no new work is taken."""
        assigned = self._consumer.assignment()
        if assigned and not self.paused:
            self._consumer.pause(*assigned)
            self.paused = True
        self._consumer.poll(timeout_ms=0)

    def release(self) -> None:
        if self.paused:
            self._consumer.resume(*self._consumer.paused())
            self.paused = False

    def commit(self, records: list[SourceRecord]) -> bool:
        """Commit past every record given; False when a rebalance took the partitions (they will be
        re-delivered to the new owner, whose output is byte-identical thanks to the processed-note store)."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for r in records:
            tp = TopicPartition(r.position.topic, r.position.partition)
            nxt = r.position.offset + 1
            if tp not in offsets or offsets[tp].offset < nxt:
                offsets[tp] = OffsetAndMetadata(nxt, "", -1)
        assigned = self._consumer.assignment()
        lost = [tp for tp in offsets if tp not in assigned or tp in self.revoked]
        for tp in lost:
            del offsets[tp]
        if not offsets:
            return not lost
        try:
            self._consumer.commit(offsets=offsets)
        except CommitFailedError:
            log.warning("commit rejected after a rebalance; the batch will be re-delivered")
            return False
        except KafkaError as err:
            raise TransientError(f"offset commit failed: {type(err).__name__}") from err
        return not lost

    def lag(self) -> dict[int, int]:
        """Records behind the partition end, per partition, where the broker reports a high watermark."""
        out: dict[int, int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            try:
                out[tp.partition] = max(0, high - self._consumer.position(tp, timeout_ms=100))
            except KafkaError:
                continue
        return out

    def connected(self) -> bool:
        """Connected to at least one broker of the cluster (the bootstrap connection closes once the
        cluster is known, so ``bootstrap_connected()`` alone says nothing after start)."""
        client = getattr(self._consumer, "_client", None)
        if client is None:
            return bool(self._consumer.bootstrap_connected())
        return any(client.connected(b.node_id) for b in client.cluster.brokers())

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _to_source_record(r) -> SourceRecord:
    headers = tuple((k, v if v is not None else b"") for k, v in (r.headers or ()))
    return SourceRecord(
        value=r.value if r.value is not None else b"",
        key=r.key,
        headers=headers,
        position=SourcePosition(topic=r.topic, partition=r.partition, offset=r.offset),
        timestamp_ms=r.timestamp,
    )

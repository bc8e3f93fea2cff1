"""The input side: a Kafka consumer-group member on the DocumentReference topic.

Manual commits only (``enable_auto_commit=False``): the service commits a batch's offsets after every
output of that batch is acknowledged, so a crash re-delivers rather than loses. Batches are bounded by
record count and wait time. While the service cannot finish the batch it holds (a dependency is down),
``hold()`` pauses every assigned partition and keeps polling, so the member stays in the group without
fetching more work (backpressure).

After every rebalance the partitions this member got start at the group's committed offset (the oldest
record when the group has none), never at a position kept in memory from before the rebalance: when a broker lost
its data (Tansu on memory storage, restarted) the topic comes back empty, and Tansu answers a fetch past the
end with nothing instead of ``OFFSET_OUT_OF_RANGE``, so a kept position would skip the new records up to it.
kafka-python 3.0.12 keeps a partition's position across a rebalance that hands the same partition back. (A
batch in hand when its partitions come back is then delivered again: identical repeats, never a gap.)

Two kafka-python 3.0.12 group-join hangs are worked around (``_restart_abandoned_join``, ``JOIN_WAIT_S``,
``HOLD_POLL_MS``); both showed after a memory broker restart, when the consumer's own metadata request made
Tansu re-create the input topic with 4 partitions (it ignores ``allow_auto_topic_creation=False``).
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

# kafka-python 3.0.12 never completes a group join from polls with timeout 0 (each one restarts it): holding
# polls a little longer, so a rebalance while a batch is retried still completes
HOLD_POLL_MS = 100
# kafka-python 3.0.12 completes a group join only when a poll awaits it while it is in flight (a join that
# finished between polls is discarded and started again), so an idle poll stays while one is under way
JOIN_WAIT_S = 10.0
COMMITTED_TIMEOUT_MS = 10_000  # reading the group's committed offsets after a rebalance; a KafkaError past it


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: "KafkaSource") -> None:
        self.source = source

    def on_partitions_revoked(self, revoked):
        self.source.revoked.update(revoked)
        log.info("partitions revoked", extra={"fields": {"partitions": sorted(tp.partition for tp in revoked)}})

    def on_partitions_assigned(self, assigned):
        self.source.revoked.difference_update(assigned)
        self.source.paused = False
        self.source.unpositioned.update(self.source.kept_positions(assigned))  # repositioned after this poll
        log.info("partitions assigned", extra={"fields": {"partitions": sorted(tp.partition for tp in assigned)}})


class KafkaSource:
    """Bounded batches of ``SourceRecord`` from the input topic; ``commit()`` after outputs are acknowledged."""

    def __init__(self, kafka: KafkaSettings, consumer_factory: Callable[..., KafkaConsumer] = KafkaConsumer) -> None:
        self.topic = kafka.input_topic
        self.batch_max_records = min(kafka.max_poll_records, kafka.max_in_flight_notes)
        self.batch_max_wait_ms = kafka.batch_max_wait_ms
        self.revoked: set[TopicPartition] = set()
        self.unpositioned: set[TopicPartition] = set()  # assigned by the last rebalance, not yet positioned
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
        start = time.monotonic()
        deadline = start + self.batch_max_wait_ms / 1000
        while len(batch) < self.batch_max_records:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                if not (self._joining() and time.monotonic() - start < JOIN_WAIT_S):
                    break
                remaining_ms = 100  # a group join in flight completes only while a poll awaits it: stay
            try:
                polled = self._after_poll(self._consumer.poll(timeout_ms=remaining_ms, max_records=self.batch_max_records - len(batch)))
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
        try:
            polled = self._after_poll(self._consumer.poll(timeout_ms=HOLD_POLL_MS))
            # a rebalance inside that poll can hand over partitions not paused yet: their records are not
            # taken now, so they are fetched again after the batch in hand
            for tp, records in polled.items():
                self._consumer.seek(tp, records[0].offset)
        except KafkaError as err:
            raise TransientError(f"polling while holding failed: {type(err).__name__}") from err

    def release(self) -> None:
        # every paused partition, also one a rebalance handed back still paused (its state is kept)
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)
        self.paused = False

    def _after_poll(self, polled: dict) -> dict:
        """What a poll returned, once the group state it left is sound: an abandoned join is restarted and
        the partitions of a rebalance are positioned at their committed offsets (their records from this poll
        are dropped: they are fetched again from there). Raises ``KafkaError`` when the offsets cannot be read."""
        self._restart_abandoned_join()
        if not self.unpositioned:
            return polled
        kept = {tp: records for tp, records in polled.items() if tp not in self.unpositioned}
        assigned = self._consumer.assignment()
        try:
            committed = {tp: self._consumer.committed(tp, timeout_ms=COMMITTED_TIMEOUT_MS) for tp in sorted(self.unpositioned & assigned)}
        except KafkaError:
            for tp, records in kept.items():  # nothing of this poll is taken: fetched again next time
                self._consumer.seek(tp, records[0].offset)
            raise
        for tp, offset in committed.items():
            if offset is None:
                self._consumer.seek_to_beginning(tp)  # as auto_offset_reset=earliest does for a new group
            else:
                self._consumer.seek(tp, offset)
        self.unpositioned.clear()
        return kept

    def kept_positions(self, partitions) -> set[TopicPartition]:
        """Those of ``partitions`` whose position kafka-python kept from before the rebalance (a new one has
        none yet: kafka-python positions it from the committed offset itself, and a second reset then could
        race with its own). Reads kafka-python's subscription state; none if a release renames it."""
        states = getattr(getattr(self._consumer, "_subscription", None), "assignment", None) or {}
        return {tp for tp in partitions if getattr(states.get(tp), "has_valid_position", False)}

    def _restart_abandoned_join(self) -> None:
        """Work around a kafka-python 3.0.12 hang. When the group leader's metadata changes (the input topic
        re-created with another partition count, partitions added) it starts a join without flagging
        ``rejoin_needed``; if the poll that started it times out before the join completes, the leader's own
        assignment makes ``need_rejoin()`` false and no later poll awaits the join: the member stays with no
        partitions and no heartbeat, for ever. Between polls, "joining but no rejoin needed" is that state
        and nothing else; asking for a rejoin makes the next poll finish (or redo) the join."""
        if not self._joining() or self._consumer._coordinator.need_rejoin():
            return
        log.warning("consumer group join left unfinished by the client library; joining again")
        self._consumer._coordinator.request_rejoin()

    def _joining(self) -> bool:
        """A group join is under way (kafka-python's coordinator state; False if a release renames it)."""
        return bool(getattr(getattr(self._consumer, "_coordinator", None), "rejoining", False))

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

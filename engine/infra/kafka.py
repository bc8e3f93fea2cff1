"""Kafka for every part of the engine: kafka-python keyword arguments built from ``KafkaSettings`` (connection
and security shared by every client, plus what the consumer, producer and admin client each need: the one
place SASL/SSL is mapped), topic creation, and reading a topic's range without joining a consumer group (audit
replay, feedback, the demo). The producer and its acknowledged, self-healing send are ``engine.infra.producer``."""

from __future__ import annotations

import datetime as dt
import time
from typing import Iterator

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from schemas.settings import KafkaSettings

# A record's envelope (headers, key, batch overhead) on top of the note itself.
_ENVELOPE_BYTES = 64 * 1024


def connection_kwargs(kafka: KafkaSettings, client_suffix: str = "") -> dict:
    """Bootstrap, client id and security (SSL and/or SASL) for any kafka-python client."""
    kw: dict = {
        "bootstrap_servers": [s.strip() for s in kafka.bootstrap_servers.split(",") if s.strip()],
        "client_id": kafka.client_id + (f"-{client_suffix}" if client_suffix else ""),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_check_hostname"] = True
        if kafka.ssl_cafile:
            kw["ssl_cafile"] = str(kafka.ssl_cafile)
        if kafka.ssl_certfile:
            kw["ssl_certfile"] = str(kafka.ssl_certfile)
        if kafka.ssl_keyfile:
            kw["ssl_keyfile"] = str(kafka.ssl_keyfile)
        if kafka.ssl_password is not None:
            kw["ssl_password"] = kafka.ssl_password.get_secret_value()
    if kafka.security_protocol.startswith("SASL"):
        kw["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        if kafka.sasl_username:
            kw["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            kw["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return kw


def consumer_kwargs(kafka: KafkaSettings) -> dict:
    """A group member that commits by hand, only after every output of a batch is acknowledged."""
    fetch_bytes = kafka.max_message_bytes + _ENVELOPE_BYTES
    return {
        **connection_kwargs(kafka, "consumer"),
        "group_id": kafka.group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",  # a new group starts at the oldest note: none is skipped
        "max_poll_records": kafka.max_poll_records,
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": max(kafka.session_timeout_ms // 3, 300),
        # Large notes: one record must always fit in a fetch.
        "max_partition_fetch_bytes": fetch_bytes,
        "fetch_max_bytes": max(fetch_bytes, 50 * 1024 * 1024),
        "receive_message_max_bytes": max(fetch_bytes, 100 * 1024 * 1024) + _ENVELOPE_BYTES,
        "allow_auto_create_topics": False,
    }


def producer_kwargs(kafka: KafkaSettings, suffix: str = "producer") -> dict:
    """Durable writes: acks from all in-sync replicas, idempotent (no duplicates from producer retries)."""
    return {
        **connection_kwargs(kafka, suffix),
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "max_request_size": kafka.max_message_bytes + _ENVELOPE_BYTES,
        "linger_ms": 5,
        "compression_type": "gzip",
        "request_timeout_ms": 30_000,
        "delivery_timeout_ms": kafka.delivery_timeout_ms,
        "max_block_ms": 30_000,
    }


def admin_kwargs(kafka: KafkaSettings) -> dict:
    return connection_kwargs(kafka, "admin")


def create_topics(kafka: KafkaSettings, partitions: int, replication_factor: int) -> list[str]:
    """Create the input, output, dead-letter, audit and feedback topics that do not exist yet."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError


    names = [kafka.input_topic, kafka.output_topic, kafka.dead_letter_topic, kafka.audit_topic, kafka.feedback_topic]
    admin = KafkaAdminClient(**admin_kwargs(kafka))
    try:
        missing = [n for n in dict.fromkeys(names) if n not in set(admin.list_topics())]
        created = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, partitions, replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:  # another replica created it meanwhile
                pass
        return created
    finally:
        admin.close()


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

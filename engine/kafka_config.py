"""kafka-python keyword arguments built from ``KafkaSettings``: connection/security shared by every
client, plus what the consumer, producer and admin client each need. The one place SASL/SSL is mapped."""

from __future__ import annotations

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
        "delivery_timeout_ms": 120_000,
        "max_block_ms": 30_000,
    }


def admin_kwargs(kafka: KafkaSettings) -> dict:
    return connection_kwargs(kafka, "admin")

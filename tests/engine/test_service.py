"""The service's Kafka/Redis plumbing against the real broker (Tansu) and a real redis-server:
source batches and commits, output sink, dead letters, processed-note records, retries, health/metrics.

The note processor here is a small deterministic stand-in (JSON in, a tiny Bundle out, with the processing
time in the bytes so re-processing differs unless the processed-note store does its job); the real
NoteProcessor runs in tests/engine/test_e2e.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis

from bench.devservers.redis import start_redis
from engine.infra.kafka import connection_kwargs, consumer_kwargs, producer_kwargs
from engine.infra.producer import make_producer
from engine.infra.redis import redis_client
from engine.io.dead_letters import DeadLetterWriter, safe_detail
from engine.io.processed import ProcessedStore
from engine.io.sinks import OutputTopicSink
from engine.io.source import KafkaSource
from engine.observability import Health, Metrics
from engine.pipeline.fhir_bundle import note_key
from engine.pipeline.types import ParsedNote, ProcessedNote
from engine.service import Backoff, CodingService
from schemas.envelopes import ModelRef
from schemas.errors import ProcessingError, TransientError
from schemas.settings import KafkaSettings, RedisSettings
from tests.fixtures.servers import create_topic, produce, read_topic

MODEL = ModelRef(name="bert_xml", version=3, code_set_release="2026")


class StampingProcessor:
    """JSON {"id","version","enc","text"} -> ProcessedNote whose Bundle carries the processing time.
    ``fail_first`` calls raise TransientError, as a backend outage would."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first

    def process_batch(self, records):
        self.calls += 1
        if self.calls <= self.fail_first:
            raise TransientError("backend unavailable")
        return [self._one(r) for r in records]

    def _one(self, record):
        try:
            doc = json.loads(record.value)
        except ValueError:
            return ProcessingError("not_json", "message body")
        if "text" not in doc:
            return ProcessingError("no_text", "content[0].attachment")
        now = dt.datetime.now(dt.timezone.utc)
        note = ParsedNote(doc["id"], doc.get("version"), None, doc.get("enc"), None, None, doc["text"], "R4")
        bundle = json.dumps({"resourceType": "Bundle", "id": doc["id"], "timestamp": now.isoformat()}).encode()
        return ProcessedNote(note=note, source=record.position, deid_text=doc["text"],
                             deid_text_sha256=hashlib.sha256(doc["text"].encode()).hexdigest(), model=MODEL,
                             thresholds_global=0.5, scores={"I10": 0.9}, suggestions=(), bundle_json=bundle,
                             output_key=(doc.get("enc") or "").encode(), processed_at=now, timings_ms={"infer": 1.0})


def _kafka(bootstrap, topics, **kw) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, input_topic=topics("in"), output_topic=topics("out"),
                         dead_letter_topic=topics("dlq"), group_id=topics("group"), session_timeout_ms=4000,
                         max_poll_records=50, batch_max_wait_ms=300, **kw)


def _note(i: int, version: str = "1") -> bytes:
    return json.dumps({"id": f"doc-{i}", "version": version, "enc": f"Encounter/{i % 7}", "text": f"note {i}"}).encode()


def _service(kafka: KafkaSettings, redis_url: str, processor, prefix: str):
    producer = make_producer(kafka)
    store = ProcessedStore(redis_client(RedisSettings(url=redis_url)), prefix, 3600)
    source = KafkaSource(kafka)
    service = CodingService(source=source, processor=processor,
                            sinks=[OutputTopicSink(producer, kafka.output_topic, "R4")],
                            dead_letters=DeadLetterWriter(producer, kafka.dead_letter_topic, "test"),
                            store=store, metrics=Metrics(), backoff=Backoff(0.05, 0.2))

    def close():
        producer.close(timeout=10)
        source.close()

    return service, close


@pytest.fixture
def topics(kafka_bootstrap, unique_topic):
    for purpose, partitions in (("in", 2), ("out", 2), ("dlq", 1)):
        create_topic(kafka_bootstrap, unique_topic(purpose), partitions)
    return unique_topic


def test_client_kwargs_map_security_settings():
    kafka = KafkaSettings(bootstrap_servers="a:1, b:2", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                          sasl_username="svc", sasl_password="pw", ssl_cafile="/etc/ca.pem", max_message_bytes=2_000_000)
    conn = connection_kwargs(kafka)
    assert conn["bootstrap_servers"] == ["a:1", "b:2"]
    assert (conn["sasl_mechanism"], conn["sasl_plain_username"], conn["sasl_plain_password"]) == ("SCRAM-SHA-512", "svc", "pw")
    assert conn["ssl_cafile"] == "/etc/ca.pem" and conn["security_protocol"] == "SASL_SSL"
    cons, prod = consumer_kwargs(kafka), producer_kwargs(kafka)
    assert cons["enable_auto_commit"] is False and cons["max_partition_fetch_bytes"] > 2_000_000
    assert prod["acks"] == "all" and prod["enable_idempotence"] is True and prod["max_request_size"] > 2_000_000
    assert "sasl_plain_password" not in connection_kwargs(KafkaSettings())


def test_safe_detail_drops_echoed_values():
    detail = "content.0.attachment.data (base64) input_value='John Smith MRN 12345', input_type=str] \"Jane\""
    cleaned = safe_detail(detail)
    assert "John" not in cleaned and "Jane" not in cleaned and "12345" not in cleaned
    assert cleaned.startswith("content.0.attachment.data (base64)")
    assert len(safe_detail("x" * 1000)) == 200


def test_stream_codes_dead_letters_and_commits(kafka_bootstrap, redis_url, topics):
    kafka = _kafka(kafka_bootstrap, topics)
    good = [(f"k{i}".encode(), _note(i), [("trace", f"t{i}".encode())]) for i in range(40)]
    poison = [(b"p1", b"\xff not json", [("trace", b"p1")]), (b"p2", b'{"id": "x"}', [])]
    produce(kafka_bootstrap, kafka.input_topic, good[:20] + poison[:1] + good[20:] + poison[1:])

    service, close = _service(kafka, redis_url, StampingProcessor(), topics("redis:"))
    try:
        summary = service.run(max_notes=42, idle_exit_s=20)
    finally:
        close()
    assert (summary.coded, summary.dead_letters, summary.repeats) == (40, 2, 0)

    out = read_topic(kafka_bootstrap, kafka.output_topic, expected=40)
    assert sorted(json.loads(r.value)["id"] for r in out) == sorted(f"doc-{i}" for i in range(40))
    assert all(r.key == f"Encounter/{int(json.loads(r.value)['id'][4:]) % 7}".encode() for r in out)  # keyed by encounter

    dlq = read_topic(kafka_bootstrap, kafka.dead_letter_topic, expected=2)
    assert sorted(r.value for r in dlq) == sorted(v for _, v, _ in poison)  # original bytes
    by_key = {r.key: dict(r.headers) for r in dlq}
    assert by_key[b"p1"][b"dlq.reason".decode()] == b"not_json"
    assert by_key[b"p1"]["trace"] == b"p1"  # original headers kept
    assert by_key[b"p2"]["dlq.reason"] == b"no_text"
    assert by_key[b"p2"]["dlq.source.topic"] == kafka.input_topic.encode()
    assert int(by_key[b"p2"]["dlq.source.offset"]) >= 0 and by_key[b"p2"]["dlq.engine.version"] == b"test"

    # Committed: the group has nothing left to read.
    service2, close2 = _service(kafka, redis_url, StampingProcessor(), topics("redis:"))
    try:
        assert service2.run(idle_exit_s=4).notes == 0
    finally:
        close2()


def test_transient_failures_retry_without_loss_or_dead_letters(kafka_bootstrap, redis_url, topics):
    kafka = _kafka(kafka_bootstrap, topics)
    produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(15)])
    processor = StampingProcessor(fail_first=3)
    service, close = _service(kafka, redis_url, processor, topics("redis:"))
    try:
        summary = service.run(max_notes=15, idle_exit_s=20)
    finally:
        close()
    assert summary.retries == 3 and summary.dead_letters == 0 and summary.coded == 15
    assert service.metrics.retries.labels(dependency="inference")._value.get() == 3
    out = read_topic(kafka_bootstrap, kafka.output_topic, expected=15)
    assert len(out) == 15 and len({r.value for r in out}) == 15
    assert read_topic(kafka_bootstrap, kafka.dead_letter_topic, expected=0, settle_s=0.5) == []


class FlakyWorklistLikeSink:
    """A second sink whose first ``fail_first`` writes fail as a Redis outage would."""

    dependency = "redis"

    def __init__(self, fail_first: int) -> None:
        self.fail_first, self.calls, self.notes = fail_first, 0, []

    def write(self, notes):
        self.calls += 1
        if self.calls <= self.fail_first:
            raise TransientError("redis down")
        self.notes += notes

    def close(self):
        pass


def test_sink_failure_retries_only_what_is_unfinished(kafka_bootstrap, redis_url, topics):
    """A failing second sink: no second inference, no second write to the output topic, no dead letter."""
    kafka = _kafka(kafka_bootstrap, topics, max_in_flight_notes=100)
    produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(12)])
    processor, flaky = StampingProcessor(), FlakyWorklistLikeSink(fail_first=2)
    service, close = _service(kafka, redis_url, processor, topics("redis:"))
    service.sinks = [*service.sinks, flaky]
    try:
        summary = service.run(max_notes=12, idle_exit_s=20)
    finally:
        close()
    assert summary.retries == 2 and service.metrics.retries.labels(dependency="redis")._value.get() == 2
    assert processor.calls == summary.batches and len(flaky.notes) == 12
    out = read_topic(kafka_bootstrap, kafka.output_topic, expected=12)
    assert len(out) == 12


def test_redelivered_notes_are_byte_identical(kafka_bootstrap, redis_url, topics):
    """The same DocumentReference version twice (a re-delivery) -> the same bytes, although the processor
    stamps a new time; a new version, or edited text, is coded afresh."""
    kafka = _kafka(kafka_bootstrap, topics)
    edited = json.dumps({"id": "doc-1", "version": "1", "enc": "Encounter/1", "text": "edited"}).encode()
    # Keyed by document: one document's messages stay in order in one partition.
    produce(kafka_bootstrap, kafka.input_topic, [(b"doc-%d" % i, _note(i), None) for i in range(10)])
    produce(kafka_bootstrap, kafka.input_topic, [(b"doc-%d" % i, _note(i), None) for i in range(10)] + [(b"doc-0", _note(0, "2"), None), (b"doc-1", edited, None)])
    service, close = _service(kafka, redis_url, StampingProcessor(), topics("redis:"))
    try:
        summary = service.run(max_notes=22, idle_exit_s=20)
    finally:
        close()
    assert summary.repeats == 10 and summary.coded == 22
    out = read_topic(kafka_bootstrap, kafka.output_topic, expected=22)
    by_id: dict[str, set[bytes]] = {}
    for r in out:
        by_id.setdefault(json.loads(r.value)["id"], set()).add(r.value)
    assert all(len(v) == 1 for k, v in by_id.items() if k not in ("doc-0", "doc-1"))
    assert len(by_id["doc-0"]) == 2  # version 2 is a new production
    assert len(by_id["doc-1"]) == 2  # so is an edited text under the same version


def test_large_note_fits_the_fetch_sizes(kafka_bootstrap, redis_url, topics):
    """A 1.5 MB message (default Kafka fetch limits are 1 MB per partition) flows through."""
    kafka = _kafka(kafka_bootstrap, topics, max_message_bytes=2 * 1024 * 1024)
    big = json.dumps({"id": "big", "version": "1", "enc": "Encounter/1", "text": "chest pain " * 150_000}).encode()
    assert len(big) > 1_500_000
    produce(kafka_bootstrap, kafka.input_topic, [(None, big, None)])
    service, close = _service(kafka, redis_url, StampingProcessor(), topics("redis:"))
    try:
        assert service.run(max_notes=1, idle_exit_s=15).coded == 1
    finally:
        close()


def test_store_outage_is_transient(redis_url, tmp_path):
    server = start_redis(tmp_path / "r")
    store = ProcessedStore(redis_client(RedisSettings(url=server.url)), "x:", 3600)
    note = StampingProcessor()._one(type("R", (), {"value": _note(1), "position": None})())
    assert store.settle([note])[1] == 0
    key = note_key(note.note, MODEL)
    assert store.lookup([key])[key].applied_to(note).bundle_json == note.bundle_json
    assert store.processed_at([key, "unknown"]) == {key: note.processed_at}
    server.stop()
    with pytest.raises(TransientError):
        store.settle([note])
    assert store.ping() is False


def test_redis_outage_is_retried_until_it_returns(kafka_bootstrap, topics, tmp_path):
    kafka = _kafka(kafka_bootstrap, topics)
    server = start_redis(tmp_path / "r")
    produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(6)])
    service, close = _service(kafka, server.url, StampingProcessor(), "x:")
    server.stop()
    result = {}
    worker = threading.Thread(target=lambda: result.update(summary=service.run(max_notes=6, idle_exit_s=30)))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while service.metrics.retries.labels(dependency="redis")._value.get() < 2:
            assert time.monotonic() < deadline, "no Redis retries"
            time.sleep(0.1)
        assert "redis" in service.failing
        restarted = start_redis(tmp_path / "r", port=server.port)
        worker.join(timeout=30)
    finally:
        service.stop.set()
        worker.join(timeout=10)
        close()
    restarted.stop()
    assert result["summary"].coded == 6 and result["summary"].dead_letters == 0
    assert len(read_topic(kafka_bootstrap, kafka.output_topic, expected=6)) == 6


def test_redis_restart_keeps_aof_data(tmp_path):
    server = start_redis(tmp_path / "aof", appendonly=True)
    redis.Redis.from_url(server.url).set("k", "v")
    server.stop()
    again = start_redis(tmp_path / "aof", port=server.port, appendonly=True)
    try:
        assert redis.Redis.from_url(again.url).get("k") == b"v"
    finally:
        again.stop()


def test_hold_pauses_intake(kafka_bootstrap, topics):
    kafka = _kafka(kafka_bootstrap, topics)
    source = KafkaSource(kafka)
    try:
        produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(5)])
        got = []
        for _ in range(30):
            got += source.poll_batch()
            if got:
                break
        assert got, "no records within 30 batches"
        produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(5, 10)])
        for _ in range(10):
            source.hold()
        assert source.paused
        rest = []
        for _ in range(30):
            if len(got) + len(rest) >= 10:
                break
            rest += source.poll_batch()  # releases the pause
        assert len(got) + len(rest) == 10
        assert source.commit(got + rest)
    finally:
        source.close()


def test_health_and_metrics_endpoints():
    metrics, state = Metrics(), {"redis": True}
    health = Health(checks={"redis": lambda: state["redis"], "model": lambda: True})
    metrics.dead_letters.labels(reason="not_json").inc()
    mport, hport = metrics.serve(0, "127.0.0.1"), health.serve(0, "127.0.0.1")
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
        assert 'icdcoder_dead_letters_total{reason="not_json"} 1.0' in body
        assert urllib.request.urlopen(f"http://127.0.0.1:{hport}/livez", timeout=5).status == 200
        assert json.load(urllib.request.urlopen(f"http://127.0.0.1:{hport}/readyz", timeout=5))["ready"] is True
        state["redis"] = False
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{hport}/readyz", timeout=5)
        assert err.value.code == 503 and json.load(err.value)["checks"] == {"redis": False, "model": True}
    finally:
        health.close()


class SignalledMidBatch(StampingProcessor):
    """Sets the service's stop event while its first batch is being processed, as the SIGTERM handler would
    (not on a timer: on a loaded machine the consumer may not have joined its group yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = None
        self.first_batch = 0

    def process_batch(self, records):
        if self.calls == 0:
            self.first_batch = len(records)
            self.stop.set()
        return super().process_batch(records)


def test_signal_stop_finishes_batch(kafka_bootstrap, redis_url, topics):
    kafka = _kafka(kafka_bootstrap, topics)
    produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(8)])
    processor = SignalledMidBatch()
    service, close = _service(kafka, redis_url, processor, topics("redis:"))
    processor.stop = service.stop
    try:
        summary = service.run()
    finally:
        close()
    assert summary.stopped_by == "signal" and summary.coded == processor.first_batch > 0  # the batch in hand was finished


def test_liveness_fails_when_a_batch_makes_no_progress(kafka_bootstrap, redis_url, topics):
    """A dependency that never comes back: /livez stays 200 while retrying for less than the stall timeout,
    then turns 503 (an orchestrator restarts the engine); with exit_on_stall the service stops by itself,
    leaving the batch uncommitted."""
    kafka = _kafka(kafka_bootstrap, topics)
    produce(kafka_bootstrap, kafka.input_topic, [(None, _note(i), None) for i in range(3)])
    service, close = _service(kafka, redis_url, StampingProcessor(), topics("redis:"))
    service.sinks = [*service.sinks, FlakyWorklistLikeSink(fail_first=10**9)]
    service.health.stall_timeout_s = 3.0
    hport = service.health.serve(0, "127.0.0.1")
    livez = []

    def probe():
        while len(livez) < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{hport}/livez", timeout=2) as r:
                    livez.append(r.status)
            except urllib.error.HTTPError as err:
                livez.append(err.code)
            time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    try:
        service.exit_on_stall = True
        prober.start()
        summary = service.run(idle_exit_s=30)
        prober.join(timeout=10)
    finally:
        service.health.close()
        close()
    assert summary.stopped_by == "stalled" and summary.retries >= 3 and summary.coded == 0
    assert 200 in livez and 503 in livez and livez.index(503) > livez.index(200)

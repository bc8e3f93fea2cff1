"""Faults, with the engine as a child process on the real servers: SIGKILL and restart, a Triton outage,
poison messages. Nothing may be lost; nothing but poison may reach the dead-letter topic; a re-emitted
Bundle must be byte-identical to the first."""

from __future__ import annotations

import json
import signal
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from bench.devservers.triton import start_triton
from engine.infra.model import load_runtime
from engine.pipeline.fhir_bundle import note_key
from engine.pipeline.parse import parse_document_reference
from tests.fixtures.docref import document_reference, from_note_record, source_record, to_bytes
from tests.fixtures.model_repo import MODEL_NAME
from tests.fixtures.servers import EngineProcess, bundle_note_key, create_topic, engine_env, produce, read_topic

pytestmark = pytest.mark.servers


def _topics(bootstrap, unique_topic, partitions=2):
    for purpose in ("in", "out", "dlq", "audit"):
        create_topic(bootstrap, unique_topic(purpose), partitions)


def _keys(docs, repo, model_name="bert_xml"):
    model = load_runtime(repo, model_name).model_ref
    return [note_key(parse_document_reference(source_record(d)), model) for d in docs]


def _rewind_group(bootstrap: str, group: str, topic: str, partitions: int, timeout_s: float = 40.0) -> None:
    """Join the engine's group once the killed member is gone and commit offset 0 on every partition: as
    if the engine had died after writing every batch but before committing any, so all are re-delivered."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             session_timeout_ms=4000, max_poll_records=1)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while len(consumer.assignment()) < partitions:
            assert time.monotonic() < deadline, "the killed engine's partitions were never reassigned"
            consumer.poll(timeout_ms=200)
        consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(0, "", -1) for p in range(partitions)})
    finally:
        consumer.close(autocommit=False)


def test_sigkill_and_restart_lose_nothing_and_reemit_identical_bytes(kafka_bootstrap, redis_url, unique_topic, tmp_path,
                                                                    synthetic_notes, handbuilt_model_repo):
    docs = [from_note_record(n.record) for n in synthetic_notes[:60]]
    keys = _keys(docs, handbuilt_model_repo)
    _topics(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic("in"), [(d["id"].encode(), to_bytes(d), None) for d in docs])
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, kafka_max_poll_records="6",
                     kafka_session_timeout_ms="4000")

    first = EngineProcess(tmp_path, env, name="first")
    try:
        first.wait_for(lambda: first.metric("icdcoder_notes_total") >= 18, 120, "18 notes coded")
        first.stop(signal.SIGKILL)  # mid-stream: a batch is always in hand while input remains
    finally:
        first.stop()
    emitted_before = read_topic(kafka_bootstrap, unique_topic("out"), expected=18, settle_s=0.5)
    assert len(emitted_before) >= 18
    _rewind_group(kafka_bootstrap, unique_topic("group"), unique_topic("in"), 2)

    second = EngineProcess(tmp_path, env, ["--idle-exit-s", "4"], name="second")
    try:
        assert second.wait(timeout_s=150) == 0, second.logs()[-3000:]
    finally:
        second.stop()
    assert "repeats" in second.logs()

    out = read_topic(kafka_bootstrap, unique_topic("out"), expected=len(docs) + len(emitted_before))
    versions: dict[str, set[bytes]] = {}
    for r in out:
        versions.setdefault(bundle_note_key(r.value), set()).add(r.value)
    assert set(versions) == set(keys)  # nothing lost
    assert all(len(v) == 1 for v in versions.values())  # every re-emitted Bundle is byte-identical
    assert len(out) >= len(docs) + len(emitted_before)  # the re-deliveries really were re-emitted
    assert read_topic(kafka_bootstrap, unique_topic("dlq"), expected=0, settle_s=0.3) == []


def test_triton_outage_retries_without_loss_or_dead_letters(kafka_bootstrap, redis_url, unique_topic, tmp_path,
                                                           synthetic_notes, exported_model_repo):
    docs = [from_note_record(n.record) for n in synthetic_notes[100:160]]
    keys = _keys(docs, exported_model_repo, MODEL_NAME)
    _topics(kafka_bootstrap, unique_topic)
    triton = start_triton(exported_model_repo, tmp_path / "triton")
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, exported_model_repo, triton_url=triton.grpc_url,
                     kafka_max_poll_records="10", triton_max_retries="1", triton_backoff_initial_s="0.2",
                     triton_backoff_max_s="1.0", triton_timeout_s="5")
    engine = EngineProcess(tmp_path, env, ["--max-notes", str(len(docs))])
    try:
        produce(kafka_bootstrap, unique_topic("in"), [(d["id"].encode(), to_bytes(d), None) for d in docs[:20]])
        engine.wait_for(lambda: engine.metric("icdcoder_notes_total") >= 20, 120, "the first 20 notes")
        ports = (triton.http_port, triton.grpc_port, triton.metrics_port)
        triton.stop()
        produce(kafka_bootstrap, unique_topic("in"), [(d["id"].encode(), to_bytes(d), None) for d in docs[20:]])
        engine.wait_for(lambda: engine.metric("icdcoder_retries_total", dependency="inference") >= 2, 60, "retries")
        status, body = engine.http("/readyz")
        assert status == 503 and json.loads(body)["checks"]["model"] is False
        assert engine.metric("icdcoder_dead_letters_total") == 0
        triton = start_triton(exported_model_repo, tmp_path / "triton", *ports)
        assert engine.wait(timeout_s=120) == 0, engine.logs()[-3000:]
    finally:
        engine.stop()
        triton.stop()

    out = read_topic(kafka_bootstrap, unique_topic("out"), expected=len(docs))
    assert sorted(bundle_note_key(r.value) for r in out) == sorted(keys)
    assert read_topic(kafka_bootstrap, unique_topic("dlq"), expected=0, settle_s=0.3) == []
    assert "retries" in engine.logs() and " 0 retries" not in engine.logs()


def _poison() -> dict[bytes, str]:
    """Original bytes -> the dead-letter reason each must get."""
    no_subject = document_reference("Chest pain.", doc_id="bad-4", subject=None)
    bad_date = {**document_reference("Chest pain.", doc_id="bad-5"), "date": "the fifth of May"}
    bad_b64 = document_reference("x", doc_id="bad-6")
    bad_b64["content"][0]["attachment"]["data"] = "%%%not base64%%%"
    return {
        b"\xff\xfe not even utf-8": "not_json",
        b"[1, 2, 3]": "not_document_reference",
        to_bytes({"resourceType": "Patient", "id": "p-1"}): "not_document_reference",
        to_bytes(document_reference(None, doc_id="bad-1", url="https://ehr.example/Binary/1")): "unsupported_content",
        to_bytes(document_reference("%PDF-1.4", doc_id="bad-2", content_type="application/pdf")): "unsupported_content",
        to_bytes(document_reference("   ", doc_id="bad-3")): "no_text",
        to_bytes(no_subject): "no_subject",
        to_bytes(bad_date): "invalid_resource",
        to_bytes(bad_b64): "bad_base64",
    }


def test_poison_messages_only_reach_the_dead_letter_topic(kafka_bootstrap, redis_url, unique_topic, tmp_path,
                                                         synthetic_notes, handbuilt_model_repo):
    good = [from_note_record(n.record) for n in synthetic_notes[160:190]]
    poison = _poison()
    messages = [(d["id"].encode(), to_bytes(d), [("ehr-trace", b"g")]) for d in good]
    for i, value in enumerate(poison):  # interleaved with the good ones
        messages.insert(3 * i + 2, (b"poison-%d" % i, value, [("ehr-trace", b"p%d" % i)]))
    _topics(kafka_bootstrap, unique_topic, partitions=1)
    produce(kafka_bootstrap, unique_topic("in"), messages)
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, kafka_max_poll_records="16")
    engine = EngineProcess(tmp_path, env, ["--max-notes", str(len(messages))])
    try:
        assert engine.wait(timeout_s=120) == 0, engine.logs()[-3000:]
    finally:
        engine.stop()

    out = read_topic(kafka_bootstrap, unique_topic("out"), expected=len(good))
    assert sorted(bundle_note_key(r.value) for r in out) == sorted(_keys(good, handbuilt_model_repo))
    dlq = read_topic(kafka_bootstrap, unique_topic("dlq"), expected=len(poison))
    assert len(dlq) == len(poison)
    offsets = {m[1]: i for i, m in enumerate(messages)}
    for r in dlq:
        headers = dict(r.headers)
        assert r.value in poison, r.value[:80]  # the original bytes, untouched
        assert headers["dlq.reason"].decode() == poison[r.value], (r.value[:80], headers)
        assert headers["ehr-trace"].startswith(b"p")  # original headers kept
        assert headers["dlq.source.topic"].decode() == unique_topic("in")
        assert int(headers["dlq.source.offset"]) == offsets[r.value] and headers["dlq.source.partition"] == b"0"
        assert headers["dlq.engine.version"] and headers["dlq.time"] and headers["dlq.detail"]

"""Resilience, with the engine as a child process on real servers: no single message and no broker restart
stops the stream.

- an oversized message (7 MB, over the producer's request limit) reaches the dead-letter topic as a reference
  record and the notes behind it on the same partition are coded (it used to be retried for ever);
- after a broker restart on the same address, with its data kept (Tansu on S3 storage, s3rver) or lost
  (memory storage), the engine goes on by itself: its idempotent producer, stuck in a fatal state, is rebuilt;
- liveness turns 503 once a batch has made no progress for ``ICDCODER_ENGINE_STALL_TIMEOUT_S``.
The full fault matrix with recovery times is the chaos benchmark (bench/families/chaos.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from bench.devservers.kafka import read_through, start_kafka
from bench.devservers.s3 import s3rver_binary, start_s3
from tests.fixtures.docref import document_reference, from_note_record, to_bytes
from tests.fixtures.servers import EngineProcess, bundle_note_key, create_topic, engine_env, produce, read_topic

pytestmark = pytest.mark.servers


def _topics(bootstrap, unique_topic, partitions=1):
    for purpose in ("in", "out", "dlq", "audit"):
        create_topic(bootstrap, unique_topic(purpose), partitions)


def _docs(synthetic_notes, start, n):
    return [from_note_record(n.record) for n in synthetic_notes[start:start + n]]


def _messages(docs):
    return [(d["id"].encode(), to_bytes(d), None) for d in docs]


def test_oversized_message_is_dead_lettered_as_a_reference_and_the_partition_moves_on(
        kafka_bootstrap, redis_url, unique_topic, tmp_path, synthetic_notes, handbuilt_model_repo):
    before, after = _docs(synthetic_notes, 200, 3), _docs(synthetic_notes, 203, 3)
    huge = to_bytes(document_reference("x" * 5_200_000, doc_id="huge"))  # ~7 MB once base64-encoded
    assert len(huge) > 6_900_000
    _topics(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic("in"), _messages(before) + [(b"huge", huge, [("ehr-trace", b"h")])] + _messages(after))
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, kafka_max_poll_records="2")
    engine = EngineProcess(tmp_path, env, ["--max-notes", "7"])
    try:
        assert engine.wait(timeout_s=120) == 0, engine.logs()[-3000:]
    finally:
        engine.stop()

    out = read_topic(kafka_bootstrap, unique_topic("out"), expected=6)
    assert len({bundle_note_key(r.value) for r in out}) == 6  # the notes behind it were coded
    (dead,) = read_topic(kafka_bootstrap, unique_topic("dlq"), expected=1)
    headers = dict(dead.headers)
    assert headers["dlq.payload"] == b"reference" and headers["dlq.reason"] == b"too_large"
    assert headers["dlq.refused"] == b"MessageSizeTooLargeError" and headers["ehr-trace"] == b"h"
    ref = json.loads(dead.value)
    assert dead.key == b"huge" and base64.b64decode(ref["key_b64"]) == b"huge"
    assert ref["source"] == {"topic": unique_topic("in"), "partition": 0, "offset": 3}
    assert ref["size_bytes"] == len(huge) and ref["sha256"] == hashlib.sha256(huge).hexdigest()
    assert len(dead.value) < 2000


def _broker(tmp_path, durable: bool, port: int | None = None, s3=None):
    return start_kafka(tmp_path / "kafka", port=port, s3=s3 if durable else None)


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "memory"])
def test_engine_recovers_by_itself_after_a_broker_restart(durable, redis_url, unique_topic, tmp_path, synthetic_notes,
                                                          handbuilt_model_repo):
    if durable and s3rver_binary() is None:
        pytest.skip("s3rver is not installed (make tools; needs npm)")
    s3 = start_s3(tmp_path / "s3") if durable else None
    broker = _broker(tmp_path, durable, s3=s3)
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    first, second = _docs(synthetic_notes, 210, 8), _docs(synthetic_notes, 218, 8)
    engine = None
    try:
        _topics(broker.bootstrap, unique_topic)
        produce(broker.bootstrap, unique_topic("in"), _messages(first))
        env = engine_env(broker.bootstrap, redis_url, unique_topic, handbuilt_model_repo, kafka_max_poll_records="4",
                         kafka_session_timeout_ms="4000", triton_backoff_max_s="1.0")
        engine = EngineProcess(tmp_path, env)
        engine.wait_for(lambda: engine.metric("icdcoder_notes_total") >= len(first), 120, "the first notes")

        broker.stop()
        time.sleep(1.0)
        broker = _broker(tmp_path, durable, port=port, s3=s3)
        if durable:  # Tansu on S3 restores a partition's next offset once it is read through (bench.devservers.kafka)
            read_through(broker.bootstrap, [unique_topic(p) for p in ("in", "out", "dlq", "audit")])
        else:  # everything was lost with the broker: provision the topics again, as an operator would
            _topics(broker.bootstrap, unique_topic)
        restarted = time.monotonic()
        produce(broker.bootstrap, unique_topic("in"), _messages(second))
        engine.wait_for(lambda: engine.metric("icdcoder_notes_total") >= len(first) + len(second), 120,
                        "the notes produced after the broker restart")
        recovery_s = time.monotonic() - restarted
        assert engine.http("/livez")[0] == 200
        # a memory broker lost the first half with everything else; the durable one kept it
        out = read_topic(broker.bootstrap, unique_topic("out"), expected=len(first) + len(second) if durable else len(second))
    finally:
        if engine is not None:
            engine.stop()
        broker.stop()
        if s3 is not None:
            s3.stop()
    _check_outputs(out, first + second if durable else second, handbuilt_model_repo)
    if not durable:  # the new broker does not know the producer id: kafka-python's producer is stuck until rebuilt
        assert "producer cannot recover by itself; building a new one" in engine.logs()
    assert recovery_s < 90


def _check_outputs(out, docs, repo):
    from engine.infra.model import load_runtime
    from engine.pipeline.fhir_bundle import note_key
    from engine.pipeline.parse import parse_document_reference
    from tests.fixtures.docref import source_record

    model = load_runtime(repo, "bert_xml").model_ref
    versions: dict[str, set[bytes]] = {}
    for r in out:
        versions.setdefault(bundle_note_key(r.value), set()).add(r.value)
    assert set(versions) == {note_key(parse_document_reference(source_record(d)), model) for d in docs}  # nothing lost
    assert all(len(v) == 1 for v in versions.values())  # duplicates, if any, byte-identical

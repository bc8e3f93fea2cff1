"""DocumentReference status in the stream (``engine run`` as a child process on the real servers): current is
coded; superseded is skipped; entered-in-error is never coded and withdraws what the document produced:
its Conditions again with verificationStatus entered-in-error (same identifiers), its worklist entry
removed, a retraction audit record added (the coded one stays); replay leaves the document out."""

from __future__ import annotations

import json

import pytest

from engine.audit.replay import retracted_documents
from engine.infra.redis import redis_client
from engine.worklist.store import WorklistError, WorklistStore
from schemas.envelopes import AuditRecord
from schemas.settings import RedisSettings
from tests.fixtures.docref import document_reference, to_bytes
from tests.fixtures.servers import EngineProcess, create_topic, engine_env, produce, read_topic

pytestmark = pytest.mark.servers
NOTE = "The patient has a history of hypertension and type 2 diabetes. Denies chest pain."


def test_status_rules_in_the_stream(kafka_bootstrap, redis_url, unique_topic, tmp_path, handbuilt_model_repo):
    for purpose in ("in", "out", "dlq", "audit"):
        create_topic(kafka_bootstrap, unique_topic(purpose), 1)
    coded = document_reference(NOTE, "st-1", encounter="Encounter/st-1")
    superseded = {**document_reference(NOTE, "st-2", encounter="Encounter/st-2"), "status": "superseded"}
    retraction = {**coded, "status": "entered-in-error", "meta": {"versionId": "2"}}
    messages = [(b"1", to_bytes(coded), None), (b"2", to_bytes(superseded), None)]
    produce(kafka_bootstrap, unique_topic("in"), messages)
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, kafka_max_poll_records="1")
    engine = EngineProcess(tmp_path, env)
    try:
        engine.wait_for(lambda: engine.metric("icdcoder_notes_total") >= 2, 120, "the first two notes")
        store = WorklistStore(redis_client(RedisSettings(url=redis_url)), env["ICDCODER_REDIS_KEY_PREFIX"])
        assert store.get("Encounter/st-1").item.codes  # coded and on the worklist
        with pytest.raises(WorklistError):
            store.get("Encounter/st-2")  # superseded: never coded
        produce(kafka_bootstrap, unique_topic("in"), [(b"1", to_bytes(retraction), None)])
        engine.wait_for(lambda: engine.metric("icdcoder_notes_total", outcome="retracted") >= 1, 60, "the retraction")
        assert engine.metric("icdcoder_notes_total", outcome="skipped") == 1
    finally:
        engine.stop()

    first, withdrawal = (json.loads(r.value) for r in read_topic(kafka_bootstrap, unique_topic("out"), expected=2))
    conditions = {e["fullUrl"]: e for e in first["entry"] if e["resource"]["resourceType"] == "Condition"}
    withdrawn = {e["fullUrl"]: e for e in withdrawal["entry"] if e["resource"]["resourceType"] == "Condition"}
    assert conditions and set(withdrawn) == set(conditions)
    for url, entry in withdrawn.items():
        assert entry["resource"]["identifier"] == conditions[url]["resource"]["identifier"]
        assert entry["request"] == conditions[url]["request"]
        assert entry["resource"]["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    with pytest.raises(WorklistError):
        store.get("Encounter/st-1")  # its only note was entered in error: the item is gone
    audit = [AuditRecord.model_validate_json(r.value) for r in read_topic(kafka_bootstrap, unique_topic("audit"), expected=2)]
    assert [a.event for a in audit] == ["coded", "retracted"]
    assert set(audit[1].retracted_conditions) == {e["resource"]["identifier"][0]["value"] for e in conditions.values()}
    assert retracted_documents(audit) == {"DocumentReference/st-1"}

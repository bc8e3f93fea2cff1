"""Coder decisions -> FHIR (the engine's suggestion Conditions updated in place), the feedback topic (real
Kafka + Redis), and evaluate-feedback against numbers computed by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

import pytest
import redis

from engine.__main__ import COMMANDS
from engine.audit.feedback import read_decisions
from engine.infra.producer import make_producer
from engine.io.sinks import AuditSink
from engine.pipeline.fhir_bundle import build_bundle, bundle_class, serialise
from engine.worklist.feedback import CONDITION_IDENTIFIER_SYSTEM, DECISION_HEADER, FeedbackPublisher, condition_id, decision_bundle
from engine.worklist.items import merge_note
from engine.worklist.store import WorklistStore
from schemas.cli import main
from schemas.envelopes import CodeDecision, CoderDecision, ModelRef
from schemas.settings import KafkaSettings
from tests.fixtures.servers import create_topic, read_topic
from tests.fixtures.worklist_notes import MODEL, T0, processed_note


def engine_cli(*argv: str) -> int:
    return main("python -m engine", "", COMMANDS, list(argv))


@pytest.fixture
def env(monkeypatch, redis_url, kafka_bootstrap, unique_topic):
    topics = {"feedback": unique_topic("feedback"), "audit": unique_topic("audit")}
    for t in topics.values():
        create_topic(kafka_bootstrap, t)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("ICDCODER_REDIS_URL", redis_url)
    monkeypatch.setenv("ICDCODER_REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("ICDCODER_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ICDCODER_KAFKA_FEEDBACK_TOPIC", topics["feedback"])
    monkeypatch.setenv("ICDCODER_KAFKA_AUDIT_TOPIC", topics["audit"])
    store = WorklistStore(redis.Redis.from_url(redis_url), prefix)
    return {"store": store, "kafka": KafkaSettings(bootstrap_servers=kafka_bootstrap), **topics}


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_cli_decisions_reach_the_feedback_topic_as_fhir(env, capsys):
    from fhir.resources.R4B.bundle import Bundle

    env["store"].add_notes([processed_note("d1", "Encounter/e1", {"I10": 0.9, "E11.9": 0.6}),
                            processed_note("d2", "Encounter/e1", {"I10": 0.7}, minutes=1)])
    assert engine_cli("worklist", "claim", "--coder", "alice", "--lease-s", "60") == 0
    shown = capsys.readouterr().out
    assert "Encounter/e1" in shown and "claimed" in shown and "I10" in shown
    assert engine_cli("worklist", "decide", "Encounter/e1", "--coder", "bob", "--accept", "I10") == 2
    assert "claimed by another coder ('alice')" in capsys.readouterr().err
    assert engine_cli("worklist", "decide", "Encounter/e1", "--coder", "alice", "--add", "X99.999") == 2
    assert "not a code of ICD-10-CM 2026; nothing changed" in capsys.readouterr().err
    assert engine_cli("worklist", "decide", "Encounter/e1", "--coder", "alice", "--accept", "i10", "--reject", "E11.9", "--add", "e785") == 0
    assert engine_cli("worklist", "complete", "Encounter/e1", "--coder", "alice") == 0
    assert "1 decision record(s) published" in capsys.readouterr().out
    assert engine_cli("worklist", "complete", "Encounter/e1", "--coder", "alice") == 2
    assert "already completed" in capsys.readouterr().err
    assert engine_cli("worklist", "list", "--status", "completed", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["item"]["item_id"] for x in listed] == ["Encounter/e1"] and listed[0]["item"]["status"] == "completed"

    records = read_topic(env["kafka"].bootstrap_servers, env["feedback"], expected=1, timeout_s=20)
    assert len(records) == 1 and records[0].key == b"Encounter/e1"
    headers = dict(records[0].headers)
    assert headers["fhir-version"] == b"R4"
    decision = json.loads(headers[DECISION_HEADER])
    assert decision["coder"] == "alice" and decision["model"]["version"] == 1
    assert sorted((d["code"], d["action"]) for d in decision["decisions"]) == [("E11.9", "reject"), ("E78.5", "add"), ("I10", "accept")]
    bundle = Bundle.model_validate_json(records[0].value).model_dump(mode="json", exclude_none=True)
    status = {c["code"]["coding"][0]["code"]: c["verificationStatus"]["coding"][0]["code"] for c in _resources(bundle, "Condition")}
    assert status == {"I10": "confirmed", "E11.9": "refuted", "E78.5": "confirmed"}
    for c in _resources(bundle, "Condition"):
        assert c["subject"] == {"reference": "Patient/p1"} and c["encounter"] == {"reference": "Encounter/e1"}
        assert c["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    displays = {c["code"]["coding"][0]["code"]: c["code"]["coding"][0]["display"] for c in _resources(bundle, "Condition")}
    assert displays["I10"] == "display of I10" and "hyperlipidemia" in displays["E78.5"].lower()
    (provenance,) = _resources(bundle, "Provenance")
    assert provenance["agent"][0]["who"] == {"reference": "Practitioner/alice"}
    assert len(provenance["target"]) == 4  # I10 of d1 and of d2, E11.9 of d1, the added E78.5
    assert [e["what"]["reference"] for e in provenance["entity"]] == ["DocumentReference/d1/_history/1", "DocumentReference/d2/_history/1"]
    # never the note text
    assert b"John Smith" not in records[0].value and b"[NAME]" not in records[0].value
    decisions, skipped = read_decisions(env["kafka"], env["feedback"], idle_s=0.5)
    assert skipped == 0 and [d.item_id for d in decisions] == ["Encounter/e1"]


def test_r5_bundle_and_bad_coder_ids(env):
    from fhir.resources.bundle import Bundle

    store = env["store"]
    store.add_notes([processed_note("d1", "Encounter/e1", {"I10": 0.9})])
    store.claim("carol", 60)
    store.decide("Encounter/e1", "carol", [CodeDecision(code="I10", action="reject")])
    decision = store.complete("Encounter/e1", "carol", lambda d, item: decision_bundle(d, item, "R5"))
    payloads = []
    store.drain_outbox(lambda i, d, p: payloads.append(p))
    bundle = Bundle.model_validate_json(payloads[0]).model_dump(mode="json", exclude_none=True)
    (condition,) = _resources(bundle, "Condition")
    assert condition["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert condition["clinicalStatus"]["coding"][0]["code"] == "unknown"  # R5 requires one
    assert decision.decisions == (CodeDecision(code="I10", action="reject"),)
    assert engine_cli("worklist", "claim", "--coder", "no spaces/allowed") == 2


STATUSES = ("verificationStatus", "clinicalStatus")


def _item(*notes):
    item = None
    for n in notes:
        item = merge_note(item, n, T0)
    return item


def _decide(item, actions: dict[str, str]) -> CoderDecision:
    """``_decide(item, {"I10": "accept"})``: alice's decision on the item, an hour after the first note."""
    decisions = tuple(CodeDecision(code=code, action=a) for code, a in sorted(actions.items()))
    return CoderDecision(item_id=item.item_id, coder="alice", decisions=decisions, model=item.model, decided_at=T0 + dt.timedelta(hours=1))


def _engine_entries(processed, version: str) -> dict[str, dict]:
    """The engine's own Bundle entries of a note (what it wrote to the FHIR server), by code."""
    note = dataclasses.replace(processed.note, fhir_version=version)
    raw = build_bundle(note, processed.suggestions, processed.model, processed.processed_at)
    return {e["resource"]["code"]["coding"][0]["code"]: e for e in json.loads(raw)["entry"] if e["resource"]["resourceType"] == "Condition"}


def _feedback_entries(raw: bytes, version: str) -> list[dict]:
    bundle_class(version).model_validate_json(raw)
    return [e for e in json.loads(raw)["entry"] if e["resource"]["resourceType"] == "Condition"]


def _status(resource: dict) -> tuple[str, str | None]:
    clinical = resource.get("clinicalStatus")
    return resource["verificationStatus"]["coding"][0]["code"], clinical and clinical["coding"][0]["code"]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_decisions_update_the_engines_suggestion_conditions_in_place(version):
    d1 = processed_note("d1", "Encounter/e1", {"I10": 0.9, "E11.9": 0.6})
    item = _item(d1)
    raw = decision_bundle(_decide(item, {"I10": "accept", "E11.9": "reject"}), item, version)
    engine = _engine_entries(d1, version)
    feedback = {e["resource"]["code"]["coding"][0]["code"]: e for e in _feedback_entries(raw, version)}
    assert sorted(feedback) == ["E11.9", "I10"]
    for code, entry in feedback.items():
        assert entry["request"] == engine[code]["request"] and entry["request"]["url"].startswith("Condition?identifier=")
        assert entry["fullUrl"] == engine[code]["fullUrl"]
        ours, theirs = entry["resource"], engine[code]["resource"]
        assert ours["identifier"] == theirs["identifier"]
        assert (ours["code"], ours["subject"], ours["evidence"]) == (theirs["code"], theirs["subject"], theirs["evidence"])
        # rebuilt exactly: only the statuses differ from what the engine wrote
        assert {k: v for k, v in ours.items() if k not in STATUSES} == {k: v for k, v in theirs.items() if k not in STATUSES}
    assert _status(feedback["I10"]["resource"]) == ("confirmed", "active")
    # R4: no clinical status for a refuted diagnosis (its value set has no "unknown"); R5 requires one
    assert _status(feedback["E11.9"]["resource"]) == ("refuted", None if version == "R4" else "unknown")


def test_an_added_code_is_a_new_condition_and_the_bundle_is_deterministic():
    d1 = processed_note("d1", "Encounter/e1", {"I10": 0.9})
    item = _item(d1)
    raw = decision_bundle(_decide(item, {"I10": "accept", "E78.5": "add"}), item, "R4")
    (added,) = [e for e in _feedback_entries(raw, "R4") if e["resource"]["code"]["coding"][0]["code"] == "E78.5"]
    cid = condition_id("Encounter/e1", "E78.5")
    assert added["request"] == {"method": "PUT", "url": f"Condition/{cid}"}
    assert added["resource"]["identifier"] == [{"system": CONDITION_IDENTIFIER_SYSTEM, "value": cid}]
    assert _status(added["resource"]) == ("confirmed", "active")
    assert added["resource"]["encounter"] == {"reference": "Encounter/e1"}
    assert "hyperlipidemia" in added["resource"]["code"]["coding"][0]["display"].lower()
    assert "E78.5" not in _engine_entries(d1, "R4")
    assert raw == serialise(json.loads(raw)) == decision_bundle(_decide(item, {"I10": "accept", "E78.5": "add"}), item, "R4")


def test_a_code_suggested_by_two_notes_updates_both():
    d1 = processed_note("d1", "Encounter/e1", {"I10": 0.9, "E11.9": 0.6})
    d2 = processed_note("d2", "Encounter/e1", {"I10": 0.7}, version="3", minutes=5)
    item = _item(d1, d2)
    raw = decision_bundle(_decide(item, {"I10": "accept", "E11.9": "reject"}), item, "R5")
    i10 = [e for e in _feedback_entries(raw, "R5") if e["resource"]["code"]["coding"][0]["code"] == "I10"]
    assert [e["request"]["url"] for e in i10] == [_engine_entries(d, "R5")["I10"]["request"]["url"] for d in (d1, d2)]
    assert i10[0]["request"]["url"] != i10[1]["request"]["url"]
    assert [_status(e["resource"]) for e in i10] == [("confirmed", "active")] * 2
    (provenance,) = [e["resource"] for e in json.loads(raw)["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert len(provenance["target"]) == 3 and provenance["recorded"] == "2026-11-01T09:00:00+00:00"
    assert [e["what"]["reference"] for e in provenance["entity"]] == ["DocumentReference/d1/_history/1", "DocumentReference/d2/_history/3"]
    assert provenance["agent"][0]["who"] == {"reference": "Practitioner/alice"}


def test_evaluate_feedback_matches_hand_computed_numbers(env, tmp_path, capsys):
    """Version 1 (live) suggested, coders decided; version 2 (a replay) is scored against the same decisions.

    e1: v1 {I10, E11.9, E78.5}; final {I10, E78.5, J45.909} (E11.9 rejected, J45.909 added)
    e2: v1 {I10};               final {E11.9}               (I10 rejected, E11.9 added)
    v1: TP 2, FP 2, FN 2 -> P = R = F1 = 0.5; ruled 4, confirmed 2 -> acceptance 0.5
    v2: e1 {I10, J45.909} (TP 2, FN 1: E78.5), e2 {E11.9, K21.9} (TP 1, FP 1: K21.9 nobody saw)
        TP 3, FP 1, FN 1 -> P = R = F1 = 0.75; ruled 3 (I10, J45.909, E11.9), confirmed 3 -> acceptance 1.0
    """
    v2 = ModelRef(name="bert_xml", version=2, code_set_release=MODEL.code_set_release)
    live = [processed_note("d1", "Encounter/e1", {"I10": 0.9, "E11.9": 0.6}),
            processed_note("d2", "Encounter/e1", {"E78.5": 0.7}, minutes=1),
            processed_note("d3", "Encounter/e2", {"I10": 0.8}, subject="Patient/p2", minutes=2)]
    replayed = [processed_note("d1", "Encounter/e1", {"I10": 0.9, "J45.909": 0.6}, model=v2),
                processed_note("d2", "Encounter/e1", {}, model=v2, minutes=1),
                processed_note("d3", "Encounter/e2", {"E11.9": 0.8, "K21.9": 0.7}, subject="Patient/p2", model=v2, minutes=2)]
    producer = make_producer(env["kafka"])
    try:
        AuditSink(producer, env["audit"], include_text=False).write(live + replayed + live[:1])  # d1 twice: redelivery
        store = env["store"]
        store.add_notes(live)
        for coder, item, decisions in (
            ("alice", "Encounter/e1", [("I10", "accept"), ("E11.9", "reject"), ("E78.5", "accept"), ("J45.909", "add")]),
            ("bob", "Encounter/e2", [("I10", "reject"), ("E11.9", "add")]),
        ):
            store.claim(coder, 60, item_id=item)
            store.decide(item, coder, [CodeDecision(code=c, action=a) for c, a in decisions])
            store.complete(item, coder, lambda d, i: decision_bundle(d, i, "R4"))
        assert store.drain_outbox(FeedbackPublisher(producer, env["feedback"], "R4")) == 2
    finally:
        producer.close()

    assert engine_cli("evaluate-feedback", "--out", str(tmp_path), "--idle-s", "0.5") == 0
    report = json.loads((tmp_path / "feedback_eval.json").read_text())
    by_version = {v["version"]: v for v in report["versions"]}
    o1, o2 = by_version[1]["overall"], by_version[2]["overall"]
    assert (o1["tp"], o1["fp"], o1["fn"]) == (2, 2, 2)
    assert o1["precision"] == o1["recall"] == o1["f1"] == 0.5 and o1["acceptance_rate"] == 0.5
    assert (o2["tp"], o2["fp"], o2["fn"]) == (3, 1, 1)
    assert o2["precision"] == o2["recall"] == o2["f1"] == 0.75 and o2["acceptance_rate"] == 1.0
    i10 = by_version[1]["per_code"]["I10"]
    assert (i10["precision"], i10["recall"], i10["acceptance_rate"]) == (0.5, 1.0, 0.5)
    assert i10["f1"] == pytest.approx(2 / 3)
    assert by_version[1]["per_code"]["J45.909"]["precision"] is None and by_version[1]["per_code"]["J45.909"]["recall"] == 0.0
    assert by_version[1]["items"] == 2 and report["decided_items"] == 2
    md = (tmp_path / "feedback_eval.md").read_text()
    assert "| bert_xml | 1 | 2 | 0 | 0.5000 | 0.5000 | 0.5000 | 0.5000 |" in md

    empty_topic = env["feedback"] + ".none"
    create_topic(env["kafka"].bootstrap_servers, empty_topic)
    assert engine_cli("evaluate-feedback", "--out", str(tmp_path), "--feedback-topic", empty_topic, "--idle-s", "0.3") == 2
    assert "no coder decisions" in capsys.readouterr().err


def test_notes_coded_by_different_model_versions_update_their_own_conditions():
    """The item's model is the latest note's; each note's Condition is keyed by the version that coded it."""
    v1, v2 = MODEL, MODEL.model_copy(update={"version": MODEL.version + 1})
    d1 = processed_note("d1", "Encounter/e1", {"I10": 0.9}, model=v1)
    d2 = processed_note("d2", "Encounter/e1", {"I10": 0.8}, model=v2, minutes=5)
    item = _item(d1, d2)
    assert item.model == v2 and [n.model for n in item.notes] == [v1, v2]
    raw = decision_bundle(_decide(item, {"I10": "accept"}), item, "R4")
    urls = [e["request"]["url"] for e in _feedback_entries(raw, "R4")]
    assert urls == [_engine_entries(d, "R4")["I10"]["request"]["url"] for d in (d1, d2)]

"""Audit topic and replay on the real broker, Redis and Triton: notes coded by version 1 (in-process)
go to the audit topic and the worklist; replays through version 2 (same weights: empty diff) and
version 3 (a stricter I10 threshold: a diff known by hand) on Triton, and a --threshold override.

Hand-known scores of the keyword test model (tests/fixtures/engine_model.py): a keyword gives its code
~0.99, otherwise < 0.1, and "Chest pain, denies fever." scores I10 0.33 (no suggestion at 0.5).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sysconfig
import time
import uuid

import pytest
import redis

from engine.__main__ import COMMANDS
from engine.audit.replay import diff_note, summarise
from engine.infra.producer import make_producer
from engine.infra.model import load_runtime
from engine.io.sinks import AuditSink, WorklistSink
from engine.pipeline.infer.local import LocalOnnxBackend
from engine.pipeline.processor import NoteProcessor
from engine.worklist.store import WorklistStore
from schemas.cli import main
from schemas.envelopes import AuditRecord, ModelRef, Suggestion
from schemas.settings import EngineSettings, KafkaSettings
from tests.fixtures.docref import document_reference, source_record
from tests.fixtures.engine_model import build_model_repository
from tests.fixtures.servers import create_topic

pytestmark = pytest.mark.servers
NAME = "Bartholomew Quigley"
TEXTS = {  # doc id -> (encounter, text)
    "d0": ("Encounter/e1", f"Seen by Dr. {NAME} on 3/4/2026. The patient has a history of hypertension and diabetes."),
    "d1": ("Encounter/e1", "Asthma with cough. Call 555-123-4567."),
    "d2": ("Encounter/e2", "Fever and cough, pneumonia suspected. Also hypertension."),
    "d3": ("Encounter/e3", "Migraine daily."),
    "d4": ("Encounter/e3", "Chest pain, denies fever."),
}


def engine_cli(*argv: str) -> int:
    return main("python -m engine", "", COMMANDS, list(argv))


def _record(doc: str, codes: dict[str, float], version: int = 1) -> AuditRecord:
    return AuditRecord(
        document_reference=f"DocumentReference/{doc}", model=ModelRef(name="m", version=version, code_set_release="r"),
        threshold_global=0.5, deid_text="x", deid_text_sha256="0" * 64, scores=codes,
        suggestions=tuple(Suggestion(code=c, display=c, score=s, threshold=0.5) for c, s in codes.items()),
        processed_at=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))


def test_diff_and_agreement_by_hand():
    pairs = [
        (_record("a", {"I10": 0.9, "E11.9": 0.6}), _record("a", {"I10": 0.85, "J45.909": 0.7}, 2)),
        (_record("b", {}), _record("b", {}, 2)),
        (_record("c", {"I10": 0.7}), _record("c", {"I10": 0.70005}, 2)),
    ]
    diffs = [diff_note(b, a, tolerance=1e-4) for b, a in pairs]
    assert diffs[0].added == {"J45.909": 0.7} and diffs[0].removed == {"E11.9": 0.6}
    assert diffs[0].changed == {"I10": (0.9, 0.85)} and diffs[0].jaccard == pytest.approx(1 / 3)
    assert diffs[1].jaccard == 1.0 and diffs[2].changed == {} and diffs[2].identical_codes
    s = summarise(diffs, "m", 2, {}, 1e-4, None)
    assert s.exact_match_rate == pytest.approx(2 / 3) and s.mean_jaccard == pytest.approx(7 / 9)
    assert (s.notes_changed, s.scores_changed, s.codes_added, s.codes_removed) == (1, 1, {"J45.909": 1}, {"E11.9": 1})


@pytest.fixture(scope="module")
def keyword_repo(tmp_path_factory):
    """Versions 1 and 2 (identical) and 3 (I10 threshold 0.995) of the keyword model, servable by the
    wheel's tritonserver: the export tool's cpu-python config and model.py."""
    from trainer.export.triton_config import PYTHON_BACKEND_MODEL, ServingConfig, onnx_signature, render_config

    repo = tmp_path_factory.mktemp("replay_repo")
    build_model_repository(repo, version=1)
    build_model_repository(repo, version=2)
    build_model_repository(repo, version=3, thresholds={"I10": 0.995})
    for v in (1, 2, 3):
        shutil.copyfile(PYTHON_BACKEND_MODEL, repo / "bert_xml" / str(v) / "model.py")
    runtime = load_runtime(repo, "bert_xml", 1)
    inputs, outputs = onnx_signature(runtime.onnx_path)
    serving = ServingConfig(site_packages=sysconfig.get_paths()["purelib"], pad_token_id=runtime.pad_id)
    (repo / "bert_xml" / "config.pbtxt").write_text(render_config("bert_xml", "cpu-python", inputs, outputs, serving))
    return repo


@pytest.fixture(scope="module")
def keyword_triton(keyword_repo, tmp_path_factory):
    from bench.devservers.triton import start_triton

    server = start_triton(keyword_repo, tmp_path_factory.mktemp("replay_triton"), model_control="none")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live(keyword_repo, kafka_bootstrap, redis_url, unique_topic, monkeypatch):
    """Version 1 codes the notes in-process; audit records (with and without text) and the worklist."""
    from engine.deid import DeidConfig, Deidentifier

    topics = {k: unique_topic(k) for k in ("audit", "audit_hash", "feedback")}
    for t in topics.values():
        create_topic(kafka_bootstrap, t)
    settings = EngineSettings(audit_include_text=True)
    runtime = load_runtime(keyword_repo, "bert_xml", 1)
    processor = NoteProcessor(runtime, LocalOnnxBackend(runtime.onnx_path), settings, deidentifier=Deidentifier(DeidConfig()))
    results = processor.process_batch([source_record(document_reference(text, doc, encounter=enc), offset=i)
                                       for i, (doc, (enc, text)) in enumerate(TEXTS.items())])
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    producer = make_producer(kafka)
    store = WorklistStore(redis.Redis.from_url(redis_url), f"t{uuid.uuid4().hex[:8]}:")
    try:
        AuditSink(producer, topics["audit"], include_text=True).write(results)
        AuditSink(producer, topics["audit_hash"], include_text=False).write(results)
        WorklistSink(store).write(results)
    finally:
        producer.close()
    for key, value in {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_AUDIT_TOPIC": topics["audit"],
                       "KAFKA_FEEDBACK_TOPIC": topics["feedback"], "MODEL_REPOSITORY": str(keyword_repo),
                       "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": store.prefix}.items():
        monkeypatch.setenv(f"ICDCODER_{key}", value)
    return {"results": results, "topics": topics, "store": store, "kafka": kafka}


def test_audit_records_and_worklist_from_the_engine(live):
    from engine.audit.records import AuditRange, read_audit

    found, unreadable = read_audit(live["kafka"], live["topics"]["audit"], AuditRange())
    assert unreadable == 0 and len(found) == len(TEXTS)
    by_doc = {r.document_reference: r for _, r in found}
    d0 = by_doc["DocumentReference/d0"]
    assert NAME not in d0.deid_text and "hypertension" in d0.deid_text
    assert d0.source.offset == 0 and d0.model.version == 1 and d0.threshold_global == 0.5
    assert {s.code for s in d0.suggestions} == {"I10", "E11.9"} and min(d0.scores.values()) >= 0.01
    assert d0.timings_ms and d0.encounter == "Encounter/e1" and d0.subject == "Patient/p-1"
    with_phi = [(r, n) for (_, r), n in zip(sorted(found, key=lambda f: f[0].offset), live["results"]) if n.note.text != n.deid_text]
    assert len(with_phi) == 2  # d0 (name, date), d1 (phone)
    for record, note in with_phi:
        assert note.note.text not in record.model_dump_json()  # the original text never reaches the audit topic
        assert record.deid_text == note.deid_text
    hashed, _ = read_audit(live["kafka"], live["topics"]["audit_hash"], AuditRange())
    assert all(r.deid_text is None and len(r.deid_text_sha256) == 64 for _, r in hashed)
    assert all(NAME not in r.model_dump_json() for _, r in hashed)
    # the worklist: one item per encounter, codes at their max over the encounter's notes
    e1 = live["store"].get("Encounter/e1").item
    assert set(e1.codes) == {"I10", "E11.9", "J45.909"} and len(e1.notes) == 2
    assert e1.notes[0].suggestions[0].evidence  # evidence spans into the original note
    assert live["store"].get("Encounter/e3").item.codes.keys() == {"G43.909"}


def _code_the_worklist(capsys) -> None:
    """Coders work the worklist through the CLI; alice's lease runs out and bob takes the item over.

    e1 {I10, E11.9, J45.909}: accept I10, J45.909, reject E11.9, add E78.5
    e2 {I10, J18.9}: accept both
    e3 {G43.909}: accept, add I10 (the 0.33 the model left below threshold)
    """
    assert engine_cli("worklist", "claim", "--coder", "alice", "--lease-s", "0.3") == 0
    assert "Encounter/e1" in capsys.readouterr().out
    time.sleep(0.4)
    assert engine_cli("worklist", "decide", "Encounter/e1", "--coder", "alice", "--accept", "I10") == 2
    assert "expired" in capsys.readouterr().err
    assert engine_cli("worklist", "claim", "--coder", "bob") == 0
    assert "Encounter/e1" in capsys.readouterr().out.splitlines()[0]
    plan = {"Encounter/e1": ["--accept", "I10", "J45.909", "--reject", "E11.9", "--add", "E78.5"],
            "Encounter/e2": ["--accept", "I10", "J18.9"],
            "Encounter/e3": ["--accept", "G43.909", "--add", "I10"]}
    for item, decisions in plan.items():
        if item != "Encounter/e1":
            assert engine_cli("worklist", "claim", "--coder", "bob", "--item", item) == 0
        assert engine_cli("worklist", "decide", item, "--coder", "bob", *decisions) == 0
        assert engine_cli("worklist", "complete", item, "--coder", "bob") == 0
    assert engine_cli("worklist", "list") == 0
    assert "queued=0, claimed=0, completed=3, pending_feedback=0" in capsys.readouterr().out


def test_the_loop_code_review_replay_evaluate(live, keyword_triton, tmp_path, capsys):
    from engine.audit.feedback import read_decisions

    _code_the_worklist(capsys)
    decisions, skipped = read_decisions(live["kafka"], live["topics"]["feedback"])
    assert skipped == 0 and sorted(d.item_id for d in decisions) == ["Encounter/e1", "Encounter/e2", "Encounter/e3"]
    assert {d.coder for d in decisions} == {"bob"}
    e3 = next(d for d in decisions if d.item_id == "Encounter/e3")
    assert {(c.code, c.action) for c in e3.decisions} == {("G43.909", "accept"), ("I10", "add")}

    url = keyword_triton.grpc_url
    # version 2 has the same weights and thresholds: nothing changes
    assert engine_cli("replay", "--model-version", "2", "--triton-url", url, "--out", str(tmp_path / "v2")) == 0
    same = json.loads((tmp_path / "v2" / "replay_summary.json").read_text())
    assert (same["notes"], same["exact_match_rate"], same["mean_jaccard"], same["notes_changed"]) == (5, 1.0, 1.0, 0)
    assert same["source_versions"] == [1] and same["target_version"] == 2
    # version 3 raises I10's threshold to 0.995: I10 (0.9916) leaves d0 and d2, nothing else moves
    assert engine_cli("replay", "--model-version", "3", "--triton-url", url, "--out", str(tmp_path / "v3")) == 0
    stricter = json.loads((tmp_path / "v3" / "replay_summary.json").read_text())
    assert stricter["codes_removed"] == {"I10": 2} and stricter["codes_added"] == {}
    assert stricter["exact_match_rate"] == pytest.approx(3 / 5)
    assert stricter["mean_jaccard"] == pytest.approx((1 / 2 + 1 + 1 / 2 + 1 + 1) / 5)  # d0, d2: 1 of 2 codes kept
    diffs = {d["document_reference"]: d for d in map(json.loads, (tmp_path / "v3" / "replay_diffs.ndjson").read_text().splitlines())}
    assert set(diffs["DocumentReference/d0"]["removed"]) == {"I10"} and diffs["DocumentReference/d1"]["removed"] == {}
    report = (tmp_path / "v3" / "replay_report.md").read_text()
    assert "| I10 | 0 | 2 |" in report and "DocumentReference/d2" in report
    assert (tmp_path / "v3" / "replay_jaccard.png").read_bytes().startswith(b"\x89PNG")
    # a lower threshold for every code: I10 at 0.33 on d4 becomes a suggestion
    assert engine_cli("replay", "--model-version", "2", "--local", "--threshold", "0.3", "--out", str(tmp_path / "t03")) == 0
    lower = json.loads((tmp_path / "t03" / "replay_summary.json").read_text())
    assert lower["codes_added"] == {"I10": 1} and lower["codes_removed"] == {} and lower["threshold_override"] == 0.3
    replayed = [json.loads(line) for line in (tmp_path / "t03" / "replay_audit.ndjson").read_text().splitlines()]
    assert all("deid_text" not in r and r["model"]["version"] == 2 for r in replayed)

    # Re-evaluation against the coders' final codes (e1 {I10, J45.909, E78.5}, e2 {I10, J18.9}, e3 {G43.909, I10}):
    # v1 (live): TP 5, FP 1 (E11.9), FN 2 (E78.5, I10 on e3); acceptance 5 of 6 ruled
    # v3: e1 {E11.9, J45.909}, e2 {J18.9}, e3 {G43.909}: TP 3, FP 1, FN 4; acceptance 3 of 4
    assert engine_cli("evaluate-feedback", "--with-live", "--replay", str(tmp_path / "v3"), "--out", str(tmp_path / "eval")) == 0
    versions = {v["version"]: v["overall"] for v in json.loads((tmp_path / "eval" / "feedback_eval.json").read_text())["versions"]}
    assert (versions[1]["tp"], versions[1]["fp"], versions[1]["fn"]) == (5, 1, 2)
    assert versions[1]["precision"] == pytest.approx(5 / 6) and versions[1]["recall"] == pytest.approx(5 / 7)
    assert versions[1]["f1"] == pytest.approx(10 / 13) and versions[1]["acceptance_rate"] == pytest.approx(5 / 6)
    assert (versions[3]["tp"], versions[3]["fp"], versions[3]["fn"]) == (3, 1, 4) and versions[3]["acceptance_rate"] == 0.75
    assert (tmp_path / "eval" / "feedback_eval.png").read_bytes().startswith(b"\x89PNG")
    # threshold 0.3: e3 gains I10: TP 6, FP 1, FN 1
    assert engine_cli("evaluate-feedback", "--replay", str(tmp_path / "t03"), "--out", str(tmp_path / "eval03")) == 0
    (low,) = json.loads((tmp_path / "eval03" / "feedback_eval.json").read_text())["versions"]
    assert (low["version"], low["overall"]["tp"], low["overall"]["fp"], low["overall"]["fn"]) == (2, 6, 1, 1)
    assert low["overall"]["precision"] == low["overall"]["recall"] == pytest.approx(6 / 7)


def test_replay_refuses_bad_input(live, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "out")
    assert engine_cli("replay", "--model-version", "7", "--local", "--out", out) == 2
    assert "has no version 7" in capsys.readouterr().err
    assert engine_cli("replay", "--model-version", "2", "--local", "--from-offset", "100", "--out", out) == 2
    assert "no audit records in" in capsys.readouterr().err
    assert engine_cli("replay", "--model-version", "2", "--local", "--from-offset", "3", "--to-offset", "1", "--out", out) == 2
    assert "--from-offset 3 is after --to-offset 1" in capsys.readouterr().err
    assert engine_cli("replay", "--model-version", "2", "--local", "--audit-topic", live["topics"]["audit_hash"], "--out", out) == 2
    assert "carry only the SHA-256" in capsys.readouterr().err
    assert engine_cli("replay", "--model-version", "2", "--local", "--from-time", "2020-01-01T00:00:00Z",
                      "--to-time", "2020-01-02T00:00:00Z", "--out", out) == 2
    assert "no audit records" in capsys.readouterr().err
    assert engine_cli("replay", "--model-version", "2", "--triton-url", "127.0.0.1:1", "--out", out) == 2
    assert "cannot serve bert_xml version 2" in capsys.readouterr().err
    # an offset range replays just those records
    assert engine_cli("replay", "--model-version", "2", "--local", "--from-offset", "1", "--to-offset", "2", "--out", out) == 0
    assert json.loads((tmp_path / "out" / "replay_summary.json").read_text())["notes"] == 2
    # and a time range: the batch's processing time, give or take a second
    at = live["results"][0].processed_at
    window = [(at - dt.timedelta(seconds=1)).isoformat(), (at + dt.timedelta(seconds=1)).isoformat()]
    assert engine_cli("replay", "--model-version", "2", "--local", "--from-time", window[0], "--to-time", window[1], "--out", out) == 0
    assert json.loads((tmp_path / "out" / "replay_summary.json").read_text())["notes"] == len(TEXTS)

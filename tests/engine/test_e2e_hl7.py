"""End to end with an HL7 v2 feed: ER7 messages (built with python-hl7) on Tansu -> ``python -m engine run`` with
``ICDCODER_ENGINE_INPUT_FORMAT=hl7v2`` (a child process, in-process onnxruntime) -> one FHIR Bundle per good
message, malformed ones dead-lettered byte for byte with the segment and field named, nothing behind them
blocked, no PHI in the dead-letter headers; a T11 cancel of a coded document withdraws its Conditions."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from bench.hl7msg import mdm, oru_ed, oru_text
from tests.fixtures.servers import EngineProcess, create_topic, engine_env, produce, read_topic

pytestmark = pytest.mark.servers
NOTE = ["Seen by Dr. Bartholomew Quigley.", "The patient has a history of hypertension and asthma."]


def test_hl7_feed_is_coded_and_bad_messages_dead_lettered(kafka_bootstrap, redis_url, unique_topic, tmp_path, handbuilt_model_repo):
    good = [mdm("T02", f"DOC-{i}", NOTE, mrn=f"MRN-{i}", visit=f"V-{i}") for i in range(12)]
    good += [oru_text("RPT-1", ["Cough and fever, likely pneumonia."]), oru_ed("RPT-2", b"Patient has migraine.")]
    bad = {
        3: mdm("T02", "DOC-X1", NOTE, mrn="MRN-SECRET").set("PID", 3, ""),
        7: oru_ed("RPT-X2", b"", raw_data="%%%", mrn="MRN-SECRET"),
        9: mdm("T02", "DOC-X3", NOTE, mrn="MRN-SECRET").set("TXA", 12, ""),
    }
    messages = list(good)
    for position, message in sorted(bad.items()):
        messages.insert(position, message)
    for purpose in ("in", "out", "dlq", "audit"):
        create_topic(kafka_bootstrap, unique_topic(purpose), 2)
    cancel = mdm("T11", "DOC-5", [], mrn="MRN-5", visit="V-5", availability="CA")  # after its T02: same key, same partition
    keys = [b"MRN-5" if b"DOC-5" in m.bytes() else f"m{i}".encode() for i, m in enumerate(messages)]
    messages.append(cancel)
    keys.append(b"MRN-5")
    produce(kafka_bootstrap, unique_topic("in"), [(key, m.bytes(), None) for key, m in zip(keys, messages)])

    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, engine_input_format="hl7v2", kafka_max_poll_records="4")
    engine = EngineProcess(tmp_path, env, ["--max-notes", str(len(messages)), "--idle-exit-s", "30"])
    try:
        assert engine.wait(timeout_s=150) == 0, engine.logs()[-3000:]
    finally:
        engine.stop()
    assert "MRN-SECRET" not in engine.logs()

    out = read_topic(kafka_bootstrap, unique_topic("out"), expected=len(good) + 1)
    dlq = read_topic(kafka_bootstrap, unique_topic("dlq"), expected=len(bad), settle_s=0.5)
    assert len(out) == len(good) + 1 and len(dlq) == len(bad)
    reasons = sorted((dict(r.headers)["dlq.reason"].decode(), dict(r.headers)["dlq.detail"].decode()) for r in dlq)
    assert reasons == [("bad_base64", "OBX-5 of OBX 1 not decodable as base64"), ("invalid_message", "PID-3 missing"),
                       ("invalid_message", "TXA-12 missing")]
    assert sorted(r.value for r in dlq) == sorted(m.bytes() for m in bad.values())  # the original bytes, to replay
    assert all(b"MRN-SECRET" not in b"".join(v for _, v in r.headers) for r in dlq)

    by_doc = {}
    for r in out:
        bundle = Bundle.model_validate_json(r.value)
        provenance = bundle.entry[-1].resource
        by_doc[provenance.entity[0].what.reference] = (r.key, [e.resource for e in bundle.entry[:-1]])
    coded = {f"DocumentReference/EHR.DOC-{i}/_history/DOC-{i}-T02" for i in range(12)}
    assert set(by_doc) == coded | {"DocumentReference/LAB.RPT-1/_history/RPT-1-R01", "DocumentReference/LAB.RPT-2/_history/RPT-2-R01",
                                   "DocumentReference/EHR.DOC-5/_history/DOC-5-T11"}
    key, conditions = by_doc["DocumentReference/EHR.DOC-5/_history/DOC-5-T02"]
    assert key == b"Encounter/GENHOSP.V-5"
    assert {c.code.coding[0].code for c in conditions} == {"I10", "J45.909"}
    assert all(c.subject.reference == "Patient/GENHOSP.MRN-5" for c in conditions)
    assert [c.code.coding[0].code for c in by_doc["DocumentReference/LAB.RPT-1/_history/RPT-1-R01"][1]] == ["J18.9"]
    # The T11 cancel withdrew DOC-5's Conditions: same identifiers, verificationStatus entered-in-error
    _, withdrawn = by_doc["DocumentReference/EHR.DOC-5/_history/DOC-5-T11"]
    assert sorted(c.identifier[0].value for c in withdrawn) == sorted(c.identifier[0].value for c in conditions)
    assert {c.verificationStatus.coding[0].code for c in withdrawn} == {"entered-in-error"}
    audit = [json.loads(r.value) for r in read_topic(kafka_bootstrap, unique_topic("audit"), expected=len(good) + 1, settle_s=0.3)]
    assert len({a["document_reference"] for a in audit}) == len(good)
    assert sorted(a["event"] for a in audit if a["document_reference"] == "DocumentReference/EHR.DOC-5") == ["coded", "retracted"]

"""Stage 6: suggestions -> a validated, deterministic, idempotent FHIR transaction Bundle (R4 and R5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from engine.pipeline.fhir_bundle import EXT_EVIDENCE, EXT_SCORE, EXT_THRESHOLD, SUGGESTION_ID_SYSTEM, build_bundle, bundle_class
from engine.pipeline.types import ParsedNote
from schemas.envelopes import EvidenceSpan, ModelRef, Suggestion
from schemas.errors import ProcessingError
from schemas.icd10cm import ICD10CM_SYSTEM

MODEL = ModelRef(name="bert_xml", version=3, code_set_release="ICD-10-CM 2026")
RECORDED = dt.datetime(2026, 11, 24, 22, 0, 1, 250000, tzinfo=dt.timezone.utc)
SUGGESTIONS = (
    Suggestion(code="I10", display="Essential (primary) hypertension", score=0.9123, threshold=0.5, evidence=(EvidenceSpan(start=30, end=42, weight=0.85), EvidenceSpan(start=5, end=9, weight=0.1))),
    Suggestion(code="E11.9", display="Type 2 diabetes mellitus without complications", score=0.61, threshold=0.55),
)


def note(version: str = "R4", **kw) -> ParsedNote:
    fields = dict(document_id="doc-1", document_version="2", subject="Patient/p1", encounter="Encounter/e1", date=None, note_type=None, text="(text)", fhir_version=version)
    return ParsedNote(**{**fields, **kw})


def resources(bundle_bytes: bytes, kind: str) -> list[dict]:
    return [e["resource"] for e in json.loads(bundle_bytes)["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_bundle_validates_and_carries_the_suggestions(version):
    raw = build_bundle(note(version), SUGGESTIONS, MODEL, RECORDED)
    bundle = bundle_class(version).model_validate_json(raw)  # validates every resource again
    assert bundle.type == "transaction" and len(bundle.entry) == 3
    conditions = resources(raw, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["I10", "E11.9"]
    c = conditions[0]
    assert c["code"]["coding"][0] == {"system": ICD10CM_SYSTEM, "version": "ICD-10-CM 2026", "code": "I10", "display": "Essential (primary) hypertension"}
    assert c["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert c["subject"] == {"reference": "Patient/p1"} and c["encounter"] == {"reference": "Encounter/e1"}
    assert c["recordedDate"] == "2026-11-24T22:00:01.250000Z"
    ext = {e["url"]: e for e in c["extension"] if e["url"] != EXT_EVIDENCE}
    assert ext[EXT_SCORE]["valueDecimal"] == 0.9123 and ext[EXT_THRESHOLD]["valueDecimal"] == 0.5
    spans = [{x["url"]: x.get("valueInteger", x.get("valueDecimal")) for x in e["extension"]} for e in c["extension"] if e["url"] == EXT_EVIDENCE]
    assert spans == [{"start": 30, "end": 42, "weight": 0.85}, {"start": 5, "end": 9, "weight": 0.1}]
    verification = c["verificationStatus"]["coding"][0]["code"]
    if version == "R4":
        assert verification == "unconfirmed" and "clinicalStatus" not in c
        assert c["evidence"] == [{"detail": [{"reference": "DocumentReference/doc-1"}]}]
    else:
        assert verification == "provisional" and c["clinicalStatus"]["coding"][0]["code"] == "active"
        assert c["evidence"] == [{"reference": {"reference": "DocumentReference/doc-1"}}]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_provenance_names_the_model_and_the_source_version(version):
    raw = build_bundle(note(version), SUGGESTIONS, MODEL, RECORDED)
    entries = json.loads(raw)["entry"]
    (prov,) = resources(raw, "Provenance")
    assert [t["reference"] for t in prov["target"]] == [e["fullUrl"] for e in entries[:2]]
    assert prov["entity"] == [{"role": "source", "what": {"reference": "DocumentReference/doc-1/_history/2"}}]
    assert prov["recorded"] == "2026-11-24T22:00:01.250000Z"
    (device,) = prov["contained"]
    assert prov["agent"][0]["who"] == {"reference": f"#{device['id']}"}
    assert device["version"] == [{"value": "3"}]
    assert "bert_xml" in json.dumps(device)
    assert entries[2]["request"] == {"method": "PUT", "url": f"Provenance/{prov['id']}"}


def test_conditional_update_by_deterministic_identifier():
    raw = build_bundle(note(), SUGGESTIONS, MODEL, RECORDED)
    for entry in json.loads(raw)["entry"][:2]:
        ident = entry["resource"]["identifier"][0]
        assert ident["system"] == SUGGESTION_ID_SYSTEM
        assert entry["request"] == {"method": "PUT", "url": f"Condition?identifier={SUGGESTION_ID_SYSTEM}|{ident['value']}"}
        assert entry["fullUrl"].startswith("urn:uuid:")

    def ids(n: ParsedNote, model: ModelRef = MODEL) -> list[str]:
        return [c["identifier"][0]["value"] for c in resources(build_bundle(n, SUGGESTIONS, model, RECORDED), "Condition")]

    base = ids(note())
    assert len(set(base)) == 2
    assert ids(note()) == base
    assert ids(note(text="other text, same document version")) == base
    assert ids(note(document_version="3")) != base
    assert ids(note(document_id="doc-2")) != base
    assert ids(note(), MODEL.model_copy(update={"version": 4})) != base


def test_same_input_same_bytes_and_canonical_json():
    a = build_bundle(note(), SUGGESTIONS, MODEL, RECORDED)
    b = build_bundle(dataclasses.replace(note()), tuple(s.model_copy() for s in SUGGESTIONS), MODEL, RECORDED)
    assert a == b
    assert a == json.dumps(json.loads(a), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert build_bundle(note(), SUGGESTIONS, MODEL, RECORDED + dt.timedelta(seconds=1)) != a


def test_no_suggestions_is_an_empty_transaction():
    raw = build_bundle(note(), (), MODEL, RECORDED)
    bundle = bundle_class("R4").model_validate_json(raw)
    assert bundle.type == "transaction" and not bundle.entry


def test_note_without_encounter_or_version():
    raw = build_bundle(note(encounter=None, document_version=None), SUGGESTIONS, MODEL, RECORDED)
    assert "encounter" not in resources(raw, "Condition")[0]
    assert resources(raw, "Provenance")[0]["entity"][0]["what"]["reference"] == "DocumentReference/doc-1"


def test_refusals():
    with pytest.raises(ProcessingError) as info:
        build_bundle(note(subject=None), SUGGESTIONS, MODEL, RECORDED)
    assert info.value.reason == "no_subject"
    with pytest.raises(ValueError, match="timezone"):
        build_bundle(note(), SUGGESTIONS, MODEL, RECORDED.replace(tzinfo=None))


def test_per_note_validation_covers_the_first_condition_and_numbers_everywhere():
    """Per note only the envelope, the first Condition and the Provenance are validated (module docstring):
    per-note values sit in every Condition; codes/displays are checked at start; numbers everywhere."""
    many = tuple(s.model_copy(update={"code": f"I{10 + i}"}) for i, s in enumerate(SUGGESTIONS * 5))
    bad_first = (many[0].model_copy(update={"code": " I10 "}), *many[1:])
    with pytest.raises(ProcessingError) as info:
        build_bundle(note(), bad_first, MODEL, RECORDED)
    assert info.value.reason == "invalid_output" and "code" in info.value.detail
    nan_last = (*many[:-1], many[-1].model_copy(update={"score": float("nan")}))
    with pytest.raises(ProcessingError, match="not finite"):
        build_bundle(note(), nan_last, MODEL, RECORDED)


def test_label_space_codings_are_checked_once_at_start():
    from engine.pipeline.fhir_bundle import check_codings
    from tests.engine.test_aggregate import metadata

    good = metadata()
    check_codings(good, "R4")
    check_codings(good, "R5")
    bad = good.model_copy(update={"labels": good.labels.model_copy(update={"descriptions": ("Hypertension", "", "Asthma")})})
    with pytest.raises(ValueError, match=r"1 label\(s\).*E11\.9"):
        check_codings(bad, "R4")

"""Evidence context (engine/pipeline/context.py): the classifier on sentences of known context, the policy, and
the stage in the pipeline: a note whose only evidence for a code is negated, the FHIR Bundle carrying the
context, the audit record keeping the withheld suggestion and the model's score."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from engine.audit.records import audit_record
from engine.deid import DeidConfig, Deidentifier
from engine.infra.model import load_runtime
from engine.pipeline.context import ContextClassifier, apply_policy, policy_action, suggestion_context
from engine.pipeline.fhir_bundle import EXT_EVIDENCE, bundle_class
from engine.pipeline.infer.local import LocalOnnxBackend
from engine.pipeline.processor import NoteProcessor
from schemas.context import ContextPolicy
from schemas.envelopes import EvidenceSpan, Suggestion
from schemas.settings import EngineSettings, ModelSettings
from tests.fixtures.docref import document_reference, source_record
from tests.fixtures.engine_model import build_model_repository

CLOCK = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.timezone.utc)

# (sentence, target word, expected context, expected cue or None)
KNOWN = [
    ("No evidence of pneumonia.", "pneumonia", "negated", "no evidence of"),
    ("Patient denies chest pain or shortness of breath.", "breath", "negated", "denies"),
    ("Pneumonia was ruled out.", "Pneumonia", "negated", "was ruled out"),
    ("Adenopathy, goiter or jugular vein engorgement is not present.", "goiter", "negated", "not present"),
    ("(-) fever, chills.", "chills", "negated", "( - )"),
    # double negation: a negation of a negation affirms
    ("Patient does not deny chest pain.", "pain", "affirmed", None),
    ("She was not without pain during the night.", "pain", "affirmed", None),
    ("Pneumonia cannot be ruled out.", "Pneumonia", "uncertain", "cannot be ruled out"),
    # pseudo-negation: the cue word is part of a phrase that negates nothing
    ("Not only pain but also swelling.", "pain", "affirmed", None),
    ("There is no change in the size of the mass.", "mass", "affirmed", None),
    ("Gram negative rods grew; sepsis is treated.", "sepsis", "affirmed", None),
    # scope ends at "but" (and other terminators)
    ("No fever but has a productive cough.", "cough", "affirmed", None),
    ("No fever but has a productive cough.", "fever", "negated", "no"),
    ("Denies chest pain, however reports palpitations.", "palpitations", "affirmed", None),
    ("Rule out pulmonary embolism.", "embolism", "uncertain", "rule out"),
    ("Possible early appendicitis.", "appendicitis", "uncertain", "possible"),
    ("Return if fever develops.", "fever", "uncertain", "return if"),
    ("History of breast cancer, in remission.", "cancer", "historical", "history of"),
    ("Status post myocardial infarction in 2019.", "infarction", "historical", "status post"),
    ("Mother had diabetes.", "diabetes", "family", "mother"),
    ("Diabetes in his mother.", "Diabetes", "family", "mother"),
    ("She lives with her husband and has diabetes.", "diabetes", "affirmed", None),
    ("FAMILY HISTORY: Negative for colon cancer.", "cancer", "family", "section: family history"),
    ("PAST MEDICAL HISTORY: Hypertension.", "Hypertension", "historical", "section: past history"),
    ("A 45-year-old man with diabetes.", "diabetes", "affirmed", None),
    ("Followed since May 2001 for renal failure.", "failure", "affirmed", None),
    ("The patient has a 2-week history of cough.", "cough", "affirmed", None),
]


@pytest.mark.parametrize(("sentence", "word", "context", "cue"), KNOWN)
def test_known_sentences(sentence, word, context, cue):
    start = sentence.index(word)
    got = ContextClassifier().classify(sentence, [(start, start + len(word))])[0]
    assert (got.context, got.cue) == (context, cue)
    if cue is not None and not cue.startswith("section"):
        assert sentence[got.cue_start : got.cue_end].lower().replace(" ", "") == cue.replace(" ", "")  # the cue's words in the text


def test_sentence_boundary_limits_scope():
    text = "No fever. The patient has pneumonia."
    start = text.index("pneumonia")
    assert ContextClassifier().classify(text, [(start, start + 9)])[0].context == "affirmed"


def _suggestion(code: str, contexts: list[str | None], score: float = 0.8, threshold: float = 0.5) -> Suggestion:
    evidence = tuple(EvidenceSpan(start=i * 10, end=i * 10 + 5, weight=1.0 / (i + 1), context=c) for i, c in enumerate(contexts))
    return Suggestion(code=code, display=code, score=score, threshold=threshold, evidence=evidence, context=suggestion_context(evidence))


def test_policy_acts_only_when_all_evidence_is_negated_or_family():
    policy = ContextPolicy(negated="suppress", family="demote")
    assert policy_action(_suggestion("J18.9", ["negated", "negated"]), policy) == "suppress"
    assert policy_action(_suggestion("J18.9", ["negated", "affirmed"]), policy) == "keep"
    assert policy_action(_suggestion("J18.9", ["negated", "uncertain"]), policy) == "keep"  # uncertain is always kept
    assert policy_action(_suggestion("J18.9", ["negated", "family"]), policy) == "demote"  # the milder of the two
    assert policy_action(_suggestion("Z80.3", ["family"]), policy) == "keep"  # a family-history code IS about family
    assert policy_action(_suggestion("J18.9", []), policy) == "keep"  # no evidence: nothing to judge


def test_demoted_below_threshold_and_last_with_the_model_score_kept():
    negated, affirmed = _suggestion("J18.9", ["negated"], score=0.9), _suggestion("I10", ["affirmed"], score=0.6)
    out, withheld = apply_policy([negated, affirmed], ContextPolicy(negated="demote"))
    assert [s.code for s in out] == ["I10", "J18.9"] and not withheld
    demoted = out[1]
    assert demoted.policy == "demoted" and demoted.model_score == 0.9 and demoted.score < demoted.threshold
    out, withheld = apply_policy([negated, affirmed], ContextPolicy(negated="suppress"))
    assert [s.code for s in out] == ["I10"] and [(s.code, s.policy, s.score) for s in withheld] == [("J18.9", "suppressed", 0.9)]


NOTE = "Seen by Dr. Bartholomew Quigley. The patient has asthma. Chest X-ray: no evidence of pneumonia."


@pytest.fixture(scope="module")
def deidentifier():
    return Deidentifier(DeidConfig())


def _process(tmp_path, deidentifier, policy: ContextPolicy, fhir_version: str = "R4", **settings):
    build_model_repository(tmp_path, context_policy=policy)
    runtime = load_runtime(tmp_path, "bert_xml")
    engine_settings = EngineSettings(model=ModelSettings(repository=tmp_path), fhir_version=fhir_version, **settings)
    processor = NoteProcessor(runtime, LocalOnnxBackend(runtime.onnx_path), engine_settings, deidentifier=deidentifier, clock=lambda: CLOCK)
    try:
        return processor.process_batch([source_record(document_reference(NOTE, "doc-ctx", fhir_version=fhir_version))])[0]
    finally:
        processor.close()


def _evidence_parts(condition: dict) -> list[dict]:
    return [{p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["extension"]} for e in condition["extension"] if e["url"] == EXT_EVIDENCE]


def test_note_whose_only_evidence_is_negated_is_suppressed_and_audited(tmp_path, deidentifier):
    note = _process(tmp_path, deidentifier, ContextPolicy(negated="suppress"))
    assert [s.code for s in note.suggestions] == ["J45.909"]
    (withheld,) = note.withheld
    assert withheld.code == "J18.9" and withheld.policy == "suppressed" and withheld.context == "negated"
    assert note.scores["J18.9"] == withheld.score  # the audit keeps the model's (undemoted) score
    (span,) = withheld.evidence
    assert NOTE[span.start : span.end] == "pneumonia" and NOTE[span.cue_start : span.cue_end] == "no evidence of"
    bundle = json.loads(note.bundle_json)
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
    assert codes == {"J45.909"}
    record = audit_record(note, include_text=False)
    assert [s.code for s in record.withheld] == ["J18.9"] and "Quigley" not in record.model_dump_json()


@pytest.mark.parametrize("fhir_version", ["R4", "R5"])
def test_bundle_condition_carries_the_context(tmp_path, deidentifier, fhir_version):
    note = _process(tmp_path, deidentifier, ContextPolicy(negated="keep"), fhir_version)
    bundle = json.loads(note.bundle_json)
    bundle_class(fhir_version).model_validate(bundle)  # every Condition, not only the first the engine validates
    conditions = {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
    (pneumonia,) = _evidence_parts(conditions["J18.9"])
    assert pneumonia["context"] == "negated" and pneumonia["cue"] == "no evidence of"
    assert NOTE[pneumonia["cueStart"] : pneumonia["end"]] == "no evidence of pneumonia"
    (asthma,) = _evidence_parts(conditions["J45.909"])
    assert asthma["context"] == "affirmed" and "cue" not in asthma


def test_demote_keeps_the_code_in_the_bundle_below_threshold(tmp_path, deidentifier):
    note = _process(tmp_path, deidentifier, ContextPolicy(negated="demote"))
    assert [s.code for s in note.suggestions] == ["J45.909", "J18.9"]
    demoted = note.suggestions[1]
    assert demoted.policy == "demoted" and demoted.score < demoted.threshold and demoted.model_score == note.scores["J18.9"]


def test_stage_off_leaves_evidence_unclassified(tmp_path, deidentifier):
    note = _process(tmp_path, deidentifier, ContextPolicy(negated="suppress"), evidence_context=False)
    assert {s.code for s in note.suggestions} == {"J45.909", "J18.9"} and not note.withheld
    assert all(e.context is None for s in note.suggestions for e in s.evidence)


def test_worklist_item_and_show_carry_the_context_per_span(tmp_path, deidentifier):
    from engine.cli.worklist import _show
    from engine.worklist.items import merge_note
    from engine.worklist.store import ItemView

    note = _process(tmp_path, deidentifier, ContextPolicy(negated="demote"))
    item = merge_note(None, note, CLOCK)
    data = item.model_dump(mode="json")  # what the worklist stores and the workbench reads
    (span,) = next(s for s in data["notes"][0]["suggestions"] if s["code"] == "J18.9")["evidence"]
    assert span["context"] == "negated" and span["cue"] == "no evidence of" and NOTE[span["cue_start"] : span["end"]] == "no evidence of pneumonia"
    shown = _show(ItemView(item, {}, None))
    line = next(line for line in shown.splitlines() if "J18.9" in line and "evidence" in line)
    assert "[negated]" in line and "[demoted: model score" in line and f"negated: 'no evidence of' at {span['cue_start']}-{span['cue_end']}" in line

"""HL7 v2 notes through the composed pipeline (real de-identifier, onnxruntime): coded like the FHIR ones, their
Conditions referencing the identifiers built from PID-3, PV1-19 and TXA-12; bad HL7 dead-lettered in place; a T11
cancel withdraws the document's Conditions by the FHIR status rules."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.hl7msg import mdm, oru_ed, oru_text
from engine.deid import DeidConfig, Deidentifier
from engine.infra.model import load_runtime
from engine.pipeline.fhir_bundle import bundle_class
from engine.pipeline.infer.local import LocalOnnxBackend
from engine.pipeline.processor import NoteProcessor
from engine.pipeline.types import SourceRecord
from schemas.errors import ProcessingError
from schemas.settings import EngineSettings, ModelSettings
from tests.fixtures.docref import document_reference, source_record
from tests.fixtures.engine_model import build_model_repository

CLOCK = dt.datetime(2026, 11, 24, 23, 0, 0, 123000, tzinfo=dt.timezone.utc)
NOTE = ["Seen by Dr. Bartholomew Quigley on 3/4/2026.", "The patient has a history of hypertension and asthma."]


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    repo = tmp_path_factory.mktemp("keyword_repo")
    build_model_repository(repo)
    runtime = load_runtime(repo, "bert_xml")
    settings = EngineSettings(model=ModelSettings(repository=repo), input_format="auto")
    p = NoteProcessor(runtime, LocalOnnxBackend(runtime.onnx_path), settings, deidentifier=Deidentifier(DeidConfig()), clock=lambda: CLOCK)
    yield p
    p.close()


def test_hl7_notes_are_coded_like_fhir_ones(processor):
    records = [SourceRecord(value=v) for v in (
        mdm("T02", "DOC-1", NOTE).bytes(),
        oru_text("RPT-1", ["FINDINGS:", "Cough and fever, likely pneumonia."]).bytes(),
        oru_ed("RPT-2", "Patient has migraine.".encode()).bytes(),
        mdm("T02", "DOC-3", NOTE).set("PID", 3, "").bytes(),
        mdm("T11", "DOC-1", [], availability="CA").bytes(),
    )] + [source_record(document_reference(" ".join(NOTE), "doc-9"))]
    results = processor.process_batch(records)
    assert [r.reason if isinstance(r, ProcessingError) else r.action for r in results] == ["code", "code", "code", "invalid_message", "retract", "code"]
    assert results[3].detail == "PID-3 missing"
    mdm_note, fhir_note = results[0], results[5]
    assert {s.code for s in mdm_note.suggestions} == {s.code for s in fhir_note.suggestions} == {"I10", "J45.909"}
    i10 = next(s for s in mdm_note.suggestions if s.code == "I10")
    assert mdm_note.note.text[i10.evidence[0].start : i10.evidence[0].end] == "hypertension"  # offsets into the OBX text
    assert "Quigley" not in mdm_note.deid_text
    assert mdm_note.output_key == b"Encounter/GENHOSP.V-2001"
    bundle = bundle_class("R4").model_validate_json(mdm_note.bundle_json)
    condition = bundle.entry[0].resource
    assert condition.subject.reference == "Patient/GENHOSP.MRN-1001"
    assert condition.encounter.reference == "Encounter/GENHOSP.V-2001"
    assert condition.evidence[0].detail[0].reference == "DocumentReference/EHR.DOC-1"
    assert [s.code for s in results[1].suggestions] == ["J18.9"]
    assert [s.code for s in results[2].suggestions] == ["G43.909"]
    # The T11 cancel withdraws what the T02 of the same document produced (same batch here): same identifiers
    coded_ids = {e.resource.identifier[0].value for e in bundle.entry[:-1]}
    assert set(results[4].retracts) == coded_ids
    withdrawal = bundle_class("R4").model_validate_json(results[4].bundle_json)
    assert {e.resource.verificationStatus.coding[0].code for e in withdrawal.entry[:-1]} == {"entered-in-error"}

"""Stage 7: the composed pipeline (NoteProcessor) on real DocumentReferences with the real de-identifier and
onnxruntime: per-note errors in place, evidence in the original text, deterministic Bundles."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading

import pytest

from engine.audit.records import audit_record
from engine.deid import DeidConfig, Deidentifier
from engine.infra.model import load_runtime
from engine.pipeline.aggregate import AggregationParams
from engine.pipeline.fhir_bundle import bundle_class, note_key
from engine.pipeline.infer.local import LocalOnnxBackend
from engine.pipeline.infer.triton import TritonBackend
from engine.pipeline.processor import NoteProcessor
from engine.pipeline.types import ProcessedNote
from schemas.errors import ProcessingError, TransientError
from schemas.settings import EngineSettings, KafkaSettings, ModelSettings, TritonSettings
from tests.fixtures.docref import document_reference, from_note_record, source_record
from tests.fixtures.engine_model import build_model_repository
from trainer.data.importers.mtsamples import mtsamples_texts

CLOCK = dt.datetime(2026, 11, 24, 23, 0, 0, 123000, tzinfo=dt.timezone.utc)
NAME = "Bartholomew Quigley"
NOTE = f"Seen by Dr. {NAME} on 3/4/2026. The patient has a history of hypertension and asthma. Denies chest pain."


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("keyword_repo")
    build_model_repository(path)
    return path


@pytest.fixture(scope="module")
def deidentifier():
    return Deidentifier(DeidConfig())


def make(repo, deidentifier, **settings_kw) -> NoteProcessor:
    settings = EngineSettings(model=ModelSettings(repository=repo), **settings_kw)
    runtime = load_runtime(repo, "bert_xml")
    return NoteProcessor(runtime, LocalOnnxBackend(runtime.onnx_path), settings, deidentifier=deidentifier, clock=lambda: CLOCK)


def test_batch_with_good_and_bad_notes(repo, deidentifier):
    processor = make(repo, deidentifier)
    records = [
        source_record(document_reference(NOTE, "doc-1"), offset=10),
        source_record(b"{not json", offset=11),
        source_record(document_reference(NOTE, "doc-3", subject=None), offset=12),
        source_record(document_reference("Cough and fever, likely pneumonia. " * 40, "doc-4", encounter=None, subject="Patient/p4"), offset=13),
        source_record(document_reference(f"<p>{NAME} has <b>migraine</b>.</p>", "doc-5", content_type="text/html"), offset=14),
    ]
    results = processor.process_batch(records)
    assert [r.reason if isinstance(r, ProcessingError) else "ok" for r in results] == ["ok", "not_json", "no_subject", "ok", "ok"]
    first: ProcessedNote = results[0]
    assert first.source.offset == 10 and first.note.document_id == "doc-1"
    assert NAME not in first.deid_text and "hypertension" in first.deid_text
    assert first.deid_text_sha256 == hashlib.sha256(first.deid_text.encode()).hexdigest()
    assert [s.code for s in first.suggestions] == sorted((s.code for s in first.suggestions), key=lambda c: -first.scores[c])
    assert {s.code for s in first.suggestions} == {"I10", "J45.909"}
    i10 = next(s for s in first.suggestions if s.code == "I10")
    assert NOTE[i10.evidence[0].start : i10.evidence[0].end] == "hypertension"  # ORIGINAL text offsets, after a redacted name
    assert set(first.scores) >= {"I10", "J45.909"} and all(v >= 0.01 for v in first.scores.values())
    assert first.output_key == b"Encounter/e-1" and first.processed_at == CLOCK
    assert first.model.name == "bert_xml" and first.model.version == 1 and first.thresholds_global == 0.5
    assert set(first.timings_ms) == {"parse", "deid", "segment", "infer", "aggregate", "context", "fhir"}
    bundle = bundle_class("R4").model_validate_json(first.bundle_json)
    assert [e.resource.code.coding[0].code for e in bundle.entry[:-1]] == [s.code for s in first.suggestions]
    long_note = results[3]
    assert [s.code for s in long_note.suggestions] == ["J18.9"] and long_note.output_key == b"Patient/p4"
    assert [s.code for s in results[4].suggestions] == ["G43.909"]
    assert results[4].note.text == f"{NAME} has migraine."


def test_settings_reach_aggregation_and_the_audit_record_keeps_its_scores(repo, deidentifier):
    """The audit score floor is applied once, by aggregation; the audit record copies the scores (by code)."""
    processor = make(repo, deidentifier, max_suggestions_per_note=1, evidence_tokens_per_code=2, audit_score_floor=0.3)
    assert processor.params == AggregationParams(max_suggestions=1, evidence_tokens=2, score_floor=0.3)
    (note,) = processor.process_batch([source_record(document_reference(NOTE))])
    assert {"I10", "J45.909"} <= set(note.scores) and min(note.scores.values()) >= 0.3 and len(note.suggestions) == 1
    (loose,) = make(repo, deidentifier).process_batch([source_record(document_reference(NOTE))])
    assert len(loose.scores) > len(note.scores)  # the keyword model scores other codes between 0.01 and 0.3
    record = audit_record(note, include_text=False)
    assert list(record.scores.items()) == sorted(note.scores.items())


def test_same_note_same_bytes_and_first_processing_time_reused(repo, deidentifier):
    processor = make(repo, deidentifier)
    record = source_record(document_reference(NOTE, "doc-9", version_id="7"))
    (a,) = processor.process_batch([record])
    (b,) = make(repo, deidentifier).process_batch([source_record(document_reference("No complaints.", "doc-8")), record])[1:]
    assert a.bundle_json == b.bundle_json  # another batch composition, same bytes
    earlier = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    asked: list[list[str]] = []

    def lookup(keys):
        asked.append(list(keys))
        return {keys[0]: earlier}

    again = NoteProcessor(processor.runtime, processor.backend, processor.settings, deidentifier=deidentifier, processed_at_lookup=lookup)
    (c,) = again.process_batch([record])
    assert asked == [[note_key(a.note, a.model)]] and c.processed_at == earlier
    assert json.loads(c.bundle_json)["entry"][-1]["resource"]["recorded"] == "2026-01-01T00:00:00Z"


def test_deid_failure_never_reaches_the_model(repo):
    processor = make(repo, Deidentifier(DeidConfig(max_chars=40)))
    (result,) = processor.process_batch([source_record(document_reference(NOTE))])
    assert isinstance(result, ProcessingError) and result.reason == "deid_failed"
    assert NAME not in str(result)


def test_patient_output_key_and_r5(repo, deidentifier):
    processor = make(repo, deidentifier, fhir_version="R5", kafka=KafkaSettings(output_key="patient"))
    (result,) = processor.process_batch([source_record(document_reference(NOTE, fhir_version="R5", subject="Patient/p7"))])
    assert result.output_key == b"Patient/p7"
    bundle = json.loads(result.bundle_json)
    assert bundle["entry"][0]["resource"]["verificationStatus"]["coding"][0]["code"] == "provisional"
    bundle_class("R5").model_validate(bundle)


def test_backend_outage_raises_transient_for_the_batch(repo, deidentifier):
    settings = EngineSettings(model=ModelSettings(repository=repo), triton=TritonSettings(url="127.0.0.1:9", max_retries=0, timeout_s=2))
    runtime = load_runtime(repo, "bert_xml")
    processor = NoteProcessor(runtime, TritonBackend(settings.triton, 1, evidence=True), settings, deidentifier=deidentifier)
    with pytest.raises(TransientError):
        processor.process_batch([source_record(document_reference(NOTE)), source_record(b"junk")])


def test_synthetic_and_mtsamples_notes(repo, deidentifier):
    from trainer.data.synthetic import generate_notes

    processor = make(repo, deidentifier)
    notes = generate_notes(12, seed=5, long_fraction=0.25)
    docs = [from_note_record(n.record) for n in notes] + [document_reference(t, f"mt-{i}") for i, t in enumerate(mtsamples_texts(min_chars=200)[:4])]
    results = processor.process_batch([source_record(d) for d in docs])
    assert all(isinstance(r, ProcessedNote) for r in results), [r for r in results if not isinstance(r, ProcessedNote)]
    for doc, r in zip(docs, results):
        assert r.note.document_id == doc["id"]
        for s in r.suggestions:  # evidence offsets stay inside the original text
            assert s.evidence and all(0 <= e.start < e.end <= len(r.note.text) for e in s.evidence)
        bundle = bundle_class("R4").model_validate_json(r.bundle_json)
        assert len(bundle.entry or []) == (len(r.suggestions) + 1 if r.suggestions else 0)


class _FirstRequestWaitsForNextChunk(LocalOnnxBackend):
    """The real onnxruntime backend whose first request holds until the processor has started
    de-identifying the next chunk: it returns at once when chunks overlap, after ``timeout`` when not."""

    def __init__(self, onnx_path, next_chunk_seen: threading.Event) -> None:
        super().__init__(onnx_path)
        self.next_chunk_seen, self.overlapped = next_chunk_seen, None

    def infer(self, input_ids, attention_mask):
        if self.overlapped is None:
            self.overlapped = self.next_chunk_seen.wait(timeout=30)
        return super().infer(input_ids, attention_mask)


class _CountingDeidentifier:
    def __init__(self, inner: Deidentifier, signal_at: int, signal: threading.Event) -> None:
        self.inner, self.calls, self.signal_at, self.signal = inner, 0, signal_at, signal

    def deidentify(self, text, patient_key=None):
        self.calls += 1
        if self.calls == self.signal_at:
            self.signal.set()
        return self.inner.deidentify(text, patient_key=patient_key)


def test_next_chunk_is_deidentified_while_the_model_runs(repo, deidentifier):
    """Chunks overlap: the first chunk's inference is still running when the second chunk's first note is
    de-identified (no timing involved: the backend waits for that event). Results match a sequential run."""
    seen = threading.Event()
    settings = EngineSettings(model=ModelSettings(repository=repo), infer_chunk_notes=2)
    runtime = load_runtime(repo, "bert_xml")
    backend = _FirstRequestWaitsForNextChunk(runtime.onnx_path, seen)
    processor = NoteProcessor(runtime, backend, settings, deidentifier=_CountingDeidentifier(deidentifier, 3, seen), clock=lambda: CLOCK)
    records = [source_record(document_reference(NOTE, f"doc-{i}"), offset=i) for i in range(5)]
    overlapped = processor.process_batch(records)
    assert backend.overlapped is True
    one_chunk = make(repo, deidentifier, infer_chunk_notes=len(records)).process_batch(records)
    assert [r.bundle_json for r in overlapped] == [r.bundle_json for r in one_chunk]
    assert [r.source.offset for r in overlapped] == list(range(5))
    processor.close()

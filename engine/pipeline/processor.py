"""Stage 7: the stages composed. Message bytes in, ``ProcessedNote`` (with its FHIR Bundle) or a per-note
``ProcessingError`` out.

A batch is worked in chunks of ``ICDCODER_ENGINE_INFER_CHUNK_NOTES`` notes, overlapped: a chunk's inference
runs in a worker thread (the Triton client and onnxruntime release the GIL) while this thread parses,
de-identifies and segments the next chunk and aggregates and builds FHIR for the previous one. The engine's
own CPU work then hides behind inference instead of adding to it (docs/engine-stages.md).

Per-note failures (bad message, de-identification failure, no subject) come back in the result list in
the position of their record; a backend outage raises ``TransientError`` for the whole batch (nothing is
dead-lettered for it: the service retries).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from engine.infra.model import ModelRuntime
from engine.pipeline.aggregate import AggregationParams, aggregate_notes
from engine.pipeline.context import ContextStage
from engine.pipeline.deidentify import deidentify_note, make_deidentifier
from engine.pipeline.describe import DescribedNotes, describe, make_scorer_backend, sentences_of
from engine.pipeline.fhir_bundle import build_bundle, check_coding, check_codings, note_key
from engine.pipeline.fuse import fuse_notes
from engine.pipeline.infer.base import InferenceBackend, InferenceResult, run_segments
from engine.pipeline.parse import parse_note
from engine.pipeline.segment import segment_texts, segments_per_note
from engine.pipeline.status import SkippedNote, decide, retraction_bundle
from engine.pipeline.types import ParsedNote, ProcessedNote, SourceRecord
from schemas.errors import ProcessingError, TransientError
from schemas.settings import EngineSettings
from schemas.text import Segment

log = logging.getLogger(__name__)

# Given note keys (``fhir_bundle.note_key``), return when each was first processed, for those that were.
# The service answers from its processed-note records, so a re-delivered note keeps its first time and
# its Bundle is byte-identical.
ProcessedAtLookup = Callable[[Sequence[str]], Mapping[str, dt.datetime]]
# Given DocumentReference ids, return the Bundles each produced before (any version, any model version), for
# withdrawing them when the document turns out entered-in-error (status.py). The service answers from the
# processed-note store, ``engine code`` from what it coded in the same run (``status.ProductionIndex``).
ProductionsLookup = Callable[[Sequence[str]], Mapping[str, Sequence[bytes]]]


def utc_now_ms() -> dt.datetime:
    """Now in UTC to the millisecond (what FHIR instants and the processed-note records keep)."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class _Work:
    index: int  # position in the record batch
    record: SourceRecord
    note: ParsedNote
    deid: object  # engine.deid.DeidResult
    timings: dict[str, float]


@dataclass
class _Chunk:
    """Notes of one chunk that parsed and de-identified, their segments and their inference in flight."""

    work: list[_Work]
    segments: list[Segment]
    segment_ms: float
    inference: Future  # -> (InferenceResult, DescribedNotes | None, milliseconds)


class NoteProcessor:
    def __init__(
        self,
        runtime: ModelRuntime,
        backend: InferenceBackend,
        settings: EngineSettings,
        deidentifier: object | None = None,
        processed_at_lookup: ProcessedAtLookup | None = None,
        clock: Callable[[], dt.datetime] = utc_now_ms,
        productions_lookup: ProductionsLookup | None = None,
        scorer_backend: InferenceBackend | None = None,
    ) -> None:
        """``scorer_backend``: the description scorer's graph (versions that have one); by default the same
        kind of backend as the settings give the classifier (``describe.make_scorer_backend``)."""
        check_codings(runtime.metadata, settings.fhir_version)  # once per version: build_bundle relies on it
        self.runtime = runtime
        self.backend = backend
        self.scorer_backend = scorer_backend if scorer_backend is not None or runtime.descriptions is None else make_scorer_backend(settings, runtime)
        self.settings = settings
        self.deidentifier = deidentifier if deidentifier is not None else make_deidentifier(settings)
        self.processed_at_lookup = processed_at_lookup
        self.productions_lookup = productions_lookup
        self.clock = clock
        self.model = runtime.model_ref
        self.params = AggregationParams.from_settings(settings)
        self.context = ContextStage.for_model(runtime.metadata) if settings.evidence_context else None
        self._inference_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    def close(self) -> None:
        self._inference_thread.shutdown(wait=True, cancel_futures=True)
        self.backend.close()
        if self.scorer_backend is not None:
            self.scorer_backend.close()

    def process_batch(self, records: Sequence[SourceRecord]) -> list[ProcessedNote | SkippedNote | ProcessingError]:
        """One result per record, in order: a ``ProcessedNote`` (coded, or a retraction: ``action``), a
        ``SkippedNote`` (superseded) or the record's ``ProcessingError``."""
        results: list[ProcessedNote | SkippedNote | ProcessingError | None] = [None] * len(records)
        size = self.settings.infer_chunk_notes
        chunks: list[_Chunk | None] = []
        retractions: list[tuple[int, ParsedNote]] = []
        try:
            for start in range(0, len(records), size):
                chunks.append(self._start_chunk(records, range(start, min(start + size, len(records))), results, retractions))
                if len(chunks) > 1 and chunks[-2] is not None:
                    self._finish_chunk(chunks[-2], results)  # while the chunk just started is being inferred
            if chunks and chunks[-1] is not None:
                self._finish_chunk(chunks[-1], results)
        except BaseException:
            for chunk in chunks:  # a batch that failed (to be retried) leaves no request queued behind it
                if chunk is not None:
                    chunk.inference.cancel()
            raise
        if retractions:  # after the coded notes: a note coded and retracted in one batch is withdrawn too
            self._retract(records, retractions, results)
        return results  # type: ignore[return-value]  # every slot is filled

    def _retract(self, records: Sequence[SourceRecord], retractions: list[tuple[int, ParsedNote]], results: list) -> None:
        """Entered-in-error notes: a ProcessedNote whose Bundle withdraws what the document produced."""
        ids = sorted({note.document_id for _, note in retractions})
        stored = dict(self.productions_lookup(ids)) if self.productions_lookup else {}
        processed_at = self._processed_at([note for _, note in retractions])
        for i, note in retractions:
            in_batch = [r.bundle_json for r in results[:i] if isinstance(r, ProcessedNote) and r.action == "code" and r.note.document_id == note.document_id]
            when = processed_at[note_key(note, self.model)]
            try:
                bundle, withdrawn = retraction_bundle(note, [*stored.get(note.document_id, ()), *in_batch], self.model, when)
            except ProcessingError as err:
                results[i] = err
                continue
            results[i] = ProcessedNote(
                note=note, source=records[i].position, deid_text="", deid_text_sha256=hashlib.sha256(b"").hexdigest(), model=self.model,
                thresholds_global=self._global_threshold, scores={}, suggestions=(), bundle_json=bundle,
                output_key=self._output_key(note), processed_at=when, action="retract", retracts=withdrawn)

    def _start_chunk(self, records: Sequence[SourceRecord], positions: range, results: list, retractions: list) -> _Chunk | None:
        """Parse and de-identify (per-note errors go to ``results``), segment, and submit inference."""
        work: list[_Work] = []
        for i in positions:
            timings: dict[str, float] = {}
            try:
                with _timed(timings, "parse"):
                    note = parse_note(records[i], self.settings.input_format, self.settings.fhir_version, self.settings.max_note_chars)
                    decision = decide(note.status)
                    if decision == "skip":
                        results[i] = SkippedNote(note, records[i].position)
                        continue
                    if decision == "retract":
                        retractions.append((i, note))
                        continue
                    if not note.subject:  # a Condition needs a subject: fail before spending inference on it
                        raise ProcessingError("no_subject", "subject (needed for Condition.subject)")
                with _timed(timings, "deid"):
                    deid = deidentify_note(self.deidentifier, note)
            except ProcessingError as err:
                results[i] = err
                continue
            work.append(_Work(i, records[i], note, deid, timings))
        if not work:
            return None
        segment_timing: dict[str, float] = {}
        with _timed(segment_timing, "segment"):
            texts = [w.deid.text for w in work]
            segments = segment_texts(texts, self.runtime)
            sentences = sentences_of(texts, self.runtime.descriptions) if self.scorer_backend is not None else None
        return _Chunk(work, segments, segment_timing["segment"], self._inference_thread.submit(self._infer, segments, sentences, len(work)))

    def _infer(self, segments: list[Segment], sentences: list | None, n_notes: int) -> tuple[InferenceResult, DescribedNotes | None, float]:
        """The classifier, then the description scorer (both are inference: model calls, on Triton or in-process)."""
        start = time.perf_counter()
        result = run_segments(self.backend, segments, self.runtime.pad_id, self.runtime.max_length)
        described = None
        if sentences is not None:
            described = describe(self.scorer_backend, sentences, self.runtime.descriptions, n_notes)
        return result, described, (time.perf_counter() - start) * 1000

    def _finish_chunk(self, chunk: _Chunk, results: list) -> None:
        """Wait for the chunk's inference (a TransientError surfaces here), aggregate, build each Bundle."""
        work, segments = chunk.work, chunk.segments
        result, described, infer_ms = chunk.inference.result()
        batch_timings = {"segment": chunk.segment_ms, "infer": infer_ms}
        with _timed(batch_timings, "aggregate"):
            offsets = [w.deid.to_original for w in work]
            if described is not None:
                coded = fuse_notes(segments, result, described, len(work), self.runtime.metadata, self.runtime.descriptions, self.params, offsets)
            else:
                coded = aggregate_notes(segments, result, len(work), self.runtime.metadata, self.params, offsets, self.runtime.thresholds)
        # Chunk stages are charged to each note by its share of the segments.
        rows = segments_per_note(segments, len(work))
        processed_at = self._processed_at([w.note for w in work])
        for w, codes, note_rows in zip(work, coded, rows):
            share = len(note_rows) / len(segments)
            timings = {**w.timings, **{k: v * share for k, v in batch_timings.items()}}
            suggestions, withheld = codes.suggestions, ()
            if self.context is not None:
                with _timed(timings, "context"):
                    suggestions, withheld = self.context(w.note.text, suggestions)  # evidence offsets are in the original text
            try:
                with _timed(timings, "fhir"):
                    for suggestion in codes.suggestions:  # codes outside the label space: validated on first use
                        check_coding(suggestion.code, suggestion.display, self.model.code_set_release, self.settings.fhir_version)
                    when = processed_at[note_key(w.note, self.model)]
                    bundle = build_bundle(w.note, suggestions, self.model, when)
            except ProcessingError as err:
                results[w.index] = err
                continue
            results[w.index] = ProcessedNote(
                note=w.note,
                source=w.record.position,
                deid_text=w.deid.text,
                deid_text_sha256=hashlib.sha256(w.deid.text.encode("utf-8")).hexdigest(),
                model=self.model,
                thresholds_global=self._global_threshold,
                scores=codes.scores,  # the model's scores, before any context policy (audit, replay)
                suggestions=suggestions,
                withheld=withheld,
                bundle_json=bundle,
                output_key=self._output_key(w.note),
                processed_at=when,
                timings_ms=timings,
            )

    @property
    def _global_threshold(self) -> float:
        described = self.runtime.descriptions
        return described.fusion.threshold if described is not None else self.runtime.metadata.thresholds.global_threshold

    def _processed_at(self, notes: Sequence[ParsedNote]) -> dict[str, dt.datetime]:
        keys = [note_key(n, self.model) for n in notes]
        known = dict(self.processed_at_lookup(keys)) if self.processed_at_lookup else {}
        now = self.clock()
        return {k: known.get(k, now) for k in keys}

    def _output_key(self, note: ParsedNote) -> bytes:
        if self.settings.kafka.output_key == "encounter" and note.encounter:
            return note.encounter.encode("utf-8")
        # No encounter (or keyed by patient): the patient keeps the note's outputs in one partition.
        return (note.subject or note.reference).encode("utf-8")


def process_isolating(processor: "NoteProcessor", records: Sequence[SourceRecord]) -> list[ProcessedNote | SkippedNote | ProcessingError]:
    """``processor.process_batch(records)``, except that a batch raising something unexpected (a bug, not bad
    input and not an outage) is processed again one record at a time, and a record that still fails becomes
    its own ``internal_error`` (detail: the exception type). One message can then never stop the stream
    (the service) or end a file run early (``engine code``). A ``TransientError`` still fails the batch."""
    try:
        results = processor.process_batch(records)
    except TransientError:
        raise
    except Exception:
        log.exception("batch processing failed; processing its records one by one")
        results = [_process_one(processor, r) for r in records]
    if len(results) != len(records):
        raise RuntimeError(f"processor returned {len(results)} results for {len(records)} records")
    return results


def _process_one(processor: "NoteProcessor", record: SourceRecord) -> ProcessedNote | SkippedNote | ProcessingError:
    try:
        return processor.process_batch([record])[0]
    except TransientError:
        raise
    except Exception as err:
        log.exception("record failed with an unexpected error")
        return ProcessingError("internal_error", type(err).__name__)


class _timed:
    """Adds the block's wall time in milliseconds to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + (time.perf_counter() - self.start) * 1000

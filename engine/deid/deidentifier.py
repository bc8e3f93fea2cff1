"""The de-identifier: Presidio recognizers (rules + the learned NER pipeline) -> merged spans -> typed placeholders."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Sequence

from engine.deid._presidio import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from engine.deid.dateshift import shift_date_text, shift_days
from engine.deid.recognizers import PRESIDIO_ENTITIES, default_recognizers
from engine.deid.replace import apply_redactions, merge_spans
from engine.deid.textview import make_view
from engine.deid.types import DeidConfig, DeidError, DeidResult
from schemas.phi import PhiCategory, PhiSpan

# Presidio logs every recognizer it registers at INFO; the engine builds one de-identifier per process.
if logging.getLogger("presidio-analyzer").level == logging.NOTSET:
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
DEFAULT_SPACY_DIR = Path.home() / ".cache" / "icd-coder" / "spacy-blank"


def blank_spacy_dir(cache_dir: Path | None = None) -> Path:
    """A blank English spaCy pipeline on disk (created on first use) so Presidio never downloads a model."""
    path = Path(cache_dir) if cache_dir else DEFAULT_SPACY_DIR
    if not (path / "config.cfg").is_file():
        import spacy

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        spacy.blank("en").to_disk(tmp)
        try:
            tmp.rename(path)
        except OSError:  # another process made it first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return path


class Deidentifier:
    """Build once, reuse. ``deidentify`` keeps no state between calls, so threads may share one."""

    def __init__(self, config: DeidConfig | None = None, recognizers: Sequence[EntityRecognizer] | None = None) -> None:
        self.config = config or DeidConfig()
        if recognizers is not None:
            self.recognizers = list(recognizers)
        else:
            self.recognizers = default_recognizers(self.config.model, self.config.ner_model_dir, self.config.transformer_model_dir)
        self.registry = RecognizerRegistry(recognizers=self.recognizers, supported_languages=["en"])
        self._analyzer: AnalyzerEngine | None = None
        self._lock = threading.Lock()

    def presidio_analyzer(self) -> AnalyzerEngine:
        """The same recognizers behind Presidio's AnalyzerEngine (blank spaCy pipeline; slower, adds
        Presidio's context scoring): for use as a library and for checking parity."""
        with self._lock:
            if self._analyzer is None:
                from presidio_analyzer.nlp_engine import SpacyNlpEngine

                nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(blank_spacy_dir(self.config.spacy_cache_dir))}])
                nlp.load()
                self._analyzer = AnalyzerEngine(registry=self.registry, nlp_engine=nlp, supported_languages=["en"])
            return self._analyzer

    def detect(self, text: str) -> list[tuple[PhiSpan, float]]:
        """Every detection with its score, in original offsets, overlapping spans not yet merged."""
        view = make_view(text)
        if self.config.presidio_engine:
            results = self.presidio_analyzer().analyze(view.text, language="en")
        else:
            results = [r for rec in self.recognizers for r in rec.analyze(view.text, rec.supported_entities, None)]
        found = ((self._span(view, r), r.score) for r in results)
        return [(span, score) for span, score in found if span is not None]

    @staticmethod
    def _span(view, r) -> PhiSpan | None:
        category = PRESIDIO_ENTITIES.get(r.entity_type)
        if category is None:
            raise DeidError(f"recognizer returned unknown entity type {r.entity_type!r}")
        if r.start == r.end:
            return None
        if not 0 <= r.start < r.end <= len(view.text):  # a recognizer bug: what it meant to redact is unknown
            raise DeidError(f"recognizer returned span ({r.start}, {r.end}) outside the text")
        start, end = view.span_to_original(r.start, r.end)
        return PhiSpan(start=start, end=end, category=category)

    def deidentify(self, text: str, patient_key: str | None = None) -> DeidResult:
        """Replace every detected identifier by its placeholder (or a shifted date). Raises DeidError,
        never returns partially redacted text."""
        if not isinstance(text, str):
            raise DeidError(f"expected text as str, got {type(text).__name__}")
        if len(text) > self.config.max_chars:
            raise DeidError(f"text of {len(text)} characters exceeds the limit of {self.config.max_chars}")
        stage = "detection"
        try:
            detections = self.detect(text)
            spans = merge_spans([s for s, _ in detections], [score for _, score in detections])
            stage = "replacement"
            days = None
            if self.config.date_shift and patient_key is not None:
                days = shift_days(self.config.date_shift_salt, str(patient_key), self.config.max_shift_days)

            def surrogate(span: PhiSpan, original: str) -> str | None:
                if days is not None and span.category is PhiCategory.DATE:
                    return shift_date_text(original, days)
                return None

            return apply_redactions(text, spans, surrogate)
        except DeidError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure means the note cannot be released
            # The type only: the message of an arbitrary exception may quote the text.
            raise DeidError(f"de-identification failed during {stage}: {type(err).__name__}") from None

"""The de-identifier's contracts: its configuration, its result with the offset map, and its one error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from schemas.phi import DEID_MODELS, DeidModel, PhiCategory, PhiSpan


class DeidError(Exception):
    """Anything that prevents complete redaction. The message never contains note text: the caller
    dead-letters the note and must never pass it on un-redacted."""


@dataclass(frozen=True)
class DeidConfig:
    """How to de-identify. ``date_shift`` writes dates shifted by a per-patient offset derived from
    ``date_shift_salt`` (a secret) instead of ``[DATE]``; without a patient key dates become ``[DATE]``."""

    date_shift: bool = False
    date_shift_salt: str = field(default="", repr=False)  # secret: never printed
    max_shift_days: int = 365  # shift is in [-max, +max] days, never 0
    max_chars: int = 5_000_000  # longer texts are refused (DeidError) rather than risk a partial pass
    spacy_cache_dir: Path | None = None  # blank spaCy pipeline for Presidio; default ~/.cache/icd-coder
    presidio_engine: bool = False  # run through Presidio's AnalyzerEngine (slower; same recognizers)
    # "rules+ner": the rules and the learned NER pipeline (engine/deid/model), union of both (default);
    # "rules": the rules alone (faster, far lower recall on names/places no lexicon knows: docs/deid.md);
    # "rules+transformer", "rules+ner+transformer": with the fine-tuned MiniLM recogniser (engine/deid/transformer)
    model: DeidModel = "rules+ner"
    ner_model_dir: Path | None = None  # default: the pipeline shipped in engine/deid/model
    transformer_model_dir: Path | None = None  # default: the recogniser shipped in engine/deid/transformer

    def __post_init__(self) -> None:
        if self.date_shift and not self.date_shift_salt:
            raise ValueError("DeidConfig.date_shift needs a non-empty date_shift_salt")
        if self.model not in DEID_MODELS:
            raise ValueError(f"DeidConfig.model must be one of {', '.join(DEID_MODELS)}, not {self.model!r}")
        if self.max_shift_days < 1:
            raise ValueError("DeidConfig.max_shift_days must be >= 1")


Replacement = tuple[int, int, int, int, PhiCategory]  # (orig_start, orig_end, new_start, new_end, category)


@dataclass(frozen=True)
class DeidResult:
    """De-identified text plus the map between its offsets and the original's."""

    text: str
    replacements: tuple[Replacement, ...]  # sorted, non-overlapping
    detected: tuple[PhiSpan, ...]  # what was redacted, in original offsets

    def _new_pos_to_orig(self, pos: int, is_end: bool) -> int:
        delta = 0
        for o_s, o_e, n_s, n_e, _ in self.replacements:
            if pos < n_s or (is_end and pos == n_s):
                break
            if pos < n_e or (is_end and pos == n_e):
                return o_e if is_end else o_s  # inside a replacement: widen to the whole original span
            delta = o_e - n_e
        return pos + delta

    def _orig_pos_to_new(self, pos: int, is_end: bool) -> int:
        delta = 0
        for o_s, o_e, n_s, n_e, _ in self.replacements:
            if pos < o_s or (is_end and pos == o_s):
                break
            if pos < o_e or (is_end and pos == o_e):
                return n_e if is_end else n_s
            delta = n_e - o_e
        return pos + delta

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """A span of ``text`` -> the span of the original text it came from. A span touching a
        placeholder widens to the whole PHI span it replaced."""
        _check_span(start, end, len(self.text))
        return self._new_pos_to_orig(start, False), self._new_pos_to_orig(end, True)

    def to_deidentified(self, start: int, end: int) -> tuple[int, int]:
        """A span of the original text -> the span of ``text`` (PHI widens to its placeholder)."""
        original_len = len(self.text) + sum((o_e - o_s) - (n_e - n_s) for o_s, o_e, n_s, n_e, _ in self.replacements)
        _check_span(start, end, original_len)
        return self._orig_pos_to_new(start, False), self._orig_pos_to_new(end, True)


def _check_span(start: int, end: int, length: int) -> None:
    if not (0 <= start <= end <= length):
        raise ValueError(f"span ({start}, {end}) outside text of length {length}")


__all__ = ["DeidConfig", "DeidError", "DeidResult", "Replacement"]

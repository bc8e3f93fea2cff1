"""Stage 5: per-segment outputs -> per-note scores, suggestions and evidence spans.

- A note's score for a code is the maximum over its segments (paper 4.1, ``schemas.text.max_over_segments``).
- A code is suggested when its score reaches its threshold (``Thresholds.for_code``, tuned on dev);
  at most ``max_suggestions`` per note, highest scores first.
- Evidence for a suggested code comes from the segment that gave the note its score: the code's top
  attention positions -> the tokens' character spans in the de-identified text (tokenizer offsets kept by
  segmentation) -> merged where word pieces touch -> mapped to the ORIGINAL text with the de-identifier's
  offset map (``DeidResult.to_original``). Positions with under ``EVIDENCE_MIN_SHARE`` of the top
  position's weight are dropped (top-k always returns k, even when attention sits on one word).
- Scores are rounded to ``SCORE_DECIMALS`` after the threshold decision: outputs then do not change
  with float noise from a different batch composition (padding width), so a re-delivered note gives
  the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from engine.pipeline.infer.base import InferenceResult
from schemas.envelopes import EvidenceSpan, Suggestion
from schemas.model_repo import ModelMetadata
from schemas.settings import EngineSettings
from schemas.text import Segment, max_over_segments

SCORE_DECIMALS = 4
EVIDENCE_MIN_SHARE = 0.01  # top-k positions with less than this share of the top position's weight are noise
OffsetMap = Callable[[int, int], tuple[int, int]]  # de-identified text span -> original text span


@dataclass(frozen=True)
class AggregationParams:
    max_suggestions: int = 25
    evidence_tokens: int = 5  # attention positions looked at per suggested code (0: no evidence)
    score_floor: float = 0.01  # scores below this are left out of the per-note score map (audit)

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> "AggregationParams":
        """``ICDCODER_ENGINE_*``: what the live engine and replay both aggregate with."""
        return cls(
            max_suggestions=settings.max_suggestions_per_note,
            evidence_tokens=settings.evidence_tokens_per_code,
            score_floor=settings.audit_score_floor,
        )


@dataclass(frozen=True)
class NoteCodes:
    scores: dict[str, float]  # every code at or above the floor, highest first
    suggestions: tuple[Suggestion, ...]


def aggregate_notes(
    segments: Sequence[Segment],
    result: InferenceResult,
    n_notes: int,
    metadata: ModelMetadata,
    params: AggregationParams,
    to_original: Sequence[OffsetMap] | None = None,
    thresholds: np.ndarray | None = None,
) -> list[NoteCodes]:
    """Scores and suggestions for notes ``0..n_notes-1`` from the results of their ``segments``.
    ``thresholds``: the version's threshold vector when the caller keeps it (``ModelRuntime.thresholds``).

    Per note, the work over all codes is vectorised; Python only touches the codes above the score floor,
    a few dozen per note however large the label space (the hot path of the engine)."""
    if len(segments) != result.probs.shape[0]:
        raise ValueError(f"{len(segments)} segments but {result.probs.shape[0]} result rows")
    if result.probs.shape[1] != len(metadata.labels):
        raise ValueError(f"model returned {result.probs.shape[1]} codes, label space has {len(metadata.labels)}")
    note_index = np.array([s.note_index for s in segments])
    note_probs = max_over_segments(result.probs, note_index, n_notes).astype(np.float64)
    thresholds = metadata.thresholds.vector(metadata.labels.codes) if thresholds is None else thresholds
    codes, descriptions = metadata.labels.codes, metadata.labels.descriptions
    out = []
    for i in range(n_notes):
        rows = np.nonzero(note_index == i)[0]
        if rows.size == 0:
            raise ValueError(f"note {i} has no segments")
        probs = note_probs[i]
        kept = _highest_first(probs, np.nonzero(probs >= params.score_floor)[0])
        scores = {codes[j]: round(p, SCORE_DECIMALS) for j, p in zip(kept.tolist(), probs[kept].tolist())}
        suggested = _highest_first(probs, np.nonzero(probs >= thresholds)[0])[: params.max_suggestions]
        best_row = rows[result.probs[np.ix_(rows, suggested)].argmax(axis=0)]  # per suggested code: the segment giving the note's score
        mapper = to_original[i] if to_original is not None else None
        suggestions = tuple(
            Suggestion(
                code=codes[j],
                display=descriptions[j],
                score=round(float(probs[j]), SCORE_DECIMALS),
                threshold=float(thresholds[j]),
                evidence=evidence_spans(segments[row], result, int(row), int(j), params.evidence_tokens, mapper),
            )
            for j, row in zip(suggested.tolist(), best_row.tolist())
        )
        out.append(NoteCodes(scores=scores, suggestions=suggestions))
    return out


def _highest_first(probs: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``index`` (ascending code positions) by score, highest first; ties keep label order."""
    return index[np.argsort(-probs[index], kind="stable")]


def evidence_spans(segment: Segment, result: InferenceResult, row: int, code: int, n_tokens: int, to_original: OffsetMap | None) -> tuple[EvidenceSpan, ...]:
    """The code's top attention tokens in one segment as merged character spans, heaviest first."""
    if not result.has_evidence or n_tokens <= 0:
        return ()
    positions = result.evidence_positions[row, code]
    weights = result.evidence_weights[row, code]
    spans: list[tuple[int, int, float]] = []
    floor = EVIDENCE_MIN_SHARE * float(weights.max(initial=0.0))
    for k in np.argsort(-weights, kind="stable"):
        if weights[k] < floor:
            break
        pos = int(positions[k])
        if not 0 <= pos < len(segment):
            continue  # padding
        start, end = segment.offsets[pos]
        if end <= start:
            continue  # [CLS]/[SEP] or an empty token
        spans.append((start, end, float(weights[k])))
        if len(spans) == n_tokens:
            break
    merged: list[list] = []
    for start, end, weight in sorted(spans):
        if merged and start <= merged[-1][1]:  # word pieces of one word touch: one span
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] += weight
        else:
            merged.append([start, end, weight])
    if to_original is not None:
        merged = [[*to_original(s, e), w] for s, e, w in merged]
    merged.sort(key=lambda m: (-m[2], m[0]))
    return tuple(EvidenceSpan(start=s, end=e, weight=round(w, SCORE_DECIMALS)) for s, e, w in merged)

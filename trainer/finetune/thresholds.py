"""Decision thresholds tuned on dev to maximise micro-F1: one global threshold, optionally one per code
(codes with too few dev positives fall back to the global one). Saved as ``schemas.model_repo.Thresholds``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from schemas.labels import LabelSpace
from schemas.model_repo import Thresholds
from trainer.evaluate.metrics import f1_at

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.5


def best_f1_threshold(targets: np.ndarray, scores: np.ndarray) -> tuple[float, float] | None:
    """(threshold, F1) maximising F1 of ``scores >= threshold`` over all entries; None without positives.

    Sort scores descending; predicting the top k positive gives F1 = 2 TP_k / (k + P). Only cuts between
    distinct scores are possible; the threshold is the midpoint between the last score kept and the next."""
    y = np.asarray(targets, dtype=bool).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel()
    positives = int(y.sum())
    if positives == 0:
        return None
    order = np.argsort(-p, kind="stable")
    p_sorted, tp = p[order], np.cumsum(y[order])
    last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # a cut may only fall after a run of equal scores
    cuts = np.flatnonzero(last_of_tie)
    f1 = 2 * tp[cuts] / (cuts + 1 + positives)
    best = int(np.argmax(f1))
    k = cuts[best]
    threshold = p_sorted[k] if k + 1 == len(p_sorted) else (p_sorted[k] + p_sorted[k + 1]) / 2
    return float(np.clip(threshold, 0.0, 1.0)), float(f1[best])


@dataclass
class ThresholdReport:
    thresholds: Thresholds
    notes: list[str] = field(default_factory=list)  # fallbacks taken, for the summary and the report


def tune_thresholds(targets: np.ndarray, scores: np.ndarray, labels: LabelSpace, per_code: bool = False, min_positives: int = 5, split: str = "dev") -> ThresholdReport:
    if targets.shape != scores.shape or targets.shape[1] != len(labels):
        raise ValueError(f"targets {targets.shape} and scores {scores.shape} must both be [notes, {len(labels)} codes]")
    notes: list[str] = []
    tuned = best_f1_threshold(targets, scores)
    if tuned is None:
        message = f"{split} split has no positive labels: global threshold left at {DEFAULT_THRESHOLD}, micro-F1 not defined"
        log.warning(message)
        return ThresholdReport(Thresholds(global_threshold=DEFAULT_THRESHOLD, tuned_on=split, dev_micro_f1=None), [message])
    global_threshold, micro_f1 = tuned
    per_code_thresholds: dict[str, float] = {}
    if per_code:
        counts = targets.sum(axis=0)
        for j, code in enumerate(labels.codes):
            if counts[j] >= min_positives:
                per_code_thresholds[code] = best_f1_threshold(targets[:, j], scores[:, j])[0]  # type: ignore[index]
        fallback = len(labels) - len(per_code_thresholds)
        notes.append(f"per-code thresholds for {len(per_code_thresholds)} codes with >= {min_positives} {split} positives; {fallback} codes use the global threshold")
        predicted = scores >= np.array([per_code_thresholds.get(c, global_threshold) for c in labels.codes])
        micro_f1 = f1_at(targets, predicted)[0]
    return ThresholdReport(Thresholds(global_threshold=global_threshold, per_code=per_code_thresholds, tuned_on=split, dev_micro_f1=micro_f1), notes)

"""The paper's metrics for multi-label ICD coding. ``targets`` are [notes, codes] 0/1, ``scores`` [notes, codes]
probabilities.

AUC is undefined for a code without positives (or without negatives) in the split: macro averages use only
the codes where it is defined and report how many those are; nothing returns NaN silently (undefined ->
None). ``rank_auc`` is a vectorised Mann-Whitney AUC (sklearn computes one code at a time, too slow for
2,292 codes x 1,000 bootstrap resamples); the tests check it against ``sklearn.metrics.roc_auc_score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, f1_score


def rank_auc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-column ROC AUC via ranks (ties get average ranks, as in sklearn); NaN where undefined."""
    y = np.asarray(targets, dtype=bool)
    ranks = rankdata(scores, axis=0)  # 1-based, ties averaged
    n_pos = y.sum(axis=0).astype(np.float64)
    n_neg = y.shape[0] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def micro_auc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC over all (note, code) pairs pooled; None when the split has no positives (or no negatives)."""
    value = rank_auc(np.asarray(targets).reshape(-1, 1), np.asarray(scores).reshape(-1, 1))[0]
    return None if np.isnan(value) else float(value)


def macro_auc(targets: np.ndarray, scores: np.ndarray) -> tuple[float | None, int]:
    """Mean per-code AUC over codes with >= 1 positive (and >= 1 negative) in the split, and their count."""
    per_code = rank_auc(targets, scores)
    defined = ~np.isnan(per_code)
    return (float(per_code[defined].mean()) if defined.any() else None), int(defined.sum())


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    resamples: int  # resamples where the metric was defined


def bootstrap_ci(targets: np.ndarray, scores: np.ndarray, metric: Callable[[np.ndarray, np.ndarray], float | None], n_resamples: int = 500, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile interval of ``metric`` over notes resampled with replacement."""
    rng = np.random.default_rng(seed)
    n = targets.shape[0]
    values = []
    for _ in range(n_resamples):
        rows = rng.integers(0, n, n)
        value = metric(targets[rows], scores[rows])
        if value is not None:
            values.append(value)
    if not values:
        return Interval(None, None, 0)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), len(values))


def f1_at(targets: np.ndarray, predicted: np.ndarray) -> tuple[float, float | None]:
    """(micro-F1, macro-F1 over codes with >= 1 positive in the split)."""
    micro = float(f1_score(targets, predicted, average="micro", zero_division=0))
    with_positives = targets.sum(axis=0) > 0
    if not with_positives.any():
        return micro, None
    per_code = f1_score(targets[:, with_positives], predicted[:, with_positives], average=None, zero_division=0)
    return micro, float(np.mean(per_code))


def precision_at_k(targets: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean over notes of (true codes among the k highest-scored) / k. (sklearn has no P@k.)"""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(np.asarray(targets, dtype=bool), top, axis=1).sum(axis=1)
    return float((hits / k).mean())


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> tuple[float | None, int]:
    """CodiEsp's official metric: mean over notes of the average precision of the note's ranked codes.
    Notes without any gold code have no AP and are left out; returns (MAP, notes counted)."""
    rows = np.asarray(targets).sum(axis=1) > 0
    if not rows.any():
        return None, 0
    # average_precision_score averages over columns: transpose so each note is one "label"
    value = average_precision_score(np.asarray(targets)[rows].T, np.asarray(scores)[rows].T, average="macro")
    return float(value), int(rows.sum())


@dataclass(frozen=True)
class FrequencyBin:
    low: int  # training positives, inclusive
    high: int | None  # inclusive; None: no upper bound
    codes: int  # codes of the label space in this bin
    evaluated: int  # of those, codes with a defined AUC in the split
    macro_auc: float | None

    @property
    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"


def auc_by_frequency(per_code_auc: np.ndarray, train_counts: np.ndarray, edges: Sequence[int]) -> list[FrequencyBin]:
    """Macro-AUC of codes grouped by their number of training notes: bins [edges[i], edges[i+1] - 1], last open."""
    bins = []
    for i, low in enumerate(edges):
        high = edges[i + 1] - 1 if i + 1 < len(edges) else None
        in_bin = (train_counts >= low) & (train_counts <= (high if high is not None else np.inf))
        values = per_code_auc[in_bin & ~np.isnan(per_code_auc)]
        bins.append(FrequencyBin(low, high, int(in_bin.sum()), int(values.size), float(values.mean()) if values.size else None))
    return bins

"""Metrics and thresholds against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from schemas.labels import LabelSpace
from trainer.evaluate.metrics import (
    auc_by_frequency,
    bootstrap_ci,
    f1_at,
    macro_auc,
    mean_average_precision,
    micro_auc,
    precision_at_k,
    rank_auc,
)
from trainer.finetune.thresholds import best_f1_threshold, tune_thresholds

# 4 notes x 3 codes. Code 0: positives score 0.9, 0.4 vs negatives 0.3, 0.8 -> 3 of 4 pairs right: AUC 0.75.
# Code 1: one positive (0.7) above all three negatives -> AUC 1. Code 2: no positives -> undefined.
TARGETS = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
SCORES = np.array([[0.9, 0.1, 0.2], [0.8, 0.7, 0.3], [0.4, 0.2, 0.1], [0.3, 0.6, 0.5]])


def test_per_code_and_macro_auc_by_hand():
    per_code = rank_auc(TARGETS, SCORES)
    assert per_code[0] == pytest.approx(0.75) and per_code[1] == pytest.approx(1.0)
    assert np.isnan(per_code[2])  # no positives: undefined, and left out of the macro average
    value, n_codes = macro_auc(TARGETS, SCORES)
    assert value == pytest.approx((0.75 + 1.0) / 2) and n_codes == 2


def test_micro_auc_by_hand_and_sklearn():
    # pooled: 3 positives (0.9, 0.7, 0.4) vs 9 negatives (0.8 0.6 0.5 0.3 0.3 0.2 0.2 0.1 0.1):
    # 0.9 beats 9, 0.7 beats 8, 0.4 beats 6
    assert micro_auc(TARGETS, SCORES) == pytest.approx((9 + 8 + 6) / 27)
    rng = np.random.default_rng(1)
    y = (rng.random((40, 6)) < 0.3).astype(int)
    p = rng.random((40, 6)).round(1)  # ties, as sklearn handles them
    assert micro_auc(y, p) == pytest.approx(roc_auc_score(y.ravel(), p.ravel()))
    for j in range(6):
        assert rank_auc(y, p)[j] == pytest.approx(roc_auc_score(y[:, j], p[:, j]))


def test_undefined_metrics_are_none_not_nan():
    y = np.zeros((3, 2), dtype=int)
    p = np.random.default_rng(0).random((3, 2))
    assert micro_auc(y, p) is None
    assert macro_auc(y, p) == (None, 0)
    assert mean_average_precision(y, p) == (None, 0)
    assert bootstrap_ci(y, p, micro_auc, n_resamples=5).resamples == 0


def test_precision_at_k_and_map_by_hand():
    # note 0 ranks codes 0 (gold), 2, 1: P@1 = 1, AP = 1; note 1 ranks 0, 1 (gold), 2: P@1 = 0, AP = 1/2;
    # note 2 ranks 0 (gold): AP 1; note 3 has no gold code: no AP.
    assert precision_at_k(TARGETS, SCORES, 1) == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert precision_at_k(TARGETS, SCORES, 2) == pytest.approx((0.5 + 0.5 + 0.5 + 0) / 4)
    value, n_notes = mean_average_precision(TARGETS, SCORES)
    assert n_notes == 3 and value == pytest.approx((1 + 0.5 + 1) / 3)
    rng = np.random.default_rng(2)
    y = (rng.random((30, 8)) < 0.25).astype(int)
    y[0] = 0
    p = rng.random((30, 8))
    rows = y.sum(axis=1) > 0
    expected = np.mean([average_precision_score(y[i], p[i]) for i in np.flatnonzero(rows)])
    assert mean_average_precision(y, p)[0] == pytest.approx(expected)


def test_f1_matches_sklearn_and_macro_skips_codes_without_positives():
    predicted = SCORES >= 0.5
    micro, macro = f1_at(TARGETS, predicted)
    assert micro == pytest.approx(f1_score(TARGETS, predicted, average="micro"))
    # code 0: TP 1 (0.9), FP 1 (0.8), FN 1 (0.4) -> 0.5; code 1: TP 1, FP 1 (0.6) -> 2/3; code 2 left out
    assert macro == pytest.approx((0.5 + 2 / 3) / 2)


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(3)
    y = (rng.random((200, 5)) < 0.3).astype(int)
    p = np.clip(y * 0.3 + rng.random((200, 5)) * 0.7, 0, 1)
    ci = bootstrap_ci(y, p, micro_auc, n_resamples=200)
    assert ci.resamples == 200 and ci.low < micro_auc(y, p) < ci.high


def test_frequency_bins():
    per_code = np.array([0.9, 0.7, np.nan, 0.5])
    bins = auc_by_frequency(per_code, np.array([0, 5, 5, 60]), edges=(0, 1, 11, 51))
    assert [(b.label, b.codes, b.evaluated) for b in bins] == [("0-0", 1, 1), ("1-10", 2, 1), ("11-50", 0, 0), ("51+", 1, 1)]
    assert bins[1].macro_auc == pytest.approx(0.7) and bins[2].macro_auc is None


def test_global_threshold_maximises_micro_f1():
    threshold, f1 = best_f1_threshold(TARGETS, SCORES)
    grid = np.unique(np.r_[SCORES.ravel(), 0, 1])
    best_on_grid = max(f1_score(TARGETS.ravel(), SCORES.ravel() >= t) for t in grid)
    assert f1 == pytest.approx(best_on_grid)
    assert f1_score(TARGETS.ravel(), SCORES.ravel() >= threshold) == pytest.approx(f1)


def test_per_code_thresholds_fall_back_for_rare_codes_and_no_positive_dev():
    labels = LabelSpace(codes=("A00", "B00", "C00"), descriptions=("a", "b", "c"), code_set_release="test")
    report = tune_thresholds(TARGETS, SCORES, labels, per_code=True, min_positives=2)
    assert set(report.thresholds.per_code) == {"A00"}  # B00 has 1 positive, C00 none: global threshold
    assert report.thresholds.for_code("C00") == report.thresholds.global_threshold
    empty = tune_thresholds(np.zeros_like(TARGETS), SCORES, labels)
    assert empty.thresholds.global_threshold == 0.5 and empty.thresholds.dev_micro_f1 is None and empty.notes

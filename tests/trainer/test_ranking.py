"""CodiEsp's official MAP (trainer.evaluate.ranking) against hand-computed cases and the trectools evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluate.ranking import average_precision, gold_coverage, official_map, ranking_report

CODES = ["A00", "B01", "C02", "D03"]
NONE = -np.inf  # "not predicted"


def test_average_precision_by_hand_counts_unrankable_gold_as_misses():
    # ranking A00 B01 C02; gold {A00, C02, Z99}: hits at ranks 1 and 3 -> (1/1 + 2/3) / 3 gold codes
    assert average_precision(["A00", "B01", "C02"], {"A00", "C02", "Z99"}) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision(["B01"], {"A00"}) == 0.0
    assert average_precision(["A00"], set()) == 0.0


def test_official_map_by_hand():
    gold = [{"A00", "C02", "Z99"},  # Z99 is no candidate: the model cannot rank it, a miss
            {"D03"}]
    scores = np.array([[0.9, 0.5, 0.4, 0.1],
                       [0.2, NONE, 0.3, 0.8]])  # B01 not predicted for note 2
    result = official_map(gold, CODES, scores)
    ap1 = (1 / 1 + 2 / 3) / 3  # A00 at 1, C02 at 3
    ap2 = 1.0  # D03 at 1
    assert result.value == pytest.approx((ap1 + ap2) / 2) and result.notes == 2
    assert result.per_note == pytest.approx((ap1, ap2))


def test_ties_break_by_code_descending_and_depth_cuts():
    gold = [{"A00"}]
    scores = np.array([[0.5, 0.5, 0.5, 0.5]])  # all tied: order D03 C02 B01 A00 -> A00 at rank 4
    assert official_map(gold, CODES, scores).value == pytest.approx(1 / 4)
    assert official_map(gold, CODES, scores, depth=3).value == 0.0  # A00 falls below the depth


def test_notes_without_predictions_or_gold():
    gold = [{"A00"}, set(), {"B01"}]
    scores = np.array([[0.9, 0.1, NONE, NONE], [0.9, 0.1, NONE, NONE], [NONE] * 4])
    result = official_map(gold, CODES, scores)
    # note 1: AP 1; note 2 has predictions but no gold: AP 0, counted; note 3 ranks nothing: not counted
    assert result.value == pytest.approx(0.5) and result.notes == 2


def test_seen_unseen_split_and_coverage():
    gold = [{"A00", "Z99"}, {"B01"}]
    scores = np.array([[0.9, 0.1, 0.8, NONE], [0.3, 0.2, NONE, NONE]])
    report = ranking_report(gold, CODES, scores, seen_in_training={"A00", "B01"})
    assert report["coverage"] == {"gold_occurrences": 3, "covered": 2, "share": pytest.approx(2 / 3)}
    assert report["map_seen"] == pytest.approx((1.0 + 0.5) / 2)  # within seen codes: A00 first; B01 second
    # unseen: only note 1 has an unseen gold code (Z99), which no candidate ranks -> AP 0, counted
    assert report["map_unseen"] == 0.0 and report["map_unseen_notes"] == 1
    assert report["gold_occurrences_unseen_in_training"] == 1
    assert gold_coverage([{"A00"}], []) == {"gold_occurrences": 1, "covered": 0, "share": 0.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="scores of shape"):
        official_map([{"A00"}], CODES, np.zeros((1, 3)))


def test_same_as_trectools_official_evaluation():
    """The CodiEsp evaluation script ranks with trectools' TrecEval.get_map(trec_eval=True)."""
    pd = pytest.importorskip("pandas")
    trectools = pytest.importorskip("trectools")
    rng = np.random.default_rng(3)
    codes = [f"K{i:02d}.{j}" for i in range(12) for j in range(5)]  # 60 candidate codes
    n_notes = 25
    scores = rng.random((n_notes, len(codes))).round(2)  # rounded: plenty of ties
    scores[rng.random(scores.shape) < 0.5] = -np.inf  # about half not predicted
    gold = [set(rng.choice(codes + ["Z99.1", "Z99.2"], size=rng.integers(1, 8), replace=False)) for _ in range(n_notes)]
    run_rows, qrel_rows = [], []
    for q in range(n_notes):
        for j in np.nonzero(np.isfinite(scores[q]))[0]:
            run_rows.append((f"note{q}", "Q0", codes[j], 0, float(scores[q, j]), "model"))
        qrel_rows += [(f"note{q}", 0, code, 1) for code in gold[q]]
    run = trectools.TrecRun()
    run.run_data = pd.DataFrame(run_rows, columns=["query", "q0", "docid", "rank", "score", "system"])
    qrels = trectools.TrecQrel()
    qrels.qrels_data = pd.DataFrame(qrel_rows, columns=["query", "q0", "docid", "rel"])
    expected = trectools.TrecEval(run, qrels).get_map(depth=20, trec_eval=True)
    assert official_map(gold, codes, scores, depth=20).value == pytest.approx(expected, abs=1e-12)


def test_official_map_ties_and_unranked_notes_together():
    codes = ["A", "B", "C"]
    scores = np.array([[0.9, 0.5, 0.1],  # A, B, C; gold {B, X}: 1/2 / 2
                       [0.5, 0.5, 0.1],  # tie: B before A (descending code); gold {A}: 1/2
                       [-np.inf, np.nan, -np.inf]])  # ranks nothing: not counted
    result = official_map([{"B", "X"}, {"A"}, {"C"}], codes, scores)
    assert result.notes == 2 and result.per_note == pytest.approx((0.25, 0.5)) and result.value == pytest.approx(0.375)
    with pytest.raises(ValueError, match="scores of shape"):
        official_map([{"A"}], codes, scores)

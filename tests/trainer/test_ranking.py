"""CodiEsp's official MAP against hand-computed cases (gold codes the model cannot rank count as misses)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluate.ranking import average_precision, official_map


def test_average_precision_counts_every_gold_code():
    assert average_precision(["A", "B", "C"], {"A", "C"}) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision(["A", "B"], {"A", "Z"}) == pytest.approx(1 / 2)  # Z unrankable: a miss
    assert average_precision(["A"], set()) == 0.0


def test_official_map_ranks_by_score_then_code_descending_and_skips_unranked_notes():
    codes = ["A", "B", "C"]
    scores = np.array([[0.9, 0.5, 0.1],  # A, B, C; gold {B, X}: 1/2 / 2
                       [0.5, 0.5, 0.1],  # tie: B before A (descending code); gold {A}: 1/2
                       [-np.inf, np.nan, -np.inf]])  # ranks nothing: not counted
    result = official_map([{"B", "X"}, {"A"}, {"C"}], codes, scores)
    assert result.notes == 2 and result.per_note == pytest.approx((0.25, 0.5)) and result.value == pytest.approx(0.375)
    with pytest.raises(ValueError, match="scores of shape"):
        official_map([{"A"}], codes, scores)

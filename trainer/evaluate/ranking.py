"""CodiEsp's official metric: MAP of each note's ranked codes against ALL of its gold codes.

The label-space MAP (``metrics.mean_average_precision``) only sees the codes a model has columns for. The
CodiEsp shared task ranks whatever codes a system predicts against every gold code of the note, so a gold
code the system cannot rank is a miss. As the official evaluation (``trectools`` ``get_map(depth=1000,
trec_eval=True)``):

- per note, the predicted codes are sorted by score (highest first), ties by code in DESCENDING string order
  (trec_eval's order), and cut at ``depth``;
- AP = sum over the ranks k that hold a gold code of (gold codes in the top k) / k, divided by the number of
  gold codes of the note (all of them, ranked or not);
- MAP = the mean over the notes that have at least one ranked code.

The same API as issue 13's fuller module (seen/unseen splits, coverage); on merging, keep that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np

DEPTH = 1000  # trec_eval's default evaluation depth, used by the CodiEsp evaluation


def _tie_keys(codes: Sequence[str]) -> np.ndarray:
    """Ascending key that orders codes in descending string order (trec_eval breaks score ties so)."""
    order = np.argsort(np.asarray(codes, dtype=object), kind="stable")
    keys = np.empty(len(codes), dtype=np.int64)
    keys[order] = np.arange(len(codes))[::-1]
    return keys


def ranked(scores: np.ndarray, tie_keys: np.ndarray, depth: int = DEPTH) -> np.ndarray:
    """Column indices of one note's ranking: predicted (finite) codes by score desc, ties by code desc."""
    index = np.nonzero(np.isfinite(scores))[0]
    order = np.lexsort((tie_keys[index], -scores[index]))
    return index[order][:depth]


def average_precision(ranking: Sequence[str], gold: Collection[str]) -> float:
    """AP of one ranked list against a gold set (every gold code counts, ranked or not); 0 without gold."""
    if not gold:
        return 0.0
    hits, total = 0, 0.0
    for k, code in enumerate(ranking, 1):
        if code in gold:
            hits += 1
            total += hits / k
    return total / len(gold)


@dataclass(frozen=True)
class OfficialMap:
    value: float | None  # None: no note counted
    notes: int  # notes counted
    per_note: tuple[float, ...]  # AP of every note counted, in note order


def official_map(gold: Sequence[Collection[str]], codes: Sequence[str], scores: np.ndarray, depth: int = DEPTH) -> OfficialMap:
    """CodiEsp MAP of ``scores`` ([notes, len(codes)]; -inf or NaN = not predicted) against each note's ``gold``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(gold), len(codes)):
        raise ValueError(f"scores of shape {scores.shape} for {len(gold)} notes and {len(codes)} codes")
    keys = _tie_keys(codes)
    per_note = []
    for row, note_gold in enumerate(gold):
        index = ranked(np.where(np.isnan(scores[row]), -np.inf, scores[row]), keys, depth)
        if index.size == 0:
            continue  # trec_eval counts only the notes the run ranks something for
        per_note.append(average_precision([codes[j] for j in index], set(note_gold)))
    return OfficialMap(float(np.mean(per_note)) if per_note else None, len(per_note), tuple(per_note))

"""CodiEsp's official metric: MAP of each note's ranked codes against ALL of its gold codes.

The label-space metrics (``metrics.py``) only see the codes a model has columns for. The CodiEsp shared task
ranks whatever codes a system predicts against every gold code of the note, so a gold code the system cannot
rank is a miss. This module computes that figure exactly as the official evaluation does (``trectools``
``TrecEval.get_map(depth=1000, trec_eval=True)``; the tests compare with it):

- per note, the predicted codes are sorted by score (highest first), ties by code in DESCENDING string order
  (trec_eval's order), and cut at ``depth``;
- AP = sum over the ranks k that hold a gold code of (gold codes in the top k) / k, divided by the number of
  gold codes of the note (all of them, ranked or not);
- MAP = the mean over the notes that have at least one ranked code (a note without gold codes counts 0).

``scores`` is a [notes, candidates] matrix over ``codes``; a score of -inf (or NaN) means "not predicted".
The same function on a subset of codes (``within``) gives MAP on codes seen / not seen in training: both the
gold codes and the candidates are restricted to the subset and every note with a gold code there counts, so
"unseen" measures how well gold codes the classifier never learnt are ranked among all the candidates it never
learnt (0 for a model that can only rank its training codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Sequence

import numpy as np

DEPTH = 1000  # trec_eval's default evaluation depth, used by the CodiEsp evaluation


def _tie_keys(codes: Sequence[str]) -> np.ndarray:
    """Ascending key that orders codes in descending string order (trec_eval breaks score ties so)."""
    order = np.argsort(np.asarray(codes, dtype=object), kind="stable")
    keys = np.empty(len(codes), dtype=np.int64)
    keys[order] = np.arange(len(codes))[::-1]
    return keys


def ranked(scores: np.ndarray, tie_keys: np.ndarray, depth: int = DEPTH, candidates: np.ndarray | None = None) -> np.ndarray:
    """Column indices of one note's ranking: predicted (finite) candidates by score desc, ties by code desc."""
    valid = np.isfinite(scores)
    if candidates is not None:
        valid &= candidates
    index = np.nonzero(valid)[0]
    if index.size > depth:  # only the top of the list matters: partition, then keep every tie of the cut score
        cut = np.partition(scores[index], index.size - depth)[index.size - depth]
        index = index[scores[index] >= cut]
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


def official_map(gold: Sequence[Collection[str]], codes: Sequence[str], scores: np.ndarray, depth: int = DEPTH,
                 within: Callable[[str], bool] | None = None) -> OfficialMap:
    """CodiEsp MAP of ``scores`` ([notes, len(codes)]) against each note's ``gold`` codes (module docstring).

    ``within``: restrict gold codes and candidates to the codes it accepts (e.g. "seen in training"); every
    note with a gold code in the subset then counts, with AP 0 when the model ranks nothing there."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(gold), len(codes)):
        raise ValueError(f"scores of shape {scores.shape} for {len(gold)} notes and {len(codes)} codes")
    keys = _tie_keys(codes)
    candidates = None if within is None else np.fromiter((bool(within(c)) for c in codes), dtype=bool, count=len(codes))
    per_note = []
    for row, note_gold in enumerate(gold):
        index = ranked(np.where(np.isnan(scores[row]), -np.inf, scores[row]), keys, depth, candidates)
        if within is not None:
            note_gold = [c for c in note_gold if within(c)]
            if not note_gold:
                continue  # nothing to find in the subset for this note
        elif index.size == 0:
            continue  # trec_eval counts only the notes the run ranks something for
        per_note.append(average_precision([codes[j] for j in index], set(note_gold)))
    return OfficialMap(float(np.mean(per_note)) if per_note else None, len(per_note), tuple(per_note))


def gold_coverage(gold: Sequence[Collection[str]], codes: Collection[str]) -> dict[str, float | int]:
    """How many gold code occurrences (note, code) a model with these candidate codes can rank at all."""
    known = set(codes)
    occurrences = sum(len(set(g)) for g in gold)
    covered = sum(c in known for g in gold for c in set(g))
    return {"gold_occurrences": occurrences, "covered": covered, "share": covered / occurrences if occurrences else 0.0}


def ranking_report(gold: Sequence[Collection[str]], codes: Sequence[str], scores: np.ndarray, seen_in_training: Collection[str],
                   depth: int = DEPTH) -> dict:
    """Official MAP, coverage of gold occurrences, and MAP on gold codes seen / not seen in training."""
    seen = set(seen_in_training)
    full = official_map(gold, codes, scores, depth)
    on_seen = official_map(gold, codes, scores, depth, within=seen.__contains__)
    on_unseen = official_map(gold, codes, scores, depth, within=lambda c: c not in seen)
    gold_unseen = sum(c not in seen for g in gold for c in set(g))
    return {
        "official_map": full.value, "official_map_notes": full.notes, "depth": depth,
        "coverage": gold_coverage(gold, codes), "candidate_codes": len(codes),
        "map_seen": on_seen.value, "map_seen_notes": on_seen.notes,
        "map_unseen": on_unseen.value, "map_unseen_notes": on_unseen.notes,
        "gold_occurrences_unseen_in_training": gold_unseen,
    }

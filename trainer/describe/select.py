"""Fused scores over every candidate code, and the choice of the fusion's weights and threshold on the
selection split (coordinate ascent on CodiEsp's official MAP; the threshold maximises micro-F1 against every
gold code, ranked or not, and the codes outside the classifier's label space get their own threshold). The report split is never seen here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from schemas.fusion import Fusion, Neighbours, fuse_note
from trainer.describe.build import ScoredNotes
from trainer.evaluate.ranking import official_map

log = logging.getLogger(__name__)

# Values tried for each parameter (coordinate ascent, two rounds); measured ranges in docs/finetuning.md.
GRID: dict[str, tuple[float, ...]] = {
    "neighbours_weight": (0.0, 0.25, 0.5, 1.0, 2.0),
    "neighbours_k": (5, 10, 20, 40),
    "description_weight": (0.0, 0.25, 0.5, 1.0, 2.0),
    "description_floor": (0.1, 0.2, 0.3, 0.4, 0.5),
    "example_weight": (0.0, 0.25, 0.5, 1.0, 2.0),
    "example_floor": (0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    "model_weight": (0.0, 0.5, 1.0, 2.0),
}
START = Fusion(model_weight=1.0, neighbours_weight=0.5, neighbours_k=20, description_weight=0.5, description_floor=0.3, example_weight=0.5, example_floor=0.4)


@dataclass
class Components:
    """Everything the fusion combines, for a list of notes."""

    codes: tuple[str, ...]  # candidate codes
    scored: ScoredNotes  # description scorer outputs per note
    neighbours: Neighbours  # training notes of the kNN term (never the notes scored here)
    probs: np.ndarray | None = None  # [notes, label codes] classifier probabilities
    label_candidates: np.ndarray | None = None  # [label codes] candidate index of each classifier column
    _knn: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def knn(self, k: int) -> list[np.ndarray]:
        if k not in self._knn:
            n = len(self.codes)
            self._knn[k] = [self.neighbours.scores(e, k, n) if e is not None else np.zeros(n, np.float32) for e in self.scored.embeddings]
        return self._knn[k]

    def fused(self, fusion: Fusion) -> np.ndarray:
        """[notes, candidates] fused scores."""
        knn = self.knn(fusion.neighbours_k) if fusion.neighbours_weight else [None] * len(self.scored.embeddings)
        return np.stack([
            fuse_note(fusion, len(self.codes), self.label_candidates, None if self.probs is None else self.probs[i],
                      self.scored.descriptions[i], self.scored.examples[i], knn[i]).scores
            for i in range(len(self.scored.embeddings))
        ])


def label_candidates(label_codes: Sequence[str], codes: Sequence[str]) -> np.ndarray:
    index = {c: j for j, c in enumerate(codes)}
    missing = [c for c in label_codes if c not in index]
    if missing:
        raise ValueError(f"{len(missing)} label-space codes are not candidates of the description scorer, e.g. {missing[:5]}")
    return np.asarray([index[c] for c in label_codes], dtype=np.int64)


def _targets(shape: tuple[int, int], gold: Sequence[Sequence[str]], codes: Sequence[str]) -> tuple[np.ndarray, int]:
    """([notes, candidates] gold flags, number of gold codes, candidates or not: the others are misses)."""
    index = {c: j for j, c in enumerate(codes)}
    targets = np.zeros(shape, dtype=bool)
    for i, note_gold in enumerate(gold):
        targets[i, [index[c] for c in set(note_gold) if c in index]] = True
    return targets, sum(len(set(g)) for g in gold)


def f1_threshold(scores: np.ndarray, gold: Sequence[Sequence[str]], codes: Sequence[str]) -> tuple[float, float]:
    """(threshold, micro-F1) maximising micro-F1 of ``scores >= threshold`` against ALL gold codes (a gold code
    that is no candidate is a false negative at every threshold)."""
    targets, positives = _targets(scores.shape, gold, codes)
    flat, hits = scores.ravel(), targets.ravel()
    keep = flat > 0  # a zero score is never suggested
    flat, hits = flat[keep], hits[keep]
    order = np.argsort(-flat, kind="stable")
    flat, tp = flat[order], np.cumsum(hits[order])
    if not len(flat) or positives == 0:
        return 0.5, 0.0
    cuts = np.flatnonzero(np.r_[flat[1:] != flat[:-1], True])
    f1 = 2 * tp[cuts] / (cuts + 1 + positives)
    best = int(np.argmax(f1))
    k = cuts[best]
    threshold = flat[k] if k + 1 == len(flat) else (flat[k] + flat[k + 1]) / 2
    return float(np.clip(threshold, 1e-6, 1.0)), float(f1[best])


def outside_threshold(scores: np.ndarray, gold: Sequence[Sequence[str]], codes: Sequence[str], label_columns: np.ndarray, threshold: float) -> tuple[float, float]:
    """(threshold for the codes outside the label space, micro-F1 over ALL gold codes) with the label space's codes
    suggested at ``threshold``: the cut of the outside codes' scores that maximises micro-F1 of the whole suggestion
    set. 1.0 when no cut helps (outside codes are then suggested only at the maximum score)."""
    targets, positives = _targets(scores.shape, gold, codes)
    inside = np.zeros(scores.shape[1], dtype=bool)
    inside[label_columns] = True
    predicted_in = scores[:, inside] >= threshold
    tp_in, pred_in = int((predicted_in & targets[:, inside]).sum()), int(predicted_in.sum())
    flat, hits = scores[:, ~inside].ravel(), targets[:, ~inside].ravel()
    keep = flat > 0
    flat, hits = flat[keep], hits[keep]
    order = np.argsort(-flat, kind="stable")
    flat, tp = flat[order], np.cumsum(hits[order])
    none_f1 = 2 * tp_in / (pred_in + positives) if pred_in + positives else 0.0
    if not len(flat):
        return 1.0, none_f1
    cuts = np.flatnonzero(np.r_[flat[1:] != flat[:-1], True])
    f1 = 2 * (tp_in + tp[cuts]) / (pred_in + cuts + 1 + positives)
    best = int(np.argmax(f1))
    if f1[best] <= none_f1:
        return 1.0, none_f1
    k = cuts[best]
    cut = flat[k] if k + 1 == len(flat) else (flat[k] + flat[k + 1]) / 2
    return float(np.clip(cut, 1e-6, 1.0)), float(f1[best])


# The combinations selected (each its own weights): the served one, and two ablations.
VARIANTS: dict[str, tuple[str, ...]] = {
    "served": tuple(GRID),  # classifier + kNN + descriptions + examples
    "without_classifier": tuple(k for k in GRID if k != "model_weight"),  # what the training notes give without a classifier
    "descriptions_only": ("description_weight", "description_floor"),  # titles and inclusion terms: no training data at all
}


def select_fusion(components: Components, gold: Sequence[Sequence[str]], selected_on: str, variant: str = "served", rounds: int = 2,
                  also_from: Fusion | None = None) -> Fusion:
    """Coordinate ascent over ``GRID`` (the ``variant``'s parameters; the others 0) from ``START`` maximising
    official MAP on these notes, then the threshold. ``also_from``: a second start (the served combination starts
    again from the weights chosen without the classifier, so it is never worse than them here: one greedy ascent can
    stop on a ridge the other reaches); the better of the two ascents wins."""
    codes = components.codes

    def value(f: Fusion) -> float:
        return official_map(gold, codes, components.fused(f)).value or 0.0

    free = VARIANTS[variant]
    grid = {k: v for k, v in GRID.items() if k in free}
    unused = {k: 0.0 for k in ("model_weight", "neighbours_weight", "example_weight", "description_weight") if k not in free}

    def ascend(start: Fusion) -> tuple[Fusion, float]:
        best, best_value = start, value(start)
        for _ in range(rounds):
            improved = False
            for name, values in grid.items():
                for v in values:
                    candidate = best.model_copy(update={name: type(getattr(best, name))(v)})
                    if candidate == best:
                        continue
                    score = value(candidate)
                    if score > best_value + 1e-6:
                        best, best_value, improved = candidate, score, True
            log.info("fusion selection: official MAP %.4f with %s", best_value, best.model_dump(include=set(grid)))
            if not improved:
                break
        return best, best_value

    start = START.model_copy(update=unused)
    if "description_weight" in free and not start.description_weight:
        start = start.model_copy(update={"description_weight": 1.0})
    starts = [start]
    if also_from is not None:
        starts.append(START.model_copy(update={**also_from.model_dump(include=set(GRID)), **unused}))
    best, best_value = max((ascend(s) for s in starts), key=lambda pair: pair[1])
    fused = components.fused(best)
    threshold, micro_f1 = f1_threshold(fused, gold, codes)
    update: dict = {"threshold": threshold, "selected_on": selected_on}
    if best.model_weight and components.label_candidates is not None:  # the classifier's codes and the others differ in scale
        update["outside_threshold"], micro_f1 = outside_threshold(fused, gold, codes, components.label_candidates, threshold)
    update["selection"] = {"official_map": round(best_value, 4), "micro_f1": round(micro_f1, 4), "notes": len(gold)}
    return best.model_copy(update=update)

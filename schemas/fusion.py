"""The served combination: the trained classifier's probabilities fused with the description scorer, over
every candidate code (the label space and every billable ICD-10-CM code). One implementation, used by the
trainer (selection of the weights, evaluation) and the engine (serving), written into ``metadata.json``.

Per note and candidate code c (all terms are >= 0)::

    fused(c) = model_weight       * p(c)                            p: classifier probability, 0 outside its label space
             + neighbours_weight  * knn(c)                          share of the k most similar training notes coded c
             + description_weight * max(0, d(c) - description_floor)  d: best cosine, note sentence vs c's title/terms
             + example_weight     * max(0, e(c) - example_floor)      e: best cosine, note sentence vs training sentences of c
    score(c) = min(1, fused(c));  suggested when score(c) >= threshold

``knn``: note embedding = the normalised mean of its sentence embeddings; the ``neighbours_k`` training notes
with the highest cosine vote for their codes, weighted by that cosine (negative ones count 0). The weights,
floors, k and threshold are chosen on the selection split (never the report split) and stored with the
figures that chose them, so two model versions can be compared and a version replayed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # schemas.descriptions imports schemas.text, which imports schemas.model_repo, which imports this
    from schemas.descriptions import NoteDescriptions


class Fusion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    formula: str = "min(1, wm*p + wn*knn + wd*max(0, d - fd) + we*max(0, e - fe))"
    model_weight: float = Field(1.0, ge=0)
    neighbours_weight: float = Field(0.0, ge=0)
    neighbours_k: int = Field(10, ge=1)
    description_weight: float = Field(0.0, ge=0)
    description_floor: float = Field(0.3, ge=-1, le=1)
    example_weight: float = Field(0.0, ge=0)
    example_floor: float = Field(0.5, ge=-1, le=1)
    threshold: float = Field(0.5, ge=0, le=1)  # on the fused score (micro-F1 on the selection split)
    # Codes outside the classifier's label space have no classifier term, so their scores live on another scale:
    # their own operating point, chosen after ``threshold`` (micro-F1 over all gold codes). None: ``threshold``.
    outside_threshold: float | None = Field(None, ge=0, le=1)
    selected_on: str = ""  # which notes chose these numbers
    selection: dict[str, float] = {}  # what they gave there (official MAP, micro-F1, ...)

    def thresholds(self, n_candidates: int, label_candidates: np.ndarray | None) -> np.ndarray:
        """[n_candidates] the threshold of each candidate: ``threshold`` for the classifier's codes,
        ``outside_threshold`` (when set) for the others."""
        out = np.full(n_candidates, self.threshold if self.outside_threshold is None else self.outside_threshold, dtype=np.float32)
        if label_candidates is not None:
            out[label_candidates] = self.threshold
        return out


@dataclass(frozen=True)
class Neighbours:
    """The training notes the kNN term votes with: unit embeddings and their codes as candidate indices (CSR)."""

    embeddings: np.ndarray  # [notes, dim] float32, unit length
    indptr: np.ndarray  # [notes + 1] int64
    codes: np.ndarray  # [nnz] int64 candidate indices

    def scores(self, note_embedding: np.ndarray, k: int, n_candidates: int) -> np.ndarray:
        """knn(c) for one note: [n_candidates] float32 in [0, 1]."""
        out = np.zeros(n_candidates, dtype=np.float32)
        if not len(self.embeddings):
            return out
        sims = self.embeddings @ note_embedding
        top = np.argpartition(-sims, min(k, len(sims)) - 1)[:k] if len(sims) > k else np.arange(len(sims))
        weights = np.maximum(sims[top], 0.0)
        total = float(weights.sum())
        if total <= 0:
            return out
        for note, weight in zip(top.tolist(), (weights / total).tolist()):
            np.add.at(out, self.codes[self.indptr[note] : self.indptr[note + 1]], weight)
        return out


def note_embedding(sentence_embeddings: np.ndarray) -> np.ndarray | None:
    """Normalised mean of a note's (unit) sentence embeddings; None for a note without sentences."""
    if not len(sentence_embeddings):
        return None
    mean = sentence_embeddings.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None


@dataclass(frozen=True)
class FusedNote:
    scores: np.ndarray  # [n_candidates] fused score in [0, 1]
    sentence: np.ndarray  # [n_candidates] index of the evidence sentence (into the sentences given), -1: none


def fuse_note(fusion: Fusion, n_candidates: int, label_candidates: np.ndarray | None, probs: np.ndarray | None,
              descriptions: "NoteDescriptions | None", examples: "NoteDescriptions | None", knn: np.ndarray | None) -> FusedNote:
    """The fused score of every candidate for one note (module docstring). ``label_candidates`` maps the
    classifier's columns to candidate indices; ``probs`` are its probabilities for this note."""
    fused = np.zeros(n_candidates, dtype=np.float64)
    if probs is not None and label_candidates is not None and fusion.model_weight:
        np.add.at(fused, label_candidates, fusion.model_weight * probs.astype(np.float64))
    if knn is not None and fusion.neighbours_weight:
        fused += fusion.neighbours_weight * knn
    sentence = np.full(n_candidates, -1, dtype=np.int64)
    best = np.zeros(n_candidates, dtype=np.float64)  # the larger sentence contribution decides the evidence
    for hits, weight, floor in ((descriptions, fusion.description_weight, fusion.description_floor),
                                (examples, fusion.example_weight, fusion.example_floor)):
        if hits is None or not weight or not len(hits.codes):
            continue
        part = weight * np.maximum(hits.similarity.astype(np.float64) - floor, 0.0)
        fused[hits.codes] += part
        better = part > best[hits.codes]
        best[hits.codes[better]] = part[better]
        sentence[hits.codes[better]] = hits.sentence[better]
    return FusedNote(np.minimum(fused, 1.0).astype(np.float32), sentence)

"""Stage 5 for versions with a description scorer: the classifier's per-note probabilities (max over segments)
fused with the description scorer over every candidate code (``schemas.fusion``, weights from metadata.json),
then suggestions like ``aggregate``: fused score >= the fusion's threshold (codes outside the label space: its
``outside_threshold``), at most ``max_suggestions``, highest
first, rounded scores. The audit score map keeps the codes at or above the score floor, at most
``MAX_SCORED_CODES`` of them (tens of thousands of candidates would otherwise put hundreds of faint
description matches into every audit record).

Evidence of a suggestion: for a label-space code, the classifier's attention spans in the segment that gave
its probability (as ``aggregate``); and the note sentence that matched the code best (title, inclusion term or
training example), weighted by its cosine similarity, when that part counted. A code outside the label space
has the sentence only: the sentence is why it is suggested.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from engine.infra.model import DescriptionRuntime
from engine.pipeline.aggregate import SCORE_DECIMALS, AggregationParams, NoteCodes, OffsetMap, evidence_spans
from engine.pipeline.describe import DescribedNotes
from engine.pipeline.infer.base import InferenceResult
from schemas.envelopes import EvidenceSpan, Suggestion
from schemas.fusion import fuse_note
from schemas.model_repo import ModelMetadata
from schemas.text import Segment, max_over_segments

MAX_SCORED_CODES = 200


def fuse_notes(
    segments: Sequence[Segment],
    result: InferenceResult,
    described: DescribedNotes,
    n_notes: int,
    metadata: ModelMetadata,
    descriptions: DescriptionRuntime,
    params: AggregationParams,
    to_original: Sequence[OffsetMap] | None = None,
) -> list[NoteCodes]:
    if len(segments) != result.probs.shape[0]:
        raise ValueError(f"{len(segments)} segments but {result.probs.shape[0]} result rows")
    if result.probs.shape[1] != len(metadata.labels):
        raise ValueError(f"model returned {result.probs.shape[1]} codes, label space has {len(metadata.labels)}")
    fusion, n = descriptions.fusion, len(descriptions.codes)
    note_index = np.array([s.note_index for s in segments])
    note_probs = max_over_segments(result.probs, note_index, n_notes)
    label_of = {int(c): j for j, c in enumerate(descriptions.label_candidates.tolist())}  # candidate -> classifier column
    limits = fusion.thresholds(n, descriptions.label_candidates)
    out = []
    for i in range(n_notes):
        rows = np.nonzero(note_index == i)[0]
        if rows.size == 0:
            raise ValueError(f"note {i} has no segments")
        embedding = described.embeddings[i]
        knn = descriptions.neighbours.scores(embedding, fusion.neighbours_k, n) if embedding is not None and fusion.neighbours_weight else None
        fused = fuse_note(fusion, n, descriptions.label_candidates, note_probs[i], described.descriptions[i], described.examples[i], knn)
        scores = fused.scores
        kept = np.nonzero(scores >= params.score_floor)[0]
        kept = kept[np.argsort(-scores[kept], kind="stable")][:MAX_SCORED_CODES]
        score_map = {descriptions.codes[j]: round(float(scores[j]), SCORE_DECIMALS) for j in kept.tolist()}
        suggested = kept[scores[kept] >= limits[kept]][: params.max_suggestions]
        mapper = to_original[i] if to_original is not None else None
        suggestions = []
        for j in suggested.tolist():
            evidence: tuple[EvidenceSpan, ...] = ()
            column = label_of.get(j)
            if column is not None:
                best_row = int(rows[result.probs[rows, column].argmax()])
                evidence = evidence_spans(segments[best_row], result, best_row, column, params.evidence_tokens, mapper)
            sentence = int(fused.sentence[j])
            if sentence >= 0 and params.evidence_tokens > 0:
                evidence += (_sentence_span(described, sentence, j, mapper),)
            suggestions.append(Suggestion(code=descriptions.codes[j], display=descriptions.displays[j], score=round(float(scores[j]), SCORE_DECIMALS),
                                          threshold=float(limits[j]), evidence=evidence))
        out.append(NoteCodes(scores=score_map, suggestions=tuple(suggestions)))
    return out


def _sentence_span(described: DescribedNotes, sentence: int, candidate: int, to_original: OffsetMap | None) -> EvidenceSpan:
    """The matching sentence as an evidence span; its weight is the sentence's cosine with the code."""
    s = described.sentences[sentence]
    note = described.descriptions[s.note_index], described.examples[s.note_index]
    similarity = max((float(d.similarity[k]) for d in note for k in np.nonzero(d.codes == candidate)[0] if d.sentence[k] == sentence), default=0.0)
    start, end = to_original(s.start, s.end) if to_original is not None else (s.start, s.end)
    return EvidenceSpan(start=start, end=end, weight=round(similarity, SCORE_DECIMALS))

"""Stage 5: per-segment scores -> note scores, suggestions and evidence spans in the ORIGINAL text."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from engine.deid import DeidResult
from engine.pipeline.aggregate import AggregationParams, aggregate_notes, evidence_spans
from engine.pipeline.infer.base import InferenceResult
from schemas.labels import LabelSpace
from schemas.model_repo import ModelMetadata, SegmentationParams, Thresholds, TrainingSummary
from schemas.phi import PhiCategory
from schemas.text import Segment

CODES = ("I10", "E11.9", "J45.909")


def metadata(per_code: dict[str, float] | None = None, global_threshold: float = 0.5) -> ModelMetadata:
    return ModelMetadata(
        model_name="m",
        version=1,
        architecture="bert-xml",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        labels=LabelSpace(codes=CODES, descriptions=("Hypertension", "Diabetes", "Asthma"), code_set_release="ICD-10-CM 2026"),
        thresholds=Thresholds(global_threshold=global_threshold, per_code=per_code or {}),
        segmentation=SegmentationParams(max_length=16),
        deid_placeholders=("[NAME]",),
        training=TrainingSummary(dataset="unit"),
    )


def segment(note_index: int, offsets: list[tuple[int, int]]) -> Segment:
    offs = [(0, 0), *offsets, (0, 0)]
    return Segment(note_index=note_index, input_ids=list(range(len(offs))), offsets=offs)


def test_note_score_is_max_over_segments_and_thresholds_per_code():
    segs = [segment(0, [(0, 3)]), segment(0, [(4, 7)]), segment(1, [(0, 2)])]
    probs = np.array([[0.2, 0.9, 0.1], [0.7, 0.3, 0.35], [0.49, 0.5, 0.001]], dtype=np.float32)
    out = aggregate_notes(segs, InferenceResult(probs), 2, metadata(per_code={"J45.909": 0.3}), AggregationParams(score_floor=0.01))
    assert [s.code for s in out[0].suggestions] == ["E11.9", "I10", "J45.909"]  # highest first; J45 by its own threshold
    assert out[0].scores == {"E11.9": 0.9, "I10": 0.7, "J45.909": 0.35}
    assert [s.code for s in out[1].suggestions] == ["E11.9"]  # 0.5 reaches the threshold, 0.49 does not
    assert out[1].suggestions[0].threshold == 0.5 and out[1].suggestions[0].display == "Diabetes"
    assert out[1].scores == {"E11.9": 0.5, "I10": 0.49}  # 0.001 is under the audit floor
    assert all(s.evidence == () for n in out for s in n.suggestions)  # the model gave no evidence outputs


def test_cap_on_suggestions_and_rounding():
    segs = [segment(0, [(0, 3)])]
    probs = np.array([[0.912345678, 0.8, 0.7]], dtype=np.float32)
    out = aggregate_notes(segs, InferenceResult(probs), 1, metadata(), AggregationParams(max_suggestions=2))
    assert [s.code for s in out[0].suggestions] == ["I10", "E11.9"]
    assert out[0].suggestions[0].score == 0.9123


def test_shape_mismatches_are_refused():
    with pytest.raises(ValueError, match="label space"):
        aggregate_notes([segment(0, [(0, 1)])], InferenceResult(np.zeros((1, 2), np.float32)), 1, metadata(), AggregationParams())
    with pytest.raises(ValueError, match="segments"):
        aggregate_notes([segment(0, [(0, 1)])] * 2, InferenceResult(np.zeros((1, 3), np.float32)), 1, metadata(), AggregationParams())


def test_evidence_from_the_best_segment_merged_and_mapped_to_original_text():
    original = "Seen by Dr. Smithers for hypertension and asthma."
    deid_text = "Seen by Dr. [NAME] for hypertension and asthma."
    deid = DeidResult(text=deid_text, replacements=((12, 20, 12, 18, PhiCategory.NAME),), detected=())
    h = deid_text.index("hypertension")
    a = deid_text.index("asthma")
    # word pieces: "hyper" "##tension" touch -> one span; "[NAME]" maps back to the whole name
    seg0 = segment(0, [(0, 4), (12, 18), (h, h + 5), (h + 5, h + 12), (a, a + 6)])
    seg1 = segment(0, [(0, 4)])
    probs = np.array([[0.9, 0.1, 0.8], [0.6, 0.1, 0.95]], dtype=np.float32)
    k = 4
    positions = np.zeros((2, 3, k), dtype=np.int64)
    weights = np.zeros((2, 3, k), dtype=np.float32)
    positions[0, 0] = [3, 4, 2, 6]  # I10 in segment 0: hyper, ##tension, [NAME], [SEP]
    weights[0, 0] = [0.45, 0.4, 0.1, 0.05]
    positions[0, 2] = [5, 0, 1, 2]  # J45 in segment 0 (but segment 1 gives the note's J45 score)
    weights[0, 2] = [0.9, 0.05, 0.03, 0.02]
    positions[1, 2] = [1, 0, 2, 9]  # segment 1: "Seen", [CLS], [SEP], padding
    weights[1, 2] = [0.7, 0.2, 0.05, 0.05]
    result = InferenceResult(probs, positions, weights)
    out = aggregate_notes([seg0, seg1], result, 1, metadata(), AggregationParams(evidence_tokens=5), [deid.to_original])
    by_code = {s.code: s for s in out[0].suggestions}
    i10 = by_code["I10"].evidence
    assert [(original[e.start : e.end], e.weight) for e in i10] == [("hypertension", pytest.approx(0.85)), ("Smithers", pytest.approx(0.1))]
    j45 = by_code["J45.909"].evidence
    assert [original[e.start : e.end] for e in j45] == ["Seen"]  # special tokens and padding skipped


def test_evidence_token_budget_and_noise_floor():
    seg = segment(0, [(0, 1), (2, 3), (4, 5), (6, 7)])
    positions = np.array([[[1, 2, 3, 4]]], dtype=np.int64)
    weights = np.array([[[0.6, 0.3, 0.095, 0.005]]], dtype=np.float32)
    result = InferenceResult(np.ones((1, 1), np.float32), positions, weights)
    assert len(evidence_spans(seg, result, 0, 0, 2, None)) == 2
    assert len(evidence_spans(seg, result, 0, 0, 10, None)) == 3  # 0.005 < 1% of 0.6
    assert evidence_spans(seg, result, 0, 0, 0, None) == ()

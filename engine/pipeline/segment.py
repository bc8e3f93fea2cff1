"""Stage 3: de-identified texts -> model input segments, with the model version's own tokenizer and
segmentation parameters. ``schemas.text.segment_notes`` is the one implementation shared with training."""

from __future__ import annotations

from typing import Sequence

from engine.infra.model import ModelRuntime
from schemas.text import Segment, segment_notes


def segment_texts(texts: Sequence[str], runtime: ModelRuntime) -> list[Segment]:
    """Every text yields at least one segment; ``Segment.note_index`` is the text's position in ``texts``."""
    return segment_notes(texts, runtime.tokenizer, runtime.metadata.segmentation)


def segments_per_note(segments: Sequence[Segment], n_notes: int) -> list[list[int]]:
    """Indices of each note's segments, in order."""
    out: list[list[int]] = [[] for _ in range(n_notes)]
    for i, seg in enumerate(segments):
        out[seg.note_index].append(i)
    return out

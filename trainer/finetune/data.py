"""Fine-tuning data: notes -> label matrix and segments (``schemas.text.segment_notes``) -> note batches.

Training is note-level (paper 4.1 applied to the loss as well as to scoring): a batch holds whole notes,
every segment of those notes goes through the model, a note's logit per code is the max over its segments
(``segment_max``) and the BCE loss compares that with the note's labels. Why not segment-level loss with the
note's labels: a code is usually documented in one part of a long note, so copying the note's labels onto
every segment would teach the model that segments without any evidence carry the code (label noise), and it
would train a different quantity from the one evaluated and served (the max over segments).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams
from schemas.notes import NoteRecord
from schemas.text import PAD, Segment, pad_batch, segment_notes

log = logging.getLogger(__name__)


def label_matrix(records: Sequence[NoteRecord], labels: LabelSpace) -> tuple[np.ndarray, Counter]:
    """[notes, codes] 0/1 targets, and the count of each code that is outside the label space (skipped)."""
    targets = np.zeros((len(records), len(labels)), dtype=np.float32)
    outside: Counter = Counter()
    for row, record in enumerate(records):
        for code in record.codes:
            column = labels.index.get(code)
            if column is None:
                outside[code] += 1
            else:
                targets[row, column] = 1.0
    return targets, outside


@dataclass
class SegmentedNotes:
    records: list[NoteRecord]
    segments: list[Segment]
    note_segments: list[list[int]]  # indices into ``segments`` for each note
    targets: np.ndarray  # [notes, codes]

    def __len__(self) -> int:
        return len(self.records)

    def note_lengths(self) -> list[int]:
        """Word pieces per note (for length-grouped batches)."""
        return [sum(len(self.segments[s]) for s in segs) for segs in self.note_segments]


def segment_split(records: Sequence[NoteRecord], tokenizer: Tokenizer, params: SegmentationParams, labels: LabelSpace, split: str = "split") -> SegmentedNotes:
    if not records:
        raise ValueError(f"the {split} split has no notes")
    targets, outside = label_matrix(records, labels)
    if outside:
        log.warning("%s: %d code occurrences (%d distinct codes) are outside the label space and were skipped", split, sum(outside.values()), len(outside))
    segments = segment_notes([r.text for r in records], tokenizer, params)
    note_segments: list[list[int]] = [[] for _ in records]
    for i, seg in enumerate(segments):
        note_segments[seg.note_index].append(i)
    multi = sum(len(s) > 1 for s in note_segments)
    log.info("%s: %d notes -> %d segments of <= %d tokens (%d notes need several)", split, len(records), len(segments), params.max_length, multi)
    return SegmentedNotes(list(records), segments, note_segments, targets)


def collate_notes(data: SegmentedNotes, note_indices: Sequence[int], pad_id: int, max_length: int) -> dict[str, torch.Tensor]:
    """All segments of the given notes, padded; ``segment_note`` maps each segment to its note's row."""
    segments, owner = [], []
    for row, note in enumerate(note_indices):
        for s in data.note_segments[note]:
            segments.append(data.segments[s])
            owner.append(row)
    ids, mask = pad_batch(segments, pad_id, multiple=32, max_length=max_length)
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "segment_note": torch.tensor(owner, dtype=torch.long),
        "targets": torch.from_numpy(data.targets[list(note_indices)]),
    }


def segment_max(segment_logits: torch.Tensor, segment_note: torch.Tensor, n_notes: int) -> torch.Tensor:
    """Differentiable note logits = max over each note's segments (the torch twin of
    ``schemas.text.max_over_segments``; the gradient flows to the segment that holds the max)."""
    index = segment_note[:, None].expand_as(segment_logits)
    out = segment_logits.new_full((n_notes, segment_logits.shape[1]), float("-inf"))
    return out.scatter_reduce(0, index, segment_logits, reduce="amax", include_self=False)


def pad_id_of(tokenizer: Tokenizer) -> int:
    return tokenizer.token_to_id(PAD)

"""Note text -> model inputs: the ONE implementation of normalisation and segmentation, used by the
trainer (pretraining, fine-tuning, evaluation, export parity) and the engine (serving).

Normalisation is the tokenizer's own normalizer (lower-casing, accent stripping, control-character
clean-up), saved inside ``tokenizer.json``: the trainer and the engine load the same file, so they cannot
drift, and the tokenizer keeps character offsets into the text it was given.

Segmentation (paper 4.1): a note longer than the model is split into consecutive windows of
``max_length - 2`` word pieces, each wrapped in [CLS] ... [SEP]; the note's score for a code is the
maximum over its segments (``max_over_segments``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from schemas.model_repo import SegmentationParams

CLS, SEP, PAD, UNK, MASK = "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a ``tokenizer.json`` (or a directory holding one) with truncation and padding switched off:
    segmentation below decides lengths, never the tokenizer."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer.json at {path}")
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    for special in (CLS, SEP, PAD):
        if tok.token_to_id(special) is None:
            raise ValueError(f"tokenizer {path} has no {special} token")
    return tok


@dataclass(frozen=True)
class Segment:
    """One model input window of a note."""

    note_index: int  # position of the note in the batch given to segment_notes
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # character span in the note text per position; (0, 0) for [CLS]/[SEP]

    def __len__(self) -> int:
        return len(self.input_ids)


def segment_notes(texts: Sequence[str], tokenizer: Tokenizer, params: SegmentationParams) -> list[Segment]:
    """Tokenise notes and cut each into consecutive segments. Every note yields at least one segment."""
    cls_id, sep_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP)
    window = params.max_length - 2
    step = window - params.stride
    if step <= 0:
        raise ValueError(f"stride {params.stride} must be smaller than max_length - 2 = {window}")
    segments: list[Segment] = []
    for i, enc in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False)):
        ids, offs = enc.ids, enc.offsets
        starts = range(0, max(len(ids) - params.stride, 1), step) if ids else [0]
        for s in starts:
            segments.append(
                Segment(
                    note_index=i,
                    input_ids=[cls_id, *ids[s : s + window], sep_id],
                    offsets=[(0, 0), *offs[s : s + window], (0, 0)],
                )
            )
    return segments


def bucket_length(length: int, multiple: int = 32, max_length: int | None = None) -> int:
    """Round a length up to a multiple so batches of similar notes share a shape (cheaper padding than
    max_length, and Triton's dynamic batcher can merge same-shaped requests)."""
    padded = -(-length // multiple) * multiple
    return min(padded, max_length) if max_length else padded


def pad_batch(segments: Sequence[Segment], pad_id: int, multiple: int = 32, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack segments into ``input_ids`` and ``attention_mask`` (int64), padded to a bucketed length."""
    width = bucket_length(max(len(s) for s in segments), multiple, max_length)
    ids = np.full((len(segments), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(segments), width), dtype=np.int64)
    for row, seg in enumerate(segments):
        ids[row, : len(seg)] = seg.input_ids
        mask[row, : len(seg)] = 1
    return ids, mask


def max_over_segments(segment_scores: np.ndarray, note_index: Sequence[int], n_notes: int) -> np.ndarray:
    """Note score per code = maximum over the note's segments (paper 4.1). [segments, codes] -> [notes, codes]."""
    out = np.full((n_notes, segment_scores.shape[1]), -np.inf, dtype=segment_scores.dtype)
    np.maximum.at(out, np.asarray(note_index), segment_scores)
    return out


# ----- sentences (the description scorer's units, and its evidence) ------------------------------------

_SENTENCE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z0-9\[(\"'])|(?<=;)\s+")
MAX_SENTENCE_CHARS = 300  # longer runs without a break (lists, run-on dictation) are cut on a space


def sentence_spans(text: str, max_chars: int = MAX_SENTENCE_CHARS, min_chars: int = 3) -> list[tuple[int, int]]:
    """Character spans (start, end) of a note's sentences: line breaks, sentence ends (. ! ? before a capital,
    digit, bracket or quote) and semicolons; runs longer than ``max_chars`` are cut at their last space
    before the limit. Spans are stripped of surrounding whitespace; those under ``min_chars`` are dropped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in [*_SENTENCE_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        while start < end:
            while start < end and text[start].isspace():
                start += 1
            stop = end
            if stop - start > max_chars:
                cut = text.rfind(" ", start, start + max_chars)
                stop = cut if cut > start else start + max_chars
            piece_end = stop
            while piece_end > start and text[piece_end - 1].isspace():
                piece_end -= 1
            if piece_end - start >= min_chars:
                spans.append((start, piece_end))
            start = stop
        start = match.end() if match else len(text)
    return spans

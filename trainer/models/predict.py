"""Scoring notes with a torch coder: segments in length-sorted batches, then the max over each note's
segments (``schemas.text.max_over_segments``, paper 4.1), then the sigmoid (max and sigmoid commute)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from tqdm.auto import tqdm

from schemas.model_repo import SegmentationParams
from schemas.text import PAD, Segment, max_over_segments, pad_batch, segment_notes


@contextmanager
def scores_only(model: nn.Module) -> Iterator[None]:
    """Switch off BERT-XML's [B, C, T] attention output while only scores are needed (it is the largest
    tensor of the head: 72 MB per 8 segments of 1,024 tokens with 2,292 codes)."""
    modules = [m for m in model.modules() if hasattr(m, "return_attention")]
    previous = [m.return_attention for m in modules]
    for m in modules:
        m.return_attention = False
    try:
        yield
    finally:
        for m, value in zip(modules, previous):
            m.return_attention = value


@torch.no_grad()
def segment_logits(model: nn.Module, segments: Sequence[Segment], pad_id: int, max_length: int, batch_size: int = 16, device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """[segments, codes] logits, in the order given."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(segments)), key=lambda i: len(segments[i]))  # similar lengths share a batch
    out: np.ndarray | None = None
    starts = range(0, len(order), batch_size)
    with scores_only(model):
        for start in tqdm(starts, desc="scoring", unit="batch", disable=not progress):
            rows = order[start : start + batch_size]
            ids, mask = pad_batch([segments[i] for i in rows], pad_id, multiple=32, max_length=max_length)
            logits = model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)).logits.float().cpu().numpy()
            if out is None:
                out = np.empty((len(segments), logits.shape[1]), dtype=np.float32)
            out[rows] = logits
    model.train(was_training)
    assert out is not None, "no segments to score"
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def score_notes(model: nn.Module, texts: Sequence[str], tokenizer: Tokenizer, segmentation: SegmentationParams, batch_size: int = 16, device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """[notes, codes] probabilities: per-code max over each note's segments."""
    if not texts:
        raise ValueError("no notes to score")
    segments = segment_notes(list(texts), tokenizer, segmentation)
    logits = segment_logits(model, segments, tokenizer.token_to_id(PAD), segmentation.max_length, batch_size, device, progress)
    return sigmoid(max_over_segments(logits, [s.note_index for s in segments], len(texts)))

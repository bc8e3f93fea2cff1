"""The description scorer's inputs and outputs on the note side, shared by the trainer and the engine.

The scorer graph (written by ``trainer export``) embeds sentences and returns, per sentence, the ``top_k``
candidate codes most similar to it (``code_index`` [S, K] into the version's description catalogue, and
``similarity`` [S, K], cosine in [-1, 1]). Here: notes -> sentence inputs (``schemas.text.sentence_spans``,
tokenised with the scorer's own tokenizer), and sentence outputs -> per-note best similarity per code with
the sentence that gave it (the evidence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from schemas.text import CLS, SEP, Segment, sentence_spans

SENTENCE_INPUT_IDS = "input_ids"
SENTENCE_ATTENTION_MASK = "attention_mask"
OUTPUT_CODE_INDEX = "code_index"
OUTPUT_SIMILARITY = "similarity"
# the scorer graph's outputs, in order: per sentence the top-k codes by title/terms, by training examples, and its embedding
SCORER_OUTPUTS = (OUTPUT_CODE_INDEX, OUTPUT_SIMILARITY, "example_code_index", "example_similarity", "sentence_embedding")
MAX_SENTENCE_TOKENS = 128  # incl. [CLS]/[SEP]; sentence_spans keeps sentences under ~300 characters


@dataclass(frozen=True)
class Sentence:
    note_index: int
    start: int  # character span in the note text
    end: int
    segment: Segment  # the scorer's input ([CLS] word pieces [SEP])


def note_sentences(texts: Sequence[str], tokenizer: Tokenizer, max_tokens: int = MAX_SENTENCE_TOKENS) -> list[Sentence]:
    """Every sentence of every note, tokenised (truncated to ``max_tokens``). A note without any sentence
    (empty text) has none: it gets no description scores."""
    cls_id, sep_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP)
    spans = [(i, s, e) for i, text in enumerate(texts) for s, e in sentence_spans(text)]
    encodings = tokenizer.encode_batch([texts[i][s:e] for i, s, e in spans], add_special_tokens=False)
    out = []
    for (i, s, e), enc in zip(spans, encodings):
        ids = enc.ids[: max_tokens - 2]
        offsets = [(s + a, s + b) for a, b in enc.offsets[: max_tokens - 2]]
        out.append(Sentence(i, s, e, Segment(i, [cls_id, *ids, sep_id], [(0, 0), *offsets, (0, 0)])))
    return out


@dataclass(frozen=True)
class NoteDescriptions:
    """One note's description scores: candidate index -> best similarity, and the sentence (index into the
    note's sentences) that gave it."""

    codes: np.ndarray  # [n] candidate indices, ascending
    similarity: np.ndarray  # [n] best cosine per code
    sentence: np.ndarray  # [n] row of the best sentence in the ``sentences`` list given to ``per_note``


def per_note(sentences: Sequence[Sentence], code_index: np.ndarray, similarity: np.ndarray, n_notes: int) -> list[NoteDescriptions]:
    """Sentence top-k outputs -> per note, each code's best similarity over the note's sentences."""
    if code_index.shape != similarity.shape or code_index.shape[0] != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but outputs of shapes {code_index.shape} / {similarity.shape}")
    owner = np.fromiter((s.note_index for s in sentences), dtype=np.int64, count=len(sentences))
    k = code_index.shape[1] if code_index.ndim == 2 else 0
    rows = np.repeat(np.arange(len(sentences)), k)
    notes_flat, codes_flat, sims_flat = owner[rows], code_index.reshape(-1), similarity.reshape(-1).astype(np.float32)
    # best first, so the first occurrence of a (note, code) pair is its maximum
    order = np.lexsort((-sims_flat, codes_flat, notes_flat))
    notes_flat, codes_flat, sims_flat, rows = notes_flat[order], codes_flat[order], sims_flat[order], rows[order]
    first = np.r_[True, (notes_flat[1:] != notes_flat[:-1]) | (codes_flat[1:] != codes_flat[:-1])] if order.size else np.zeros(0, bool)
    notes_flat, codes_flat, sims_flat, rows = notes_flat[first], codes_flat[first], sims_flat[first], rows[first]
    bounds = np.searchsorted(notes_flat, np.arange(n_notes + 1))
    return [NoteDescriptions(codes_flat[a:b], sims_flat[a:b], rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

"""Build the description scorer of a run: the term matrix (cached: it depends only on the catalogue), the
example sentences and the neighbours (both from labelled training notes), and score notes with it.

Examples (distant supervision, no span annotation needed): for every training note and each of its gold codes
that is a candidate, the note's sentence most similar to the code's terms is taken as that code's example. A new
note's sentence close to it then votes for the code: the sentence-level counterpart of the kNN term, and what
carries the classifier's rare codes (one training note is one example).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from schemas.descriptions import MAX_SENTENCE_TOKENS, NoteDescriptions, Sentence, note_sentences, per_note
from schemas.fusion import Neighbours, note_embedding
from schemas.text import PAD, Segment, pad_batch
from trainer.describe.catalogue import CodeCatalogue
from trainer.describe.model import ENCODER_NAME, DescriptionScorer, SentenceEncoder

log = logging.getLogger(__name__)
BATCH = 64


@torch.no_grad()
def embed_segments(encoder: SentenceEncoder, segments: Sequence[Segment], pad_id: int, desc: str = "embedding", progress: bool = True) -> np.ndarray:
    """Unit sentence embeddings [len(segments), H], computed in length-sorted batches. The vectors that become
    constants of the scorer (terms, examples, neighbours) are computed in bf16 where it pays
    (``bf16_pays``: 2.5x faster on some CPUs, cosines within ~1e-2); sentences of the notes being scored go through the fp32 graph."""
    from trainer.training.precision import bf16_pays

    unique, source = unique_segments(segments)
    out = np.zeros((len(segments), encoder.encoder.config.hidden_size), dtype=np.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_pays(torch.device("cpu"))):
        for start in tqdm(range(0, len(unique), BATCH), desc=desc, unit="batch", disable=not progress):
            rows = unique[start : start + BATCH]
            ids, mask = pad_batch([segments[i] for i in rows], pad_id, multiple=8)
            out[rows] = nn_normalize(encoder(torch.from_numpy(ids), torch.from_numpy(mask)).float()).numpy()
    return out[source]


def unique_segments(segments: Sequence[Segment]) -> tuple[list[int], np.ndarray]:
    """Identical inputs (boilerplate, templated sentences: "No known drug allergies.") are computed once:
    (indices of the first of each distinct input, shortest first; for every segment, the index of its first)."""
    first_of: dict[tuple[int, ...], int] = {}
    source = np.fromiter((first_of.setdefault(tuple(s.input_ids), i) for i, s in enumerate(segments)), dtype=np.int64, count=len(segments))
    return sorted(first_of.values(), key=lambda i: len(segments[i])), source


def nn_normalize(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


def text_segments(texts: Sequence[str], tokenizer: Tokenizer, max_tokens: int = 64) -> list[Segment]:
    """One [CLS] text [SEP] input per short text (a code term), truncated to ``max_tokens``."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return [Segment(i, [cls_id, *enc.ids[: max_tokens - 2], sep_id], []) for i, enc in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False))]


def term_matrix(catalogue: CodeCatalogue, encoder: SentenceEncoder, tokenizer: Tokenizer, cache_dir: Path | None, progress: bool = True) -> np.ndarray:
    """[terms, H] unit embeddings of the catalogue's terms; cached under ``cache_dir`` by a hash of the terms
    and the encoder (embedding ~85k terms takes minutes on a CPU)."""
    key = hashlib.sha256(("\n".join(catalogue.terms) + "|" + ENCODER_NAME).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"terms-{key}.npy" if cache_dir else None
    if path is not None and path.is_file():
        log.info("term embeddings from the cache %s", path)
        return np.load(path)
    matrix = embed_segments(encoder, text_segments(catalogue.terms, tokenizer), tokenizer.token_to_id(PAD), "embedding code terms", progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, matrix)
    return matrix


@dataclass
class EmbeddedNotes:
    sentences: list[Sentence]
    embeddings: np.ndarray  # [sentences, H]
    n_notes: int

    def of_note(self, note: int) -> np.ndarray:
        return self.embeddings[[i for i, s in enumerate(self.sentences) if s.note_index == note]]

    def note_embeddings(self) -> list[np.ndarray | None]:
        owner = np.fromiter((s.note_index for s in self.sentences), dtype=np.int64, count=len(self.sentences))
        return [note_embedding(self.embeddings[owner == i]) for i in range(self.n_notes)]


def embed_notes(texts: Sequence[str], encoder: SentenceEncoder, tokenizer: Tokenizer, progress: bool = True) -> EmbeddedNotes:
    sentences = note_sentences(texts, tokenizer, MAX_SENTENCE_TOKENS)
    embeddings = embed_segments(encoder, [s.segment for s in sentences], tokenizer.token_to_id(PAD), "embedding sentences", progress)
    return EmbeddedNotes(sentences, embeddings, len(texts))


def coded_sentences(notes: EmbeddedNotes, gold: Sequence[Sequence[str]], catalogue: CodeCatalogue,
                    terms: np.ndarray) -> list[tuple[int, int, int]]:
    """(note, candidate index, sentence row) for every gold code of a labelled note that is a candidate: the
    note's sentence most similar to the code's terms (the code's example; the encoder tuning's pair)."""
    index = {c: j for j, c in enumerate(catalogue.codes)}
    term_code = np.asarray(catalogue.term_code)
    rows_of: dict[int, np.ndarray] = {}
    owner = np.fromiter((s.note_index for s in notes.sentences), dtype=np.int64, count=len(notes.sentences))
    out = []
    for note, note_gold in enumerate(gold):
        rows = np.nonzero(owner == note)[0]
        if not len(rows):
            continue
        for j in sorted({index[c] for c in note_gold if c in index}):
            if j not in rows_of:
                rows_of[j] = np.nonzero(term_code == j)[0]
            out.append((note, j, int(rows[(notes.embeddings[rows] @ terms[rows_of[j]].T).max(axis=1).argmax()])))
    return out


def examples_and_neighbours(notes: EmbeddedNotes, gold: Sequence[Sequence[str]], catalogue: CodeCatalogue,
                            terms: np.ndarray) -> tuple[np.ndarray, np.ndarray, Neighbours]:
    """From labelled notes: (example embeddings [E, H], their candidate indices [E], the kNN neighbours)."""
    coded = coded_sentences(notes, gold, catalogue, terms)
    owner = np.fromiter((s.note_index for s in notes.sentences), dtype=np.int64, count=len(notes.sentences))
    embeddings, indptr, codes = [], [0], []
    for note in range(len(gold)):
        if (owner == note).any():
            embeddings.append(note_embedding(notes.embeddings[owner == note]))
            codes += [j for n, j, _ in coded if n == note]
            indptr.append(len(codes))
    dim = terms.shape[1]
    neighbours = Neighbours(np.stack(embeddings).astype(np.float32) if embeddings else np.zeros((0, dim), np.float32),
                            np.asarray(indptr, dtype=np.int64), np.asarray(codes, dtype=np.int64))
    example_matrix = notes.embeddings[[row for _, _, row in coded]].astype(np.float32) if coded else np.zeros((0, dim), np.float32)
    return example_matrix, np.asarray([j for _, j, _ in coded], dtype=np.int64), neighbours


def build_scorer(encoder: SentenceEncoder, terms: np.ndarray, catalogue: CodeCatalogue, examples: np.ndarray, example_code: np.ndarray,
                 top_k: int) -> DescriptionScorer:
    return DescriptionScorer(encoder, torch.from_numpy(terms), torch.tensor(catalogue.term_code), torch.from_numpy(examples),
                             torch.from_numpy(example_code), top_k).eval()


@dataclass
class ScoredNotes:
    """The description scorer's outputs for a list of notes, per note (what the engine computes per note)."""

    descriptions: list[NoteDescriptions]
    examples: list[NoteDescriptions]
    embeddings: list[np.ndarray | None]  # note embeddings (kNN)
    sentences: list[Sentence]


@torch.no_grad()
def score_with(scorer: DescriptionScorer, texts: Sequence[str], tokenizer: Tokenizer, progress: bool = True) -> ScoredNotes:
    """Run the scorer (PyTorch, the same graph ``trainer export`` writes) over every sentence of the notes."""
    sentences = note_sentences(texts, tokenizer, MAX_SENTENCE_TOKENS)
    if not sentences:
        empty = NoteDescriptions(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
        return ScoredNotes([empty] * len(texts), [empty] * len(texts), [None] * len(texts), [])
    pad_id = tokenizer.token_to_id(PAD)
    # a sentence's outputs depend on its tokens only: each distinct sentence is scored once (templated notes
    # repeat most of theirs), then every sentence takes its first copy's row
    order, source = unique_segments([s.segment for s in sentences])
    outputs: list[np.ndarray | None] = [None] * 5
    for start in tqdm(range(0, len(order), BATCH), desc="description scorer", unit="batch", disable=not progress):
        rows = order[start : start + BATCH]
        ids, mask = pad_batch([sentences[i].segment for i in rows], pad_id, multiple=8)
        result = [t.numpy() for t in scorer(torch.from_numpy(ids), torch.from_numpy(mask))]
        for k, array in enumerate(result):
            if outputs[k] is None:
                outputs[k] = np.empty((len(sentences), *array.shape[1:]), dtype=array.dtype)
            outputs[k][rows] = array
    codes, sims, ex_codes, ex_sims, emb = (array[source] for array in outputs)
    owner = np.fromiter((s.note_index for s in sentences), dtype=np.int64, count=len(sentences))
    return ScoredNotes(per_note(sentences, codes, sims, len(texts)), per_note(sentences, ex_codes, ex_sims, len(texts)),
                       [note_embedding(emb[owner == i]) for i in range(len(texts))], sentences)

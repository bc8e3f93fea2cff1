"""Bi-GRU with multi-head self-attention (paper 3.4, the strongest non-BERT baseline).

    e_i = E x_i                                         (eq. 5)  300-d word embeddings
    h_i = [GRU_fwd(e)_i ; GRU_bwd(e)_i]                 (eq. 6)  1 layer, 512 per direction
    A_k = softmax_i(w_k^T tanh(W_1 h_i))                (eq. 7)  r = 200 heads, padding masked out
    y   = sigmoid(W_o [sum_i A_1i h_i ; ... ; sum_i A_ri h_i] + b)   (eq. 8)

The paper initialised E from StarSpace embeddings, which are not available here. Instead E starts from the
pretrained BERT's input word-piece embeddings (same vocabulary), reduced to 300 dimensions by PCA
(``embeddings_from_encoder``); ``embedding_init="random"`` keeps a random start. At the paper's sizes W_o is
large (200 heads x 1,024 x 2,292 codes = 470M weights); the sizes are config fields.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainer.models.output import CoderOutput


class MultiHeadSelfAttention(nn.Module):
    """r attention distributions over tokens (eq. 7) and their pooled contexts (eq. 8's input)."""

    def __init__(self, hidden: int, attention_dim: int, heads: int):
        super().__init__()
        self.w_1 = nn.Linear(hidden, attention_dim, bias=False)
        self.w_heads = nn.Linear(attention_dim, heads, bias=False)  # one w_k per head

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.w_heads(torch.tanh(self.w_1(states)))  # [B, T, r]
        scores = scores.masked_fill((attention_mask == 0)[:, :, None], float("-inf"))
        attention = scores.softmax(dim=1).transpose(1, 2)  # eq. 7: [B, r, T]
        return attention @ states, attention  # [B, r, hidden]


class BiGRUAttention(nn.Module):
    def __init__(self, vocab_size: int, n_codes: int, embedding_dim: int = 300, gru_hidden: int = 512, heads: int = 200, attention_dim: int = 256, pad_id: int = 0, dropout: float = 0.2):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)  # E (eq. 5)
        self.gru = nn.GRU(embedding_dim, gru_hidden, num_layers=1, batch_first=True, bidirectional=True)  # eq. 6
        self.attention = MultiHeadSelfAttention(2 * gru_hidden, attention_dim, heads)  # eq. 7
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(heads * 2 * gru_hidden, n_codes)  # W_o, b (eq. 8)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CoderOutput:
        embedded = self.dropout(self.embeddings(input_ids))
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=input_ids.shape[1])
        pooled, _ = self.attention(states, attention_mask)
        return CoderOutput(self.output(self.dropout(pooled.flatten(1))), None)


@torch.no_grad()
def embeddings_from_encoder(word_embeddings: torch.Tensor, dim: int, seed: int = 0) -> torch.Tensor:
    """Reduce a BERT input-embedding table [vocab, hidden] to [vocab, dim] by PCA (StarSpace stand-in).

    The leading principal components keep most of the table's variance; when the encoder is narrower than
    ``dim`` the remaining columns are small random values. Columns are scaled to unit variance so the GRU
    sees inputs on the scale of a default nn.Embedding."""
    table = word_embeddings.float()
    centred = table - table.mean(dim=0, keepdim=True)
    keep = min(dim, centred.shape[1], centred.shape[0])
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ v[:keep].T
    projected = projected / projected.std(dim=0, keepdim=True).clamp(min=1e-6)
    if keep < dim:
        generator = torch.Generator().manual_seed(seed)
        filler = 0.1 * torch.randn(table.shape[0], dim - keep, generator=generator)
        projected = torch.cat([projected, filler], dim=1)
    return projected

"""BERT-XML (paper 3.3): a BERT encoder with the multi-label attention output layer.

For every code j a label vector l_j attends over the encoder's last-layer token states h_i:

    a_ij = softmax_i(<h_i, l_j>)            (eq. 2)   padding positions get exactly 0
    c_j  = sum_i a_ij h_i                   (eq. 3)
    y_j  = sigmoid(W_a relu(W_b c_j) + b_j) (eq. 4)   W_a, W_b shared by all codes; b_j: see below

``b_j`` (``code_bias``, not in the paper's eq. 4) is a per-code bias started at the code's training log-odds
(``trainer.models.prior``). Without it every code starts at probability 0.5 and the only per-code parameters
are the l_j: with ~1,800 codes at a ~0.6% base rate, a short CPU fine-tuning spends its steps pulling every
logit down to the prior (MiniLM + XML learnt nothing else in an epoch; docs/finetuning.md).

Memory: the attention is [batch, codes, tokens] and the contexts [batch, codes, hidden]; with 2,292 codes
those dominate the head, so codes are processed in chunks of ``code_chunk`` and, while training, each chunk
is recomputed in the backward pass (activation checkpointing) instead of keeping its intermediates. See
docs/finetuning.md for the measured and analytic peak.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import BertModel

from trainer.models.output import CoderOutput


class MultiLabelAttention(nn.Module):
    """The XML output layer (eqs. 2-4) on top of token states."""

    def __init__(self, n_codes: int, hidden: int, xml_hidden: int, code_chunk: int = 512, checkpoint_chunks: bool = True, code_bias: bool = True):
        super().__init__()
        self.label_vectors = nn.Parameter(torch.empty(n_codes, hidden))  # l_j, one row per code
        self.code_bias = nn.Parameter(torch.zeros(n_codes)) if code_bias else None  # b_j
        nn.init.normal_(self.label_vectors, std=hidden**-0.5)  # random init; label_init.py may overwrite
        self.w_b = nn.Linear(hidden, xml_hidden)  # W_b (eq. 4), shared across codes
        self.w_a = nn.Linear(xml_hidden, 1)  # W_a (eq. 4), shared across codes
        self.code_chunk = code_chunk
        self.checkpoint_chunks = checkpoint_chunks

    def _chunk(self, states: torch.Tensor, pad: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.einsum("bth,ch->bct", states, labels)  # <h_i, l_j>
        scores = scores.masked_fill(pad[:, None, :], float("-inf"))  # exp(-inf) = 0: padding gets no weight
        attention = scores.softmax(dim=-1)  # eq. 2
        context = torch.einsum("bct,bth->bch", attention, states)  # eq. 3
        logits = self.w_a(torch.relu(self.w_b(context))).squeeze(-1)  # eq. 4 (before the sigmoid)
        return logits, attention

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor, return_attention: bool = True) -> CoderOutput:
        pad = attention_mask == 0
        logits, attentions = [], []
        for start in range(0, self.label_vectors.shape[0], self.code_chunk):
            labels = self.label_vectors[start : start + self.code_chunk]
            if self.training and self.checkpoint_chunks and torch.is_grad_enabled():
                chunk_logits, chunk_attention = checkpoint(self._chunk, states, pad, labels, use_reentrant=False)
            else:
                chunk_logits, chunk_attention = self._chunk(states, pad, labels)
            logits.append(chunk_logits)
            if return_attention:
                attentions.append(chunk_attention)
        out = torch.cat(logits, dim=1)
        if self.code_bias is not None:
            out = out + self.code_bias
        return CoderOutput(out, torch.cat(attentions, dim=1) if return_attention else None)


class BertXML(nn.Module):
    """BERT encoder + multi-label attention: ``forward(input_ids, attention_mask) -> CoderOutput``."""

    def __init__(self, encoder: BertModel, n_codes: int, xml_hidden: int | None = None, code_chunk: int = 512, checkpoint_chunks: bool = True,
                 code_bias: bool = True):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.xml = MultiLabelAttention(n_codes, hidden, xml_hidden or hidden, code_chunk, checkpoint_chunks, code_bias)
        self.return_attention = True  # training switches it off: the [B, C, T] tensor is not needed there

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CoderOutput:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # h_i
        return self.xml(states, attention_mask, return_attention=self.return_attention)

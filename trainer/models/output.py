"""What every torch coder returns (a NamedTuple, so tracing and ONNX export see plain tensors)."""

from __future__ import annotations

from typing import NamedTuple

import torch


class CoderOutput(NamedTuple):
    logits: torch.Tensor  # [batch, codes]; probabilities are sigmoid(logits) (eq. 1 / eq. 4)
    # [batch, codes, tokens]: BERT-XML's a_ij (eq. 2), each row sums to 1 over real tokens and is exactly 0
    # on padding. None for models without per-code token attention (bert-cls, bigru-attention).
    token_attention: torch.Tensor | None = None

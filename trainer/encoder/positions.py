"""Extend a BERT's absolute position embeddings (paper 4.2.1: the off-the-shelf BERT goes from 512 to
1,024 positions; the first 512 are kept, the new ones drawn from N(0, initializer_range))."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from schemas.cli import UserError


def bert_embeddings(model: PreTrainedModel) -> nn.Module:
    base = getattr(model, model.base_model_prefix, model) if hasattr(model, "base_model_prefix") else model
    emb = getattr(base, "embeddings", None)
    if emb is None or not hasattr(emb, "position_embeddings"):
        raise UserError(f"{type(model).__name__} has no BERT-style absolute position embeddings to extend")
    return emb


@torch.no_grad()
def extend_position_embeddings(model: PreTrainedModel, new_max: int, seed: int = 0) -> PreTrainedModel:
    """In place: grow ``position_embeddings`` to ``new_max`` rows and rebuild the ``position_ids`` and
    ``token_type_ids`` buffers to match; update the config. A no-op at the current size."""
    emb = bert_embeddings(model)
    old: nn.Embedding = emb.position_embeddings
    old_max, hidden = old.weight.shape
    if new_max < old_max:
        raise UserError(f"cannot shrink position embeddings from {old_max} to {new_max}")
    if new_max == old_max:
        return model
    std = getattr(model.config, "initializer_range", 0.02)
    gen = torch.Generator().manual_seed(seed)
    added = torch.randn(new_max - old_max, hidden, generator=gen, dtype=torch.float32) * std
    new = nn.Embedding(new_max, hidden, device=old.weight.device, dtype=old.weight.dtype)
    new.weight[:old_max] = old.weight
    new.weight[old_max:] = added.to(old.weight)
    emb.position_embeddings = new
    device = old.weight.device
    emb.position_ids = nn.Buffer(torch.arange(new_max, device=device).expand((1, -1)), persistent=False)
    if hasattr(emb, "token_type_ids"):
        emb.token_type_ids = nn.Buffer(torch.zeros((1, new_max), dtype=torch.long, device=device), persistent=False)
    model.config.max_position_embeddings = new_max
    return model


@torch.no_grad()
def sinusoidal_positions(model: PreTrainedModel, scale: float | None = None) -> PreTrainedModel:
    """In place: set absolute position embeddings to the Transformer's sinusoids (Vaswani et al. 2017),
    scaled to ``scale`` standard deviation (default: the word embeddings'). A BERT trained from scratch
    otherwise starts with random positions, and attention has nothing to tell neighbours apart by until they
    are learnt: the long "unigram plateau" of MLM pretraining. Still learnt (only the start changes)."""
    emb = bert_embeddings(model)
    weight = emb.position_embeddings.weight
    positions, dim = weight.shape
    position = torch.arange(positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-torch.log(torch.tensor(10_000.0)) / dim))
    table = torch.zeros(positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    target = float(emb.word_embeddings.weight.std()) if scale is None else scale
    weight.copy_((table / table.std() * target).to(weight.dtype))
    return model

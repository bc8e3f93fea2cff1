"""AdamW without weight decay on biases and LayerNorm weights, and the BERT schedule: linear warm-up to
the peak learning rate, then linear decay to 0 at the last step."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from trainer.training.config import OptimConfig


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            is_norm = isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "norm" in type(module).__name__.lower()
            (no_decay if name == "bias" or is_norm or param.ndim < 2 else decay).append(param)
    # Tied weights (MLM decoder <-> word embeddings) appear once: modules() yields each parameter object
    # once per owning module, so de-duplicate by identity.
    seen: set[int] = set()
    groups = []
    for params, wd in ((decay, weight_decay), (no_decay, 0.0)):
        unique = [p for p in params if not (id(p) in seen or seen.add(id(p)))]
        if unique:
            groups.append({"params": unique, "weight_decay": wd})
    return groups


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.AdamW(
        parameter_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.999), eps=1e-8, fused=fused or None
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = math.ceil(config.warmup_ratio * total_steps)
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=max(total_steps, 1))

"""AdamW without weight decay on biases and LayerNorm weights, and the BERT schedule: linear warm-up to
the peak learning rate, then linear decay to 0 at the last step.

Fine-tuning gives the output layer its own peak learning rate (``OptimConfig.head_lr``): the head starts from
scratch (or from description embeddings) and needs far larger steps than the pretrained encoder, whose
features a large rate would destroy. "Encoder" parameters are those under a module attribute named
``encoder`` (every BERT coder here); the rest is the head. The schedule scales both alike."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from trainer.training.config import OptimConfig


ENCODER_PREFIX = "encoder."


def _is_encoder(module_name: str) -> bool:
    """A module of the pretrained encoder: ``encoder.*`` at the top (coders) or below a DDP ``module.``."""
    name = module_name.removeprefix("module.")
    return name == "encoder" or name.startswith(ENCODER_PREFIX)


def parameter_groups(model: nn.Module, weight_decay: float, lr: float | None = None, head_lr: float | None = None) -> list[dict]:
    """AdamW groups: (encoder | head) x (decay | no decay). Without ``head_lr`` every group uses ``lr``."""
    buckets: dict[tuple[bool, bool], list] = {}
    for module_name, module in model.named_modules():
        is_norm = isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "norm" in type(module).__name__.lower()
        head = bool(head_lr) and not _is_encoder(module_name)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            decays = not (name == "bias" or is_norm or param.ndim < 2)
            buckets.setdefault((head, decays), []).append(param)
    # Tied weights (MLM decoder <-> word embeddings) appear once: modules() yields each parameter object
    # once per owning module, so de-duplicate by identity.
    seen: set[int] = set()
    groups = []
    for head in (False, True):
        for decays in (True, False):
            unique = [p for p in buckets.get((head, decays), []) if not (id(p) in seen or seen.add(id(p)))]
            if unique:
                group = {"params": unique, "weight_decay": weight_decay if decays else 0.0}
                if lr is not None:
                    group["lr"] = head_lr if head else lr
                groups.append(group)
    return groups


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.AdamW(
        parameter_groups(model, config.weight_decay, config.lr, config.head_lr or None), lr=config.lr, betas=(0.9, 0.999), eps=1e-8,
        fused=fused or None,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = math.ceil(config.warmup_ratio * total_steps)
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=max(total_steps, 1))

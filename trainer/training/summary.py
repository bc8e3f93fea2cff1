"""The JSON summary every training run writes: steps, tokens, speed, peak memory and, on GPU, MFU."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

import torch

# Dense bf16/fp16 tensor-core peaks (FLOP/s) for model-FLOPs utilisation; unknown GPUs report no MFU.
GPU_PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "V100": 125e12}


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"cpu_peak_rss_mb": rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def gpu_peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in GPU_PEAK_FLOPS.items() if k in name), None)


def transformer_flops_per_token(n_params: int, n_layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the weights plus 12*L*H*T for attention scores (PaLM appendix B)."""
    return 6 * n_params + 12 * n_layers * hidden * seq_len


def training_summary(
    steps: int, tokens: int, examples: int, elapsed_s: float, device: torch.device, world_size: int = 1,
    flops_per_token: float | None = None, **extra: Any,
) -> dict[str, Any]:
    tokens_per_s = tokens / elapsed_s if elapsed_s > 0 else 0.0
    out: dict[str, Any] = {
        "steps": steps, "tokens": tokens, "examples": examples, "elapsed_s": round(elapsed_s, 2),
        "tokens_per_s": round(tokens_per_s, 1), "device": str(device), "world_size": world_size,
        **{k: round(v, 1) for k, v in peak_memory_mb(device).items()},
    }
    peak = gpu_peak_flops(device)
    if peak and flops_per_token:
        out["mfu"] = round(flops_per_token * tokens_per_s / (peak * world_size), 4)
    out.update(extra)
    return out


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return path

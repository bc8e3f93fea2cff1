"""Mixed precision and the optimizer step: bf16 autocast on CPU and GPU; fp16 autocast with a GradScaler
on GPU only. One object does backward / unscale / clip / step / zero_grad right under accumulation.

``auto`` picks bf16 where it is faster: on a CUDA GPU with bf16; on a CPU only where a short probe measures it
faster than fp32. CPU flags do not tell: with AVX512-BF16 a 2-core EPYC trained the `cpu` encoder 3-4x faster
in bf16, while a Xeon with the same flag and no AMX (2026-11-29) was 1.3x SLOWER in bf16 (training and
MiniLM inference alike); bf16 emulated on an older CPU is slower still."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, ContextManager

import torch
from torch import nn

from schemas.cli import UserError

log = logging.getLogger(__name__)


BF16_MIN_SPEEDUP = 1.2  # bf16 loses precision: worth it only for a clear gain


def bf16_pays(device: torch.device) -> bool:
    """Whether bf16 autocast is worth using on ``device``: on CUDA where supported; on a CPU where it has the
    instructions (AVX512-BF16 or AMX) and the probe measures it ``BF16_MIN_SPEEDUP`` x faster than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    has_bf16 = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    return device.type == "cpu" and has_bf16 and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """fp32 time / bf16 time of a transformer feed-forward block (256 -> 1,024 -> 256 on 2,048 tokens) forward
    and backward, best of 3 interleaved passes each after a warm-up: ~0.5 s, once per process."""
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
    x = torch.randn(2048, 256)
    with torch.enable_grad():  # the caller may be inside no_grad (inference)
        best = _best_times(block, x)
    block.zero_grad(set_to_none=True)
    speedup = best[False] / best[True]
    log.info("bf16 autocast on this CPU: %.2fx the fp32 speed (probe); %s", speedup,
             "bf16 chosen" if speedup >= BF16_MIN_SPEEDUP else "fp32 kept")
    return speedup


def _best_times(block: nn.Module, x: torch.Tensor) -> dict[bool, float]:
    """{bf16?: best seconds of a forward + backward pass}."""
    import time

    best = {False: float("inf"), True: float("inf")}
    for attempt in range(4):
        for bf16 in (False, True):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = block(x)
            out.float().square().mean().backward()
            if attempt:  # the first pass of each is a warm-up
                best[bf16] = min(best[bf16], time.perf_counter() - start)
    return best


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 where it pays (``bf16_pays``), else fp32; other values unchanged."""
    return ("bf16" if bf16_pays(device) else "fp32") if precision == "auto" else precision


class MixedPrecision:
    def __init__(self, precision: str, device: torch.device, grad_accum_steps: int = 1, max_grad_norm: float = 1.0):
        precision = resolve_precision(precision, device)
        if precision not in ("fp32", "bf16", "fp16"):
            raise UserError(f"precision must be fp32, bf16, fp16 or auto (got {precision!r})")
        if precision == "fp16" and device.type != "cuda":
            raise UserError("precision fp16 needs a CUDA GPU (loss scaling); on CPU use --precision bf16 or fp32")
        self.precision = precision
        self.device = device
        self.grad_accum_steps = grad_accum_steps
        self.max_grad_norm = max_grad_norm
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def autocast(self) -> ContextManager[Any]:
        """Forward passes run inside this context."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate gradients of one micro-batch; the loss is averaged over the accumulation steps."""
        loss = loss / self.grad_accum_steps
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any | None = None) -> float:
        """Unscale, clip, step the optimizer and scheduler, clear gradients. Returns the gradient norm
        before clipping (inf/nan when fp16 overflowed and the step was skipped)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        params = [p for p in model.parameters() if p.grad is not None]
        if self.max_grad_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        else:
            norm = float(torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params]))) if params else 0.0
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return norm

    def state_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "scaler": self.scaler.state_dict() if self.scaler else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

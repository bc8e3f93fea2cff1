"""Checkpoints for exact resume: model, optimizer, scheduler, loss scaler, every RNG state, and where the
loop stands (step, epoch, micro-batch in the epoch). Written by rank 0 (each rank adds its own RNG state)
into ``<dir>/checkpoints/step-<N>/``, atomically (temporary directory, then rename); older ones removed.

The run's config hash is stored; resuming from a directory written with another config is an error found
before training starts."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from schemas.cli import UserError
from trainer.training.distributed import DistInfo, barrier, unwrap

STATE_FILE = "train_state.json"


@dataclass
class TrainState:
    """Where the loop stands. ``batch_in_epoch`` is the next micro-batch to run in ``epoch``."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0  # real (non-padding) tokens seen, all ranks
    examples: int = 0
    elapsed_s: float = 0.0  # training time before this process (for tokens/s over the whole run)
    loss_history: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since last point)
    grad_norm_history: list[tuple[int, float]] = field(default_factory=list)  # (step, mean gradient norm before clipping)
    window_loss: float = 0.0  # loss sum / steps since the last history point (so resume logs the same)
    window_steps: int = 0
    window_grad_norm: float = 0.0  # gradient-norm sum / steps since the last point, fp16-skipped steps left out
    window_grad_steps: int = 0
    config_hash: str = ""


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoints_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints"


def latest_checkpoint(out_dir: Path) -> Path | None:
    found = sorted(checkpoints_dir(out_dir).glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    found = [p for p in found if (p / STATE_FILE).is_file()]
    return found[-1] if found else None


def find_resume_checkpoint(out_dir: Path, config_hash: str, resume: bool) -> Path | None:
    """The checkpoint to resume from, or None for a fresh start. Errors (before any training) when the
    directory holds checkpoints of a different config, or holds checkpoints and ``resume`` is off."""
    latest = latest_checkpoint(out_dir)
    if latest is None:
        return None
    stored = json.loads((latest / STATE_FILE).read_text()).get("config_hash", "")
    if not resume:
        raise UserError(f"{out_dir} already holds checkpoint {latest.name}: pass --resume to continue it, or choose another output directory")
    if stored != config_hash:
        raise UserError(
            f"cannot resume from {latest}: it was written with a different configuration (config hash {stored}, "
            f"this run {config_hash}); use the same options, or another output directory"
        )
    return latest


def save_checkpoint(
    out_dir: Path,
    state: TrainState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    precision: Any,
    info: DistInfo,
) -> Path:
    root = checkpoints_dir(out_dir)
    final = root / f"step-{state.step}"
    tmp = root / f".tmp-step-{state.step}"
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(info)
    torch.save(rng_state(), tmp / f"rng-rank{info.rank}.pt")
    barrier(info)
    if info.is_main:
        torch.save(unwrap(model).state_dict(), tmp / "model.pt")
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "precision": precision.state_dict()},
            tmp / "optim.pt",
        )
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for older in root.glob("step-*"):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
    barrier(info)
    return final


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, precision: Any, info: DistInfo
) -> TrainState:
    """Restore everything saved by :func:`save_checkpoint` into already-built objects."""
    unwrap(model).load_state_dict(torch.load(path / "model.pt", map_location=info.device, weights_only=True))
    optim = torch.load(path / "optim.pt", map_location=info.device, weights_only=False)
    optimizer.load_state_dict(optim["optimizer"])
    scheduler.load_state_dict(optim["scheduler"])
    precision.load_state_dict(optim["precision"])
    rng_file = path / f"rng-rank{info.rank}.pt"
    if not rng_file.is_file():
        raise UserError(f"{path} has no RNG state for rank {info.rank}: resume with the same number of processes")
    set_rng_state(torch.load(rng_file, weights_only=False))
    raw = json.loads((path / STATE_FILE).read_text())
    for history in ("loss_history", "grad_norm_history"):
        raw[history] = [tuple(p) for p in raw.get(history, [])]
    return TrainState(**raw)

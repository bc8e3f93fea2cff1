"""The training loop shared by pretraining and fine-tuning.

The caller supplies what differs (how indices become a batch, how a batch becomes a loss); the loop does
the rest the same way for every model: deterministic per-epoch batches sharded over ranks, gradient
accumulation (DDP ``no_sync`` between micro-batches), mixed precision, clipping, the warm-up/decay
schedule, checkpoints with exact resume, a progress bar, and loss and gradient-norm histories for curves.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from schemas.cli import UserError
from trainer.training.batching import epoch_batches
from trainer.training.checkpoint import TrainState, find_resume_checkpoint, load_checkpoint, save_checkpoint
from trainer.training.config import OptimConfig
from trainer.training.distributed import DistInfo
from trainer.training.optim import build_optimizer, build_scheduler
from trainer.training.precision import MixedPrecision
from trainer.training.progress import Progress

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
MakeBatch = Callable[[list[int], torch.Generator], Batch]  # example indices, per-batch seeded RNG -> tensors
LossFn = Callable[[nn.Module, Batch], torch.Tensor]  # model (maybe DDP-wrapped), batch on device -> scalar loss


def batch_generator(seed: int, epoch: int, batch_index: int) -> torch.Generator:
    """RNG for one batch's random choices (e.g. MLM masks): redrawn every epoch, identical after resume."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + batch_index)


def real_tokens(batch: Batch) -> int:
    return int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel())


@dataclass
class LoopResult:
    state: TrainState
    total_steps: int
    resumed_from: Path | None


class TrainingLoop:
    """Build once, then :meth:`run`. ``model`` must already be on ``info.device`` (and DDP-wrapped via
    ``wrap_ddp`` when distributed) so the optimizer is built over the right parameters."""

    def __init__(
        self,
        model: nn.Module,
        config: OptimConfig,
        info: DistInfo,
        out_dir: Path,
        lengths: Sequence[int],
        make_batch: MakeBatch,
        loss_fn: LossFn,
        run_hash: str,
        resume: bool = False,
        on_step: Callable[[TrainState, float], None] | None = None,
        on_epoch_end: Callable[[TrainState], None] | None = None,
        desc: str = "train",
    ):
        self.model, self.config, self.info, self.out_dir = model, config, info, Path(out_dir)
        self.lengths, self.make_batch, self.loss_fn = list(lengths), make_batch, loss_fn
        self.on_step, self.on_epoch_end, self.desc = on_step, on_epoch_end, desc
        self.run_hash = run_hash
        self.batches_per_epoch = len(self._batches(0))
        if self.batches_per_epoch == 0:
            raise UserError(
                f"no training batches: {len(self.lengths)} examples, batch size {config.batch_size}, "
                f"{info.world_size} process(es) - need at least one full round of batches"
            )
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / config.grad_accum_steps)
        self.total_steps = config.max_steps or config.epochs * self.steps_per_epoch
        self.resume_from = find_resume_checkpoint(self.out_dir, run_hash, resume)
        self.precision = MixedPrecision(config.precision, info.device, config.grad_accum_steps, config.max_grad_norm)
        self.optimizer = build_optimizer(model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.total_steps)
        self._stop = False

    def stop(self) -> None:
        """End after the current step (e.g. early stopping from ``on_step``/``on_epoch_end``); the final
        checkpoint is still written. The schedule keeps its planned length."""
        self._stop = True

    def _batches(self, epoch: int) -> list[list[int]]:
        c = self.config
        return epoch_batches(self.lengths, c.batch_size, c.seed, epoch, self.info.rank, self.info.world_size)

    def save(self, state: TrainState) -> Path:
        return save_checkpoint(self.out_dir, state, self.model, self.optimizer, self.scheduler, self.precision, self.info)

    def run(self) -> LoopResult:
        c, info = self.config, self.info
        if self.resume_from is not None:
            state = load_checkpoint(self.resume_from, self.model, self.optimizer, self.scheduler, self.precision, info)
            log.info("resumed from %s at step %d (epoch %d, batch %d)", self.resume_from, state.step, state.epoch, state.batch_in_epoch)
        else:
            torch.manual_seed(c.seed)  # dropout RNG: same run, same numbers
            state = TrainState(config_hash=self.run_hash)
        self.model.train()
        progress = Progress(self.total_steps, state.step, enabled=info.is_main, desc=self.desc)
        started = time.perf_counter()
        elapsed_before = state.elapsed_s
        try:
            while state.step < self.total_steps and not self._stop:
                batches = self._batches(state.epoch)
                while state.batch_in_epoch < len(batches) and state.step < self.total_steps and not self._stop:
                    group = batches[state.batch_in_epoch : state.batch_in_epoch + c.grad_accum_steps]
                    loss_sum, tokens, examples = self._accumulate(group, state)
                    grad_norm = self.precision.step(self.model, self.optimizer, self.scheduler)  # same on every rank (DDP)
                    totals = torch.tensor([loss_sum / len(group), tokens, examples], dtype=torch.float64)
                    if info.distributed:
                        totals = totals.to(info.device)
                        torch.distributed.all_reduce(totals)
                    step_loss = float(totals[0]) / info.world_size
                    if not math.isfinite(step_loss):
                        raise FloatingPointError(f"non-finite loss {step_loss} at step {state.step + 1} (epoch {state.epoch}); lower --lr or use bf16/fp32")
                    state.step += 1
                    state.batch_in_epoch += len(group)
                    state.tokens += int(totals[1])
                    state.examples += int(totals[2])
                    state.elapsed_s = elapsed_before + time.perf_counter() - started
                    progress.update(step_loss, int(totals[1]), self.scheduler.get_last_lr()[0], grad_norm)
                    self._record(state, step_loss, grad_norm)
                    if self.on_step is not None:
                        self.on_step(state, step_loss)
                    if c.checkpoint_every and state.step % c.checkpoint_every == 0 and state.step < self.total_steps:
                        self.save(state)
                if state.batch_in_epoch >= len(batches) and not self._stop:
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                    if self.on_epoch_end is not None:
                        self.on_epoch_end(state)
                        self.model.train()
        finally:
            progress.close()
        self.save(state)
        return LoopResult(state=state, total_steps=self.total_steps, resumed_from=self.resume_from)

    def _record(self, state: TrainState, loss: float, grad_norm: float) -> None:
        """Add one step to the history window; every ``log_every`` steps (and at the last) close the window
        into a (step, mean) point of the loss and gradient-norm histories."""
        state.window_loss, state.window_steps = state.window_loss + loss, state.window_steps + 1
        if math.isfinite(grad_norm):  # not an fp16 overflow (that step was skipped)
            state.window_grad_norm, state.window_grad_steps = state.window_grad_norm + grad_norm, state.window_grad_steps + 1
        if state.step % self.config.log_every and state.step != self.total_steps:
            return
        state.loss_history.append((state.step, state.window_loss / state.window_steps))
        if state.window_grad_steps:
            state.grad_norm_history.append((state.step, state.window_grad_norm / state.window_grad_steps))
        state.window_loss, state.window_steps, state.window_grad_norm, state.window_grad_steps = 0.0, 0, 0.0, 0

    def _accumulate(self, group: list[list[int]], state: TrainState) -> tuple[float, int, int]:
        """Forward/backward over one optimizer step's micro-batches; returns (loss sum, tokens, examples)."""
        loss_sum = torch.zeros((), device=self.info.device)
        tokens = examples = 0
        self.precision.grad_accum_steps = len(group)
        for i, indices in enumerate(group):
            gen = batch_generator(self.config.seed, state.epoch, state.batch_in_epoch + i)
            batch = self.make_batch(indices, gen)
            tokens += real_tokens(batch)
            examples += len(indices)
            batch = {k: v.to(self.info.device, non_blocking=True) for k, v in batch.items()}
            last = i == len(group) - 1
            sync = contextlib.nullcontext() if last or not hasattr(self.model, "no_sync") else self.model.no_sync()
            with sync:
                with self.precision.autocast():
                    loss = self.loss_fn(self.model, batch)
                self.precision.backward(loss)
            loss_sum += loss.detach().float()
        return float(loss_sum), tokens, examples

"""Shared training infrastructure (pretraining and fine-tuning use the same pieces).

API (import from ``trainer.training``)::

    cfg  = OptimConfig(lr=5e-4, batch_size=8, epochs=1, precision="bf16", checkpoint_every=500, ...)
           # CLI: add_optim_arguments(parser) / optim_config_from_args(args)
           # any config dataclass: load_config(base, json_file, ["key=value", ...]); override(cfg, {...})
    info = setup_distributed(device=None)      # DistInfo(rank, world_size, local_rank, device, is_main);
                                               # plain run or torchrun (NCCL on GPU, gloo on CPU)
    model = wrap_ddp(model, info)              # to device, DDP when world_size > 1; unwrap(model) to save
    run_hash = config_hash(encoder_cfg, cfg, data_options, info.world_size)   # identifies the run for resume
    find_resume_checkpoint(out_dir, run_hash, resume)   # the loop's resume checks, run before reading data

    loop = TrainingLoop(model, cfg, info, out_dir, lengths,          # lengths: tokens per example
                        make_batch=lambda indices, generator: {...tensors on CPU...},
                        loss_fn=lambda model, batch: loss,            # batch already on info.device
                        run_hash=run_hash, resume=args.resume,
                        on_step=None, on_epoch_end=None)              # callbacks(state[, loss])
    # constructor errors (UserError) before training: no batches, resume dir of another config,
    # existing checkpoints without --resume, fp16 on CPU.
    result = loop.run()            # -> LoopResult(state: TrainState, total_steps, resumed_from)
    loop.stop()                    # from a callback: end after the current step (early stopping)
    result.state.loss_history      # [(step, mean loss)], every cfg.log_every steps
    result.state.grad_norm_history # [(step, mean gradient norm before clipping)], same steps
    plot_loss_curve(result.state.loss_history, out_dir / "loss.png")
    write_summary(training_summary(state.step, state.tokens, state.examples, state.elapsed_s,
                                   info.device, info.world_size, flops_per_token, **extra), out_dir / "summary.json")
    cleanup()

Pieces, usable alone: ``epoch_batches`` (deterministic per (seed, epoch), length-grouped, sharded by rank),
``batch_generator`` (per-batch torch.Generator: masks redrawn per epoch, identical after resume),
``MixedPrecision`` (autocast; backward/unscale/clip/step/zero_grad with accumulation; GradScaler for fp16),
``build_optimizer`` (AdamW, no decay on bias/LayerNorm) / ``build_scheduler`` (linear warm-up, linear decay
to 0), ``save_checkpoint``/``load_checkpoint``/``find_resume_checkpoint``, ``Progress`` (tqdm: loss,
gradient norm, tokens/s, lr, ETA; rank 0 only).
"""

from trainer.training.batching import epoch_batches
from trainer.training.checkpoint import TrainState, find_resume_checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from trainer.training.config import (
    OptimConfig,
    add_optim_arguments,
    config_hash,
    hash_vocab,
    load_config,
    optim_config_from_args,
    override,
    parse_set_options,
)
from trainer.training.curves import plot_loss_curve
from trainer.training.distributed import DistInfo, barrier, broadcast_object, cleanup, pick_device, setup_distributed, unwrap, wrap_ddp
from trainer.training.loop import LoopResult, TrainingLoop, batch_generator, real_tokens
from trainer.training.optim import build_optimizer, build_scheduler
from trainer.training.precision import MixedPrecision
from trainer.training.progress import Progress
from trainer.training.summary import training_summary, transformer_flops_per_token, write_summary

__all__ = [
    "DistInfo", "LoopResult", "MixedPrecision", "OptimConfig", "Progress", "TrainState", "TrainingLoop",
    "add_optim_arguments", "barrier", "batch_generator", "broadcast_object", "build_optimizer", "build_scheduler",
    "cleanup", "config_hash", "hash_vocab", "epoch_batches", "find_resume_checkpoint", "latest_checkpoint", "load_checkpoint",
    "load_config", "optim_config_from_args", "override", "parse_set_options", "pick_device", "plot_loss_curve",
    "real_tokens", "save_checkpoint", "setup_distributed", "training_summary", "transformer_flops_per_token",
    "unwrap", "wrap_ddp", "write_summary",
]

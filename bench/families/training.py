"""Training throughput on this machine: real (non-padding) tokens per second of MLM pretraining and of BERT-XML
fine-tuning, both with the speed encoder size and the same max length, measured by the training loop itself
(``trainer.training`` summaries: the loop's own clock, without data preparation or dev evaluation).
Also the throughput every quality row reported while it trained. CPU only: no GPU is lent to this task.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.artifacts import Artifacts, read_json
from bench.common import BenchConfig, say

PRETRAIN_NOTES = 400  # enough text for the measured steps; building examples from all notes would dominate
LENGTH = 512


def _length(cfg: BenchConfig) -> int:
    return min(LENGTH, max(cfg.sizes.speed_lengths))


def pretrain_throughput(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    import torch

    from trainer.encoder import encoder_config
    from trainer.pretrain.train import PretrainSetup, pretrain
    from trainer.training import OptimConfig, cleanup, setup_distributed

    torch.set_num_threads(cfg.threads)
    out = art.root / "training-speed" / "pretrain"
    shutil.rmtree(out, ignore_errors=True)  # a measurement, never resumed
    encoder = cfg.sizes.speed_encoder
    setup = PretrainSetup(init=encoder, encoder=encoder_config(encoder, None, []), tokenizer_dir=str(art.vocab), max_length=_length(cfg))
    optim = OptimConfig(lr=5e-4, batch_size=8, max_steps=cfg.sizes.training_steps, checkpoint_every=0, log_every=1, seed=cfg.seed)
    info = setup_distributed("cpu")
    try:
        summary = pretrain(setup, optim, info, out, art.corpus.train[:PRETRAIN_NOTES])
    finally:
        cleanup()
    return _pick(summary)


def finetune_throughput(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    from bench.families.quality import finetune_row
    from trainer.models import CoderConfig

    out = art.root / "training-speed" / "finetune"
    shutil.rmtree(out, ignore_errors=True)
    coder = CoderConfig(architecture="bert-xml", encoder=cfg.sizes.speed_encoder, max_length=_length(cfg), label_init="random")
    finetune_row(cfg, art.dataset, out, coder, art.vocab / "tokenizer.json", max_steps=cfg.sizes.training_steps)
    return _pick(read_json(out / "training_summary.json")["training"])


def _pick(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("steps", "tokens", "examples", "elapsed_s", "tokens_per_s", "device", "real_token_share", "real_token_share_if_padded_to_max")
    return {k: summary[k] for k in keys if k in summary}


def quality_rows(cfg: BenchConfig) -> list[dict[str, Any]]:
    """Tokens/s each quality row's fine-tuning reported (when the quality family ran before)."""
    from bench.common import read_results

    quality = read_results(cfg.out_dir).get("quality")
    rows = []
    for row in (quality or {}).get("rows", []):
        path = Path(row["run_dir"]) / "training_summary.json" if row.get("run_dir") else None
        training = (read_json(path).get("training") or {}) if path and path.is_file() else {}
        if training.get("tokens_per_s"):
            rows.append({"row": row["row"], "max_length": row.get("max_length"), "tokens_per_s": training["tokens_per_s"], "steps": training.get("steps")})
    return rows


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    say(f"training speed: MLM pretraining, {cfg.sizes.training_steps} steps of 8 x {_length(cfg)} ({cfg.sizes.speed_encoder} encoder) ...")
    pre = pretrain_throughput(cfg, art)
    say(f"  pretraining {pre.get('tokens_per_s')} tokens/s")
    say(f"training speed: BERT-XML fine-tuning, {cfg.sizes.training_steps} steps ...")
    fine = finetune_throughput(cfg, art)
    say(f"  fine-tuning {fine.get('tokens_per_s')} tokens/s")
    return {
        "what": "real tokens/s measured by the training loop (fp32, batch 8, AdamW), same encoder size and max length",
        "device": "cpu", "gpu": "none lent to this task: GPU throughput not measured",
        "threads": cfg.threads, "encoder": cfg.sizes.speed_encoder, "max_length": _length(cfg),
        "pretraining": pre, "finetuning_bert_xml": fine, "quality_rows": quality_rows(cfg),
    }

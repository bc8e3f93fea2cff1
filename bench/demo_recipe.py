"""The demo's training recipe: the ``python -m trainer`` steps ``make demo`` runs (``bench/cli/demo.py``) and the
shared-machine benchmark times (``bench/families/shared.py``), defined once for both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer.data.dataset import split_path

SYNTHETIC_NOTES = 1000
SYNTHETIC_SEED = 7


@dataclass(frozen=True)
class Step:
    name: str
    marker: Path  # the step's output: a step whose marker exists is reused
    argv: tuple[str, ...]  # arguments of `python -m trainer`


MIN_TRAIN_POSITIVES = 20  # the synthetic notes' rarer codes (12-19 training notes of 1,000 notes) stay outside the label space


def training_steps(out: Path, codiesp: Path | None = None) -> dict[str, Step]:
    """prepare -> vocab -> pretrain -> finetune -> fuse into ``out`` (data/, vocab/, pretrain/, run/)."""
    data = out / "data"
    source = ("--codiesp", str(codiesp)) if codiesp else ("--synthetic", str(SYNTHETIC_NOTES), "--seed", str(SYNTHETIC_SEED))
    # CodiEsp: every code with a training note is in the label space; synthetic: the rarest codes stay outside it,
    # as rare codes do in a hospital, and the description scorer finds them
    min_positives = "1" if codiesp else str(MIN_TRAIN_POSITIVES)
    train_notes = str(split_path(data, "train"))
    # the demo's budget: the label space's categories, not all 75k billable codes
    candidates = "billable" if codiesp else "categories"
    # the sentence encoder's tuning: 4 epochs on CodiEsp (docs/descriptions.md); templated synthetic sentences need few
    # steps, and the demo's time budget (<= 4 min) allows ~15 s
    tune = () if codiesp else ("--tune-max-steps", "15")
    steps = [
        Step("prepare", data / "labels.json", ("prepare", *source, "--out", str(data), "--min-train-positives", min_positives)),
        Step("vocab", out / "vocab" / "tokenizer.json",
             ("vocab", "--out", str(out / "vocab"), "--sources", "--notes", train_notes, "--vocab-size", "4000", "--no-deid")),
        # the improved recipe (docs/pretraining.md): no dropout, bf16 where it is faster than fp32
        Step("pretrain", out / "pretrain" / "model" / "config.json",
             ("pretrain", "--init", "tiny", "--set", "hidden_dropout_prob=0", "--set", "attention_probs_dropout_prob=0", "--tokenizer", str(out / "vocab"),
              "--sources", "--notes", train_notes, "--no-deid", "--max-length", "128", "--max-steps", "400", "--batch-size", "32", "--lr", "1e-3",
              "--precision", "auto", "--out", str(out / "pretrain"))),
        # 128-token segments (notes are split and max-pooled, paper 4.1) keep a CPU run to a minute or two; the
        # tiny encoder is barely pretrained, so it trains at the head's rate; epochs chosen on the selection split (patience 3).
        # Batch 32 at lr 2e-3: the same selection MAP as 16 at 1e-3 (0.844 vs 0.840) in half the steps (2026-11-29)
        Step("finetune", out / "run" / "thresholds.json",
             ("finetune", "--data", str(data), "--preset", "bert-xml-512", "--encoder", str(out / "pretrain" / "model"), "--max-length", "128",
              "--epochs", "15", "--patience", "3", "--batch-size", "32", "--lr", "2e-3", "--head-lr", "2e-3", "--precision", "auto", "--out", str(out / "run"))),
        Step("fuse", out / "run" / "fusion.json",
             ("fuse", "--run", str(out / "run"), "--data", str(data), "--candidates", candidates, "--cache", str(out / "cache"), *tune)),
    ]
    return {step.name: step for step in steps}

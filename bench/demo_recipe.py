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


def training_steps(out: Path, codiesp: Path | None = None) -> dict[str, Step]:
    """prepare -> vocab -> pretrain -> finetune into ``out`` (data/, vocab/, pretrain/, run/)."""
    data = out / "data"
    source = ("--codiesp", str(codiesp)) if codiesp else ("--synthetic", str(SYNTHETIC_NOTES), "--seed", str(SYNTHETIC_SEED))
    train_notes = str(split_path(data, "train"))
    steps = [
        Step("prepare", data / "labels.json", ("prepare", *source, "--out", str(data), "--min-train-positives", "5")),
        Step("vocab", out / "vocab" / "tokenizer.json",
             ("vocab", "--out", str(out / "vocab"), "--sources", "--notes", train_notes, "--vocab-size", "4000", "--no-deid")),
        Step("pretrain", out / "pretrain" / "model" / "config.json",
             ("pretrain", "--init", "tiny", "--tokenizer", str(out / "vocab"), "--sources", "--notes", train_notes, "--no-deid", "--max-length", "256",
              "--max-steps", "300", "--batch-size", "16", "--lr", "1e-3", "--out", str(out / "pretrain"))),
        # 128-token segments (notes are split and max-pooled, paper 4.1) keep a CPU run to a minute or two
        Step("finetune", out / "run" / "thresholds.json",
             ("finetune", "--data", str(data), "--preset", "bert-xml-512", "--encoder", str(out / "pretrain" / "model"), "--max-length", "128",
              "--epochs", "15", "--batch-size", "16", "--lr", "1e-3", "--out", str(out / "run"))),
    ]
    return {step.name: step for step in steps}

"""``python -m trainer fuse --run RUN_DIR --data DIR``: add the description scorer (every billable ICD-10-CM
code, matched sentence by sentence against code titles, inclusion terms and training examples; kNN over
training notes) to a fine-tuned run and choose the fusion on the selection split. Writes RUN_DIR/fusion.json
and RUN_DIR/descriptions/; ``trainer evaluate`` and ``trainer export`` then use them (docs/finetuning.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_cache() -> Path:
    return Path(os.environ.get("ICDCODER_CACHE_DIR") or Path.home() / ".cache" / "icd-coder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="run directory written by `trainer finetune`")
    parser.add_argument("--data", required=True, type=Path, help="the prepared dataset it was trained on")
    parser.add_argument("--top-k", type=int, default=32, help="codes per sentence the scorer returns (default 32)")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="term-embedding cache (default $ICDCODER_CACHE_DIR or ~/.cache/icd-coder)")
    parser.add_argument("--candidates", choices=("billable", "categories", "labels"), default="billable",
                        help="codes the scorer ranks besides the label space: every billable ICD-10-CM code (default), the billable codes "
                             "of the label space's 3-character categories (quick runs), or none")
    parser.add_argument("--tune-epochs", type=int, default=4,
                        help="fine-tune the sentence encoder on the training notes' coded sentences for this many epochs before "
                             "anything is embedded (default 4; 0: the shipped all-MiniLM-L6-v2; docs/descriptions.md)")
    parser.add_argument("--tune-max-steps", type=int, default=0, help="cap on the tuning's optimizer steps (default 0: none)")
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="serve examples/neighbours from the training part only (default: every labelled training note)")


def run(args: argparse.Namespace) -> int:
    from schemas.cli import UserError
    from trainer.describe.fuse import FuseOptions, fuse_run
    from trainer.describe.tune import TuneOptions

    if args.top_k < 1:
        raise UserError("--top-k must be >= 1")
    if args.tune_epochs < 0 or args.tune_max_steps < 0:
        raise UserError("--tune-epochs and --tune-max-steps must be >= 0")
    fusion = fuse_run(args.run, args.data, FuseOptions(top_k=args.top_k, cache_dir=args.cache, refit=args.refit, candidates=args.candidates,
                                                       tune=TuneOptions(epochs=args.tune_epochs, max_steps=args.tune_max_steps)))
    for name, f in (("served combination", fusion.served), ("without the classifier", fusion.without_classifier),
                    ("description scorer alone", fusion.descriptions_only)):
        weights = f.model_dump(exclude={"formula", "selected_on", "selection"})
        print(f"{name}: {weights}\n  on the selection split: {f.selection}")
    if fusion.encoder_tuning:
        t = fusion.encoder_tuning
        print(f"sentence encoder tuned on {t.pairs:,} coded sentences of {t.trained_on}: {t.steps} steps, loss {t.first_loss:.3f} -> {t.last_loss:.3f}")
    print(f"{fusion.candidates:,} candidate codes, {fusion.examples:,} examples and {fusion.neighbours:,} neighbours from {fusion.refit_on}")
    print(f"selected on: {fusion.served.selected_on}\nwrote {args.run / 'fusion.json'} and {args.run / 'descriptions'}")
    return 0

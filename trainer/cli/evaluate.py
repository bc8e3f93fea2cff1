"""``python -m trainer evaluate --run RUN_DIR --data DIR --split dev|test``: the paper's evaluation of a
fine-tuned model; writes eval_<split>.json/.md, per_code_auc_<split>.csv and auc_distribution_<split>.png."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.evaluate.evaluation import EvaluationConfig

    d = EvaluationConfig()
    parser.add_argument("--run", required=True, type=Path, help="run directory written by `trainer finetune`")
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset directory")
    parser.add_argument("--split", default=d.split, choices=("train", "dev", "test"))
    parser.add_argument("--out", type=Path, help="report directory (default: RUN_DIR)")
    parser.add_argument("--bootstrap", type=int, default=d.bootstrap, help="bootstrap resamples for AUC intervals (0: none)")
    parser.add_argument("--k", type=int, nargs="+", default=list(d.ks), help="k for precision@k")
    parser.add_argument("--frequency-edges", type=int, nargs="+", default=list(d.frequency_edges), help="lower edges of the training-frequency bins")
    parser.add_argument("--low-frequency-max", type=int, default=d.low_frequency_max, help="low-frequency slice: codes with 1..N training notes")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--device", default=d.device)


def run(args: argparse.Namespace) -> int:
    from schemas.cli import UserError
    from trainer.evaluate.evaluation import EvaluationConfig, evaluate_run, render_markdown, write_report

    if args.bootstrap < 0 or any(k < 1 for k in args.k):
        raise UserError("--bootstrap must be >= 0 and every --k >= 1")
    cfg = EvaluationConfig(
        split=args.split, bootstrap=args.bootstrap, ks=tuple(args.k), frequency_edges=tuple(sorted(args.frequency_edges)),
        low_frequency_max=args.low_frequency_max, batch_size=args.batch_size, device=args.device,
    )
    result = evaluate_run(args.run, args.data, cfg)
    paths = write_report(result, args.out or args.run)
    print(render_markdown(result, top=5))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0

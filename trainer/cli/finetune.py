"""``python -m trainer finetune --data DIR --out RUN_DIR``: fine-tune an ICD coder; writes a run directory
(weights, coder_config.json, labels/thresholds/segmentation/tokenizer, summary, curves, checkpoints).

A Table 2 row is ``--preset NAME`` (see ``trainer.models.TABLE2_PRESETS``), then the options below, then
``--coder-config FILE`` and ``--coder-set KEY=VALUE`` for any ``CoderConfig`` field. Multi-GPU:
``torchrun --nproc_per_node N -m trainer finetune ...``."""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.cli import UserError
from trainer.models.config import ARCHITECTURES, TABLE2_PRESETS, CoderConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.finetune.train import FINETUNE_OPTIM_DEFAULTS
    from trainer.training import add_optim_arguments

    parser.add_argument("--data", required=True, type=Path, help="prepared dataset directory (train/dev splits, labels.json)")
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    g = parser.add_argument_group("model")
    g.add_argument("--preset", choices=sorted(TABLE2_PRESETS), help="a row of the paper's Table 2")
    g.add_argument("--architecture", choices=ARCHITECTURES)
    g.add_argument("--encoder", help="encoder preset (tiny/cpu/small/big), 'minilm', or a pretrained model directory")
    g.add_argument("--tokenizer", type=Path, help="tokenizer.json or its directory (default: the encoder directory's)")
    g.add_argument("--max-length", type=int, help="tokens per segment incl. [CLS]/[SEP] (paper: 512 or 1024)")
    g.add_argument("--label-init", choices=("semantic", "random"), help="BERT-XML label vectors: code descriptions or random")
    g.add_argument("--coder-config", metavar="JSON", help="JSON object of CoderConfig fields")
    g.add_argument("--coder-set", action="append", default=[], metavar="KEY=VALUE", help="override one CoderConfig field (repeatable)")
    add_optim_arguments(parser, FINETUNE_OPTIM_DEFAULTS)
    s = parser.add_argument_group("selection and thresholds (on a 20% slice of train, or on dev when the dataset has a test split)")
    s.add_argument("--patience", type=int, default=2, help="selection evaluations without improvement before stopping (0: never)")
    s.add_argument("--eval-every", type=int, default=0, help="optimizer steps between selection evaluations (0: each epoch)")
    s.add_argument("--select-metric", choices=("map", "micro_auc"), default="map", help="what picks the best step (default: label-space MAP)")
    s.add_argument("--per-code-thresholds", action="store_true", help="tune a threshold per code (rare codes use the global one)")
    s.add_argument("--per-code-min-positives", type=int, default=5)
    s.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")


def coder_config_from_args(args: argparse.Namespace) -> CoderConfig:
    from trainer.training import load_config

    config = TABLE2_PRESETS[args.preset] if args.preset else CoderConfig()
    explicit = {"architecture": args.architecture, "encoder": args.encoder, "max_length": args.max_length, "label_init": args.label_init}
    try:
        config = config.with_(**{k: v for k, v in explicit.items() if v is not None})
        return load_config(config, args.coder_config, args.coder_set)
    except ValueError as err:
        raise UserError(f"invalid model options: {err}") from None


def run(args: argparse.Namespace) -> int:
    from trainer.finetune.train import FinetuneOptions, finetune
    from trainer.training import optim_config_from_args

    coder = coder_config_from_args(args)
    options = FinetuneOptions(
        patience=args.patience, eval_every=args.eval_every, per_code_thresholds=args.per_code_thresholds,
        per_code_min_positives=args.per_code_min_positives, eval_batch_size=args.eval_batch_size, device=args.device,
        select_metric=args.select_metric,
    )
    if not args.data.is_dir():
        raise UserError(f"--data {args.data} is not a directory")
    finetune(args.data, args.out, coder, optim_config_from_args(args), options, args.tokenizer, args.resume)
    print(f"run directory: {args.out}")
    return 0

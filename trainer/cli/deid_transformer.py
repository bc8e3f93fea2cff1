"""``python -m trainer deid-transformer``: fine-tune all-MiniLM-L6-v2 for PHI token classification and write the ONNX
recogniser ``engine.deid`` serves with ``ICDCODER_ENGINE_DEID_MODEL=rules+transformer`` (package data) and its data card.
Run it under ``nice`` on a shared machine: ~25 min of one CPU core by default."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schemas.cli import UserError, default_data_dir

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "engine" / "deid" / "transformer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="data directory with mtsamples/ and codiesp/ (default: $ICDCODER_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"model folder (default: {DEFAULT_OUT})")
    parser.add_argument("--train-docs", type=int, default=6000, help="the first N of the spaCy model's training documents (6,000: the shipped model)")
    parser.add_argument("--dev-docs", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-quantize", dest="quantize", action="store_false", help="serve fp32 weights (default: int8)")
    parser.add_argument("--fp32-out", type=Path, default=None, help="also write the fp32 model folder here (to measure int8)")


def run(args: argparse.Namespace) -> int:
    from trainer.deid_transformer.card import write_data_card
    from trainer.deid_transformer.train import TransformerTrainConfig, train_transformer

    if not (args.data_dir / "mtsamples" / "mtsamples.csv").is_file():
        raise UserError(f"MTSamples not found under {args.data_dir} (set --data-dir or ICDCODER_DATA_DIR)")
    if min(args.train_docs, args.dev_docs, args.epochs, args.batch_size) < 1 or args.lr <= 0:
        raise UserError("--train-docs, --dev-docs, --epochs, --batch-size and --lr must be positive")
    cfg = TransformerTrainConfig(data_dir=args.data_dir, out=args.out, train_docs=args.train_docs, dev_docs=args.dev_docs,
                                 epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                 quantize=args.quantize, fp32_out=args.fp32_out, extra={"argv": sys.argv[1:]})
    write_data_card(cfg.out, train_transformer(cfg))
    return 0

"""``python -m trainer deid-model``: train the PHI NER pipeline that ``engine.deid`` ships (package data)
and write its data card. Run it under ``nice`` on a shared machine: ~15 min of one CPU core by default."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schemas.cli import UserError, default_data_dir

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "engine" / "deid" / "model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="data directory with mtsamples/ and codiesp/ (default: $ICDCODER_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"model folder (default: {DEFAULT_OUT})")
    parser.add_argument("--train-docs", type=int, default=9000)  # the shipped model's settings (its DATA_CARD.md)
    parser.add_argument("--dev-docs", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=int, default=64, help="tok2vec width")
    parser.add_argument("--depth", type=int, default=3, help="tok2vec depth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--styled", action="store_true",
                        help="add round 5's carriers: dictated, portal, all-caps documents, word names, forms, letters, lower-case places "
                             "(tried, not shipped: docs/deid.md)")


def run(args: argparse.Namespace) -> int:
    from trainer.deid_model.train import NerTrainConfig, train_ner

    if not (args.data_dir / "mtsamples" / "mtsamples.csv").is_file():
        raise UserError(f"MTSamples not found under {args.data_dir} (set --data-dir or ICDCODER_DATA_DIR)")
    if min(args.train_docs, args.dev_docs, args.epochs, args.width, args.depth) < 1:
        raise UserError("--train-docs, --dev-docs, --epochs, --width and --depth must be >= 1")
    cfg = NerTrainConfig(data_dir=args.data_dir, out=args.out, train_docs=args.train_docs, dev_docs=args.dev_docs,
                         max_epochs=args.epochs, width=args.width, depth=args.depth, seed=args.seed, styled=args.styled,
                         extra={"argv": sys.argv[1:]})
    train_ner(cfg)
    return 0

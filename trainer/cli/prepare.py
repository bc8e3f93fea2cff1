"""``python -m trainer prepare``: import notes, map codes, impute chronic codes, split by patient,
de-identify, build the label space and report statistics. See docs/data.md.

Splits: sources with their own splits keep them (CodiEsp train/dev, and test/ when the directory has it);
the others are split 70/10/20 by patient. A dataset with a test split is selected on dev and reported on
test; one without (CodiEsp as published here) is selected on a slice of train and reported on dev."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from schemas.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("sources (at least one)")
    src.add_argument("--codiesp", type=Path, help="CodiEsp directory as published: train/, dev/ and background/ are read, and test/ "
                                                  "when present (the official test split, with its D.tsv); each keeps its split")
    src.add_argument("--language", choices=("en", "es"), default="en", help="CodiEsp text: English translation (default) or Spanish")
    src.add_argument("--mtsamples", type=Path, help="MTSamples CSV (unlabelled: goes to unlabelled.jsonl)")
    src.add_argument("--fhir", type=Path, help="FHIR R4 NDJSON/Bundle file or directory (DocumentReference + Condition)")
    src.add_argument("--jsonl", type=Path, help="NoteRecord JSON lines")
    src.add_argument("--synthetic", type=int, metavar="N", help="N synthetic notes")
    src.add_argument("--seed", type=int, default=0, help="synthetic-note seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output dataset directory")
    parser.add_argument("--min-train-positives", type=int, default=1, metavar="N",
                        help="label space: codes with >= N positive train notes (default 1: every code seen in training; "
                             "the paper used >1,000 on 7.5M notes)")
    parser.add_argument("--min-chars", type=int, default=50, help="drop notes shorter than this (default 50)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the patient split (default 0)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json (or its directory): add token-length percentiles")
    parser.add_argument("--no-deid", action="store_true", help="skip de-identification (only for public or synthetic data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from trainer.data.prepare import PrepareConfig, prepare_dataset
    from trainer.data.stats import format_table

    if args.min_train_positives < 1 or args.min_chars < 1:
        raise UserError("--min-train-positives and --min-chars must be >= 1")
    if args.synthetic is not None and args.synthetic < 1:
        raise UserError("--synthetic must be >= 1")
    for name in ("codiesp", "mtsamples", "fhir", "jsonl", "tokenizer"):
        path = getattr(args, name)
        if path is not None and not path.exists():
            raise UserError(f"--{name} {path}: no such file or directory")
    config = PrepareConfig(
        out=args.out, codiesp=args.codiesp, language=args.language, mtsamples=args.mtsamples, fhir=args.fhir,
        jsonl=args.jsonl, synthetic=args.synthetic, seed=args.seed, min_train_positives=args.min_train_positives,
        min_chars=args.min_chars, split_seed=args.split_seed, tokenizer=args.tokenizer, deid=not args.no_deid,
        show_progress=not args.no_progress,
    )
    stats = prepare_dataset(config)
    print(format_table(stats))
    mapping = json.loads((args.out / "code_mapping.json").read_text(encoding="utf-8"))
    if mapping["unmappable"]:
        print(f"Unmappable codes (dropped): {', '.join(mapping['unmappable'][:20])}{' ...' if len(mapping['unmappable']) > 20 else ''}")
    print(f"\nWrote {args.out}: {', '.join(sorted(p.name for p in args.out.iterdir()))}")
    return 0

"""``python -m trainer explain --run RUN_DIR --note FILE --code CODE``: a BERT-XML model's attention for one
code over one note, as HTML (Figure 3), and the encoder's last-layer heads as a PNG grid (Figure 4)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="bert-xml run directory written by `trainer finetune`")
    parser.add_argument("--note", required=True, type=Path, help="plain-text note file (UTF-8)")
    parser.add_argument("--code", required=True, action="append", help="ICD-10-CM code in the model's label space (repeatable)")
    parser.add_argument("--out", type=Path, help="output directory (default: beside the note file)")


def run(args: argparse.Namespace) -> int:
    from schemas.cli import UserError
    from trainer.evaluate.explain import explain_note
    from trainer.models import load_finetuned

    if not args.note.is_file():
        raise UserError(f"--note {args.note} is not a file")
    try:
        text = args.note.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"--note {args.note} is not UTF-8 text: {err}") from None
    try:
        coder = load_finetuned(args.run)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot load the model in {args.run}: {err}") from None
    out = args.out or args.note.parent
    for code in args.code:
        result, html_path, png_path = explain_note(coder, text, code.strip().upper(), out, args.note.stem)
        print(f"{result.code} ({result.description}): p={result.probability:.4f}; wrote {html_path} and {png_path}")
    return 0

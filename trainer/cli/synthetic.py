"""``python -m trainer synthetic``: write seeded synthetic notes (with gold PHI spans) as JSON lines.

Each line is ``{"record": NoteRecord, "phi": [PhiSpan, ...]}``; ``python -m bench deid-eval`` reads this format.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from schemas.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="number of notes (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--long-fraction", type=float, default=0.1, help="share of notes longer than 512 word pieces")
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl file")


def run(args: argparse.Namespace) -> int:
    from trainer.data.synthetic import generate_notes

    if args.n < 1 or not 0 <= args.long_fraction <= 1:
        raise UserError(f"--n must be >= 1 and --long-fraction in [0, 1] (got {args.n}, {args.long_fraction})")
    notes = generate_notes(n=args.n, seed=args.seed, long_fraction=args.long_fraction)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as f:
            for note in notes:
                line = {"record": note.record.model_dump(mode="json"), "phi": [s.model_dump(mode="json") for s in note.phi]}
                f.write(json.dumps(line) + "\n")
    except OSError as err:
        raise UserError(f"cannot write {args.out}: {err.strerror}") from err
    n_spans = sum(len(note.phi) for note in notes)
    print(f"wrote {len(notes)} notes with {n_spans} PHI spans to {args.out}")
    return 0

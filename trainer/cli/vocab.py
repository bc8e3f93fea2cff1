"""``python -m trainer vocab``: train the EHR WordPiece vocabulary and compare out-of-vocabulary words per
note with the general-English uncased WordPiece of MiniLM (paper 4.2.1: 49.2 general vs 0.93 EHR)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from schemas.cli import default_data_dir
from schemas.text import load_tokenizer
from trainer.pretrain.data import SOURCES, load_corpus
from trainer.vocab import (
    DEFAULT_VOCAB_SIZE,
    format_comparison,
    oov_comparison,
    save_tokenizer_dir,
    train_wordpiece,
)

log = logging.getLogger(__name__)


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the text comes from (shared with ``pretrain``)."""
    g = parser.add_argument_group("text")
    g.add_argument("--data-dir", type=Path, default=default_data_dir(), help="public data (default $ICDCODER_DATA_DIR or ../shared/data)")
    g.add_argument("--sources", nargs="*", default=list(SOURCES), choices=SOURCES, help="public corpora to read (none: only --notes)")
    g.add_argument("--notes", nargs="*", type=Path, default=[], metavar="JSONL", help="NoteRecord JSONL files to add (never a test split)")
    g.add_argument("--held-out-percent", type=float, default=5.0, help="share of notes kept out (by text hash) for OOV / held-out loss")
    g.add_argument("--no-deid", dest="deid", action="store_false", help="skip de-identification (text is already de-identified)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="tokenizer directory to write")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--compare-with", default="minilm", help="tokenizer dir to compare OOV with ('minilm': the general-English BERT)")
    add_corpus_arguments(parser)


def run(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.data_dir if args.sources else None, args.sources, args.notes, args.held_out_percent)
    log.info("notes per source %s; %d for the vocabulary, %d held out; skipped %s", corpus.per_source, len(corpus.train), len(corpus.held_out), corpus.skipped or "none")
    if args.deid:
        corpus.deidentify()
    train, held_out = corpus.training_texts(), corpus.held_out
    tok = train_wordpiece(train, args.vocab_size, args.min_frequency)
    save_tokenizer_dir(tok, args.out)
    print(f"vocabulary of {tok.get_vocab_size():,} tokens written to {args.out}")

    if not held_out:
        log.warning("no held-out notes: OOV comparison skipped (raise --held-out-percent)")
        return 0
    from trainer.encoder import MINILM, minilm_dir

    general_dir = minilm_dir() if args.compare_with == MINILM else Path(args.compare_with)
    comparison = oov_comparison({f"general ({general_dir.name if args.compare_with != MINILM else 'MiniLM uncased'})": load_tokenizer(general_dir), "EHR (this vocabulary)": tok}, held_out)
    print(f"\nOut-of-vocabulary words per held-out note ({len(held_out):,} notes; paper: 49.2 general vs 0.93 EHR):")
    print(format_comparison(comparison))
    report = {"held_out_notes": len(held_out), "vocab_notes": len(train), "per_source": corpus.per_source,
              "skipped": corpus.skipped, "deidentified": args.deid, "vocab_size": tok.get_vocab_size(), "oov": comparison}
    (Path(args.out) / "oov.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {Path(args.out) / 'oov.json'}")
    return 0

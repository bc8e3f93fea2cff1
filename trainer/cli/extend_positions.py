"""``python -m trainer extend-positions --model minilm --to 1024 --out DIR``: extend a local BERT's
absolute position embeddings (paper 4.2.1: 512 -> 1,024; the first 512 kept, new ones ~ N(0, 0.02))."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from schemas.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a Hugging Face BERT directory, or 'minilm' (the bundled general-English MiniLM)")
    parser.add_argument("--to", type=int, default=1024, help="new number of positions")
    parser.add_argument("--out", type=Path, required=True, help="directory for the extended model and its tokenizer")
    parser.add_argument("--seed", type=int, default=0, help="seed for the new rows")


def run(args: argparse.Namespace) -> int:
    from transformers import BertForMaskedLM, BertModel

    from schemas.text import load_tokenizer
    from trainer.encoder import extend_position_embeddings, resolve_model_dir
    from trainer.vocab import save_tokenizer_dir

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    src = resolve_model_dir(args.model)
    if args.out.resolve() == src.resolve():
        raise UserError("--out must differ from --model (the source is never overwritten)")
    architectures = json.loads((src / "config.json").read_text()).get("architectures") or ["BertModel"]
    cls = BertForMaskedLM if "BertForMaskedLM" in architectures else BertModel
    model = cls.from_pretrained(str(src), attn_implementation="sdpa")
    before = model.config.max_position_embeddings
    extend_position_embeddings(model, args.to, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out), safe_serialization=True)
    save_tokenizer_dir(load_tokenizer(src), args.out, model_max_length=args.to)
    print(f"{cls.__name__} from {src}: positions {before} -> {args.to}; written to {args.out}")
    return 0

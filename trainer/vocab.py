"""The EHR WordPiece vocabulary (paper 3.2) and the out-of-vocabulary measure (paper 4.2.1, Table 1).

A lower-cased BERT WordPiece (BertNormalizer, BertPreTokenizer, ## continuations) trained on clinical
text; [PAD] [UNK] [CLS] [SEP] [MASK] and the PHI placeholders are special tokens at the lowest ids, so a
placeholder such as ``[DATE]`` is one token and never split. Saved as a Hugging Face tokenizer directory.

OOV (paper): per note, the number of words the vocabulary splits into several pieces or maps to [UNK];
a "word" is what the BERT pre-tokenizer yields (runs of letters/digits, single punctuation marks).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer, decoders
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tokenizers.processors import TemplateProcessing
from tokenizers.trainers import WordPieceTrainer

from schemas.cli import UserError
from schemas.phi import PLACEHOLDERS
from schemas.text import CLS, MASK, PAD, SEP, SPECIAL_TOKENS, UNK, load_tokenizer

ALL_SPECIAL = (*SPECIAL_TOKENS, *PLACEHOLDERS)  # [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then placeholders
DEFAULT_VOCAB_SIZE = 20_000  # paper 3.2
MODEL_MAX_LENGTH = 1024


def new_wordpiece() -> Tokenizer:
    """An untrained tokenizer with the BERT-uncased pipeline."""
    tok = Tokenizer(WordPiece(unk_token=UNK, continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def add_cls_sep(tok: Tokenizer) -> Tokenizer:
    cls_id, sep_id = tok.token_to_id(CLS), tok.token_to_id(SEP)
    tok.post_processor = TemplateProcessing(
        single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1", special_tokens=[(CLS, cls_id), (SEP, sep_id)]
    )
    return tok


def train_wordpiece(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE, min_frequency: int = 2) -> Tokenizer:
    if vocab_size <= len(ALL_SPECIAL):
        raise UserError(f"vocab size {vocab_size} leaves no room beside the {len(ALL_SPECIAL)} special tokens {list(ALL_SPECIAL)}")
    tok = new_wordpiece()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(ALL_SPECIAL),
        continuing_subword_prefix="##", show_progress=True,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return add_cls_sep(tok)


def save_tokenizer_dir(tok: Tokenizer, out_dir: Path, model_max_length: int = MODEL_MAX_LENGTH) -> Path:
    """tokenizer.json + vocab.txt + tokenizer_config.json + special_tokens_map.json, loadable by
    ``AutoTokenizer.from_pretrained`` and by ``schemas.text.load_tokenizer``."""
    from transformers import PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_str(tok.to_str())  # a copy without truncation/padding (e.g. MiniLM's fixed 128)
    tok.no_truncation()
    tok.no_padding()
    # Only placeholders the vocabulary holds: naming others would grow the vocabulary past the model's.
    placeholders = [p for p in PLACEHOLDERS if tok.token_to_id(p) is not None]
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=UNK, sep_token=SEP, pad_token=PAD, cls_token=CLS, mask_token=MASK,
        extra_special_tokens=placeholders, model_max_length=model_max_length, do_lower_case=True,
    )
    hf.save_pretrained(str(out_dir))
    vocab = tok.get_vocab()
    (out_dir / "vocab.txt").write_text("".join(f"{t}\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])))
    special_map = {"unk_token": UNK, "sep_token": SEP, "pad_token": PAD, "cls_token": CLS, "mask_token": MASK,
                   "additional_special_tokens": placeholders}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    load_tokenizer(out_dir)  # the serving loader must accept it
    return out_dir


# ----- OOV measure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OovStats:
    notes: int
    words: int
    oov_words: int  # split into several pieces or [UNK]
    unk_words: int
    oov_per_note: float  # the paper's figure
    oov_share: float  # oov_words / words


def oov_stats(tok: Tokenizer, texts: Sequence[str]) -> OovStats:
    tok = Tokenizer.from_str(tok.to_str())  # a copy: switch off truncation/padding without side effects
    tok.no_truncation()
    tok.no_padding()
    unk_id = tok.token_to_id(UNK)
    words = oov = unk = 0
    for enc in tok.encode_batch(list(texts), add_special_tokens=False):
        pieces: dict[int, list[int]] = {}
        for word_id, token_id in zip(enc.word_ids, enc.ids):
            if word_id is not None:
                pieces.setdefault(word_id, []).append(token_id)
        words += len(pieces)
        for ids in pieces.values():
            is_unk = unk_id in ids
            unk += is_unk
            oov += is_unk or len(ids) > 1
    n = len(texts)
    return OovStats(notes=n, words=words, oov_words=oov, unk_words=unk,
                    oov_per_note=oov / n if n else 0.0, oov_share=oov / words if words else 0.0)


def oov_comparison(vocabularies: dict[str, Tokenizer], texts: Sequence[str]) -> dict[str, dict]:
    return {name: asdict(oov_stats(tok, texts)) | {"vocab_size": tok.get_vocab_size()} for name, tok in vocabularies.items()}


def format_comparison(comparison: dict[str, dict]) -> str:
    lines = [f"{'vocabulary':<28}{'size':>8}{'OOV words/note':>16}{'OOV share':>11}{'[UNK]':>8}"]
    for name, s in comparison.items():
        lines.append(f"{name:<28}{s['vocab_size']:>8,}{s['oov_per_note']:>16.2f}{s['oov_share']:>11.2%}{s['unk_words']:>8,}")
    return "\n".join(lines)

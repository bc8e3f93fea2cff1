"""``CoderConfig``: one dataclass describes every row of the paper's Table 2, so a row is a config, not code."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

Architecture = Literal["bert-xml", "bert-cls", "bigru-attention", "logreg"]
ARCHITECTURES: tuple[str, ...] = ("bert-xml", "bert-cls", "bigru-attention", "logreg")
TORCH_ARCHITECTURES: tuple[str, ...] = ("bert-xml", "bert-cls", "bigru-attention")


@dataclass(frozen=True)
class CoderConfig:
    architecture: Architecture = "bert-xml"
    # BERT models: a trainer.encoder preset (tiny/cpu/small/big) or a local model directory.
    # bi-GRU: optional, the encoder whose input embeddings initialise the word embeddings.
    encoder: str | None = "small"
    max_length: int = 512  # tokens per segment incl. [CLS]/[SEP] (paper: 512 or 1,024)
    # bert-xml (paper 3.3)
    label_init: Literal["semantic", "random"] = "semantic"
    xml_hidden: int | None = None  # width of W_b in eq. 4; None: the encoder's hidden size
    code_chunk: int = 512  # codes per attention chunk: bounds the [B, chunk, T] attention tensor
    code_bias: bool = False  # a per-code output bias started at the training log-odds (not in eq. 4; see bert_xml.py; not yet measured on CodiEsp)
    checkpoint_chunks: bool = True  # recompute each chunk in backward instead of keeping it (training)
    # bigru-attention (paper 3.4)
    embedding_dim: int = 300
    gru_hidden: int = 512  # per direction
    attention_heads: int = 200
    attention_dim: int = 256  # d_a of the attention MLP (eq. 7)
    embedding_init: Literal["encoder", "random"] = "encoder"
    # logreg
    logreg_c: float = 1.0
    logreg_max_features: int = 200_000
    # filled in by finetune so a run directory can rebuild the model without the pretrained weights
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; expected one of {ARCHITECTURES}")
        if self.label_init not in ("semantic", "random"):
            raise ValueError(f"label_init must be 'semantic' or 'random', not {self.label_init!r}")
        if self.max_length < 8:
            raise ValueError(f"max_length {self.max_length} is too small")
        if self.architecture in ("bert-xml", "bert-cls") and not self.encoder:
            raise ValueError(f"{self.architecture} needs an encoder (preset name or model directory)")

    @property
    def is_torch(self) -> bool:
        return self.architecture in TORCH_ARCHITECTURES

    def with_(self, **changes: object) -> "CoderConfig":
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CoderConfig":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"coder config has unknown fields {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "CoderConfig":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


# The paper's Table 2 rows as named configs (`finetune --preset NAME`). The EHR encoder is whatever
# `trainer pretrain` wrote; pass it with --encoder. MiniLM stands in for the general-domain BERT.
TABLE2_PRESETS: dict[str, CoderConfig] = {
    "logreg": CoderConfig(architecture="logreg", encoder=None),
    "bigru-attention": CoderConfig(architecture="bigru-attention", encoder=None, max_length=1024),
    "bert-cls-512": CoderConfig(architecture="bert-cls", max_length=512),
    "bert-xml-512": CoderConfig(architecture="bert-xml", max_length=512),
    "bert-xml-1024": CoderConfig(architecture="bert-xml", max_length=1024),
    "bert-xml-1024-random-labels": CoderConfig(architecture="bert-xml", max_length=1024, label_init="random"),
}

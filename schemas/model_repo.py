"""The contract between ``trainer export`` and the engine: what sits in a Triton model repository.

Layout (one model; versions are integers and never overwritten)::

    <repository>/<model_name>/config.pbtxt
    <repository>/<model_name>/<version>/model.onnx
    <repository>/<model_name>/<version>/metadata.json     # ModelMetadata below
    <repository>/<model_name>/<version>/tokenizer.json

The ONNX graph takes ``input_ids`` and ``attention_mask`` (INT64, [batch, tokens], both axes dynamic) and
returns ``probs`` (FP32, [batch, codes]) and, for evidence, ``evidence_positions`` (INT64,
[batch, codes, top_k]) and ``evidence_weights`` (FP32, [batch, codes, top_k]): the top-k token positions
of each code's XML attention, so the engine can highlight text without a second call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.context import ContextPolicy
from schemas.fusion import Fusion
from schemas.labels import LabelSpace

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT_PROBS = "probs"
OUTPUT_EVIDENCE_POSITIONS = "evidence_positions"
OUTPUT_EVIDENCE_WEIGHTS = "evidence_weights"
METADATA_FILE = "metadata.json"
TOKENIZER_FILE = "tokenizer.json"
ONNX_FILE = "model.onnx"


def output_names(evidence: bool) -> list[str]:
    """The graph's outputs, in order: probabilities, then the evidence pair when the model exports it."""
    return [OUTPUT_PROBS] + ([OUTPUT_EVIDENCE_POSITIONS, OUTPUT_EVIDENCE_WEIGHTS] if evidence else [])


class Thresholds(BaseModel):
    """Decision thresholds tuned to maximise micro-F1 on the split named by ``tuned_on`` (the selection split:
    a slice of train, or dev when the dataset has a test split); ``dev_micro_f1`` is the F1 there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    global_threshold: float = Field(ge=0, le=1)
    per_code: dict[str, float] = {}  # optional; codes absent here fall back to the global threshold
    tuned_on: str = "dev"
    dev_micro_f1: float | None = None

    def for_code(self, code: str) -> float:
        return self.per_code.get(code, self.global_threshold)

    def vector(self, codes: Sequence[str]) -> np.ndarray:
        """The threshold of each code, in the given (label-space) order: what scores are compared with."""
        return np.array([self.for_code(c) for c in codes], dtype=np.float64)


class SegmentationParams(BaseModel):
    """How a note becomes model inputs; ``schemas.text.segment_note`` is the one implementation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_length: int = Field(ge=8)  # tokens per segment including [CLS] and [SEP]
    stride: int = Field(0, ge=0)  # tokens shared by consecutive segments (0: consecutive, as the paper)


class TrainingSummary(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    dataset: str
    notes_per_split: dict[str, int] = {}
    encoder: str | None = None
    selection: str | None = None  # which notes selected the model (stopping step, thresholds)
    selection_metrics: dict[str, float] = {}  # on those notes


DESCRIPTIONS_DIR = "descriptions"  # in a version directory: the description scorer's engine-side files
CATALOGUE_FILE = "catalogue.json"  # candidate codes and titles (and the terms that describe them)
NEIGHBOURS_FILE = "neighbours.npz"  # training-note embeddings and their codes (the kNN term)


class DescriptionScorerInfo(BaseModel):
    """The description scorer of a version: its graph is the Triton model ``model_name`` at the SAME version
    number (``<repository>/<model_name>/<version>/model.onnx``); the engine-side files lie in
    ``<version dir>/descriptions/`` (catalogue, neighbours, the scorer's tokenizer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    encoder: str  # what embeds sentences and terms, e.g. "all-MiniLM-L6-v2 (mean pooling, unit length)"
    candidates: int = Field(ge=1)  # candidate codes (catalogue rows)
    terms: int = Field(ge=1)  # title / inclusion-term rows of the term matrix
    examples: int = Field(0, ge=0)  # training sentences that evidence a code (the example term)
    neighbours: int = Field(0, ge=0)  # training notes of the kNN term
    top_k: int = Field(ge=1)  # codes per sentence returned by the graph, for descriptions and for examples
    max_sentence_tokens: int = Field(ge=8)
    tokenizer_file: str = TOKENIZER_FILE  # in descriptions/
    refit_on: str = ""  # which labelled notes the examples and neighbours come from


class ModelMetadata(BaseModel):
    """Everything the engine needs to serve one model version. One source of truth, written by export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    model_name: str
    version: int = Field(ge=1)
    architecture: str  # e.g. "bert-xml", "bert-cls"
    created_at: dt.datetime
    labels: LabelSpace
    thresholds: Thresholds
    segmentation: SegmentationParams
    tokenizer_file: str = TOKENIZER_FILE
    deid_placeholders: tuple[str, ...]
    evidence_top_k: int = Field(0, ge=0)  # 0: the model exports no evidence outputs
    precision: str = "fp32"
    training: TrainingSummary
    # What the engine does with suggestions whose evidence is negated or about family (schemas.context);
    # absent in metadata written before it existed: the defaults.
    context_policy: ContextPolicy = Field(default_factory=ContextPolicy)
    description_scorer: DescriptionScorerInfo | None = None  # None: the classifier alone
    fusion: Fusion | None = None  # how the classifier and the description scorer are combined (schemas.fusion)

    @model_validator(mode="after")
    def _thresholds_name_known_codes(self) -> "ModelMetadata":
        unknown = set(self.thresholds.per_code) - set(self.labels.codes)
        if unknown:
            raise ValueError(f"thresholds for codes outside the label space: {sorted(unknown)[:10]}")
        if (self.description_scorer is None) != (self.fusion is None):
            raise ValueError("description_scorer and fusion come together")
        return self


def version_dir(repository: Path, model_name: str, version: int) -> Path:
    return Path(repository) / model_name / str(version)


def list_versions(repository: Path, model_name: str) -> list[int]:
    root = Path(repository) / model_name
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def load_metadata(repository: Path, model_name: str, version: int | None = None) -> ModelMetadata:
    """Read a version's metadata (the newest when ``version`` is None); clear errors when absent."""
    versions = list_versions(repository, model_name)
    if not versions:
        raise FileNotFoundError(f"no versions of model {model_name!r} under {repository}")
    if version is None:
        version = versions[-1]
    elif version not in versions:
        raise FileNotFoundError(f"model {model_name!r} has no version {version} under {repository} (has {versions})")
    path = version_dir(repository, model_name, version) / METADATA_FILE
    return ModelMetadata.model_validate_json(path.read_text(encoding="utf-8"))

"""What the engine needs of one exported model version, besides the network itself: its metadata (labels,
thresholds, segmentation) and its tokenizer, both read from the Triton model repository; and, for a version
with a description scorer, the scorer's catalogue, neighbours and tokenizer (``DescriptionRuntime``).

The repository is the single source of truth (``schemas.model_repo``): the engine serves exactly the
version whose metadata and tokenizer it loaded here, whether inference runs in-process or on Triton.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from schemas.envelopes import ModelRef
from schemas.fusion import Fusion, Neighbours
from schemas.model_repo import (
    CATALOGUE_FILE,
    DESCRIPTIONS_DIR,
    NEIGHBOURS_FILE,
    ONNX_FILE,
    DescriptionScorerInfo,
    ModelMetadata,
    list_versions,
    load_metadata,
    version_dir,
)
from schemas.settings import ModelSettings
from schemas.text import PAD, load_tokenizer


@dataclass(frozen=True)
class DescriptionRuntime:
    """A version's description scorer, engine side: candidate codes and titles, the kNN neighbours, the
    scorer's tokenizer, the fusion, and where its graph lies for the embedded backend."""

    info: DescriptionScorerInfo
    fusion: Fusion
    codes: tuple[str, ...]  # candidate codes (the graph's code indices)
    displays: tuple[str, ...]
    tokenizer: Tokenizer
    neighbours: Neighbours
    label_candidates: np.ndarray  # [label codes] candidate index of each classifier column
    onnx_path: Path  # <repository>/<scorer model>/<version>/model.onnx

    @property
    def pad_id(self) -> int:
        return self.tokenizer.token_to_id(PAD)


def load_descriptions(repository: Path, metadata: ModelMetadata, directory: Path) -> DescriptionRuntime | None:
    info = metadata.description_scorer
    if info is None or metadata.fusion is None:
        return None
    files = directory / DESCRIPTIONS_DIR
    catalogue = json.loads((files / CATALOGUE_FILE).read_text(encoding="utf-8"))
    codes, displays = tuple(catalogue["codes"]), tuple(catalogue["displays"])
    if len(codes) != info.candidates:
        raise ValueError(f"{files / CATALOGUE_FILE} has {len(codes)} candidate codes, metadata.json says {info.candidates}")
    index = {c: j for j, c in enumerate(codes)}
    missing = [c for c in metadata.labels.codes if c not in index]
    if missing:
        raise ValueError(f"{files / CATALOGUE_FILE} lacks label-space codes, e.g. {missing[:5]}")
    with np.load(files / NEIGHBOURS_FILE) as data:
        neighbours = Neighbours(data["embeddings"].astype(np.float32), data["indptr"], data["codes"])
    return DescriptionRuntime(
        info=info, fusion=metadata.fusion, codes=codes, displays=displays, tokenizer=load_tokenizer(files / info.tokenizer_file),
        neighbours=neighbours, label_candidates=np.asarray([index[c] for c in metadata.labels.codes], dtype=np.int64),
        onnx_path=version_dir(repository, info.model_name, metadata.version) / ONNX_FILE,
    )


@dataclass(frozen=True)
class ModelRuntime:
    """One model version: metadata, tokenizer and where its files lie."""

    metadata: ModelMetadata
    tokenizer: Tokenizer
    directory: Path  # <repository>/<model_name>/<version>
    descriptions: DescriptionRuntime | None = None  # the version's description scorer, when it has one

    @property
    def model_ref(self) -> ModelRef:
        return ModelRef(name=self.metadata.model_name, version=self.metadata.version, code_set_release=self.metadata.labels.code_set_release)

    @property
    def onnx_path(self) -> Path:
        return self.directory / ONNX_FILE

    @property
    def pad_id(self) -> int:
        return self.tokenizer.token_to_id(PAD)

    @property
    def max_length(self) -> int:
        return self.metadata.segmentation.max_length

    @cached_property
    def thresholds(self) -> np.ndarray:
        """Per-code thresholds in label order, built once per version (not per batch)."""
        return self.metadata.thresholds.vector(self.metadata.labels.codes)


def load_runtime(repository: Path, model_name: str, version: int | None = None) -> ModelRuntime:
    """Load a version's metadata and tokenizer (the newest version when ``version`` is None).

    Raises FileNotFoundError naming what is missing, or pydantic.ValidationError for bad metadata.
    """
    repository = Path(repository)
    if version is None:  # the newest; with none at all, load_metadata says the repository has no versions
        version = max(list_versions(repository, model_name), default=None)
    metadata = load_metadata(repository, model_name, version)
    directory = version_dir(repository, model_name, version)
    if metadata.version != version or metadata.model_name != model_name:
        raise ValueError(f"{directory}/metadata.json describes {metadata.model_name!r} version {metadata.version}")
    tokenizer = load_tokenizer(directory / metadata.tokenizer_file)
    return ModelRuntime(metadata=metadata, tokenizer=tokenizer, directory=directory, descriptions=load_descriptions(repository, metadata, directory))


def load_runtime_from_settings(settings: ModelSettings) -> ModelRuntime:
    return load_runtime(settings.repository, settings.name, settings.version)

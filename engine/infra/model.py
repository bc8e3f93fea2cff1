"""What the engine needs of one exported model version, besides the network itself: its metadata (labels,
thresholds, segmentation) and its tokenizer, both read from the Triton model repository.

The repository is the single source of truth (``schemas.model_repo``): the engine serves exactly the
version whose metadata and tokenizer it loaded here, whether inference runs in-process or on Triton.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from schemas.envelopes import ModelRef
from schemas.model_repo import ONNX_FILE, ModelMetadata, list_versions, load_metadata, version_dir
from schemas.settings import ModelSettings
from schemas.text import PAD, load_tokenizer


@dataclass(frozen=True)
class ModelRuntime:
    """One model version: metadata, tokenizer and where its files lie."""

    metadata: ModelMetadata
    tokenizer: Tokenizer
    directory: Path  # <repository>/<model_name>/<version>

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
    return ModelRuntime(metadata=metadata, tokenizer=tokenizer, directory=directory)


def load_runtime_from_settings(settings: ModelSettings) -> ModelRuntime:
    return load_runtime(settings.repository, settings.name, settings.version)

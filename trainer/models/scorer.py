"""Any run directory -> a function from note texts to [notes, codes] probabilities (torch coders and the
logistic-regression baseline alike), for evaluation and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams, Thresholds
from schemas.text import load_tokenizer
from trainer.models.config import CoderConfig
from trainer.models.logistic_regression import LogisticRegressionCoder
from trainer.models.predict import score_notes
from trainer.models.run_dir import load_finetuned, read_run_metadata


@dataclass
class NoteScorer:
    config: CoderConfig
    labels: LabelSpace
    thresholds: Thresholds
    segmentation: SegmentationParams
    score: Callable[[Sequence[str]], np.ndarray]  # texts -> probabilities [notes, codes]


def load_scorer(run_dir: str | Path, device: str | torch.device = "cpu", batch_size: int = 16, progress: bool = False) -> NoteScorer:
    run_dir = Path(run_dir)
    config, labels, thresholds, segmentation = read_run_metadata(run_dir)
    if config.architecture == "logreg":
        model = LogisticRegressionCoder.load(run_dir)
        return NoteScorer(config, labels, thresholds, segmentation, model.predict_proba)
    coder = load_finetuned(run_dir, device)
    tokenizer = load_tokenizer(run_dir)

    def score(texts: Sequence[str]) -> np.ndarray:
        return score_notes(coder, texts, tokenizer, segmentation, batch_size, device, progress)

    return NoteScorer(config, labels, thresholds, segmentation, score)

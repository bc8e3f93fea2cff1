"""Bag-of-words logistic regression baseline (paper Table 2): sparse TF-IDF, one-vs-rest, one LR per code.

Scores whole notes (no segmentation). Saved with joblib (a pickle: load only run directories you trust).
Not exportable to ONNX/Triton: ``trainer export`` serves the torch coders only.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

log = logging.getLogger(__name__)
MODEL_FILE = "logreg.joblib"


class LogisticRegressionCoder:
    def __init__(self, c: float = 1.0, max_features: int = 200_000):
        self.vectorizer = TfidfVectorizer(lowercase=True, sublinear_tf=True, max_features=max_features, ngram_range=(1, 2), min_df=1)
        self.classifier = OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear", max_iter=1000))

    def fit(self, texts: Sequence[str], targets: np.ndarray) -> "LogisticRegressionCoder":
        features = self.vectorizer.fit_transform(texts)
        constant = int(((targets.sum(axis=0) == 0) | (targets.sum(axis=0) == len(texts))).sum())
        if constant:
            log.info("%d codes are constant in the training split; the baseline predicts that constant for them", constant)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            self.classifier.fit(features, targets)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(self.vectorizer.transform(texts)), dtype=np.float32)

    def save(self, run_dir: Path) -> None:
        joblib.dump(self, Path(run_dir) / MODEL_FILE)

    @staticmethod
    def load(run_dir: Path) -> "LogisticRegressionCoder":
        path = Path(run_dir) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {MODEL_FILE} in {run_dir}")
        return joblib.load(path)

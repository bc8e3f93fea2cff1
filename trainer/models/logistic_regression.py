"""Bag-of-words logistic regression baseline (paper Table 2): sparse TF-IDF, one logistic regression per code.

Scores whole notes (no segmentation). One-vs-rest is fitted code by code here (not sklearn's
``OneVsRestClassifier``) so the fit shows progress: with ~1,800 codes it takes minutes (liblinear releases the GIL,
so ``threads`` fits run side by side in a thread pool; the result does not depend on it). A code without
positives (or without negatives) in the training notes predicts that constant. Saved with joblib (a pickle:
load only run directories you trust). Not exportable to ONNX/Triton: ``trainer export`` serves the torch coders only.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
MODEL_FILE = "logreg.joblib"


class LogisticRegressionCoder:
    def __init__(self, c: float = 1.0, max_features: int = 200_000):
        self.c = c
        self.vectorizer = TfidfVectorizer(lowercase=True, sublinear_tf=True, max_features=max_features, ngram_range=(1, 2), min_df=1)
        self.estimators: list[LogisticRegression | float] = []  # per code: a fitted model, or a constant probability

    def fit(self, texts: Sequence[str], targets: np.ndarray, progress: bool = True, threads: int = 1) -> "LogisticRegressionCoder":
        features = self.vectorizer.fit_transform(texts)
        positives = targets.sum(axis=0)
        constant = int(((positives == 0) | (positives == len(texts))).sum())
        if constant:
            log.info("%d codes are constant in the training notes; the baseline predicts that constant for them", constant)

        def fit_code(j: int) -> LogisticRegression | float:
            if positives[j] in (0, len(texts)):
                return float(positives[j] > 0)
            return LogisticRegression(C=self.c, solver="liblinear", max_iter=1000).fit(features, targets[:, j])

        codes = range(targets.shape[1])
        with ThreadPoolExecutor(max(1, threads)) as pool:  # map keeps the code order
            self.estimators = list(tqdm(pool.map(fit_code, codes), total=len(codes), desc="logistic regression", unit="code", disable=not progress))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        features = self.vectorizer.transform(texts)
        out = np.empty((len(texts), len(self.estimators)), dtype=np.float32)
        for j, estimator in enumerate(self.estimators):
            out[:, j] = estimator if isinstance(estimator, float) else estimator.predict_proba(features)[:, 1]
        return out

    def save(self, run_dir: Path) -> None:
        joblib.dump(self, Path(run_dir) / MODEL_FILE)

    @staticmethod
    def load(run_dir: Path) -> "LogisticRegressionCoder":
        path = Path(run_dir) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {MODEL_FILE} in {run_dir}")
        model = joblib.load(path)
        if not hasattr(model, "estimators"):
            raise ValueError(f"{path} was written by an older version of the baseline; fit it again")
        return model

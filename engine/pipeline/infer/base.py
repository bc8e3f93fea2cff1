"""The inference backend interface and the request planning every backend shares."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from schemas.text import Segment, pad_batch

PAD_MULTIPLE = 32  # bucket width: requests of similar notes share a shape Triton's batcher can merge


@dataclass(frozen=True)
class InferenceResult:
    """Outputs for N input rows: ``probs`` [N, C]; evidence [N, C, K] (token positions, attention weights)
    or None when the model exports no evidence outputs."""

    probs: np.ndarray
    evidence_positions: np.ndarray | None = None
    evidence_weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.probs.ndim != 2:
            raise ValueError(f"probs must be [rows, codes], got shape {self.probs.shape}")
        if (self.evidence_positions is None) != (self.evidence_weights is None):
            raise ValueError("evidence_positions and evidence_weights come together")
        if self.evidence_positions is not None:
            if self.evidence_positions.shape != self.evidence_weights.shape or self.evidence_positions.shape[:2] != self.probs.shape:
                raise ValueError(f"evidence shapes {self.evidence_positions.shape}/{self.evidence_weights.shape} do not match probs {self.probs.shape}")

    @property
    def has_evidence(self) -> bool:
        return self.evidence_positions is not None


class InferenceBackend(abc.ABC):
    """Runs the exported model on padded batches. Raises ``TransientError`` when the model is unavailable."""

    max_segments_per_request: int = 32

    @abc.abstractmethod
    def infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> InferenceResult:
        """``input_ids``/``attention_mask``: INT64 [N, T]. Returns results for the N rows."""

    def infer_many(self, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[InferenceResult]:
        """Several requests; backends that can overlap them (Triton) override this."""
        return [self.infer(ids, mask) for ids, mask in batches]

    def outputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        """The named outputs of the served graph, as returned (used for graphs other than the classifier's,
        e.g. the description scorer)."""
        # Only the engine's own backends (onnxruntime, Triton) serve a second graph; a version with a description
        # scorer is always given one of them (describe.make_scorer_backend).
        raise TypeError(f"{type(self).__name__} cannot serve the description scorer's graph (outputs {list(names)})")

    def outputs_many(self, batches: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str]) -> list[list[np.ndarray]]:
        return [self.outputs(ids, mask, names) for ids, mask in batches]

    def check(self) -> None:
        """Raise ``TransientError`` if the model cannot serve now (used by health checks and at start)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "InferenceBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan_requests(segments: Sequence[Segment], max_per_request: int) -> list[list[int]]:
    """Group segment indices into requests of at most ``max_per_request`` rows, sorted by length so a
    request pads little (several notes' segments share a request)."""
    order = sorted(range(len(segments)), key=lambda i: (len(segments[i]), i))
    return [order[i : i + max_per_request] for i in range(0, len(order), max_per_request)]


def run_segments(backend: InferenceBackend, segments: Sequence[Segment], pad_id: int, max_length: int | None = None) -> InferenceResult:
    """Run every segment through ``backend`` and return results in the order of ``segments``."""
    if not segments:
        raise ValueError("no segments to run")
    plan = plan_requests(segments, backend.max_segments_per_request)
    batches = [pad_batch([segments[i] for i in rows], pad_id, PAD_MULTIPLE, max_length) for rows in plan]
    results = backend.infer_many(batches)
    first = results[0]
    probs = np.empty((len(segments), first.probs.shape[1]), dtype=np.float32)
    positions = weights = None
    if first.has_evidence:
        k = first.evidence_positions.shape[2]
        positions = np.empty((len(segments), probs.shape[1], k), dtype=np.int64)
        weights = np.empty((len(segments), probs.shape[1], k), dtype=np.float32)
    for rows, result in zip(plan, results):
        if result.probs.shape != (len(rows), probs.shape[1]):
            raise ValueError(f"backend returned probs of shape {result.probs.shape} for {len(rows)} rows and {probs.shape[1]} codes")
        probs[rows] = result.probs
        if positions is not None:
            positions[rows] = result.evidence_positions
            weights[rows] = result.evidence_weights
    return InferenceResult(probs, positions, weights)

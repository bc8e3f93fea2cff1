"""The embedded default: the exported ``model.onnx`` run in-process with onnxruntime (no Triton needed).

onnxruntime is the embedded runtime because it was the fastest on CPU in the inference benchmark (fused
attention graph from ``trainer export``; OpenVINO and PyTorch eager measured beside it, docs/deploy.md).
Threads follow the process's plan (``schemas.threads``: ``--threads``/``ICDCODER_THREADS``/idle cores), with
one inter-op thread and no spin-waiting, so the engine's own threads keep their CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.pipeline.infer.base import InferenceBackend, InferenceResult
from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, OUTPUT_EVIDENCE_POSITIONS, OUTPUT_EVIDENCE_WEIGHTS, OUTPUT_PROBS, output_names
from schemas.threads import configure_onnxruntime


class LocalOnnxBackend(InferenceBackend):
    """onnxruntime on ``<repository>/<model>/<version>/model.onnx``; CUDA when onnxruntime has it."""

    def __init__(self, onnx_path: Path, max_segments_per_request: int = 1, intra_op_threads: int = 0, classifier: bool = True) -> None:
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f"no ONNX model at {onnx_path}")
        options = configure_onnxruntime(ort.SessionOptions(), intra_op_threads or None)  # 0: the process's thread plan
        wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if not {INPUT_IDS, ATTENTION_MASK} <= inputs or (classifier and OUTPUT_PROBS not in outputs):
            raise ValueError(f"{onnx_path} has inputs {sorted(inputs)} and outputs {sorted(outputs)}; expected {INPUT_IDS}, {ATTENTION_MASK} -> {OUTPUT_PROBS}")
        self.evidence = {OUTPUT_EVIDENCE_POSITIONS, OUTPUT_EVIDENCE_WEIGHTS} <= outputs
        self.output_names = output_names(self.evidence)
        self.max_segments_per_request = max_segments_per_request

    def outputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, names) -> list[np.ndarray]:
        feeds = {INPUT_IDS: np.ascontiguousarray(input_ids, dtype=np.int64), ATTENTION_MASK: np.ascontiguousarray(attention_mask, dtype=np.int64)}
        return self.session.run(list(names), feeds)

    def infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> InferenceResult:
        outputs = self.outputs(input_ids, attention_mask, self.output_names)
        probs = outputs[0].astype(np.float32, copy=False)
        if self.evidence:
            return InferenceResult(probs, outputs[1].astype(np.int64, copy=False), outputs[2].astype(np.float32, copy=False))
        return InferenceResult(probs)

"""The CPU runtimes the inference benchmark compares, each as an engine ``InferenceBackend`` on the same
exported model, so speed and accuracy are measured through the same request planning:

- onnxruntime: the engine's embedded backend (``LocalOnnxBackend``) on a version's ``model.onnx``;
- OpenVINO (PyPI ``openvino``, a bench dependency only): the same ``model.onnx`` compiled for the CPU, in
  fp32 and, where the CPU has bf16 instructions, in bf16 (OpenVINO's default precision there);
- PyTorch eager: the fine-tuned coder wrapped exactly as exported (``ServedCoder``: sigmoid and top-k
  inside), with the attention implementation it was trained with (SDPA).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.pipeline.infer.base import InferenceBackend, InferenceResult
from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, output_names


def onnxruntime_backend(onnx_path: Path, threads: int) -> InferenceBackend:
    from engine.pipeline.infer.local import LocalOnnxBackend

    return LocalOnnxBackend(onnx_path, max_segments_per_request=8, intra_op_threads=threads)


def openvino_precisions() -> list[str]:
    """OpenVINO's CPU precisions worth measuring here: f32, plus bf16 where the CPU runs it natively."""
    import openvino as ov

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return ["f32"] + (["bf16"] if "BF16" in capabilities else [])


class OpenVinoBackend(InferenceBackend):
    """OpenVINO on the exported ONNX graph (it reads onnxruntime's fused operators), one stream, latency mode."""

    max_segments_per_request = 8

    def __init__(self, onnx_path: Path, threads: int, precision: str = "f32") -> None:
        import openvino as ov

        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision})
        self.request = self.compiled.create_infer_request()
        names = {o.any_name for o in self.compiled.outputs}
        self.names = output_names({"evidence_positions", "evidence_weights"} <= names)

    def infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> InferenceResult:
        self.request.infer({INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask})
        out = [self.request.get_tensor(name).data.copy() for name in self.names]
        return InferenceResult(out[0], *(out[1:] or (None, None)))


class TorchEagerBackend(InferenceBackend):
    """PyTorch eager on the fine-tuned run's weights, wrapped as exported."""

    max_segments_per_request = 8

    def __init__(self, run_dir: Path, top_k: int, threads: int) -> None:
        import torch

        from trainer.export.onnx_graph import ServedCoder
        from trainer.models import load_finetuned

        torch.set_num_threads(threads)
        self.torch = torch
        self.served = ServedCoder(load_finetuned(run_dir), top_k).eval()

    def infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> InferenceResult:
        with self.torch.no_grad():
            out = self.served(self.torch.from_numpy(input_ids), self.torch.from_numpy(attention_mask))
        out = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
        return InferenceResult(out[0], *(out[1:] or (None, None)))

"""Pick the inference backend from the settings: Triton when ``ICDCODER_TRITON_URL`` is set, otherwise the
model's ONNX file in-process (the embedded default)."""

from __future__ import annotations

from engine.infra.model import ModelRuntime
from engine.pipeline.infer.base import InferenceBackend
from schemas.settings import EngineSettings


def make_backend(settings: EngineSettings, runtime: ModelRuntime) -> InferenceBackend:
    evidence = runtime.metadata.evidence_top_k > 0
    if settings.triton.url:
        from engine.pipeline.infer.triton import TritonBackend

        return TritonBackend(settings.triton, runtime.metadata.version, evidence=evidence, n_codes=len(runtime.metadata.labels))
    from engine.pipeline.infer.local import LocalOnnxBackend

    return LocalOnnxBackend(runtime.onnx_path, max_segments_per_request=settings.triton.max_segments_per_request)

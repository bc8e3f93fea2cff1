"""Stage 4: model inputs -> per-segment code probabilities and evidence positions.

``base`` defines the backend interface and the request planning shared by all backends (length-sorted,
bucketed batches); ``local`` runs the ONNX file in-process, ``triton`` calls Triton; ``factory`` picks one
from the settings.
"""

from engine.pipeline.infer.base import InferenceBackend, InferenceResult, run_segments

__all__ = ["InferenceBackend", "InferenceResult", "run_segments"]

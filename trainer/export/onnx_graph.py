"""PyTorch coder -> ONNX graph with the serving outputs computed inside it, and the parity check.

The served graph is ``ServedCoder``: the fine-tuned coder, the sigmoid of its logits (per-code
probabilities, multi-label) and, for XML models, the top-k token positions of each code's label
attention (the evidence the engine highlights), so one inference call returns everything.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from transformers import PreTrainedModel

from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, OUTPUT_EVIDENCE_POSITIONS, OUTPUT_EVIDENCE_WEIGHTS, OUTPUT_PROBS, output_names
from schemas.threads import configure_onnxruntime

log = logging.getLogger(__name__)
OPSET = 17


class ServedCoder(nn.Module):
    """coder(input_ids, attention_mask) -> (probs [B,C], evidence_positions [B,C,k], evidence_weights [B,C,k])."""

    def __init__(self, coder: nn.Module, top_k: int) -> None:
        super().__init__()
        self.coder = coder
        self.top_k = top_k

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.coder(input_ids, attention_mask)
        probs = torch.sigmoid(out.logits.float())  # independent per-code probabilities (multi-label)
        if not self.top_k:
            return probs
        attention = out.token_attention.float()  # [B, C, T], rows sum to 1 over unmasked tokens
        # k zero columns keep top-k defined when T < k; they (and masked tokens) carry weight 0 = no evidence.
        attention = torch.cat([attention, attention.new_zeros(attention.shape[0], attention.shape[1], self.top_k)], dim=-1)
        weights, positions = torch.topk(attention, self.top_k, dim=-1)
        return probs, positions, weights


def example_batch(vocab_size: int, n_special: int, lengths: tuple[int, ...] = (37, 24, 9), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids with real padding: rows of different lengths, so the traced graph keeps the mask path."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(n_special, vocab_size, (len(lengths), width), generator=generator)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    return ids.masked_fill(mask == 0, 0), mask


def transformer_encoders(module: nn.Module) -> list[PreTrainedModel]:
    """The Hugging Face models (the BERT encoder) inside a coder; none for bi-GRU."""
    return [m for m in module.modules() if isinstance(m, PreTrainedModel)]


@contextlib.contextmanager
def eager_attention(module: nn.Module):
    """Transformers' eager attention inside ``module`` while exporting: its graph is the pattern onnxruntime's
    transformer optimizer fuses into one Attention node per layer (the SDPA graph is not). Same numbers."""
    encoders = transformer_encoders(module)
    before = [m.config._attn_implementation for m in encoders]
    for m in encoders:
        m.set_attn_implementation("eager")
    try:
        yield
    finally:
        for m, implementation in zip(encoders, before):
            m.set_attn_implementation(implementation)


def export_onnx(served: ServedCoder, path: Path, example: tuple[torch.Tensor, torch.Tensor], n_codes: int) -> None:
    """TorchScript-based exporter (dynamo=False: fast and stable with transformers' BERT) with eager attention
    (fusable, ``trainer.export.optimize``); batch and token axes dynamic; the code and k axes of the outputs
    written as fixed sizes."""
    names = output_names(bool(served.top_k))
    dynamic = {INPUT_IDS: {0: "batch", 1: "tokens"}, ATTENTION_MASK: {0: "batch", 1: "tokens"}}
    dynamic.update({name: {0: "batch"} for name in names})
    served.eval()
    with torch.no_grad(), warnings.catch_warnings(), eager_attention(served):
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes in transformers
        torch.onnx.export(served, example, str(path), input_names=[INPUT_IDS, ATTENTION_MASK], output_names=names,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    served.eval()  # export restores the wrapper's previous mode; make sure it is eval for parity
    model = onnx.load(str(path))
    fixed = {OUTPUT_PROBS: (n_codes,), OUTPUT_EVIDENCE_POSITIONS: (n_codes, served.top_k), OUTPUT_EVIDENCE_WEIGHTS: (n_codes, served.top_k)}
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for axis, size in enumerate(fixed[output.name], start=1):
            dims[axis].Clear()
            dims[axis].dim_value = size
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def convert_fp16(src: Path, dst: Path) -> None:
    """fp32 graph -> fp16 weights and activations; int64 inputs and fp32 outputs stay as they are
    (onnxruntime's own converter, keep_io_types), so the config and the engine do not change."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    OnnxModel(model).topological_sort()  # the converter appends Cast nodes out of order
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


@dataclass(frozen=True)
class Parity:
    """ONNX (onnxruntime CPU) vs PyTorch on the same inputs."""

    max_abs_probs: float
    max_abs_weights: float  # 0 when the model has no evidence outputs
    positions_agree: float  # share of evidence positions equal where the weights are not tied; 1.0 = all

    def within(self, tolerance: float) -> bool:
        return self.max_abs_probs < tolerance and self.max_abs_weights < tolerance and self.positions_agree == 1.0

    def __str__(self) -> str:
        return f"max |probs diff| {self.max_abs_probs:.2e}, max |weights diff| {self.max_abs_weights:.2e}, positions agree {self.positions_agree:.2%}"


def _untied(weights: np.ndarray, gap: float = 1e-5) -> np.ndarray:
    """Positions whose weight is clearly positive and differs from its neighbours in the sorted top-k
    (tied weights may come out in either order)."""
    diff = np.abs(np.diff(weights, axis=-1))
    before = np.concatenate([np.full(weights.shape[:-1] + (1,), np.inf), diff], axis=-1)
    after = np.concatenate([diff, np.full(weights.shape[:-1] + (1,), np.inf)], axis=-1)
    return (weights > gap) & (before > gap) & (after > gap)


def onnx_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    options = configure_onnxruntime(ort.SessionOptions(), threads)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_outputs(served: ServedCoder, input_ids: np.ndarray, attention_mask: np.ndarray) -> list[np.ndarray]:
    served.eval()
    with torch.no_grad():
        out = served(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def compare(reference: list[np.ndarray], candidate: list[np.ndarray], tie_gap: float = 1e-5) -> Parity:
    """Outputs ordered as output_names(): probs[, positions, weights]. Positions are compared only where
    weights are more than ``tie_gap`` apart (closer ones may legitimately swap order, e.g. in fp16)."""
    max_probs = float(np.abs(reference[0] - candidate[0]).max())
    if len(reference) == 1:
        return Parity(max_probs, 0.0, 1.0)
    max_weights = float(np.abs(reference[2] - candidate[2]).max())
    untied = _untied(reference[2], tie_gap) & _untied(candidate[2], tie_gap)
    agree = float((reference[1] == candidate[1])[untied].mean()) if untied.any() else 1.0
    return Parity(max_probs, max_weights, agree)


def check_parity(served: ServedCoder, onnx_path: Path, batches: list[tuple[np.ndarray, np.ndarray]], tie_gap: float = 1e-5) -> Parity:
    """Worst case over batches of ONNX vs PyTorch."""
    session = onnx_session(onnx_path)
    names = output_names(bool(served.top_k))
    results = []
    for input_ids, attention_mask in batches:
        got = session.run(names, {INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask})
        results.append(compare(torch_outputs(served, input_ids, attention_mask), got, tie_gap))
    return Parity(max(r.max_abs_probs for r in results), max(r.max_abs_weights for r in results),
                  min(r.positions_agree for r in results))

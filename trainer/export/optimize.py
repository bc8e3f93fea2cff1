"""Graph optimisation at export time: fused transformer operators, and int8 weights on request.

**Fusion.** ``torch.onnx.export`` writes BERT's attention as dozens of small operators (MatMul, Softmax,
Reshape, Transpose, mask arithmetic). onnxruntime's transformer optimizer replaces each layer's attention with
one ``Attention`` operator (and, in its full profile, the embeddings with ``EmbedLayerNormalization``,
residual + LayerNorm with ``SkipLayerNormalization``, bias + GELU with ``BiasGelu``). It only recognises the
pattern of the *eager* attention implementation (``onnx_graph.export_onnx`` exports with it; the SDPA pattern
that training uses is not recognised), and it needs the encoder's head count and hidden size. The fusion is
checked, not hoped for: every encoder layer must come out as one ``Attention`` node, or the export stops.

Two profiles, chosen by measurement (docs/deploy.md, "Fused graph"): for CPU serving (fp32, int8) only the
attention is fused - onnxruntime's CPU ``SkipLayerNormalization``/``EmbedLayerNormalization`` kernels made
the `cpu` encoder 10-20% slower than the plain LayerNormalization it fuses itself when loading the graph;
for fp16 (GPU) the full profile, onnxruntime's recommended path for its CUDA kernels. The fused operators are
onnxruntime's (``com.microsoft`` domain): its CPU and CUDA providers run them and OpenVINO reads them.

**int8** (``--int8``, CPU serving): dynamic quantization (onnxruntime ``quantize_dynamic``) stores the
weights of the matrix products and fused attention as signed 8-bit integers with a scale per output
channel, and quantizes activations on the fly. Its accuracy change is measured on CodiEsp dev by the
inference benchmark (bench/families/inference.py) and reported with the speed.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import onnx

from schemas.cli import UserError

log = logging.getLogger(__name__)
FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization", "SkipLayerNormalization", "BiasGelu", "Gelu", "FastGelu", "LayerNormalization")


def op_counts(path: Path, ops: tuple[str, ...] = FUSED_OPS) -> dict[str, int]:
    """How many nodes of each of ``ops`` the graph at ``path`` holds (0 for absent ones)."""
    counts = Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)
    return {op: counts.get(op, 0) for op in ops}


def fuse_encoder(src: Path, dst: Path, num_heads: int, hidden_size: int, num_layers: int, full: bool = False) -> dict[str, int]:
    """Fuse a BERT encoder's graph (``src`` -> ``dst``, may be the same file): the attention only, or every
    transformer fusion with ``full`` (GPU). Returns the fused-operator counts. Raises UserError unless every one
    of ``num_layers`` layers became one ``Attention`` node."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    if not full:
        for flag in ("enable_skip_layer_norm", "enable_bias_skip_layer_norm", "enable_embed_layer_norm", "enable_bias_gelu", "enable_gelu"):
            setattr(options, flag, False)
    # opt_level 0: only the transformer fusions, no onnxruntime session passes, so the file stays portable
    # (any execution provider; onnxruntime applies its own level of optimisation when it loads the graph).
    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0, optimization_options=options)
    model.topological_sort()
    model.save_model_to_file(str(dst))  # also declares the com.microsoft opset the fused nodes use
    onnx.checker.check_model(str(dst))
    counts = op_counts(dst)
    if counts["Attention"] != num_layers:
        raise UserError(f"attention fusion failed: {counts['Attention']} fused Attention nodes for {num_layers} encoder layers "
                        f"(fused operators: {counts}); the graph must be exported with eager attention")
    log.info("fused graph: %s", ", ".join(f"{op} {n}" for op, n in counts.items() if n))
    return counts


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the weights of MatMul/Attention (per output channel); ``dst`` != ``src``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     # the fused operators are outside ONNX's type inference: tell the quantizer their outputs are float
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    onnx.checker.check_model(str(dst))

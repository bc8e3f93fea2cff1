"""Triton ``config.pbtxt`` for an exported model: one template, two variants, checked against the ONNX graph.

- ``gpu-onnxruntime`` (production): ``platform: "onnxruntime_onnx"`` on ``KIND_GPU``, with an opt-in
  TensorRT accelerator block (commented out unless asked for).
- ``cpu-python`` (tests, demo, the wheel's tritonserver): ``backend: "python"`` on ``KIND_CPU`` running the
  SAME model.onnx through deploy/triton/python_backend/model.py.

Every rendered config is parsed with Triton's own protobuf schema (``model_config_pb2``), which rejects
unknown fields and bad enums, and its inputs/outputs are compared with the ONNX graph. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

import onnx
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, output_names

Variant = Literal["gpu-onnxruntime", "cpu-python"]
VARIANTS: tuple[str, ...] = ("gpu-onnxruntime", "cpu-python")
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "triton"
TEMPLATE_FILE = DEPLOY_DIR / "config.pbtxt.template"
PYTHON_BACKEND_MODEL = DEPLOY_DIR / "python_backend" / "model.py"

_ONNX_TO_TRITON = {
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
}


class ConfigCheckError(ValueError):
    """A config.pbtxt that Triton would reject or that does not match its ONNX graph."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    triton_type: str  # e.g. "TYPE_INT64"
    shape: tuple[int | str, ...]  # ONNX dims: ints, or symbolic names for dynamic axes


@dataclass(frozen=True)
class ServingConfig:
    """The knobs of config.pbtxt; docs/deploy.md justifies the defaults."""

    max_batch_size: int = 64  # segments per merged batch (requests carry ICDCODER_TRITON_MAX_SEGMENTS_PER_REQUEST, default 1)
    max_queue_delay_us: int = 2000  # 2 ms, small next to a BERT-base forward on 32x1024 tokens
    gpu_instances: int = 1
    cpu_instances: int = 1
    cpu_threads: int = 1  # onnxruntime intra-op threads per CPU instance
    tensorrt: bool = False  # uncomment the TensorRT accelerator block (FP16 engines, cached)
    site_packages: str = ""  # cpu-python: where the stub finds numpy<2 and onnxruntime
    pad_token_id: int = 0


def onnx_signature(onnx_path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX graph (names, Triton dtypes, shapes) without loading the weights."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value) -> TensorSpec:
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type not in _ONNX_TO_TRITON:
            raise ConfigCheckError(f"{onnx_path}: tensor {value.name!r} has unsupported ONNX type {tensor_type.elem_type}")
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim)
        return TensorSpec(value.name, _ONNX_TO_TRITON[tensor_type.elem_type], dims)

    return [spec(v) for v in graph.input if v.name not in initializers], [spec(v) for v in graph.output]


def _tensor_lines(specs: list[TensorSpec]) -> str:
    # Triton dims exclude the batch axis (max_batch_size > 0). Every other axis is -1: token counts vary per
    # request and the code count may change between versions served side by side under one config.
    return ",\n".join(f'  {{ name: "{s.name}" data_type: {s.triton_type} dims: [ {", ".join(["-1"] * (len(s.shape) - 1))} ] }}'
                      for s in specs)


def _tensorrt_block(enabled: bool) -> str:
    block = (
        "optimization { execution_accelerators { gpu_execution_accelerator [ {\n"
        '  name: "tensorrt"\n'
        '  parameters { key: "precision_mode" value: "FP16" }\n'
        '  parameters { key: "max_workspace_size_bytes" value: "4294967296" }\n'
        '  parameters { key: "trt_engine_cache_enable" value: "1" }\n'
        '  parameters { key: "trt_engine_cache_path" value: "/tmp/trt_cache" }\n'
        "} ] } }"
    )
    if enabled:
        return "# TensorRT through onnxruntime (enabled with --tensorrt): FP16 engines built on first use, cached.\n" + block
    return ("# TensorRT (opt-in: `trainer export --tensorrt`, or uncomment): onnxruntime hands supported subgraphs to\n"
            "# TensorRT with FP16 engines; the first request per shape builds an engine (minutes), so warm it up.\n"
            + "\n".join("# " + line for line in block.splitlines()))


def render_config(name: str, variant: str, inputs: list[TensorSpec], outputs: list[TensorSpec], serving: ServingConfig) -> str:
    """THE template function: both variants come from deploy/triton/config.pbtxt.template."""
    if variant == "gpu-onnxruntime":
        backend_lines = 'platform: "onnxruntime_onnx"'
        instances, kind = serving.gpu_instances, "KIND_GPU"
        extra = _tensorrt_block(serving.tensorrt)
    elif variant == "cpu-python":
        backend_lines = 'backend: "python"'
        instances, kind = serving.cpu_instances, "KIND_CPU"
        params = {"site_packages": serving.site_packages, "intra_op_threads": str(serving.cpu_threads),
                  "pad_token_id": str(serving.pad_token_id)}
        extra = "# Read by model.py (the stub ignores PYTHONPATH; numpy must be < 2 there).\n" + "\n".join(
            f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items())
    else:
        raise ConfigCheckError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    template = Template(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return template.substitute(
        variant=variant, name=name, backend_lines=backend_lines, max_batch_size=serving.max_batch_size,
        inputs=_tensor_lines(inputs), outputs=_tensor_lines(outputs), max_queue_delay_us=serving.max_queue_delay_us,
        instance_count=instances, instance_kind=kind, extra_lines=extra,
    )


def parse_config(text: str, where: str = "config.pbtxt") -> model_config_pb2.ModelConfig:
    """Parse with Triton's schema: unknown fields, bad enums and bad numbers are errors."""
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as err:
        raise ConfigCheckError(f"{where}: not a valid Triton model config: {err}") from None


def check_config(config: model_config_pb2.ModelConfig, inputs: list[TensorSpec], outputs: list[TensorSpec],
                 where: str = "config.pbtxt") -> None:
    """Names, dtypes and ranks of the config's tensors must be exactly the ONNX graph's."""
    problems = []
    if not (config.platform == "onnxruntime_onnx") ^ (config.backend == "python"):
        problems.append(f"expected platform onnxruntime_onnx or backend python, got platform={config.platform!r} backend={config.backend!r}")
    batch_axis = 1 if config.max_batch_size > 0 else 0
    for kind, declared, graph in (("input", config.input, inputs), ("output", config.output, outputs)):
        declared_by_name = {t.name: t for t in declared}
        graph_by_name = {s.name: s for s in graph}
        if set(declared_by_name) != set(graph_by_name):
            problems.append(f"{kind}s {sorted(declared_by_name)} != ONNX graph {kind}s {sorted(graph_by_name)}")
            continue
        for name, spec in graph_by_name.items():
            tensor = declared_by_name[name]
            dtype = model_config_pb2.DataType.Name(tensor.data_type)
            if dtype != spec.triton_type:
                problems.append(f"{kind} {name!r}: config {dtype}, ONNX {spec.triton_type}")
            if len(tensor.dims) + batch_axis != len(spec.shape):
                problems.append(f"{kind} {name!r}: config rank {len(tensor.dims)}+{batch_axis} (batch), ONNX rank {len(spec.shape)}")
    if problems:
        raise ConfigCheckError(f"{where}: " + "; ".join(problems))


def expected_outputs(evidence_top_k: int) -> list[str]:
    return output_names(bool(evidence_top_k))


EXPECTED_INPUTS = [INPUT_IDS, ATTENTION_MASK]

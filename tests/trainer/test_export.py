"""trainer export: repository layout, metadata, configs checked against the graph, ONNX/PyTorch parity on
real notes, the fused graph (one Attention node per layer), fp16, int8, versioning and bad input. Serving through the real Triton is tests/deploy/test_triton_serving.py."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from schemas.cli import UserError
from schemas.model_repo import (
    METADATA_FILE,
    ONNX_FILE,
    OUTPUT_EVIDENCE_POSITIONS,
    OUTPUT_EVIDENCE_WEIGHTS,
    OUTPUT_PROBS,
    TOKENIZER_FILE,
    list_versions,
    load_metadata,
)
from schemas.phi import PLACEHOLDERS
from tests.fixtures.model_repo import MODEL_NAME


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_metadata(exported_model_repo, tiny_xml_run_dir):
    version_dir = exported_model_repo / MODEL_NAME / "1"
    # __pycache__ appears once a Triton Python backend has loaded model.py from this shared repository
    assert sorted(p.name for p in version_dir.iterdir() if p.name != "__pycache__") == sorted([ONNX_FILE, METADATA_FILE, TOKENIZER_FILE, "model.py"])
    assert list_versions(exported_model_repo, MODEL_NAME) == [1]
    meta = load_metadata(exported_model_repo, MODEL_NAME)
    run_labels = (tiny_xml_run_dir / "labels.json").read_text()
    assert meta.model_name == MODEL_NAME and meta.version == 1 and meta.architecture == "bert-xml"
    assert meta.labels.model_dump_json() == type(meta.labels).model_validate_json(run_labels).model_dump_json()
    assert meta.deid_placeholders == PLACEHOLDERS
    assert (meta.evidence_top_k, meta.precision) == (8, "fp32")
    assert meta.training.dataset
    assert (version_dir / TOKENIZER_FILE).read_bytes() == (tiny_xml_run_dir / "tokenizer.json").read_bytes()
    assert not [p for p in (exported_model_repo / MODEL_NAME).iterdir() if p.name.startswith(".")], "staging left behind"


def test_configs_parse_and_match_the_graph(exported_model_repo):
    from trainer.export.triton_config import check_config, onnx_signature, parse_config

    model_dir = exported_model_repo / MODEL_NAME
    inputs, outputs = onnx_signature(model_dir / "1" / ONNX_FILE)
    assert [(s.name, s.triton_type, len(s.shape)) for s in outputs] == [
        (OUTPUT_PROBS, "TYPE_FP32", 2), (OUTPUT_EVIDENCE_POSITIONS, "TYPE_INT64", 3), (OUTPUT_EVIDENCE_WEIGHTS, "TYPE_FP32", 3)]
    cpu = parse_config((model_dir / "config.pbtxt").read_text())
    gpu = parse_config((model_dir / "configs" / "gpu-onnxruntime.pbtxt").read_text())
    for config in (cpu, gpu):
        check_config(config, inputs, outputs)
        assert config.name == MODEL_NAME and config.max_batch_size == 64
        assert config.version_policy.HasField("all")
        assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert (cpu.backend, cpu.platform, cpu.instance_group[0].kind) == ("python", "", cpu.instance_group[0].KIND_CPU)
    assert (gpu.backend, gpu.platform, gpu.instance_group[0].kind) == ("", "onnxruntime_onnx", gpu.instance_group[0].KIND_GPU)
    assert not gpu.optimization.execution_accelerators.gpu_execution_accelerator  # TensorRT is opt-in
    assert '#   name: "tensorrt"' in (model_dir / "configs" / "gpu-onnxruntime.pbtxt").read_text()
    # Production and test configs differ only in backend/platform, instance and parameter lines.
    strip = lambda c: (c.ClearField("backend"), c.ClearField("platform"), c.ClearField("instance_group"), c.ClearField("parameters"))
    strip(cpu), strip(gpu)
    assert cpu == gpu


def test_tensorrt_option_and_config_checks(exported_model_repo):
    from trainer.export.triton_config import ConfigCheckError, ServingConfig, check_config, onnx_signature, parse_config, render_config

    inputs, outputs = onnx_signature(exported_model_repo / MODEL_NAME / "1" / ONNX_FILE)
    trt = parse_config(render_config(MODEL_NAME, "gpu-onnxruntime", inputs, outputs, ServingConfig(tensorrt=True)))
    accelerator = trt.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    text = (exported_model_repo / MODEL_NAME / "config.pbtxt").read_text()
    with pytest.raises(ConfigCheckError, match="config.pbtxt: not a valid Triton model config"):
        parse_config(text.replace("max_batch_size", "max_batch_sise"))
    with pytest.raises(ConfigCheckError, match="KIND_TPU"):
        parse_config(text.replace("KIND_CPU", "KIND_TPU"))
    with pytest.raises(ConfigCheckError, match="'probs': config TYPE_FP16, ONNX TYPE_FP32"):
        check_config(parse_config(text.replace('"probs" data_type: TYPE_FP32', '"probs" data_type: TYPE_FP16')), inputs, outputs)
    with pytest.raises(ConfigCheckError, match="rank"):
        check_config(parse_config(text.replace('"probs" data_type: TYPE_FP32 dims: [ -1 ]', '"probs" data_type: TYPE_FP32 dims: [ -1, -1 ]')), inputs, outputs)
    with pytest.raises(ConfigCheckError, match="outputs"):
        check_config(parse_config(text), inputs, outputs[:1])


def test_onnx_matches_pytorch_on_real_notes(exported_model_repo, parity_batches, served_reference):
    from trainer.export.onnx_graph import check_parity

    assert sum(len(ids) for ids, _ in parity_batches) >= 10 and any(m.sum(1).min() < m.shape[1] for _, m in parity_batches)
    parity = check_parity(served_reference, exported_model_repo / MODEL_NAME / "1" / ONNX_FILE, parity_batches)
    print(f"fp32 ONNX vs PyTorch on real notes: {parity}")
    assert parity.max_abs_probs < 1e-4 and parity.max_abs_weights < 1e-4 and parity.positions_agree == 1.0


def test_fp16_export(tiny_xml_run_dir, tmp_path, parity_batches, served_reference):
    from trainer.export.onnx_graph import check_parity
    from trainer.export.repository import ExportOptions, export_model

    result = export_model(tiny_xml_run_dir, tmp_path / "repo", ExportOptions(fp16=True))
    assert result.metadata.precision == "fp16"
    assert result.fused_ops["Attention"] == 2 and result.fused_ops["SkipLayerNormalization"] == 4  # GPU profile: everything fused
    parity = check_parity(served_reference, result.version_dir / ONNX_FILE, parity_batches, tie_gap=5e-2)
    print(f"fp16 ONNX vs fp32 PyTorch on real notes: {parity}")
    assert parity.max_abs_probs < 5e-2 and parity.max_abs_weights < 5e-2 and parity.positions_agree == 1.0


def test_exported_graph_is_fused_one_attention_node_per_layer(exported_model_repo, tiny_xml_run_dir):
    from trainer.export.optimize import op_counts
    from trainer.models.run_dir import ENCODER_CONFIG_FILE

    layers = json.loads((tiny_xml_run_dir / ENCODER_CONFIG_FILE).read_text())["num_hidden_layers"]
    counts = op_counts(exported_model_repo / MODEL_NAME / "1" / ONNX_FILE)
    assert counts["Attention"] == layers == 2
    # CPU profile: the attention only; LayerNorm stays the ONNX operator onnxruntime runs faster on CPU
    assert counts["SkipLayerNormalization"] == counts["EmbedLayerNormalization"] == 0 and counts["LayerNormalization"] == 2 * layers + 1


def test_unfusable_attention_is_refused(tiny_xml_run_dir, tmp_path, monkeypatch):
    """The SDPA graph (what exporting without eager attention gives) has no pattern the optimizer fuses: the
    export stops instead of shipping the slow graph."""
    import contextlib

    from trainer.export import onnx_graph
    from trainer.export.repository import ExportOptions, export_model

    monkeypatch.setattr(onnx_graph, "eager_attention", lambda module: contextlib.nullcontext())
    with pytest.raises(UserError, match="attention fusion failed: 0 fused Attention nodes for 2 encoder layers"):
        export_model(tiny_xml_run_dir, tmp_path / "repo", ExportOptions())
    assert not (tmp_path / "repo" / MODEL_NAME).exists()
    plain = export_model(tiny_xml_run_dir, tmp_path / "plain", ExportOptions(fuse=False))  # the opt-out keeps the plain graph
    assert plain.fused_ops == {} and plain.parity.within(1e-4)


def test_int8_export(tiny_xml_run_dir, exported_model_repo, tmp_path, parity_batches, served_reference):
    from trainer.export.onnx_graph import check_parity
    from trainer.export.optimize import op_counts
    from trainer.export.repository import ExportOptions, export_model

    result = export_model(tiny_xml_run_dir, tmp_path / "repo", ExportOptions(int8=True, variants=("cpu-python",)))
    onnx_path = result.version_dir / ONNX_FILE
    assert result.metadata.precision == "int8" and result.fused_ops["Attention"] == 2
    counts = op_counts(onnx_path, ("QAttention", "MatMulInteger", "Attention"))
    assert counts["QAttention"] == 2 and counts["Attention"] == 0 and counts["MatMulInteger"] >= 3 * 2  # 3 products per layer + head
    assert onnx_path.stat().st_size < 0.6 * (exported_model_repo / MODEL_NAME / "1" / ONNX_FILE).stat().st_size
    parity = check_parity(served_reference, onnx_path, parity_batches, tie_gap=5e-2)
    print(f"int8 ONNX vs fp32 PyTorch on real notes: {parity}")
    assert parity.within(5e-2)
    with pytest.raises(UserError, match="choose one of --fp16"):
        export_model(tiny_xml_run_dir, tmp_path / "both", ExportOptions(int8=True, fp16=True))
    # the CLI's --parity-tolerance reaches the check: int8 cannot match fp32 within 1e-9, so nothing is written
    from schemas.cli import main
    from trainer.__main__ import COMMANDS

    argv = ["export", "--run", str(tiny_xml_run_dir), "--repository", str(tmp_path / "strict"), "--int8", "--variant", "cpu-python"]
    assert main("python -m trainer", "", COMMANDS, [*argv, "--parity-tolerance", "1e-9"]) == 2
    assert not (tmp_path / "strict" / MODEL_NAME / "1").exists()


def test_second_export_adds_a_version_and_keeps_the_first(exported_model_repo, tiny_xml_run_dir, tmp_path):
    from trainer.export.repository import ExportOptions, export_model

    repo = tmp_path / "repo"
    shutil.copytree(exported_model_repo, repo)
    before = _digest(repo / MODEL_NAME / "1")
    from schemas.context import ContextPolicy

    policy = ContextPolicy(negated="demote", family="suppress")  # the context policy is per model version
    result = export_model(tiny_xml_run_dir, repo, ExportOptions(name=MODEL_NAME, variants=("cpu-python", "gpu-onnxruntime"), context_policy=policy))
    assert result.version == 2 and list_versions(repo, MODEL_NAME) == [1, 2]
    assert _digest(repo / MODEL_NAME / "1") == before
    assert load_metadata(repo, MODEL_NAME).version == 2 and load_metadata(repo, MODEL_NAME, 1).version == 1
    assert load_metadata(repo, MODEL_NAME).context_policy == policy and load_metadata(repo, MODEL_NAME, 1).context_policy == ContextPolicy()


def _copy_run(run_dir: Path, dst: Path, drop: str) -> Path:
    shutil.copytree(run_dir, dst)
    (dst / drop).unlink()
    return dst


@pytest.mark.parametrize("missing", ["thresholds.json", "labels.json"])
def test_run_without_thresholds_or_labels_is_refused(tiny_xml_run_dir, tmp_path, missing):
    from trainer.export.repository import export_model

    run = _copy_run(tiny_xml_run_dir, tmp_path / "run", missing)
    with pytest.raises(UserError, match=f"missing {missing}"):
        export_model(run, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_run_with_invalid_labels_is_refused_without_echoing_them(tiny_xml_run_dir, tmp_path):
    from trainer.export.repository import export_model

    run = _copy_run(tiny_xml_run_dir, tmp_path / "run", "labels.json")
    (run / "labels.json").write_text('{"codes": ["Z99.SECRET"], "descriptions": [], "code_set_release": "x"}')
    with pytest.raises(UserError, match="not a valid LabelSpace") as refused:
        export_model(run, tmp_path / "repo")
    assert "SECRET" not in str(refused.value)
    assert not (tmp_path / "repo").exists()


def test_repository_holding_something_else_is_refused(tiny_xml_run_dir, tmp_path):
    from trainer.export.repository import export_model

    repo = tmp_path / "repo"
    (repo / "notes").mkdir(parents=True)
    (repo / "notes" / "a.txt").write_text("not a model")
    before = _digest(repo)
    with pytest.raises(UserError, match="does not look like a Triton model repository"):
        export_model(tiny_xml_run_dir, repo)
    assert _digest(repo) == before and sorted(p.name for p in repo.iterdir()) == ["notes"]


def test_existing_version_is_never_overwritten(exported_model_repo, tiny_xml_run_dir, tmp_path, capsys):
    from schemas.cli import main
    from trainer.__main__ import COMMANDS

    repo = tmp_path / "repo"
    shutil.copytree(exported_model_repo, repo)
    before = _digest(repo)
    argv = ["export", "--run", str(tiny_xml_run_dir), "--repository", str(repo), "--version", "1", "--variant", "cpu-python"]
    assert main("python -m trainer", "", COMMANDS, argv) == 2
    assert "already exists; versions are never overwritten" in capsys.readouterr().err
    assert _digest(repo) == before

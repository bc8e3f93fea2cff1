"""Fine-tuning end to end on synthetic notes: every architecture learns, the run directory is complete,
evaluation reports what the paper reports, and bad input gets clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.cli import UserError, main
from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams, Thresholds, TrainingSummary
from tests.fixtures.models import finetune_tiny
from trainer.__main__ import COMMANDS
from trainer.evaluate.evaluation import EvaluationConfig, evaluate_run, write_report
from trainer.finetune.train import FinetuneOptions, finetune
from trainer.models import CoderConfig, load_finetuned
from trainer.training.checkpoint import STATE_FILE

# Learning runs: randomly initialised encoders learn the full synthetic notes only after hundreds of steps
# (boilerplate, negated conditions), too slow for unit tests. So these runs keep the sections that state
# the diagnoses (past medical history, medications, assessment: ~30 word pieces) and cut them into
# 32-token segments (longer notes need several), with a one-layer encoder without dropout.
LEARN = {
    "bert-xml": dict(max_steps=200, lr=3e-3),
    "bert-cls": dict(max_steps=300, lr=3e-3),
    "bigru-attention": dict(max_steps=300, lr=3e-3),
}
DIAGNOSIS_SECTIONS = ("past medical history", "pmh", "medications", "assessment", "a")


def diagnosis_sections(text: str) -> str:
    """The lines under the headers in DIAGNOSIS_SECTIONS (the whole text when it has none)."""
    kept, keep = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and len(stripped) < 40 and not stripped.startswith("-"):
            keep = stripped[:-1].lower() in DIAGNOSIS_SECTIONS
        elif keep and stripped:
            kept.append(stripped)
    return "\n".join(kept) or text


@pytest.fixture(scope="module")
def one_layer_encoder_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A randomly initialised one-layer BERT without dropout, saved as a model directory (the local-directory
    encoder path)."""
    from transformers import BertConfig, BertModel

    from schemas.text import load_tokenizer

    vocab = load_tokenizer(tiny_tokenizer_dir).get_vocab_size()
    out = tmp_path_factory.mktemp("one_layer_encoder")
    config = BertConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128, max_position_embeddings=512,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config, add_pooling_layer=False).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def short_notes_dir(tmp_path_factory) -> Path:
    """train/dev/test of the diagnosis sections of synthetic notes, with the prepare step's label space
    (codes with >= 5 train notes)."""
    from trainer.data.prepare import build_label_space
    from trainer.data.synthetic import generate_notes

    records = [n.record for n in generate_notes(420, seed=7, long_fraction=0.0)]
    records = [r.model_copy(update={"text": diagnosis_sections(r.text)}) for r in records]
    splits = {"train": records[:300], "dev": records[300:360], "test": records[360:]}
    out = tmp_path_factory.mktemp("short_notes")
    for name, part in splits.items():
        (out / f"{name}.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in part), encoding="utf-8")
    labels, _ = build_label_space(splits["train"], min_train_positives=5)
    (out / "labels.json").write_text(labels.model_dump_json(), encoding="utf-8")
    return out


@pytest.mark.parametrize("architecture", [a for a in LEARN if a != "logreg"])
def test_each_torch_architecture_learns(architecture, short_notes_dir, tiny_tokenizer_dir, one_layer_encoder_dir, tmp_path):
    run = finetune_tiny(short_notes_dir, tiny_tokenizer_dir, tmp_path / "run", architecture, max_length=32, epochs=20,
                        encoder=str(one_layer_encoder_dir), optim_fields={"warmup_ratio": 0.0, "seed": 1}, **LEARN[architecture])
    result = evaluate_run(run, short_notes_dir, EvaluationConfig(split="test", bootstrap=0))
    assert result["micro_auc"] > 0.7 and result["macro_auc"] > 0.7, (architecture, result["micro_auc"], result["macro_auc"])
    segments = json.loads((run / "segmentation.json").read_text())["max_length"]
    assert segments == 32


def test_logistic_regression_baseline_learns_through_the_cli(short_notes_dir, tmp_path):
    argv = ["finetune", "--data", str(short_notes_dir), "--out", str(tmp_path / "run"), "--preset", "logreg", "--per-code-thresholds"]
    assert main("python -m trainer", "", COMMANDS, argv) == 0
    result = evaluate_run(tmp_path / "run", short_notes_dir, EvaluationConfig(split="test", bootstrap=0))
    assert result["micro_auc"] > 0.8 and result["macro_auc"] > 0.8, (result["micro_auc"], result["macro_auc"])
    with pytest.raises(ValueError, match="not exportable"):
        load_finetuned(tmp_path / "run")


def test_run_directory_contract(tiny_xml_run_dir):
    run = tiny_xml_run_dir
    for name in ("model.safetensors", "coder_config.json", "encoder_config.json", "labels.json", "thresholds.json",
                 "segmentation.json", "tokenizer.json", "training_summary.json", "selection_metrics.json", "loss_curve.png", "grad_norm_curve.png", "selection_curve.png"):
        assert (run / name).is_file(), name
    assert any((run / "checkpoints").glob("step-*"))
    labels = LabelSpace.model_validate_json((run / "labels.json").read_text())
    thresholds = Thresholds.model_validate_json((run / "thresholds.json").read_text())
    summary = TrainingSummary.model_validate_json((run / "training_summary.json").read_text())
    assert SegmentationParams.model_validate_json((run / "segmentation.json").read_text()).max_length == 128
    assert 0 < thresholds.global_threshold < 1 and thresholds.dev_micro_f1 is not None
    assert 0 <= summary.selection_metrics["micro_auc"] <= 1 and summary.notes_per_split["train"] > 0  # 40 tiny steps: near chance
    assert summary.selection == "selection on dev, report on test"  # the synthetic data has a test split
    coder = load_finetuned(run)
    assert coder.architecture == "bert-xml" and coder.labels == labels and coder.thresholds == thresholds


def test_resume_checks_run_before_the_data_is_read(tiny_tokenizer_dir, tmp_path):
    """A resume directory of another configuration, or checkpoints without --resume, fail in seconds: here the
    data directory does not even exist, so any data work first would fail differently."""
    checkpoint = tmp_path / "run" / "checkpoints" / "step-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / STATE_FILE).write_text(json.dumps({"config_hash": "another-run"}))
    args = (tmp_path / "no-data", tmp_path / "run", CoderConfig(architecture="bert-xml", encoder="tiny"))
    options = dict(options=FinetuneOptions(device="cpu"), tokenizer_path=tiny_tokenizer_dir / "tokenizer.json")
    with pytest.raises(UserError, match="different configuration"):
        finetune(*args, **options, resume=True)
    with pytest.raises(UserError, match="--resume"):
        finetune(*args, **options)


def test_evaluate_cli_writes_the_report(tiny_xml_run_dir, synthetic_dataset_dir, tmp_path):
    argv = ["evaluate", "--run", str(tiny_xml_run_dir), "--data", str(synthetic_dataset_dir), "--split", "test", "--bootstrap", "20", "--out", str(tmp_path)]
    assert main("python -m trainer", "", COMMANDS, argv) == 0
    result = json.loads((tmp_path / "eval_test.json").read_text())
    for key in ("micro_auc", "macro_auc", "macro_auc_codes", "micro_f1", "macro_f1", "precision_at_k", "map", "auc_by_train_frequency", "low_frequency"):
        assert key in result, key
    assert result["micro_auc_ci"]["low"] <= result["micro_auc"] <= result["micro_auc_ci"]["high"]
    defined = [c for c in result["per_code"] if c["auc"] is not None]
    assert len(defined) == result["macro_auc_codes"] and all(c["positives"] > 0 for c in defined)
    assert "NaN" not in (tmp_path / "eval_test.json").read_text()
    assert "Table 3" in (tmp_path / "eval_test.md").read_text() and (tmp_path / "auc_distribution_test.png").stat().st_size > 0


def test_label_space_mismatch_missing_descriptions_and_empty_split_are_clear_errors(tiny_xml_run_dir, synthetic_dataset_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    labels = LabelSpace.model_validate_json((synthetic_dataset_dir / "labels.json").read_text())
    smaller = LabelSpace(codes=labels.codes[:-1], descriptions=labels.descriptions[:-1], code_set_release=labels.code_set_release)
    (other / "labels.json").write_text(smaller.model_dump_json())
    (other / "test.jsonl").write_text((synthetic_dataset_dir / "test.jsonl").read_text())
    with pytest.raises(UserError, match="label space"):
        evaluate_run(tiny_xml_run_dir, other, EvaluationConfig(split="test", bootstrap=0))
    undescribed = json.loads(labels.model_dump_json())
    undescribed["descriptions"][0] = " "
    (other / "labels.json").write_text(json.dumps(undescribed))
    with pytest.raises(UserError, match="without descriptions"):
        evaluate_run(tiny_xml_run_dir, other, EvaluationConfig(split="test", bootstrap=0))
    (other / "labels.json").write_text(labels.model_dump_json())
    (other / "test.jsonl").write_text("")
    with pytest.raises(UserError, match="empty|no notes"):
        evaluate_run(tiny_xml_run_dir, other, EvaluationConfig(split="test", bootstrap=0))


def test_split_without_positives_reports_fallbacks_not_nan(tiny_xml_run_dir, synthetic_dataset_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.json").write_text((synthetic_dataset_dir / "labels.json").read_text())
    rows = [json.loads(line) for line in (synthetic_dataset_dir / "test.jsonl").read_text().splitlines()[:5]]
    (data / "test.jsonl").write_text("".join(json.dumps({**r, "codes": []}) + "\n" for r in rows))
    result = evaluate_run(tiny_xml_run_dir, data, EvaluationConfig(split="test", bootstrap=5))
    assert result["micro_auc"] is None and result["macro_auc"] is None and result["map"] is None
    assert any("no positive labels" in n for n in result["report_notes"])
    paths = write_report(result, tmp_path / "report")
    assert "NaN" not in paths["json"].read_text() and "n/a" in paths["markdown"].read_text()

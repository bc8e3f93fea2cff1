"""Smoke test of the benchmark machinery (``bench``) on tiny inputs: the families run end to end on the
shared tiny fixtures (synthetic dataset, tiny tokenizer, tiny fine-tuned BERT-XML and its exported
repository), write JSON and SUMMARY.md of the expected shape, and every measured number is finite and
positive. No timing thresholds: speed goals are judged by ``make bench``, not here. The pipeline family
runs too, on a handful of notes (its own Kafka, Redis, tritonserver and engine process).
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from bench.common import QUICK, BenchConfig

TINY = dataclasses.replace(QUICK, quality_presets=("logreg",), speed_notes=4, speed_lengths=(64, 128), training_steps=2, deid_notes=2, deid_words=150)


def _numbers(value, path="") -> list[tuple[str, float]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [(path, value)]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{path}[{i}]")]
    return []


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory, data_dir, synthetic_dataset_dir, synthetic_texts, tiny_tokenizer_dir, tiny_xml_run_dir, exported_model_repo):
    from bench.artifacts import Artifacts
    from bench.runner import run_benchmarks
    from trainer.pretrain.data import Corpus

    out = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig(data_dir=data_dir, out_dir=out / "results", work_dir=out / "work", quick=True, sizes_override=TINY)
    art = Artifacts.prebuilt(cfg, dataset=synthetic_dataset_dir, vocab=tiny_tokenizer_dir, corpus=Corpus(train=synthetic_texts[:200], held_out=synthetic_texts[200:230]),
                             speed_run=tiny_xml_run_dir, speed_repository=exported_model_repo)
    summary = run_benchmarks(cfg, ["quality", "inference", "training", "deid"], note="smoke test", artifacts=art)
    return cfg.out_dir, summary


def test_every_family_writes_json_with_finite_positive_numbers(bench_results):
    out_dir, _ = bench_results
    run = json.loads((out_dir / "run.json").read_text())
    assert run["errors"] == {}, run["errors"]
    for family in ("quality", "inference", "training", "deid"):
        doc = json.loads((out_dir / f"{family}.json").read_text())
        assert doc["mode"] == "quick" and doc["machine"]["cores"] >= 1 and doc["machine"]["torch"]
        numbers = _numbers({k: v for k, v in doc.items() if k not in ("sizes", "machine")})
        assert numbers, family
        bad = [(p, v) for p, v in numbers if not math.isfinite(v) or (v < 0 and ".delta_" not in p)]  # accuracy changes may be negative
        assert not bad, (family, bad[:5])


def test_speed_figures_are_measured(bench_results):
    out_dir, _ = bench_results
    inference = json.loads((out_dir / "inference.json").read_text())
    from bench.families.inference import EAGER, EMBEDDED, INT8, UNFUSED

    runtimes = {(c["runtime"], c["padding"]) for c in inference["comparisons"]}
    assert {(r, "bucketed") for r in (EMBEDDED, INT8, UNFUSED, EAGER, "openvino fp32")} <= runtimes and {(EMBEDDED, "fixed"), (EAGER, "fixed")} <= runtimes
    for c in inference["comparisons"]:
        assert c["notes_per_s"] > 0 and c["real_tokens_per_s"] > 0 and 0 < c["real_token_share"] <= 1
    fixed = {c["runtime"]: c for c in inference["comparisons"] if c["padding"] == "fixed"}
    bucketed = {c["runtime"]: c for c in inference["comparisons"] if c["padding"] == "bucketed"}
    assert bucketed[EMBEDDED]["real_token_share"] >= fixed[EMBEDDED]["real_token_share"]  # bucketing never pads more
    assert inference["model"]["fused_operators"]["Attention"] == 2
    assert {a["runtime"] for a in inference["accuracy"]} >= {EMBEDDED, INT8} and set(inference["goals"]) >= {"embedded_vs_eager", "int8_vs_embedded", "int8_accuracy"}
    assert all(isinstance(inference["goals"][g]["met"], bool) for g in ("embedded_vs_eager", "int8_vs_embedded"))
    assert inference["goals"]["int8_accuracy"]["met"] is None  # quick mode's model is untrained: accuracy goal not judged
    assert [g["max_length"] for g in inference["cost_growth"]] == [64, 128]
    training = json.loads((out_dir / "training.json").read_text())
    assert training["pretraining"]["tokens_per_s"] > 0 and training["finetuning_bert_xml"]["tokens_per_s"] > 0
    deid = json.loads((out_dir / "deid.json").read_text())
    assert all(r["notes_per_s_per_core"] > 0 and r["mean_words"] >= 150 for r in deid["results"])
    assert isinstance(deid["goal_met"], bool)


def test_quality_rows_carry_the_papers_metrics(bench_results):
    out_dir, _ = bench_results
    quality = json.loads((out_dir / "quality.json").read_text())
    assert quality["report_split"] == "test"  # the synthetic dataset has one
    (row,) = quality["rows"]
    assert "error" not in row, row.get("error")
    m = row["metrics"]
    assert 0 <= m["micro_auc"] <= 1 and 0 <= m["map"] <= 1 and m["macro_auc_codes"] > 0 and "5" in m["precision_at_k"]
    assert set(quality["vocabulary"]["vocabularies"]) == {"general English (MiniLM uncased WordPiece)", "EHR (trained here)"}


def test_summary_is_labelled_and_has_a_section_per_family(bench_results):
    _, summary = bench_results
    text = summary.read_text()
    assert text.startswith("# Benchmarks (QUICK mode)") and "QUICK mode:" in text and "Machine:" in text
    for heading in ("## Quality", "## Inference speed", "## Training speed", "## De-identification speed"):
        assert heading in text
    assert "Goal >= 100 notes/s per core" in text and "smoke test" in text
    assert "nan" not in text.lower().replace("financ", "")


def test_a_partial_rerun_keeps_the_other_families_runs():
    from bench.runner import merge_run_info

    full = {"families": ["quality", "deid", "pipeline"], "seconds": 600.0, "family_seconds": {"quality": 500.0, "deid": 20.0, "pipeline": 80.0},
            "errors": {"pipeline": "RuntimeError: engine exited"}, "note": "full"}
    first = merge_run_info({}, full, "full")
    rerun = {"families": ["pipeline"], "seconds": 90.0, "family_seconds": {"pipeline": 90.0}, "errors": {}, "note": "after the engine change"}
    merged = merge_run_info(first, rerun, "full")
    assert [r["families"] for r in merged["runs"]] == [["quality", "deid"], ["pipeline"]]
    assert merged["runs"][0]["family_seconds"] == {"quality": 500.0, "deid": 20.0}
    assert merged["errors"] == {}  # the failed family was measured again
    assert merge_run_info(merged, rerun, "quick")["runs"] == [rerun]  # another mode starts afresh


def test_pipeline_family_runs_the_engine_service_end_to_end(tmp_path, data_dir, synthetic_dataset_dir, tiny_tokenizer_dir, tiny_xml_run_dir, exported_model_repo):
    from bench.artifacts import Artifacts
    from bench.runner import run_benchmarks

    cfg = BenchConfig(data_dir=data_dir, out_dir=tmp_path / "results", work_dir=tmp_path / "work", quick=True,
                      sizes_override=dataclasses.replace(TINY, pipeline_notes=6))
    art = Artifacts.prebuilt(cfg, dataset=synthetic_dataset_dir, vocab=tiny_tokenizer_dir, speed_run=tiny_xml_run_dir, speed_repository=exported_model_repo)
    summary = run_benchmarks(cfg, ["pipeline"], artifacts=art)
    result = json.loads((cfg.out_dir / "pipeline.json").read_text())
    assert "service_error" not in result, result.get("service_error")
    service = result["service"]
    assert service["backlog"]["notes"] == 6 and service["paced"]["notes"] == 6 and service["dead_letters"] == 0
    assert service["engine_exit_status"] == 0
    assert result["raw_triton"]["notes_per_s"] > 0 and isinstance(result["service_goal_met"], bool)
    assert set(result["note_processor_triton"]["stage_ms_per_note"]) == {"parse", "deid", "segment", "infer", "aggregate", "context", "fhir"}
    assert "End to end: engine vs raw inference" in summary.read_text()


def test_workbench_family_runs_coders_against_the_real_server(tmp_path, data_dir):
    from bench.families import workbench

    cfg = BenchConfig(data_dir=data_dir, out_dir=tmp_path / "results", work_dir=tmp_path / "work", quick=True,
                      sizes_override=dataclasses.replace(TINY, workbench_coders=6, workbench_items=30, workbench_seconds=30.0))
    result = workbench.run(cfg, None)
    assert result["items_completed"] == 30 and result["items_left_queued"] == 0
    assert result["no_item_claimed_twice"] is True and result["no_decision_lost"] is True and result["http_errors"] == {}
    assert result["latency_ms"]["all"]["n"] == result["requests"] == 30 * 3 + 6  # + each coder's final empty claim
    assert 0 < result["latency_ms"]["complete"]["p95"] <= result["latency_ms"]["complete"]["max"]

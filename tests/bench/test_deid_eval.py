"""De-identification measured against gold spans: the synthetic generator's notes and PHI planted into
MTSamples. Recall thresholds are the project's targets; precision is reported by deid-eval."""

from __future__ import annotations

import json

import pytest

from bench.deid_eval.evaluation import eponym_survival, evaluate
from bench.deid_eval.planting import mtsamples_planted, synthetic_gold
from engine.deid import DeidConfig, Deidentifier
from schemas.phi import PhiCategory

TARGET = 0.99
MEASURED = (PhiCategory.NAME, PhiCategory.DATE, PhiCategory.ID, PhiCategory.PHONE, PhiCategory.EMAIL, PhiCategory.ADDRESS)


@pytest.fixture(scope="module")
def deid() -> Deidentifier:
    return Deidentifier(DeidConfig())


def _check(report) -> None:
    for c in MEASURED:
        assert report.per_category[c].gold >= 20, f"too few gold {c.value} spans to measure"
        assert report.recall(c) >= TARGET, (c.value, report.recall(c), report.missed[:5])
    for c in (PhiCategory.AGE, PhiCategory.URL, PhiCategory.IP):
        assert report.recall(c) >= TARGET, (c.value, report.recall(c))
    assert report.clinical_words > 1000
    assert report.clinical_words_removed / report.clinical_words < 0.005


def test_recall_on_synthetic_notes(deid):
    _check(evaluate(deid, synthetic_gold(150, seed=11), "synthetic"))


def test_recall_on_phi_planted_into_mtsamples(deid, data_dir):
    notes = mtsamples_planted(data_dir / "mtsamples" / "mtsamples.csv", 80, seed=5)
    report = evaluate(deid, notes, "mtsamples-planted")
    _check(report)
    # precision counts only planted spans as gold: unlabelled fake PHI already in MTSamples is "unmatched"
    assert report.per_category[PhiCategory.PHONE].true_positive == report.per_category[PhiCategory.PHONE].detections


def test_eponym_list_survives(deid):
    survival, lost = eponym_survival(deid)
    assert (survival, lost) == (1.0, [])


def test_deid_eval_cli_writes_table_json_and_html(tmp_path, data_dir, cli):
    done = cli("bench", "deid-eval", "--synthetic", "20", "--mtsamples", "10", "--mimesis", "10", "--data-dir", str(data_dir),
               "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "eponym survival [rules+ner]: 100.00%" in done.stdout and "NAME" in done.stdout and "FACILITY" in done.stdout
    assert "goal handwritten-test" in done.stdout
    result = json.loads((tmp_path / "deid_eval.json").read_text())
    sets = result["models"][0]["sets"]
    assert [s["name"] for s in sets] == [f"{n} [rules+ner]" for n in ("handwritten-test", "handwritten-test2", "handwritten-test3", "handwritten-test4", "handwritten-dev", "handwritten-dev2", "mimesis", "synthetic", "mtsamples-planted")]
    assert {s["name"]: s for s in sets}["mimesis [rules+ner]"]["categories"]["NAME"]["recall"] >= TARGET
    assert set(result["models"][0]["goals"]) == {f"{n} [rules+ner]" for n in ("handwritten-test", "handwritten-test2", "handwritten-test3", "handwritten-test4", "handwritten-dev", "handwritten-dev2", "mimesis")}
    assert "<mark class=" in (tmp_path / "deid_eval.html").read_text()
    missing = cli("bench", "deid-eval", "--synthetic", "0", "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "MTSamples not found" in missing.stderr

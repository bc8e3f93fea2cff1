"""The evidence-context measurement (bench/context_eval, bench/families/context.py): the labelled sets resolve
against the public data as labelled, are large enough and come from disjoint documents; the scoring, the official
CodiEsp MAP and the SUMMARY.md section."""

from __future__ import annotations

import json

from bench.context_eval.labelled import SETS_DIR, LabelledMention, load_set
from bench.context_eval.scoring import score
from bench.families.context import average_precision, classification
from bench.report import context_section
from schemas.context import CONTEXTS


def test_labelled_sets_resolve_and_are_disjoint(data_dir):
    report, report_docs = load_set("report", data_dir)  # raises on a changed corpus or an unknown label
    dev, _ = load_set("dev", data_dir)
    assert len(report) >= 300 and len(dev) >= 100
    assert not {i.doc for i in report} & {i.doc for i in dev}  # tuned on one set, reported on another
    assert {i.source for i in report} == {"mtsamples", "codiesp"}
    assert {i.label for i in report} == set(CONTEXTS)
    first = report[0]
    assert report_docs[first.doc][first.mention[0] : first.mention[1]] == first.mention_text
    for line in (SETS_DIR / "report.jsonl").read_text().splitlines():  # references only: no note text in the repository
        assert set(json.loads(line)) == {"id", "source", "doc", "stratum", "sentence", "mention", "mention_text", "label", "sentence_sha"}


def _item(i: int, label: str) -> LabelledMention:
    return LabelledMention(f"t-{i}", "mtsamples", "d", "mt-other", (0, 1), (0, 1), "x", label, "0")


def test_per_class_precision_recall_and_goal():
    items = [_item(i, g) for i, g in enumerate(["negated"] * 10 + ["affirmed"] * 10)]
    predicted = ["negated"] * 9 + ["affirmed"] + ["affirmed"] * 9 + ["negated"]
    r = score(items, predicted)
    assert r["per_class"]["negated"] == {"gold": 10, "predicted": 10, "correct": 9, "precision": 0.9, "recall": 0.9, "f1": 0.9}
    assert r["negation_goal"]["met"] is True and r["accuracy"] == 0.9 and len(r["errors"]) == 2
    r = score(items, ["affirmed"] * 20)
    assert r["negation_goal"]["met"] is False and r["per_class"]["negated"]["precision"] is None


def test_official_map_counts_every_gold_code():
    assert average_precision(["A", "B", "C"], {"A", "C"}) == (1 / 1 + 2 / 3) / 2
    assert average_precision(["A"], {"A", "Z"}) == 0.5  # a gold code never ranked still counts
    assert average_precision([], {"A"}) == 0.0


def test_summary_section_from_the_classification(tmp_path, data_dir):
    from bench.common import BenchConfig

    result = {"what": "test", "classification": classification(BenchConfig(data_dir=data_dir, out_dir=tmp_path, work_dir=tmp_path, quick=True))}
    text = "\n".join(context_section(result))
    assert "## Evidence context" in text and "| report | negated |" in text and "tuned on" in text
    neg = result["classification"]["report"]["per_class"]["negated"]
    assert f"recall {neg['recall']:.3f}" in text

"""trainer.deid_model: the learned de-identifier's training documents (seeded, exact spans, no evaluation
generator in the code path) and a tiny end-to-end training run that writes a loadable pipeline and its data card."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from trainer.deid_model.corpus import DocBuilder
from trainer.deid_model.templates import LABELS

CARRIERS = ["The wound was irrigated and closed in layers.", "No acute distress; lungs clear to auscultation.",
            "Hemoglobin was stable at 11.2 g/dL on repeat testing.", "Positive Babinski sign on the left."]


@pytest.mark.parametrize("styled", [False, True])
def test_documents_are_seeded_with_exact_spans(styled):
    a, b = DocBuilder(CARRIERS, seed=7, styled=styled).documents(200), DocBuilder(CARRIERS, seed=7, styled=styled).documents(200)
    assert a == b and a != DocBuilder(CARRIERS, seed=8, styled=styled).documents(200)
    labels = set()
    for d in a:
        for s, e, label in d.spans:
            value = d.text[s:e]
            assert value and value == value.strip() and label in LABELS, (value, label)
            labels.add(label)
    assert labels == set(LABELS)
    assert any(d.text.islower() for d in a) and (not styled or any(" period " in d.text for d in a))


def test_styles_rewrite_text_and_keep_every_span_exact():
    import random

    from trainer.deid_model.styles import STYLES, apply_style

    text = "Spoke with Ana Souza (daughter), who can't come.\nCall 555-0199. She's at Quarry Manor."
    spans = [(11, 20, "NAME"), (54, 62, "PHONE"), (73, 85, "ADDRESS")]
    rng = random.Random(1)
    for style, _ in STYLES:
        for _ in range(20):
            out, new = apply_style(style, text, spans, rng)
            assert [out[s:e].lower() for s, e, _ in new] == ["ana souza", "555-0199", "quarry manor"], (style, out)
            assert all(out[s - 1] == " " for s, _, _ in new), (style, out)  # never glued to the word before
    dictated, _ = apply_style("dictated", text, spans, random.Random(0))
    assert dictated.islower() and not any(c in dictated for c in "(),;\n")


def test_training_code_never_touches_the_evaluation_sets():
    root = Path(__file__).resolve().parents[2] / "trainer" / "deid_model"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m and (m.startswith("bench") or m.startswith("mimesis")) for m in modules), (path, modules)


@pytest.mark.slow
def test_tiny_training_run_writes_a_loadable_pipeline_and_data_card(tmp_path, data_dir):
    from engine.deid import DeidConfig, Deidentifier
    from trainer.deid_model.train import NerTrainConfig, train_ner

    out = tmp_path / "model"
    card = train_ner(NerTrainConfig(data_dir=data_dir, out=out, train_docs=60, dev_docs=20, carriers=300, max_epochs=1,
                                    eval_frequency=20), log=lambda *_: None)
    assert card["train_documents"] == 60 and 0 <= card["dev"]["ents_r"] <= 1
    assert json.loads((out / "training.json").read_text())["config"]["seed"] == 0
    assert "Data card" in (out / "DATA_CARD.md").read_text()
    deid = Deidentifier(DeidConfig(ner_model_dir=out))
    assert "Olatunji" not in deid.deidentify("Patient: Babatunde Olatunji").text  # the rules still apply

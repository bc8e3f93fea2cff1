"""The de-identifier on data it was not built from: the held-out hand-written notes and notes from the mimesis
generator (``bench.deid_eval.independent``). The floors below are regression guards at the level measured when
they were written (docs/deid.md), not the goals (>= 0.98 per category, >= 0.99 overall), which are reported by
``python -m bench deid-eval`` and the bench summary, met or not."""

from __future__ import annotations

import pytest

from bench.deid_eval.evaluation import eponym_survival, evaluate, goal_check
from bench.deid_eval.independent import LABEL_CATEGORY, handwritten, mimesis_notes, parse_marked
from engine.deid import DeidConfig, Deidentifier
from schemas.phi import PhiCategory

# overall recall floors (rules + NER); see docs/deid.md for the figures
FLOOR_HANDWRITTEN_TEST = 0.94  # measured 0.969 (shipped model)
FLOOR_MIMESIS = 0.98  # measured 1.000 on these 60 notes (0.979 before the third round, 0.858 with the first model)
FLOOR_HANDWRITTEN_TEST2 = 0.93  # measured 0.965 (second held-out set; 0.950 before the third round's rules, 0.955 before the fourth)
FLOOR_HANDWRITTEN_TEST3 = 0.80  # measured 0.838 (third held-out set, round 5, before that round's changes)
FLOOR_HANDWRITTEN_TEST4 = 0.89  # measured 0.917 (fourth held-out set, round 7, written by someone who never read the recognisers)
FLOOR_HANDWRITTEN_DEV2 = 0.92  # measured 0.947 (second development set; 0.742 before the fourth round's rules)
FLOOR_NAME_HANDWRITTEN_TEST = 0.90  # measured 0.957


@pytest.fixture(scope="module")
def deid() -> Deidentifier:
    return Deidentifier(DeidConfig())


def test_markup_parses_into_text_and_spans():
    note = parse_marked("Seen by [[NAME|Ann Lee]] at [[FACILITY|Mercy Clinic]] on [[DATE|3/4]].\n", "x")
    assert note.text == "Seen by Ann Lee at Mercy Clinic on 3/4.\n"
    assert [note.text[s.start : s.end] for s in note.phi] == ["Ann Lee", "Mercy Clinic", "3/4"]
    assert note.labels == ("NAME", "FACILITY", "DATE") and note.phi[1].category is PhiCategory.ADDRESS
    with pytest.raises(ValueError, match="unknown PHI label"):
        parse_marked("[[PERSON|Ann]]", "x")
    with pytest.raises(ValueError, match="unbalanced"):
        parse_marked("[[NAME|Ann", "x")


def test_handwritten_sets_are_demanding_and_well_formed():
    for split, min_spans in (("dev", 110), ("dev2", 200), ("test", 110), ("test2", 150), ("test3", 150), ("test4", 220)):
        notes = handwritten(split)
        labels = [lab for n in notes for lab in n.labels]
        assert len(notes) >= 20 and len(labels) >= min_spans
        assert {"NAME", "ADDRESS", "FACILITY", "DATE", "AGE", "PHONE", "ID"} <= set(labels) <= set(LABEL_CATEGORY)
        for n in notes:  # spans are exact: no surrounding spaces, titles outside
            for s in n.phi:
                value = n.text[s.start : s.end]
                assert value == value.strip() and not value.startswith(("Dr.", "Mr.", "Mrs.", "Ms.")), value


def test_mimesis_notes_are_seeded():
    assert [n.text for n in mimesis_notes(5, seed=3)] == [n.text for n in mimesis_notes(5, seed=3)]
    assert [n.text for n in mimesis_notes(5, seed=3)] != [n.text for n in mimesis_notes(5, seed=4)]


def test_recall_on_held_out_handwritten_notes(deid):
    report = evaluate(deid, handwritten("test"), "handwritten-test")
    overall = report.overall()
    assert overall.caught / overall.gold >= FLOOR_HANDWRITTEN_TEST, report.missed
    assert report.recall("NAME") >= FLOOR_NAME_HANDWRITTEN_TEST, report.missed
    for label in ("PHONE", "ID", "FACILITY", "EMAIL", "URL", "IP"):
        assert report.recall(label) == 1.0, (label, [m for m in report.missed if m[1] == label])
    g = goal_check(report)
    assert isinstance(g["met"], bool) and 0 < g["overall_precision"] <= 1


@pytest.mark.parametrize(("split", "floor", "perfect"), [
    ("test2", FLOOR_HANDWRITTEN_TEST2, ("PHONE", "ID", "EMAIL", "URL", "IP")),
    ("test3", FLOOR_HANDWRITTEN_TEST3, ("PHONE", "EMAIL", "URL", "IP")),
    ("test4", FLOOR_HANDWRITTEN_TEST4, ("ID", "EMAIL", "URL", "IP")),
])
def test_recall_on_later_held_out_sets(deid, split, floor, perfect):
    report = evaluate(deid, handwritten(split), f"handwritten-{split}")
    overall = report.overall()
    # figures only: the held-out notes' errors are never printed (they would guide the next change)
    assert overall.caught / overall.gold >= floor, f"recall {overall.caught}/{overall.gold}"
    for label in perfect:  # the categories measured at 1.0 (docs/deid.md)
        assert report.recall(label) == 1.0, f"{label} recall {report.recall(label):.3f}"


def test_recall_on_second_development_set(deid):
    report = evaluate(deid, handwritten("dev2"), "handwritten-dev2")
    overall = report.overall()
    assert overall.caught / overall.gold >= FLOOR_HANDWRITTEN_DEV2, report.missed  # a development set: errors may be shown
    for label in ("DATE", "AGE", "PHONE", "ID", "EMAIL"):
        assert report.recall(label) == 1.0, (label, [m for m in report.missed if m[1] == label])
    assert overall.true_positive / overall.detections >= 0.95


def test_recall_on_mimesis_notes(deid):
    report = evaluate(deid, mimesis_notes(60, seed=0), "mimesis")
    overall = report.overall()
    assert overall.caught / overall.gold >= FLOOR_MIMESIS, report.missed[:20]
    assert report.clinical_words_removed / report.clinical_words < 0.02


def test_the_model_adds_recall_over_the_rules_alone(deid):
    rules = Deidentifier(DeidConfig(model="rules"))
    notes = handwritten("test")
    both, alone = evaluate(deid, notes, "both").overall(), evaluate(rules, notes, "rules").overall()
    assert both.caught > alone.caught


def test_eponyms_survive_the_model(deid):
    assert eponym_survival(deid) == (1.0, [])

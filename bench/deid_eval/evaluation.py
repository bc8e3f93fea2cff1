"""Measure a de-identifier against gold PHI spans: recall and precision per category, clinical words
removed, eponym survival. Independent of the trainer: it takes (text, gold spans) pairs.

Definitions
- A gold span is *caught* when every non-space character of it lies inside some redaction (whatever the
  category: what matters for privacy is that it is gone). *Typed* recall also needs the redaction that
  covers its first character to carry the gold category.
- A detection (merged redaction) of category C is a *true positive* when it overlaps a gold span by at least
  one character; precision(C) = true positives / detections of C. On texts that may hold unlabelled PHI
  (MTSamples) the detections that overlap no gold span are counted as "unmatched", not as errors.
- Clinical words removed: alphabetic words outside gold spans whose lower-case form is an ICD-10-CM
  description word or an allow-listed eponym, and that a redaction touches, over all such words.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from engine.deid.deidentifier import Deidentifier
from engine.deid.lexicons import load_lexicons
from schemas.phi import PhiCategory, PhiSpan

_WORD = re.compile(r"[A-Za-z]{3,}")
EPONYM_TEMPLATES = (
    "History of {e}.",
    "Mr. John Smith was seen by Dr. Susan Wilson for {e} on 3/14/2024.",
    "{e} noted; his daughter, Mary Jones, was present.",
    "PMH: Wilson's, Addison's, {e}, Graves disease.",
)


@dataclass(frozen=True)
class GoldNote:
    text: str
    phi: tuple[PhiSpan, ...]
    source: str = ""
    labels: tuple[str, ...] = ()  # finer gold label per span (e.g. FACILITY, redacted as ADDRESS); default: category

    def label(self, i: int) -> str:
        return self.labels[i] if self.labels else self.phi[i].category.value


@dataclass
class CategoryScore:
    gold: int = 0
    caught: int = 0
    caught_typed: int = 0
    detections: int = 0
    true_positive: int = 0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "gold": self.gold,
            "recall": self.caught / self.gold if self.gold else None,
            "recall_typed": self.caught_typed / self.gold if self.gold else None,
            "detections": self.detections,
            "precision": self.true_positive / self.detections if self.detections else None,
            "unmatched_detections": self.detections - self.true_positive,
        }


@dataclass
class EvalReport:
    name: str
    notes: int = 0
    # keyed by gold label (a PhiCategory value, or a finer label such as FACILITY) for recall and by the
    # detection's category for precision; PhiCategory members work as keys too (str enum)
    per_category: dict[str, CategoryScore] = field(default_factory=lambda: {c.value: CategoryScore() for c in PhiCategory})
    clinical_words: int = 0
    clinical_words_removed: int = 0
    removed_examples: Counter = field(default_factory=Counter)  # clinical words seen removed (no PHI)
    missed: list[tuple[int, str, str]] = field(default_factory=list)  # (note index, gold label, gold text)

    def recall(self, category: PhiCategory | str) -> float | None:
        s = self.per_category[category]
        return s.caught / s.gold if s.gold else None

    def overall(self) -> CategoryScore:
        total = CategoryScore()
        for s in self.per_category.values():
            total.gold += s.gold
            total.caught += s.caught
            total.caught_typed += s.caught_typed
            total.detections += s.detections
            total.true_positive += s.true_positive
        return total

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "notes": self.notes,
            "categories": {str(c): s.as_dict() for c, s in self.per_category.items()},
            "overall": self.overall().as_dict(),
            "clinical_words": self.clinical_words,
            "clinical_words_removed": self.clinical_words_removed,
            "clinical_word_removal_rate": self.clinical_words_removed / self.clinical_words if self.clinical_words else None,
            "clinical_words_removed_top": self.removed_examples.most_common(20),
            "missed": len(self.missed),
        }


def _covered(mask: bytearray, start: int, end: int, text: str) -> bool:
    return all(mask[i] or text[i].isspace() for i in range(start, end))


def score_note(report: EvalReport, index: int, note: GoldNote, detected: Sequence[PhiSpan]) -> None:
    text = note.text
    mask = bytearray(len(text))
    for d in detected:
        mask[d.start : d.end] = b"\x01" * (d.end - d.start)
    report.notes += 1
    for i, g in enumerate(note.phi):
        s = report.per_category.setdefault(note.label(i), CategoryScore())
        s.gold += 1
        if _covered(mask, g.start, g.end, text):
            s.caught += 1
            first = next((d for d in detected if d.start <= g.start < d.end), None)
            s.caught_typed += first is not None and first.category == g.category
        else:
            report.missed.append((index, note.label(i), text[g.start : g.end]))
    gold_mask = bytearray(len(text))
    for g in note.phi:
        gold_mask[g.start : g.end] = b"\x01" * (g.end - g.start)
    for d in detected:
        s = report.per_category[d.category.value]
        s.detections += 1
        s.true_positive += any(gold_mask[d.start : d.end])
    lex = load_lexicons()
    for m in _WORD.finditer(text):
        w = m.group().lower()
        if (w in lex.clinical_words or w in lex.clinical) and not any(gold_mask[m.start() : m.end()]):
            report.clinical_words += 1
            if any(mask[m.start() : m.end()]):
                report.clinical_words_removed += 1
                report.removed_examples[w] += 1


def evaluate(deidentifier: Deidentifier, notes: Iterable[GoldNote], name: str, progress=None) -> EvalReport:
    report = EvalReport(name)
    for i, note in enumerate(notes):
        result = deidentifier.deidentify(note.text)
        score_note(report, i, note, result.detected)
        if progress is not None:
            progress(1)
    return report


def eponym_survival(deidentifier: Deidentifier) -> tuple[float, list[str]]:
    """Fraction of the fixed eponym list that survives intact in every template, and the ones that did not."""
    lost = []
    eponyms = load_lexicons().eponyms
    for e in eponyms:
        for template in EPONYM_TEMPLATES:
            phrase = e[0].upper() + e[1:] if template.startswith("{e}") else e
            if phrase not in deidentifier.deidentify(template.format(e=phrase)).text:
                lost.append(e)
                break
    return 1 - len(lost) / len(eponyms), lost


GOAL_RECALL_PER_CATEGORY = 0.98  # issue 14: every HIPAA category, on independent data
GOAL_RECALL_OVERALL = 0.99


def goal_check(report: EvalReport) -> dict:
    """Met / NOT met against the recall goals, with the figures (never adjusted)."""
    rows = {name: s.caught / s.gold for name, s in report.per_category.items() if s.gold}
    overall = report.overall()
    failing = {name: round(r, 4) for name, r in rows.items() if r < GOAL_RECALL_PER_CATEGORY}
    overall_recall = overall.caught / overall.gold if overall.gold else None
    return {"per_category_goal": GOAL_RECALL_PER_CATEGORY, "overall_goal": GOAL_RECALL_OVERALL,
            "categories_below_goal": failing, "overall_recall": overall_recall,
            "overall_precision": overall.true_positive / overall.detections if overall.detections else None,
            "met": not failing and overall_recall is not None and overall_recall >= GOAL_RECALL_OVERALL}

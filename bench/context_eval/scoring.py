"""Per-class precision and recall of the evidence-context classifier on a labelled set."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from bench.context_eval.labelled import LabelledMention
from schemas.context import CONTEXTS

NEGATION_GOALS = {"recall": 0.90, "precision": 0.85}  # issue 17


def predict(items: Sequence[LabelledMention], docs: dict[str, str]) -> list[str]:
    """The engine's classifier on each mention, given the whole document as the engine would."""
    from engine.pipeline.context import ContextClassifier

    classifier = ContextClassifier()
    return [classifier.classify(docs[i.doc], [i.mention])[0].context for i in items]


def score(items: Sequence[LabelledMention], predicted: Sequence[str]) -> dict[str, Any]:
    gold = [i.label for i in items]
    pairs = Counter(zip(gold, predicted))
    per_class = {}
    for c in CONTEXTS:
        tp = pairs[(c, c)]
        n_gold = sum(v for (g, _), v in pairs.items() if g == c)
        n_pred = sum(v for (_, p), v in pairs.items() if p == c)
        precision = tp / n_pred if n_pred else None
        recall = tp / n_gold if n_gold else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
        per_class[c] = {"gold": n_gold, "predicted": n_pred, "correct": tp, "precision": _r(precision), "recall": _r(recall), "f1": _r(f1)}
    neg = per_class["negated"]
    return {
        "mentions": len(items),
        "by_source": dict(Counter(i.source for i in items)),
        "by_stratum": dict(Counter(i.stratum for i in items)),
        "accuracy": _r(sum(pairs[(c, c)] for c in CONTEXTS) / len(items)) if items else None,
        "per_class": per_class,
        "confusion": {g: {p: pairs[(g, p)] for p in CONTEXTS} for g in CONTEXTS},
        "negation_goal": {**{f"{k}_min": v for k, v in NEGATION_GOALS.items()},
                          "met": neg["recall"] is not None and neg["precision"] is not None
                          and neg["recall"] >= NEGATION_GOALS["recall"] and neg["precision"] >= NEGATION_GOALS["precision"]},
        "errors": [{"id": i.id, "gold": i.label, "predicted": p} for i, p in zip(items, predicted) if p != i.label],
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)

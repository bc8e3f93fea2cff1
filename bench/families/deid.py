"""De-identification: throughput of the serving de-identifier (``engine.deid.Deidentifier``) on ~1,000-word
notes, one process on one core (the de-identifier is single-threaded Python: notes/s here is per core), for
every setting of ``DeidConfig.model`` ("rules+ner", the default; "rules"; and the fine-tuned MiniLM beside them,
"rules+transformer" and "rules+ner+transformer"); and recall per HIPAA category
on the independent evaluation sets (``bench.deid_eval.independent``) against the recall goals.

Two kinds of note, built by joining whole notes until the word count is reached, then cutting there:
MTSamples transcriptions (real clinical prose, little PHI) and synthetic notes with planted PHI
(``trainer.data.synthetic``: names, dates, addresses, phone numbers... the dense case).
Goals: >= 100 notes/s per core; recall >= 0.98 in every category and >= 0.99 overall on independent data.
"""

from __future__ import annotations

import time
from typing import Any

from bench.artifacts import Artifacts
from bench.common import BenchConfig, Stopwatch, percentiles, say
from bench.families.inference import mtsamples_sample
from schemas.phi import DEID_MODELS

GOAL_NOTES_PER_S_PER_CORE = 100.0


def notes_of_words(texts: list[str], words: int, n: int) -> list[str]:
    """``n`` notes of ``words`` words each, from consecutive texts (cycled)."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        parts: list[str] = []
        count = 0
        while count < words:
            text = texts[i % len(texts)]
            i += 1
            parts.append(text)
            count += len(text.split())
        joined = "\n\n".join(parts)
        out.append(" ".join(joined.split(" ")[: _cut(joined, words)]))
    return out


def _cut(text: str, words: int) -> int:
    """Number of space-separated pieces holding the first ``words`` words (line breaks kept inside pieces)."""
    seen = 0
    for k, piece in enumerate(text.split(" ")):
        seen += len(piece.split())
        if seen >= words:
            return k + 1
    return len(text.split(" "))


def measure(deid, notes: list[str]) -> dict[str, Any]:
    deid.deidentify(notes[0])  # warm-up: lazy recognizer set-up is not per-note cost
    per_note = []
    placeholders = 0
    cpu_start = time.process_time()
    with Stopwatch() as sw:
        for note in notes:
            with Stopwatch() as one:
                result = deid.deidentify(note, patient_key="bench")
            per_note.append(1000 * one.seconds)
            placeholders += len(result.replacements)
    cpu_s = time.process_time() - cpu_start
    words = sum(len(n.split()) for n in notes)
    return {"notes": len(notes), "mean_words": round(words / len(notes), 1), "seconds": round(sw.seconds, 3),
            "notes_per_s_per_core": round(len(notes) / sw.seconds, 2),
            "cpu_seconds": round(cpu_s, 3), "notes_per_cpu_s": round(len(notes) / cpu_s, 2), "words_per_s": round(words / sw.seconds, 1),
            "ms_per_note": percentiles(per_note), "spans_replaced": placeholders,
            "goal_met": len(notes) / sw.seconds >= GOAL_NOTES_PER_S_PER_CORE}


MODELS = DEID_MODELS  # the default first
MIMESIS_NOTES = 300  # the full run; quick runs use 3 per timed note


def quality(deid, mimesis_n: int = MIMESIS_NOTES) -> dict[str, Any]:
    """Recall per gold label and precision on the independent sets, with the goal check."""
    from bench.deid_eval.evaluation import eponym_survival, evaluate, goal_check
    from bench.deid_eval.independent import handwritten, mimesis_notes

    sets = {"handwritten-test (held out)": list(handwritten("test")), "handwritten-test2 (held out)": list(handwritten("test2")),
            "handwritten-test3 (held out)": list(handwritten("test3")), "handwritten-test4 (held out)": list(handwritten("test4")),
            "handwritten-dev": list(handwritten("dev")),
            f"mimesis ({mimesis_n} notes, seed 0)": mimesis_notes(mimesis_n, 0)}
    out = {}
    for name, notes in sets.items():
        report = evaluate(deid, notes, name)
        out[name] = {**report.as_dict(), "goal": goal_check(report)}
    survival, lost = eponym_survival(deid)
    return {"sets": out, "eponym_survival": survival, "eponyms_lost": lost}


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    from engine.deid import DeidConfig, Deidentifier
    from trainer.data.synthetic import generate_notes

    sizes = cfg.sizes
    sources = {
        "MTSamples": mtsamples_sample(cfg, 400, cfg.seed),
        "synthetic, planted PHI": [n.record.text for n in generate_notes(300, seed=cfg.seed, long_fraction=0.1)],
    }
    results, quality_by_model = [], {}
    for model in MODELS:
        deid = Deidentifier(DeidConfig(model=model))
        for name, texts in sources.items():
            notes = notes_of_words(texts, sizes.deid_words, sizes.deid_notes)
            say(f"de-identification [{model}]: {len(notes)} {name} notes of ~{sizes.deid_words} words ...")
            r = measure(deid, notes)
            say(f"  {r['notes_per_s_per_core']:.1f} notes/s per core, {r['notes_per_cpu_s']:.1f} notes per CPU-second "
                f"(goal {GOAL_NOTES_PER_S_PER_CORE:.0f}: {'met' if r['goal_met'] else 'NOT met'})")
            results.append({"model": model, "notes_source": name, **r})
        say(f"de-identification [{model}]: recall on the independent sets ...")
        quality_by_model[model] = quality(deid, min(MIMESIS_NOTES, 3 * sizes.deid_notes))
        for name, q in quality_by_model[model]["sets"].items():
            g = q["goal"]
            say(f"  {name}: overall recall {g['overall_recall']:.4f}, precision {g['overall_precision']:.4f}: "
                f"{'met' if g['met'] else 'NOT met'}")
    default = [r for r in results if r["model"] == MODELS[0]]
    return {"what": "engine.deid.Deidentifier.deidentify, one process, one core, ~1,000-word notes; notes/s is wall-clock, "
                    "notes per CPU-second is what one core gives when it is not shared",
            "goal_notes_per_s_per_core": GOAL_NOTES_PER_S_PER_CORE, "results": results, "quality": quality_by_model,
            "goal_met": all(r["goal_met"] for r in default),
            "recall_goal_met": all(q["goal"]["met"] for q in quality_by_model[MODELS[0]]["sets"].values())}

"""The evaluation's outputs: a console table, JSON, and an HTML page with a few notes highlighted
(found redactions green, missed gold spans red). Only synthetic or planted (fake) PHI is ever shown."""

from __future__ import annotations

import html
from typing import Sequence

from bench.deid_eval.evaluation import EvalReport, GoldNote
from schemas.phi import PhiSpan


def table(reports: Sequence[EvalReport]) -> str:
    lines = []
    for r in reports:
        d = r.as_dict()
        lines.append(f"\n{r.name}: {r.notes} notes")
        lines.append(f"{'category':<9} {'gold':>6} {'recall':>8} {'typed':>8} {'detected':>9} {'precision':>10} {'unmatched':>10}")
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        for name, s in [*d["categories"].items(), ("overall", d["overall"])]:
            if not s["gold"] and not s["detections"]:
                continue
            lines.append(f"{name:<9} {s['gold']:>6} {fmt(s['recall']):>8} {fmt(s['recall_typed']):>8} "
                         f"{s['detections']:>9} {fmt(s['precision']):>10} {s['unmatched_detections']:>10}")
        rate = d["clinical_word_removal_rate"]
        lines.append(f"clinical words removed: {d['clinical_words_removed']} of {d['clinical_words']}"
                     f" ({0 if rate is None else rate:.4%})")
    return "\n".join(lines)


def _highlight(note: GoldNote, detected: Sequence[PhiSpan]) -> str:
    marks: list[tuple[int, int, str, str]] = [(d.start, d.end, "found", d.category.value) for d in detected]
    for g in note.phi:
        if not any(d.start <= g.start and g.end <= d.end for d in detected):
            marks.append((g.start, g.end, "missed", g.category.value))
    out, pos = [], 0
    for start, end, kind, cat in sorted(marks):
        if start < pos:
            continue
        out.append(html.escape(note.text[pos:start]))
        out.append(f'<mark class="{kind}" title="{cat}">{html.escape(note.text[start:end])}</mark>')
        pos = end
    out.append(html.escape(note.text[pos:]))
    return "".join(out)


def html_page(reports: Sequence[EvalReport], examples: Sequence[tuple[str, GoldNote, Sequence[PhiSpan]]]) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>De-identification evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}pre{white-space:pre-wrap;border:1px solid #ccc;"
        "padding:1em}mark.found{background:#bfe8bf}mark.missed{background:#f4a6a6}</style>",
        "<h1>De-identification evaluation</h1><pre>", html.escape(table(reports)), "</pre>",
        "<p><mark class='found'>green</mark>: redacted; <mark class='missed'>red</mark>: gold PHI missed. "
        "Hover for the category. All PHI shown is synthetic or planted.</p>",
    ]
    for title, note, detected in examples:
        parts += [f"<h2>{html.escape(title)}</h2><pre>", _highlight(note, detected), "</pre>"]
    return "".join(parts)

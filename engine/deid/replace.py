"""Detected spans -> one set of non-overlapping redactions -> the new text and its offset map."""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Sequence

from engine.deid.types import DeidResult, Replacement
from schemas.phi import PhiCategory, PhiSpan

# When overlapping detections disagree and are equally long, the more specific category wins.
_PRIORITY = {c: i for i, c in enumerate([PhiCategory.EMAIL, PhiCategory.URL, PhiCategory.IP, PhiCategory.PHONE,
                                         PhiCategory.ID, PhiCategory.DATE, PhiCategory.AGE, PhiCategory.ADDRESS,
                                         PhiCategory.NAME])}


def merge_spans(spans: Iterable[PhiSpan], scores: Sequence[float] | None = None) -> list[PhiSpan]:
    """Union of overlapping spans (redaction must cover every detection); the merged span takes the
    category of its longest member, then of the most confident, then the most specific."""
    items = list(zip(spans, scores if scores is not None else itertools.repeat(0.0)))
    merged: list[PhiSpan] = []
    best: tuple[PhiSpan, float] | None = None

    def rank(item: tuple[PhiSpan, float]) -> tuple[int, float, int]:
        s, score = item
        return s.end - s.start, score, -_PRIORITY[s.category]

    for item in sorted(items, key=lambda it: (it[0].start, -it[0].end)):
        s = item[0]
        if s.end <= s.start:
            continue
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            if best is None or rank(item) > rank(best):
                best = item
            merged[-1] = PhiSpan(start=last.start, end=max(last.end, s.end), category=best[0].category)
        else:
            merged.append(s)
            best = item
    return merged


def apply_redactions(text: str, spans: list[PhiSpan], surrogate: Callable[[PhiSpan, str], str | None]) -> DeidResult:
    """Replace each span by ``surrogate(span, original)`` or, if that is None, its category placeholder."""
    pieces: list[str] = []
    replacements: list[Replacement] = []
    pos = new_pos = 0
    for s in spans:
        pieces.append(text[pos : s.start])
        new_pos += s.start - pos
        new = surrogate(s, text[s.start : s.end]) or s.category.placeholder
        pieces.append(new)
        replacements.append((s.start, s.end, new_pos, new_pos + len(new), s.category))
        new_pos += len(new)
        pos = s.end
    pieces.append(text[pos:])
    return DeidResult(text="".join(pieces), replacements=tuple(replacements), detected=tuple(spans))

"""Whole-document writing styles for the training data: dictated text without punctuation, ALL-CAPS notes and
patient-portal messages in lower case with typos. A style rewrites the text between PHI spans and the spans
themselves separately, so every span keeps its exact offsets in the rewritten text.

Round 5 of issue 14: the model had seen only 6% lower-cased and 3% upper-cased documents, all with their
punctuation, so names and places in dictation and portal messages were left to the rules.
"""

from __future__ import annotations

import random
import re
from typing import Callable

Spans = list[tuple[int, int, str]]
_SPACES = re.compile(r"[ \t]+")
_PUNCT_DICTATED = re.compile(r"[,;:()\"]")
_SENTENCE_END = re.compile(r"\.(?=\s|$)")
_APOSTROPHE = re.compile(r"(?<=[a-z])['’](?=[a-z])")
_WORD = re.compile(r"[a-z]{4,}")
_SHORTHAND = {"you": "u", "are": "r", "please": "pls", "thanks": "thx", "because": "bc", "tomorrow": "tmrw", "with": "w"}


def restyle(text: str, spans: Spans, outside: Callable[[str], str], inside: Callable[[str], str]) -> tuple[str, Spans]:
    """Rewrite the text between spans with ``outside`` and each span with ``inside``; a piece of outside text
    that touched a span on one side keeps a separating space on that side (never glues a word to PHI)."""
    out, new_spans, pos = [], [], 0
    length = 0
    for s, e, label in sorted(spans):
        piece = outside(text[pos:s])
        if pos < s and text[s - 1].isspace() and not piece[-1:].isspace():
            piece += " "
        if new_spans and text[pos : pos + 1].isspace() and not piece[:1].isspace():
            piece = " " + piece
        out.append(piece)
        length += len(piece)
        value = inside(text[s:e])
        new_spans.append((length, length + len(value), label))
        out.append(value)
        length += len(value)
        pos = e
    tail = outside(text[pos:])
    if new_spans and text[pos : pos + 1].isspace() and not tail[:1].isspace():
        tail = " " + tail
    out.append(tail)
    return "".join(out), new_spans


def _dictated(rng: random.Random) -> Callable[[str], str]:
    def outside(s: str) -> str:
        s = s.lower().replace("\n", " ")
        s = _SENTENCE_END.sub(lambda _: " period" if rng.random() < 0.4 else "", s)
        return _SPACES.sub(" ", _PUNCT_DICTATED.sub("", s))
    return outside


def _portal(rng: random.Random) -> Callable[[str], str]:
    def typo(m: re.Match) -> str:
        w = m.group()
        r = rng.random()
        if r < 0.03:
            i = rng.randrange(1, len(w) - 1)
            return w[:i] + w[i + 1 :]  # a dropped letter
        if r < 0.05:
            i = rng.randrange(1, len(w) - 1)
            return w[:i] + w[i + 1] + w[i] + w[i + 2 :]  # two letters swapped
        return w

    def outside(s: str) -> str:
        s = _APOSTROPHE.sub("", s.lower())
        s = re.sub(r"\b[a-z]+\b", lambda m: _SHORTHAND.get(m.group(), m.group()) if rng.random() < 0.3 else m.group(), s)
        return _WORD.sub(typo, s)
    return outside


STYLES = (("dictated", 0.07), ("portal", 0.07), ("lower", 0.06), ("upper", 0.06))  # the rest: "plain"


def draw_style(rng: random.Random) -> str:
    u = rng.random()
    for name, share in STYLES:
        if u < share:
            return name
        u -= share
    return "plain"


def apply_style(style: str, text: str, spans: Spans, rng: random.Random) -> tuple[str, Spans]:
    """The document in ``style``; lower and upper case go through ``restyle`` too: a few letters change length
    in another case ("ß" -> "SS")."""
    if style == "dictated":
        return restyle(text, spans, _dictated(rng), str.lower)
    if style == "portal":
        return restyle(text, spans, _portal(rng), str.lower)
    if style in ("lower", "upper"):
        fn = str.lower if style == "lower" else str.upper
        return restyle(text, spans, fn, fn)
    return text, list(spans)

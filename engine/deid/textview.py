"""The text the recognizers read: zero-width and other invisible format characters removed, odd spaces
and full-width forms folded to ASCII, so "Jo\u200bhn" or "５５５-０１２３" cannot slip through. Keeps a map
back to the original offsets."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class TextView:
    text: str
    to_original: tuple[int, ...] | None  # original offset of each view character; None if identical

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        if self.to_original is None:
            return start, end
        return self.to_original[start], self.to_original[end - 1] + 1


def make_view(text: str) -> TextView:
    if text.isascii():
        return TextView(text, None)
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            chars.append(ch)
            index.append(i)
            continue
        cat = unicodedata.category(ch)
        if cat == "Cf":  # zero-width space/joiners, soft hyphen, bidi marks: invisible, drop them
            continue
        if cat == "Zs" or ch in "\u2028\u2029\x85":
            folded = " "
        else:
            folded = unicodedata.normalize("NFKC", ch)
            if len(folded) != 1:
                folded = ch  # keep ligatures etc. as they are: one view character per original character
        chars.append(folded)
        index.append(i)
    return TextView("".join(chars), tuple(index))

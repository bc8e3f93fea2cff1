"""Type-ahead search over the ICD-10-CM code set (``schemas.icd10cm``): by code prefix (``e11.9``, ``E119``)
or by words of the title (``diab neph``: every word must start a word of the title)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from schemas.icd10cm import load_code_set, normalise

_WORD = re.compile(r"[a-z0-9]+")
_CODE_LIKE = re.compile(r"^[A-Za-z][0-9][0-9A-Za-z]?\.?[0-9A-Za-z]{0,4}$")


@dataclass(frozen=True)
class CodeHit:
    code: str
    display: str
    billable: bool


class CodeIndex:
    def __init__(self) -> None:
        cs = load_code_set()
        self._codes = sorted(cs.codes())
        self._compact = sorted((c.replace(".", ""), i) for i, c in enumerate(self._codes))
        self._display = {c: cs.description(c) for c in self._codes}
        self._billable = {c: cs.is_billable(c) for c in self._codes}
        postings: dict[str, set[int]] = {}
        for i, c in enumerate(self._codes):
            for w in set(_WORD.findall(self._display[c].lower())):
                postings.setdefault(w, set()).add(i)
        self._words = sorted(postings)
        self._postings = postings

    def _hit(self, i: int) -> CodeHit:
        c = self._codes[i]
        return CodeHit(c, self._display[c], self._billable[c])

    def _with_prefix(self, word: str) -> set[int]:
        out: set[int] = set()
        k = bisect.bisect_left(self._words, word)
        while k < len(self._words) and self._words[k].startswith(word):
            out |= self._postings[self._words[k]]
            k += 1
        return out

    def search(self, query: str, limit: int = 20) -> list[CodeHit]:
        query = query.strip()
        if not query:
            return []
        found: set[int] = set()
        if _CODE_LIKE.match(query):
            prefix = normalise(query).replace(".", "")
            k = bisect.bisect_left(self._compact, (prefix, -1))
            while k < len(self._compact) and self._compact[k][0].startswith(prefix) and len(found) < limit * 20:
                found.add(self._compact[k][1])
                k += 1
        words = _WORD.findall(query.lower())
        if words and not found:
            found = self._with_prefix(words[0])
            for w in words[1:]:
                found &= self._with_prefix(w)
        # billable codes first (what a coder files), then the shortest (most general) and in code order
        ranked = sorted(found, key=lambda i: (not self._billable[self._codes[i]], len(self._codes[i]), self._codes[i]))
        return [self._hit(i) for i in ranked[:limit]]

"""A Presidio recognizer made of regular expressions whose named group ``phi`` (or the whole match) is the
PHI: context words can sit in the pattern ("MRN: 1234") without being redacted themselves."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from engine.deid._presidio import EntityRecognizer, RecognizerResult
from schemas.phi import PhiCategory


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    category: PhiCategory
    score: float = 0.85
    accept: Callable[[re.Match[str]], bool] | None = None  # extra check on a match (e.g. month <= 12)
    before: re.Pattern[str] | None = None  # context that must end right where the match starts

    BEFORE_WINDOW = 48  # characters looked at for ``before``


def rule(pattern: str, category: PhiCategory, score: float = 0.85, flags: int = 0, accept=None, before: str | None = None) -> Rule:
    """``before`` (a regex) is matched against the text just before each match, anchored at its end:
    context checked this way costs far less than a context alternation tried at every position."""
    return Rule(re.compile(pattern, flags), category, score, accept, re.compile(rf"(?:{before})$") if before else None)


class RegexRecognizer(EntityRecognizer):
    """Runs its rules over the text; stateless, so safe to share between threads."""

    def __init__(self, name: str, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        super().__init__(supported_entities=sorted({r.category.value for r in self.rules}), name=name)

    def load(self) -> None:  # nothing to load: the patterns are compiled in __init__
        pass

    def analyze(self, text: str, entities: list[str] | None = None, nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        for r in self.rules:
            if entities and r.category.value not in entities:
                continue
            for m in r.regex.finditer(text):
                if r.accept is not None and not r.accept(m):
                    continue
                if r.before is not None and not r.before.search(text, max(0, m.start() - Rule.BEFORE_WINDOW), m.start()):
                    continue
                start, end = m.span("phi") if "phi" in r.regex.groupindex else m.span()
                if end > start:
                    results.append(RecognizerResult(r.category.value, start, end, r.score))
        return results

"""Stage 5b (after aggregation): the context of each suggestion's evidence, and the model version's policy.

Each evidence span is classified ``affirmed``, ``negated``, ``uncertain``, ``historical`` or ``family``
(``schemas.context``) by a ConText-style rule set (Harkema et al. 2009; cues in ``context_rules.yaml``):

1. the sentence around the span (boundaries: line breaks, ``.!?`` before a space or comma, the end of an
   upper-case ``HEADING:``), tokenised into lower-cased words and punctuation marks;
2. cue phrases matched left to right, longest first; pseudo phrases ("no change", "not only", "gram negative")
   hide the cues inside them; a negation cue right after another ("does not deny", "not without") cancels both;
3. each cue's scope runs forward and/or backward from it to the sentence boundary, a terminator ("but",
   "however", "secondary to", ";"), the group's ``max_tokens`` words, or (forward) a cue of another group that
   starts a new list item (after "," or "and");
4. the span takes the group of the cues whose scope holds it, by precedence family > negated > uncertain >
   historical (the nearest cue of that group is reported); with none, the context of its section
   (PAST MEDICAL HISTORY: historical), else ``affirmed``. A FAMILY HISTORY section makes everything in it
   ``family``, negated or not ("Negative for cancer" there is about relatives).

Why rules of our own and not medspaCy/negspacy: medspacy 1.3.1 requires spacy<3.8 on Python 3.11 (the engine
pins spacy 3.8.18 for presidio) and medspacy_quickumls; negspacy covers negation only and needs spaCy docs with
entities. The cue lists start from their published trigger sets (docs/context.md). Only the sentences holding
evidence are looked at (cached per sentence): tens of microseconds per note, no model, no torch.

The policy (``ContextPolicy``, per model version) then keeps, demotes or suppresses suggestions whose evidence
is all negated or all family (``apply_policy``); nothing else changes scores.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from schemas.context import ACTION_ORDER, Context, ContextAction, ContextPolicy
from schemas.envelopes import EvidenceSpan, Suggestion

RULES_FILE = Path(__file__).with_name("context_rules.yaml")
PRECEDENCE: tuple[Context, ...] = ("family", "negated", "uncertain", "historical")
MAX_SENTENCE_CHARS = 400  # a "sentence" without a boundary is cut this far either side of the span
SECTION_MAX_CHARS = 1500  # a heading's context reaches this far (MTSamples has no line breaks to end a section)
_TOKEN = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?|[^\sa-z0-9]")
_HEADING = re.compile(r"(?<![A-Za-z0-9])([A-Z][A-Z/&() \-]{1,60}[A-Z)])\s*:")
_ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "vs", "pt", "approx", "e.g", "i.e", "fig"})
_AUXILIARIES = frozenset({"be", "been", "is", "was", "are", "were", "do", "does", "did", "can", "could", "completely", "entirely", "totally"})
_NEW_ITEM = frozenset({",", "and", "."})
_COMPANY = frozenset({"with", "by", "to", "from"})  # "lives with her husband": a relative as company, not the experiencer
_POSSESSIVE = frozenset({"her", "his", "their", "the", "a", "patient's"})


@dataclass(frozen=True)
class Cue:
    group: str  # a context, or "pseudo" / "terminate"
    direction: str  # forward | backward | both | none
    phrase: str  # canonical, as written in the rules file
    max_tokens: int  # words of reach forward
    max_tokens_backward: int  # words of reach backward


@dataclass(frozen=True)
class SpanContext:
    context: Context
    cue: str | None = None  # canonical cue phrase ("no evidence of") or "section: family history"
    cue_start: int | None = None
    cue_end: int | None = None


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """Lower-cased word and punctuation tokens with character offsets into ``text``. "May" before a number is
    the month, not the modal verb (an uncertainty cue)."""
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text.lower())]
    for k, (s, e, t) in enumerate(tokens):
        if t == "may" and text[s] == "M" and k + 1 < len(tokens) and tokens[k + 1][2][0].isdigit():
            tokens[k] = (s, e, "<month>")
    return tokens


@dataclass(frozen=True)
class Rules:
    cues: dict[str, list[tuple[tuple[str, ...], tuple[Cue, ...]]]]  # first token -> (phrase tokens, cues), longest first
    sections: tuple[tuple[Context, re.Pattern], ...]

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> "Rules":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        by_phrase: dict[tuple[str, ...], list[Cue]] = {}

        def add(phrases: Iterable, group: str, direction: str, max_tokens: int, max_back: int | None = None) -> None:
            for phrase in phrases:
                reach, reach_back = max_tokens, max_back if max_back is not None else max_tokens
                if isinstance(phrase, dict):  # {phrase: ..., max_tokens: N}: a cue with a shorter reach than its group's
                    phrase, reach = phrase["phrase"], int(phrase["max_tokens"])
                    reach_back = reach
                if not isinstance(phrase, str):  # YAML reads a bare no/yes/on as a boolean: quote it
                    raise ValueError(f"{path}: {group} cue {phrase!r} is not a string")
                tokens = tuple(t for _, _, t in tokenize(str(phrase)))
                if not tokens:
                    raise ValueError(f"{path}: empty cue in {group}")
                by_phrase.setdefault(tokens, []).append(Cue(group, direction, phrase, reach, reach_back))

        for group in PRECEDENCE:
            spec = data[group]
            for direction in ("forward", "backward", "both"):
                add(spec.get(direction, []), group, direction, int(spec["max_tokens"]), spec.get("max_tokens_backward"))
        add(data["pseudo"], "pseudo", "none", 0, 0)
        add(data["terminate"], "terminate", "none", 0, 0)
        cues: dict[str, list] = {}
        for tokens, found in by_phrase.items():
            cues.setdefault(tokens[0], []).append((tokens, tuple(found)))
        for options in cues.values():
            options.sort(key=lambda o: -len(o[0]))
        sections = tuple((ctx, re.compile(p)) for ctx, patterns in data["sections"].items() for p in patterns)
        return cls(cues, sections)


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    return Rules.load()


@dataclass
class _Match:
    first: int  # token index range [first, last)
    last: int
    cues: list[Cue]


class _Note:
    """One text's sentence boundaries and headings (found once), and the sentences analysed so far."""

    def __init__(self, text: str, rules: Rules) -> None:
        self.text, self.rules = text, rules
        self.headings = [(m.start(1), m.end(1), m.end(), m.group(1).strip()) for m in _HEADING.finditer(text)]
        ends = [h[2] for h in self.headings] + [h[0] for h in self.headings]
        for m in re.finditer(r"\n|[.!?](?=[\s,]|$)", text):
            if m.group() == "." and self._abbreviation(m.start()):
                continue
            ends.append(m.end())
        self.bounds = sorted(set(ends))
        self.heading_ends = [h[2] for h in self.headings]
        self.sentences: dict[tuple[int, int], _Sentence] = {}
        self.spans: dict[tuple[int, int], SpanContext] = {}  # several codes often attend to the same words

    def _abbreviation(self, dot: int) -> bool:
        word = re.search(r"([A-Za-z.]+)$", self.text[max(0, dot - 8) : dot])
        return bool(word) and (len(word.group(1)) == 1 or word.group(1).lower() in _ABBREVIATIONS)

    def sentence(self, start: int, end: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.bounds, start)
        s = self.bounds[i - 1] if i > 0 else 0
        j = bisect.bisect_left(self.bounds, end)
        e = self.bounds[j] if j < len(self.bounds) else len(self.text)
        return max(s, start - MAX_SENTENCE_CHARS), min(e, end + MAX_SENTENCE_CHARS)

    def analysed(self, bounds: tuple[int, int]) -> "_Sentence":
        if bounds not in self.sentences:
            tokens = [(s + bounds[0], e + bounds[0], t) for s, e, t in tokenize(self.text[bounds[0] : bounds[1]])]
            self.sentences[bounds] = _Sentence.of(tokens, _match_cues(tokens, self.rules))
        return self.sentences[bounds]

    def section(self, start: int) -> SpanContext | None:
        i = bisect.bisect_right(self.heading_ends, start)
        if i == 0:
            return None
        h_start, h_end, colon_end, name = self.headings[i - 1]
        if start - colon_end > SECTION_MAX_CHARS or "\n\n" in self.text[colon_end:start]:
            return None
        for ctx, pattern in self.rules.sections:
            if pattern.search(name.upper()):
                return SpanContext(ctx, f"section: {'family history' if ctx == 'family' else 'past history'}", h_start, h_end)
        return None


def _match_cues(tokens: list, rules: Rules) -> list[_Match]:
    words = [t for _, _, t in tokens]
    matches: list[_Match] = []
    i = 0
    while i < len(words):
        for phrase, cues in rules.cues.get(words[i], ()):
            if tuple(words[i : i + len(phrase)]) == phrase:
                matches.append(_Match(i, i + len(phrase), list(cues)))
                i += len(phrase)
                break
        else:
            i += 1
    # A relative after "with"/"by"/"to"/"from" is company ("brought in by his mother"), not whom a condition is about.
    for m in matches:
        k = m.first - 1
        if k >= 0 and words[k] in _POSSESSIVE:
            k -= 1
        if k >= 0 and words[k] in _COMPANY:
            m.cues = [c for c in m.cues if c.group != "family"]
    # Double negation: a negation cue right after another ("not deny", "not without", "no absence of") cancels both.
    for a, b in zip(matches, matches[1:]):
        gap = words[a.last : b.first]
        if len(gap) <= 1 and all(g in _AUXILIARIES for g in gap) and _has(a, "negated") and _has(b, "negated"):
            a.cues = [c for c in a.cues if c.group != "negated"]
            b.cues = [c for c in b.cues if c.group != "negated"]
    return matches


def _has(match: _Match, group: str) -> bool:
    return any(c.group == group for c in match.cues)


def _scope(match: _Match, cue: Cue, words: list[str], starting: dict[int, _Match], ending: dict[int, _Match], forward: bool) -> tuple[int, int]:
    """Token range [first, last) a cue covers in one direction (``starting``/``ending``: the matches by first/last token)."""
    if forward:
        last, counted = match.last, 0
        while last < len(words):
            other = starting.get(last)
            if other is not None and other is not match:
                if _has(other, "terminate"):
                    break
                starts_item = last > 0 and words[last - 1] in _NEW_ITEM
                if starts_item and any(c.group != cue.group and c.group in PRECEDENCE for c in other.cues):
                    break
            if words[last][0].isalnum():
                counted += 1
                if counted > cue.max_tokens:
                    break
            last += 1
        return match.last, last
    first, counted = match.first, 0
    while first > 0:
        other = ending.get(first)
        if other is not None and _has(other, "terminate"):
            break
        if words[first - 1][0].isalnum():
            counted += 1
            if counted > cue.max_tokens_backward:
                break
        first -= 1
    return first, match.first


@dataclass(frozen=True)
class _Scope:
    lo: int  # token range [lo, hi) the cue covers
    hi: int
    rank: int  # PRECEDENCE index of its group
    forward: bool
    match: _Match
    context: SpanContext


@dataclass(frozen=True)
class _Sentence:
    tokens: list
    ends: list[int]  # token end offsets, for finding a span's first token
    scopes: tuple[_Scope, ...]  # every context cue's scope, computed once per sentence

    @classmethod
    def of(cls, tokens: list, matches: list[_Match]) -> "_Sentence":
        scopes = []
        words = [t for _, _, t in tokens]
        starting, ending = {m.first: m for m in matches}, {m.last: m for m in matches}
        for m in matches:
            for cue in m.cues:
                if cue.group not in PRECEDENCE:
                    continue
                context = SpanContext(cue.group, cue.phrase, tokens[m.first][0], tokens[m.last - 1][1])  # type: ignore[arg-type]
                for forward in ((True, False) if cue.direction == "both" else (cue.direction == "forward",)):
                    lo, hi = _scope(m, cue, words, starting, ending, forward)
                    scopes.append(_Scope(lo, hi, PRECEDENCE.index(cue.group), forward, m, context))
        return cls(tokens, [e for _, e, _ in tokens], tuple(scopes))


def classify_span(note: _Note, start: int, end: int) -> SpanContext:
    key = (start, end)
    if key not in note.spans:
        note.spans[key] = _classify(note, start, end)
    return note.spans[key]


def _classify(note: _Note, start: int, end: int) -> SpanContext:
    sentence = note.analysed(note.sentence(start, end))
    best: tuple[int, int, SpanContext] | None = None  # (precedence rank, distance, context)
    target = bisect.bisect_right(sentence.ends, start)  # the first token ending after the span's start
    if sentence.scopes and target < len(sentence.tokens) and sentence.tokens[target][0] < max(end, start + 1):
        for sc in sentence.scopes:
            if sc.lo <= target < sc.hi and not sc.match.first <= target < sc.match.last:  # a cue word is not in its own scope
                distance = target - sc.match.last if sc.forward else sc.match.first - target
                if best is None or (sc.rank, distance) < best[:2]:
                    best = (sc.rank, distance, sc.context)
    section = note.section(start)
    if section is not None and section.context == "family" and (best is None or best[2].context != "family"):
        return section  # in a family-history section everything is about relatives, negated or not
    if best is not None:
        return best[2]
    return section or SpanContext("affirmed")


class ContextClassifier:
    """``classify(text, spans)``: the context of each (start, end) span of ``text``."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or default_rules()

    def classify(self, text: str, spans: Sequence[tuple[int, int]]) -> list[SpanContext]:
        note = _Note(text, self.rules)
        return [classify_span(note, s, e) for s, e in spans]

    def annotate(self, text: str, suggestions: Sequence[Suggestion]) -> tuple[Suggestion, ...]:
        """Suggestions with the context of every evidence span and of the suggestion itself."""
        note = _Note(text, self.rules) if any(s.evidence for s in suggestions) else None
        out = []
        for s in suggestions:
            spans = []
            for e in s.evidence:
                c = classify_span(note, e.start, e.end)  # type: ignore[arg-type]
                spans.append(e.model_copy(update={"context": c.context, "cue": c.cue, "cue_start": c.cue_start, "cue_end": c.cue_end}))
            out.append(s.model_copy(update={"evidence": tuple(spans), "context": suggestion_context(spans)}))
        return tuple(out)


def suggestion_context(evidence: Sequence[EvidenceSpan]) -> Context | None:
    """Affirmed if any span affirms; otherwise the context holding most attention weight (ties: precedence)."""
    contexts = [e for e in evidence if e.context is not None]
    if not contexts:
        return None
    if any(e.context == "affirmed" for e in contexts):
        return "affirmed"
    weight: dict[str, float] = {}
    for e in contexts:
        weight[e.context] = weight.get(e.context, 0.0) + e.weight  # type: ignore[index]
    return min(weight, key=lambda c: (-weight[c], PRECEDENCE.index(c)))  # type: ignore[arg-type, return-value]


def policy_action(s: Suggestion, policy: ContextPolicy) -> ContextAction:
    """What ``policy`` does with a suggestion: act only when EVERY evidence span is in a context the policy acts
    on (negated, family), then the mildest of their actions; no classified evidence: keep."""
    contexts = {e.context for e in s.evidence}
    if not contexts or None in contexts:
        return "keep"
    actions = [policy.action(c) if not policy.exempt(s.code, c) else "keep" for c in contexts]  # type: ignore[arg-type]
    return min(actions, key=ACTION_ORDER.__getitem__)


def apply_policy(suggestions: Sequence[Suggestion], policy: ContextPolicy, decimals: int = 4) -> tuple[tuple[Suggestion, ...], tuple[Suggestion, ...]]:
    """(suggestions to output, suggestions withheld). Demoted ones follow the others, their score lowered below
    their threshold (``model_score`` keeps the model's); suppressed ones are withheld (for the audit record)."""
    kept, demoted, withheld = [], [], []
    for s in suggestions:
        action = policy_action(s, policy)
        if action == "demote":
            low = round(s.score * s.threshold * policy.demote_factor, decimals)
            demoted.append(s.model_copy(update={"score": low, "model_score": s.score, "policy": "demoted"}))
        elif action == "suppress":
            withheld.append(s.model_copy(update={"policy": "suppressed"}))
        else:
            kept.append(s)
    demoted.sort(key=lambda s: -s.score)  # stable: equal scores keep the model's order
    return tuple(kept + demoted), tuple(withheld)


@dataclass(frozen=True)
class ContextStage:
    """What the processor (and replay) run after aggregation: classify, then apply the version's policy."""

    classifier: ContextClassifier
    policy: ContextPolicy

    @classmethod
    def for_model(cls, metadata) -> "ContextStage":
        """The stage with a model version's policy (``ModelMetadata.context_policy``)."""
        return cls(ContextClassifier(), metadata.context_policy)

    def __call__(self, text: str, suggestions: Sequence[Suggestion]) -> tuple[tuple[Suggestion, ...], tuple[Suggestion, ...]]:
        return apply_policy(self.classifier.annotate(text, suggestions), self.policy)

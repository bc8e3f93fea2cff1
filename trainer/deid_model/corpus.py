"""Training documents for the learned recogniser: clinical carrier sentences + planted PHI sentences.

Carrier text is MTSamples transcriptions and CodiEsp English case reports, cut into sentences; a sentence
is kept only if the rule recognisers of ``engine.deid`` find nothing in it (MTSamples holds unlabelled
fake PHI such as "Mr. X" or real-looking dates, which would otherwise teach the model that a date is not
PHI). Each document is 1-4 carrier sentences with 1-3 planted sentences (``templates``) between them, and
now and then a sentence of clinical eponyms that must stay ("PMH: Wilson's, Addison's"). About a quarter of the
documents are rewritten in another style (``styles``: dictated without punctuation, portal message with typos,
lower or upper case).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from trainer.deid_model.fakes import Fakes
from trainer.deid_model.styles import apply_style, draw_style
from trainer.deid_model.templates import (CLAUSE_INTROS, FORM_TEMPLATES, LETTER_TEMPLATES, LOWER_PLACE_TEMPLATES, NON_PHI_TEMPLATES,
                                          OBJECT_PREFIXES, PORTAL_TEMPLATES, RELATIONS, SLOTS, SUBJECT_PREDICATES, TEMPLATES,
                                          WORD_NAME_TEMPLATES)

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])|\n+")
_SLOT = re.compile(r"\{([A-Z0-9]+)\}")


@dataclass(frozen=True)
class TrainDoc:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, label)


def carrier_sentences(data_dir: Path, limit: int, seed: int) -> list[str]:
    """Up to ``limit`` clinical sentences (8-60 words) in which the rules find no PHI."""
    from engine.deid import DeidConfig, Deidentifier
    from trainer.data.importers.codiesp import read_codiesp
    from trainer.data.importers.mtsamples import read_mtsamples

    texts = [r.text for r in read_mtsamples(data_dir / "mtsamples" / "mtsamples.csv")]
    codiesp = data_dir / "codiesp"
    for split in ("train", "background"):
        if (codiesp / split).is_dir():
            texts += [r.text for r in read_codiesp(codiesp, split, language="en")]
    rng = random.Random(seed)
    sentences = [s.strip() for t in texts for s in _SENTENCE.split(t) if 8 <= len(s.split()) <= 60]
    rng.shuffle(sentences)
    rules = Deidentifier(DeidConfig(model="rules"))  # the rules alone: the model is what is being trained
    kept: list[str] = []
    for s in sentences:
        if len(kept) >= limit:
            break
        if not rules.detect(s):
            kept.append(s)
    return kept


def _eponyms() -> list[str]:
    from engine.deid.lexicons import DATA_DIR

    lines = (DATA_DIR / "clinical_allowlist.txt").read_text(encoding="utf-8").splitlines()
    return [w.strip().rstrip("~") for w in lines if w.strip() and not w.startswith("#") and w.strip()[0].isupper()]


# Mentions of the patient in carrier sentences that a name can replace: the sentence stays real clinical prose
# ("He was started on heparin" -> "Olatunji was started on heparin", "... discussed with the patient" -> "...
# discussed with Ana Souza"), so names are learned in every position clinical text has, not in templates only.
_MENTION = re.compile(r"\b(?:[Tt]he (?:patient|pt)|[Pp]atient|[Hh]e|[Ss]he|[Tt]his (?:patient|gentleman|lady|woman|man))\b(?!['’-])")
_POSSESSIVE = re.compile(r"\b(?:[Tt]he patient['’]s|[Hh]is)\b")
# Social history lines: an occupation, then the employer with no cue word of its own.
_JOB_LABELS = ("Occupation", "Job", "Work", "Employment", "Works as", "Employed as", "Occupation/employer", "SH: works as")
_JOBS = ("cashier", "line cook", "electrician", "school bus driver", "bank teller", "machinist", "security guard", "nurse aide",
         "software engineer", "stocker", "forklift driver", "receptionist", "roofer", "pharmacy technician", "mechanic", "janitor",
         "delivery driver", "accountant", "welder", "call center agent", "dishwasher", "hair stylist", "store manager", "teacher's aide")


class DocBuilder:
    """Seeded: identical arguments give identical documents. ``styled`` adds round 5's carriers (``styles``, word
    names, forms, letters, portal messages, lower-case places); off, the documents are those the shipped model was
    trained on, draw for draw."""

    def __init__(self, carriers: list[str], seed: int, styled: bool = False) -> None:
        self.styled = styled
        self.rng = random.Random(seed)
        self.fakes = Fakes(self.rng, styled)
        self.carriers = carriers
        self.eponyms = _eponyms()

    def _fill(self, template: str) -> tuple[str, list[tuple[int, int, str]]]:
        out, spans, pos = [], [], 0
        for m in _SLOT.finditer(template):
            out.append(template[pos : m.start()])
            length = sum(map(len, out))
            slot = m.group(1)
            if slot.startswith("EPONYM"):
                value, label = self.rng.choice(self.eponyms), None
            else:
                method, label = SLOTS[slot]
                value = " ".join(getattr(self.fakes, method)().split())  # faker's streets may hold line breaks, double spaces
            if label is not None:
                spans.append((length, length + len(value), label))
            out.append(value)
            pos = m.end()
        out.append(template[pos:])
        text = "".join(out)
        merged: list[tuple[int, int, str]] = []
        for s, e, label in spans:  # "{FIRST} {LAST}" is one name, as "{NAME}" is
            if merged and merged[-1][2] == label and text[merged[-1][1] : s] == " ":
                merged[-1] = (merged[-1][0], e, label)
            else:
                merged.append((s, e, label))
        return text, merged

    def _template(self, style: str = "plain") -> str:
        r = self.rng
        if style == "portal" and r.random() < 0.6:
            return r.choice(PORTAL_TEMPLATES)
        if self.styled and r.random() < 0.22:  # round 5: word names, forms, letters, lower-case places (see templates)
            return r.choice(r.choice((WORD_NAME_TEMPLATES, WORD_NAME_TEMPLATES, FORM_TEMPLATES, LETTER_TEMPLATES, LOWER_PLACE_TEMPLATES)))
        u = r.random()
        slot = r.choice(("{NAME}", "{NAME}", "{FIRST}", "{LAST}", "{LASTFIRST}") + (("{WFIRST}",) if self.styled else ()))
        if u < 0.15:
            return f"{slot} {r.choice(SUBJECT_PREDICATES)}."
        if u < 0.25:
            return f"{r.choice(OBJECT_PREFIXES)} {slot}{r.choice(('.', ':', ',', ' today.', ' yesterday.', ' by phone.'))}"
        if u < 0.33:
            return f"{r.choice(CLAUSE_INTROS)} {slot} {r.choice(SUBJECT_PREDICATES)}."
        if u < 0.40:
            relation = r.choice(RELATIONS)
            if r.random() < 0.5:
                return f"{relation}, {slot}, {r.choice(SUBJECT_PREDICATES)}."
            return f"{slot}, {relation[0].lower() + relation[1:]}, {r.choice(SUBJECT_PREDICATES)}."
        return r.choice(TEMPLATES)

    def _named_carrier(self, sentence: str) -> tuple[str, list[tuple[int, int, str]]]:
        """The carrier with one mention of the patient replaced by a name (or "his" by "{NAME}'s"), when it has one."""
        r = self.rng
        matches = list(_MENTION.finditer(sentence)) + list(_POSSESSIVE.finditer(sentence))
        if not matches:
            return sentence, []
        m = r.choice(matches)
        name = " ".join((self.fakes.name() if r.random() < 0.6 else r.choice((self.fakes.first, self.fakes.last))()).split())
        if m.re is _POSSESSIVE:
            value, tail = name, "'s"
        else:
            value, tail = name, ""
        text = sentence[: m.start()] + value + tail + sentence[m.end() :]
        return text, [(m.start(), m.start() + len(value), "NAME")]

    def _social_history(self) -> tuple[str, list[tuple[int, int, str]]]:
        r = self.rng
        head = f"{r.choice(_JOB_LABELS)}{r.choice((': ', ' ', ': '))}{r.choice(_JOBS)}{r.choice((', ', ' at ', ' for ', ' - ', ', '))}"
        employer = " ".join(self.fakes.employer().split())
        tail = r.choice((".", "", ". Nonsmoker.", ", full time.", "; retired 2019.", ". Lives with spouse."))
        return head + employer + tail, [(len(head), len(head) + len(employer), "ADDRESS")]

    def document(self) -> TrainDoc:
        r = self.rng
        style = draw_style(r) if self.styled else "plain"
        pieces: list[tuple[str, list[tuple[int, int, str]]]] = [
            self._named_carrier(s) if r.random() < 0.3 else (s, []) for s in r.sample(self.carriers, r.randint(1, 4))]
        if r.random() < 0.08:
            pieces.insert(r.randint(0, len(pieces)), self._social_history())
        for _ in range(r.randint(1, 3)):
            pieces.insert(r.randint(0, len(pieces)), self._fill(self._template(style)))
        if r.random() < 0.25:
            pieces.insert(r.randint(0, len(pieces)), self._fill(r.choice(NON_PHI_TEMPLATES)))
        text, spans = "", []
        for piece, piece_spans in pieces:
            if text:
                text += r.choice((" ", " ", "\n", "\n\n"))
            spans += [(s + len(text), e + len(text), label) for s, e, label in piece_spans]
            text += piece
        if self.styled:
            text, spans = apply_style(style, text, spans, r)
        elif r.random() < 0.06:  # the shipped model's mix
            text = text.lower()
        elif r.random() < 0.03:
            text = text.upper()
        return TrainDoc(text, tuple(spans))

    def documents(self, n: int) -> list[TrainDoc]:
        return [self.document() for _ in range(n)]

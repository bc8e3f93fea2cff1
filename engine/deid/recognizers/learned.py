"""The learned recogniser: a spaCy NER pipeline (CNN tok2vec, thinc on numpy: no torch) trained by
``python -m trainer deid-model`` and shipped as package data in ``engine/deid/model`` with its data card; and the
output filter every learned recogniser shares (``LearnedRecognizer``; the fine-tuned MiniLM of ``transformer`` too).

It finds what rules cannot: names with no cue ("Babatunde Olatunji called ..."), lower-case names, places
and facilities no lexicon knows. The rules keep formats, checksums and context words; the de-identifier
redacts the union. Clinical words stay protected here as in the name rules: an entity made only of
eponyms, drug/device names or ICD-10-CM words ("Wilson's", "Parkinson", "Foley") is dropped.
"""

from __future__ import annotations

import abc
import re
import threading
from pathlib import Path

from engine.deid._presidio import EntityRecognizer, RecognizerResult
from engine.deid.lexicons import EPONYM_HEADS, Lexicons, key, load_lexicons
from engine.deid.recognizers.dates import bare_month_day
from engine.deid.recognizers.facilities import named_facility
from engine.deid.recognizers.locations import STATE_CODES, STATE_NAMES
from engine.deid.recognizers.names import CREDENTIALS, PARTICLES, STOP
from schemas.phi import PhiCategory as C

MODEL_DIR = Path(__file__).resolve().parents[1] / "model"
LABELS = {"NAME": C.NAME, "ADDRESS": C.ADDRESS, "DATE": C.DATE, "PHONE": C.PHONE, "ID": C.ID}
CHUNK_CHARS = 20_000  # notes are cut at line breaks into pieces this long (the model sees a few tokens around each)
_WORDS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_CREDENTIAL_KEYS = frozenset(c.replace(".", "") for c in CREDENTIALS)
_STATES = frozenset(key(s) for s in STATE_NAMES.split("|")) | frozenset(c.lower() for c in STATE_CODES)
_STATE_AFTER = re.compile(rf"\s*,\s*(?:{'|'.join(STATE_CODES)})\b")
_TRAILING_STATE = re.compile(rf"\s*,?\s+(?:{STATE_NAMES}|{'|'.join(STATE_CODES)})\.?$")
_PIECES = re.compile(r"\S+")
_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_HHMM = re.compile(r"(?:[01]\d|2[0-3])[0-5]\d")
_AT_BEFORE = re.compile(r"(?i:\b(?:at|after|before|until|till|by|from)|@)\s*$")
_NOT_A_DATE = re.compile(rf"\d{{1,2}}(?:st|nd|rd|th)?|{_HHMM.pattern}|{_TIME.pattern}")  # "Waterlow 14", "0815", "02:40"
_MONTH_DAY = re.compile(r"(?P<a>\d{1,3})/(?P<b>\d{1,3})")  # "3/11", or a ratio: "148/82", "Apgar 8/9" (the date rules decide)
_AGE_PHRASE = re.compile(r"(?i:\b(?:yrs?|years?|y/?o)[- ]?old\b|-y/?o\b)")  # "102-yr-old": ages are the rules' job
_SURROGATES = re.compile("[\ud800-\udfff]")  # lone surrogates cannot be hashed as UTF-8: one U+FFFD each keeps offsets
_MONTHS = frozenset("jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august "
                    "september october november december".split())


def trim(text: str, start: int, end: int, category: C) -> tuple[int, int]:
    """Cut words off the edges of an entity that cannot belong to it: in a name or place that has a capitalised
    word, lower-case words ("stated that Kendra handles" -> "Kendra"); in a date, phone or ID, words without a
    digit that are not month names ("Visit 3/4/2020" -> "3/4/2020"). Edge punctuation goes too."""
    pieces = [(m.start(), m.end()) for m in _PIECES.finditer(text, start, end)]

    def droppable(s: int, e: int) -> bool:
        w = text[s:e].strip(".,;:()[]'\"")
        if not w:
            return True
        if category in (C.NAME, C.ADDRESS):
            return w.islower() and w not in PARTICLES
        return not any(c.isdigit() for c in w) and key(w).rstrip(".") not in _MONTHS

    mixed = category not in (C.NAME, C.ADDRESS) or any(text[s:e][:1].isupper() for s, e in pieces)
    while mixed and pieces and droppable(*pieces[0]):
        pieces.pop(0)
    while mixed and pieces and droppable(*pieces[-1]):
        pieces.pop()
    if not pieces:
        return start, start
    s, e = pieces[0][0], pieces[-1][1]
    while e > s and text[e - 1] in ".,;:)]'\"" and not (text[e - 1] == "." and e - s <= 3):  # keep "J." / "St."
        e -= 1
    while s < e and text[s] in "([\"'":
        s += 1
    return s, e


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen an entity that stops inside a hyphenated word ("Jackson-" of "Jackson-Pratt") to the whole word, so the
    clinical-word filter judges "Jackson-Pratt" and a hyphenated surname is redacted whole."""
    def joined(i: int) -> bool:  # text[i] continues the word: a letter, or a hyphen between letters
        return text[i].isalpha() or (text[i] == "-" and 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha())

    while start > 0 and (text[start - 1] == "-" or text[start] == "-") and joined(start - 1):
        start -= 1
        while start > 0 and text[start - 1].isalpha():
            start -= 1
    while end < len(text) and (text[end] == "-" or text[end - 1] == "-") and joined(end):
        end += 1
        while end < len(text) and text[end].isalpha():
            end += 1
    return start, end


def _sentence_start(text: str, start: int) -> bool:
    """Nothing but opening quotes or brackets between ``start`` and the start of the text, a line or a sentence
    (not a label's colon: "Caller: Hope" is a name)."""
    i = start - 1
    while i >= 0 and text[i] in " \t\"'“(-*":
        i -= 1
    return i < 0 or text[i] in ".?!;\n"


def _bracketed(text: str, start: int, end: int) -> bool:
    return text[start - 1 : start] == "(" and text[end : end + 1] == ")"


def _chunks(text: str) -> list[tuple[int, str]]:
    out, start = [], 0
    while len(text) - start > CHUNK_CHARS:
        cut = text.rfind("\n", start + CHUNK_CHARS // 2, start + CHUNK_CHARS)
        if cut < 0:
            cut = text.rfind(" ", start + CHUNK_CHARS // 2, start + CHUNK_CHARS)
        cut = cut + 1 if cut >= 0 else start + CHUNK_CHARS
        out.append((start, text[start:cut]))
        start = cut
    out.append((start, text[start:]))
    return out


class LearnedRecognizer(EntityRecognizer, metaclass=abc.ABCMeta):
    """What every learned recogniser shares: its raw entities go through the same output filter (trimming,
    whole hyphenated words, states, clinical and ordinary words dropped). Subclasses yield raw entities."""

    def __init__(self, name: str, lexicons: Lexicons | None = None) -> None:
        self.lex = lexicons or load_lexicons()
        super().__init__(supported_entities=sorted({c.value for c in LABELS.values()}), name=name)

    def load(self) -> None:
        pass

    @abc.abstractmethod
    def entities(self, text: str) -> list[tuple[int, int, str]]:
        """Raw (start, end, label) in ``text``'s offsets; labels outside ``LABELS`` are ignored."""

    def _clinical_only(self, text: str, start: int, end: int) -> bool:
        """Every word of the entity is a protected clinical word (or a stop word)."""
        lex = self.lex
        words = list(_WORDS.finditer(text, start, end))
        if not words:
            return False
        possessive = text.startswith(("'s", "’s"), end)  # "Bell" of "Bell's palsy": the head comes after the "'s"
        after = _WORDS.search(text, end + 2 * possessive, min(len(text), end + 40))
        head = key(after.group()) if after else ""
        for i, m in enumerate(words):
            k = key(m.group()).replace("’", "'").removesuffix("'s")
            parts = k.split("-")
            if k in STOP or k in lex.clinical or k in EPONYM_HEADS or (len(k) <= 2 and m.group().islower()):
                continue
            if len(parts) > 1 and all(p in lex.clinical or p in lex.clinical_if_head or len(p) <= 2 for p in parts):
                continue  # "Mallory-Weiss", "Roux-en-Y"
            if len(parts) > 1 and any(p in lex.clinical for p in parts) and all(p in lex.clinical or len(p) <= 2 or self._ordinary(p) for p in parts):
                continue  # "Steri-Strips": a protected word joined to ordinary words
            if k in lex.clinical_words and k not in lex.first_names and k not in lex.last_names:
                continue
            nxt = key(words[i + 1].group()) if i + 1 < len(words) else head
            owner = m.group().endswith(("'s", "’s")) or (possessive and i == len(words) - 1)
            if k in lex.clinical_if_head and (nxt in EPONYM_HEADS or nxt.rstrip("s") in EPONYM_HEADS or owner):
                continue
            return False
        return True

    def _ordinary(self, k: str) -> bool:
        """An ordinary English or clinical word (a key) that no name lexicon holds."""
        return k in self.lex.common_words and k not in self.lex.first_names and k not in self.lex.last_names

    def _ordinary_words(self, text: str, start: int, end: int) -> bool:
        """Every word of the entity is an ordinary English or clinical word and no lexicon name ("moved here",
        "Send", "Addendum")."""
        keys = [key(m.group()).replace("’", "'").removesuffix("'s") for m in _WORDS.finditer(text, start, end)]
        return bool(keys) and all(self._ordinary(k) for k in keys)

    def _keep(self, text: str, start: int, end: int, category: C) -> bool:
        span = text[start:end]
        if not any(c.isalnum() for c in span):
            return False  # punctuation alone (".")
        if category is C.DATE:
            month_day = _MONTH_DAY.fullmatch(text, start, end)
            if month_day and not bare_month_day(month_day):
                return False  # a ratio or score read as the date rules read it ("BP 148/82", "Apgar 8/9")
            return not _NOT_A_DATE.fullmatch(span)  # a day number or a time of day alone is no date element
        if category not in (C.NAME, C.ADDRESS):
            return True
        k = key(span).replace(".", "").strip()
        if k in _CREDENTIAL_KEYS or _AGE_PHRASE.search(span):
            return False
        if category is C.ADDRESS and (_TIME.fullmatch(span) or _HHMM.fullmatch(span) and _AT_BEFORE.search(text, 0, start)):
            return False  # "at 02:14", "at 0830": a time of day
        if span.islower() and (category is C.ADDRESS or " " in span) and self._ordinary_words(text, start, end) \
                and not (category is C.ADDRESS and named_facility(span.split(), self.lex)):
            return False  # "moved here", "serial": lower-case ordinary words (a lone lower-case name after a cue, "sunset lodge" stay)
        if " " not in span and (_sentence_start(text, start) or category is C.NAME and (span.islower() or _bracketed(text, start, end))) \
                and self._ordinary_words(text, start, end):
            return False  # "Send urine ...", "Addendum", "Vitals stable", "(Somali)", "you guys": one ordinary word no name list holds
        if category is C.NAME and " " not in span and span.isupper() and (len(span) <= 4 and k not in self.lex.first_names
                                                                           and k not in self.lex.last_names or k in self.lex.ambiguous):
            return False  # "ERCP", "EVAL", "FALLS" in a capitalised note: an acronym or an ordinary word
        if category is C.ADDRESS and k in _STATES and not _STATE_AFTER.match(text, end):
            return False  # a state may stay; "New York, NY" is the city
        return not self._clinical_only(text, start, end)

    def analyze(self, text: str, entities=None, nlp_artifacts=None) -> list[RecognizerResult]:
        out = []
        for raw_start, raw_end, label in self.entities(text):
            category = LABELS.get(label)
            if category is None:
                continue
            start, end = trim(text, raw_start, raw_end, category)
            if category in (C.NAME, C.ADDRESS) and end > start:
                start, end = whole_words(text, start, end)
            if category is C.ADDRESS:  # "Rochester, New York": the state may stay (Safe Harbor)
                cut = _TRAILING_STATE.search(text, start, end)
                end = cut.start() if cut and cut.start() > start else end
            if end <= start or not self._keep(text, start, end, category):
                continue
            out.append(RecognizerResult(category.value, start, end, 0.7))
        return out


class NerRecognizer(LearnedRecognizer):
    """Stateless between calls; one lock around the pipeline, whose thread safety spaCy does not promise."""

    def __init__(self, model_dir: Path | None = None, lexicons: Lexicons | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir else MODEL_DIR
        if not (self.model_dir / "config.cfg").is_file():
            raise FileNotFoundError(f"no NER pipeline at {self.model_dir} (train one: python -m trainer deid-model)")
        import spacy

        self.nlp = spacy.load(self.model_dir)
        self._lock = threading.Lock()
        super().__init__("DeidNerRecognizer", lexicons)

    def entities(self, text: str) -> list[tuple[int, int, str]]:
        out = []
        for offset, chunk in _chunks(text):
            with self._lock:
                doc = self.nlp(_SURROGATES.sub("\ufffd", chunk))
            out += [(offset + ent.start_char, offset + ent.end_char, ent.label_) for ent in doc.ents]
        return out

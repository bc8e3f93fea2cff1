"""Geographic units smaller than a state: street addresses, PO boxes, cities, counties, ZIP codes.
States may stay (Safe Harbor); ZIP codes are removed whole (the 3-digit prefix is not kept, which is
always allowed and saves checking the prefix's population)."""

from __future__ import annotations

import re

from engine.deid._presidio import EntityRecognizer, RecognizerResult
from engine.deid.lexicons import Lexicons, key, load_lexicons
from engine.deid.recognizers.base import RegexRecognizer, rule
from engine.deid.recognizers.names import STOP
from schemas.phi import PhiCategory as C

STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI"
).split()
STATE_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|"
    "Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|"
    "Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|"
    "North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|"
    "Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|Puerto Rico"
)
_STATE_KEYS = frozenset(key(n) for n in STATE_NAMES.split("|"))
_STATE = rf"(?:{'|'.join(STATE_CODES)}|{STATE_NAMES})"
_ZIP = r"\d{5}(?:-\d{4})?"
_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|Parkway|"
    r"Pkwy|Circle|Cir|Highway|Hwy|Route|Rte|Trail|Trl|Square|Sq|Alley|Plaza|Loop|Pike|Row|Crescent|Expressway"
)
_CAP = r"[A-Z][A-Za-z'’-]*\.?"
STREET = rule(
    rf"(?<![\w/.-])\d{{1,6}}[A-Za-z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?"
    rf"(?:(?:{_CAP}|\d+(?:st|nd|rd|th))\s+){{1,4}}(?:{_STREET_TYPES})\b\.?"
    rf"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Floor|Fl|#)\.?\s*#?\s*[A-Za-z0-9-]+)?",
    C.ADDRESS,
)
PO_BOX = rule(r"\b(?i:p\.?\s?o\.?\s*box)\s+\d+", C.ADDRESS)
COUNTY = rule(rf"(?<![\w'’.-])(?:{_CAP}\s+){{1,2}}(?:County|Parish)\b", C.ADDRESS)
ZIP_CONTEXT = rule(rf"(?i:\bzip(?:\s*code)?)[\s:#]*(?P<phi>{_ZIP})(?!\d)", C.ADDRESS)
# "Springfield, IL 62704": the city and the ZIP, not the state
CITY_STATE_ZIP = re.compile(
    rf"(?<![\w'’.-])(?P<city>(?:[A-Z][A-Za-z'’.-]*\s){{0,3}}[A-Z][A-Za-z'’.-]*),\s*{_STATE}\.?(?:,?\s+(?P<zip>{_ZIP}))?(?![\w-])"
)
_CONTEXT_BEFORE = re.compile(
    r"(?i:(?:lives|living|lived|resides|residing|resided|born|moved|relocated|native|resident|hometown|visiting|"
    r"travel+ed|returned|came|transferred|raised|grew\s+up|located)\s+(?:\w+\s+){0,2}(?:in|to|from|of|at|near)"
    r"|from|near)\s+$"
)
_CAP_RUN = re.compile(r"(?<![\w'’.-])[A-Z][A-Za-z'’.-]*(?:[ -][A-Z][A-Za-z'’.-]*)*")


class CityRecognizer(EntityRecognizer):
    """Cities: "City, ST ZIP" anywhere; lexicon cities when unambiguous, or after "lives in", "from"..."""

    def __init__(self, lexicons: Lexicons | None = None) -> None:
        self.lex = lexicons or load_lexicons()
        super().__init__(supported_entities=[C.ADDRESS.value], name="DeidCityRecognizer")

    def load(self) -> None:
        pass

    def _is_city(self, words: list[str]) -> bool:
        k = key(" ".join(words)).rstrip(".")
        return k in self.lex.cities and k not in _STATE_KEYS  # "Indiana", "Washington": a state may stay

    def _plain_city(self, words: list[str]) -> bool:
        """A city name safe to remove without context: not a common word, name, or clinical word."""
        keys = [key(w) for w in words]
        if len(keys) > 1:
            return not all(k in STOP or k in self.lex.ambiguous for k in keys)
        k = keys[0]
        lex = self.lex
        return not (k in lex.ambiguous or k in lex.clinical or k in lex.clinical_words or k in lex.clinical_if_head
                    or k in STOP or k in lex.first_names or k in lex.last_names)

    def analyze(self, text: str, entities=None, nlp_artifacts=None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        for m in CITY_STATE_ZIP.finditer(text):
            words = m.group("city").split()
            # keep only the trailing words that make a known city, or all when a ZIP confirms the address
            known = next((words[i:] for i in range(len(words)) if self._is_city(words[i:])), None)
            city_words = known or (words[-2:] if m.group("zip") and len(words) > 1 and key(words[-2]) not in STOP else words[-1:] if m.group("zip") else None)
            if city_words:
                start = m.start("city") + m.group("city").rfind(" ".join(city_words))
                out.append(RecognizerResult(C.ADDRESS.value, start, m.end("city"), 0.8))
            if m.group("zip"):
                out.append(RecognizerResult(C.ADDRESS.value, m.start("zip"), m.end("zip"), 0.9))
        for m in _CAP_RUN.finditer(text):
            words = m.group().replace("-", " ").split(" ")
            offsets = [0]
            for w in words[:-1]:
                offsets.append(offsets[-1] + len(w) + 1)
            i = 0
            while i < len(words):
                if key(words[i]) not in self.lex.city_first_words:
                    i += 1
                    continue
                for n in range(min(self.lex.max_city_words, len(words) - i), 0, -1):
                    if self._is_city(words[i : i + n]):
                        start = m.start() + offsets[i]
                        end = start + len(" ".join(words[i : i + n]).rstrip("."))
                        if _CONTEXT_BEFORE.search(text[max(0, start - 40) : start]):
                            out.append(RecognizerResult(C.ADDRESS.value, start, end, 0.85))  # "lives in Salem"
                        elif self._plain_city(words[i : i + n]):
                            out.append(RecognizerResult(C.ADDRESS.value, start, end, 0.6))
                        i += n - 1
                        break
                i += 1
        return out


def address_recognizer() -> RegexRecognizer:
    return RegexRecognizer("DeidAddressRecognizer", [STREET, PO_BOX, COUNTY, ZIP_CONTEXT])

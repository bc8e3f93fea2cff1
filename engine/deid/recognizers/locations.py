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
    r"Pkwy|Circle|Cir|Highway|Hwy|Route|Rte|Trail|Trl|Square|Sq|Alley|Plaza|Loop|Pike|Row|Crescent|Expressway|"
    r"Close|Mews|Gardens|Green|Hills?|Heights|Crossing|Run|Ridge|Point|Park|Glen|Grove|Hollow|Bend|Landing|Commons|"
    r"Path|Walk|Creek|Cove|Estates?|Villages?|Meadows?|Manor|Springs?|Ford|Fords|Harbor|Harbour|Isle|Junction|Knolls?|"
    r"Oval|Pass|Pines|Shores?|Station|Summit|Track|Turnpike|Vale|View|Vista|Wells?|Street|Strasse|Straße|Weg|Rua|Calle|Via|"
    r"Parade|Pde|Promenade|Esplanade|Quay|Rise|Wynd|Chase|Tce|Cres"
)
_STREET_TYPES = rf"{_STREET_TYPES}|{_STREET_TYPES.upper()}"  # all-caps notes and scanned forms
_CAP = r"[A-Z][A-Za-z'’-]*\.?"
STREET = rule(
    rf"(?<![\w/.-])(?:\d{{1,4}}/)?\d{{1,6}}[A-Za-z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?"
    rf"(?:(?:{_CAP}|\d+(?:st|nd|rd|th))\s+){{1,4}}(?:{_STREET_TYPES})\b\.?(?:\s+\d{{1,4}}\b)?"
    rf"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Floor|Flat|Fl|APT|UNIT|FLAT|#)(?![a-z])\.?\s*#?\s*[A-Za-z0-9-]+)?",
    C.ADDRESS,
)
# "Flat 2, 14 Elm Close" (unit first), "Bardelebenweg 1166", "Rúa do Vagalume, 1166" (number after the street)
UNIT_FIRST = rule(rf"\b(?:Flat|Apt|Apartment|Unit|Suite|FLAT|APT|UNIT|SUITE)\s+(?:[A-Za-z0-9-]+,\s*|\d{{1,4}}/)\d{{1,5}}[A-Za-z]?\s+(?:{_CAP}\s+){{1,3}}(?:{_STREET_TYPES})\b\.?", C.ADDRESS)
NUMBER_AFTER = rule(
    r"(?<![\w'’.-])(?:[A-ZÀ-Ý][\wÀ-ÿ'’.-]*(?:strasse|straße|str\.|weg|gasse|allee|platz|laan|straat|gatan|vej|veien|katu|utca|ulica|sokağı)"
    r"|(?:Rua|Avenida|Av\.|Calle|Via|Viale|Rúa|Carrera|Rue|Boulevard|Chemin|Al\.|ul\.)\s+(?:[\wÀ-ÿ'’.-]+\s+){0,5}?[\wÀ-ÿ'’.-]+)"
    r",?\s+\d{1,5}[A-Za-z]?(?![\w/])",
    C.ADDRESS,
)
# A street with its house number, a comma, a 4-5 digit postcode (letters around it) and a town: "Johan de Walestraat
# 158, 1566 AJ Bussum", "1155 Rue Du Libraire, 14829 Vaulx-en-Velin", "120 Gjelstensåsen, DK-0623 Viby Sjælland"
_L = r"[A-ZÀ-Þ][\wÀ-ÿ'’.-]*"
_TOWN = r"[A-ZÀ-Þ][\wÀ-ÿ'’-]*"
_MONTH_WORD = re.compile(r"\b(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
                         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b")
_LINK = r"(?:de|du|des|la|le|di|da|do|dos|van|von|der|den|del|y|am|an|im|sur|en|in|aan|op|ter|ten)"
FOREIGN_ADDRESS = rule(
    rf"(?<![\w'’.-])(?:\d{{1,5}}[A-Za-z]?\s+(?:(?:{_L}|{_LINK})\s+){{0,4}}{_L}|(?:(?:{_L}|{_LINK})\s+){{0,4}}{_L}\s+\d{{1,5}}[A-Za-z]?)"
    rf",\s+(?:[A-Z]{{1,2}}-)?\d{{4,5}}(?:\s[A-Z]{{2}})?\s+{_TOWN}(?:[ /-](?:{_LINK}\s)?{_TOWN}){{0,3}}",
    C.ADDRESS,
    accept=lambda m: not _MONTH_WORD.search(m.group().split(",")[0]),  # "March 14, 2024 Patient ..." is a date
)
# A house number and a French/Spanish/Portuguese/Italian street word before the name: "88 Rue Champlain", "88 RUE CHAMPLAIN"
NUMBER_FIRST_ROMANCE = rule(r"(?<![\w/.-])\d{1,5}[A-Za-z]?,?\s+(?i:rue|chemin|boulevard|avenue|rua|calle|avenida|via|viale|route)\s+"
                            r"(?:(?:de|du|des|la|le|del|da|do|di)\s+)?[A-ZÀ-Þ][\wÀ-ÿ'’-]*(?:\s+[A-ZÀ-Þ][\wÀ-ÿ'’-]*){0,2}", C.ADDRESS)
# A street address in lower case (patients' messages): a house number, one to three words, a street type
_LOWER_STREET_TYPES = ("street|st|road|rd|avenue|ave|grove|drive|lane|ln|crescent|cres|close|terrace|tce|parade|pde|boulevard|"
                       "blvd|highway|hwy|mews|court|ct|circle|cir")
LOWER_STREET = rule(rf"(?<![\w/.-])(?:\d{{1,4}}/)?\d{{1,5}}[a-z]?\s+(?:(?!the\b|a\b|an\b|of\b|and\b|to\b|in\b|on\b|at\b)[a-z]{{2,}}\s+){{1,3}}"
                    rf"(?:{_LOWER_STREET_TYPES})\b", C.ADDRESS, 0.7)
# Indian addresses: "H.No. 214, Sector 17-C", "Flat No 5, Block B"; a six-digit PIN after a town ("Chandigarh  160017")
HOUSE_NUMBER = rule(r"(?<![\w.])(?i:h\.?\s?no\.?|house\s+no\.?|flat\s+no\.?|plot\s+no\.?|door\s+no\.?)\s*[\w/-]+"
                    r"(?:\s*,\s*(?:Sector|Block|Phase|Ward|Nagar|Colony|Layout|Cross|Main)\s*[\w-]+)*", C.ADDRESS)
TOWN_PIN = rule(r"(?P<phi>(?<![\w'’.-])[A-Z][a-z][A-Za-z'’-]+[ \t]{1,3}[1-9]\d{5})(?![\w-])", C.ADDRESS, 0.7,
                before=r",[ \t]*")
# A town before a Canadian province code and postcode: "EDMUNDSTON NB E3V 2W5", "Rimouski QC G5L 3A1"
_PROVINCES = "AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT"
TOWN_PROVINCE = rule(rf"(?<![\w'’.-])(?P<phi>[A-Z][A-Za-z'’-]+(?:\s[A-Z][A-Za-z'’-]+)?)\s*,?\s+(?:{_PROVINCES})\s+"
                     rf"[A-Z]\d[A-Z]\s?\d[A-Z]\d(?![\w-])", C.ADDRESS, 0.8)
# Australian suburb, state and postcode: "Toowong QLD 4066", "Bentleigh, VIC 3204" (the suburb and the postcode)
TOWN_AU_STATE = rule(r"(?<![\w'’.-])[A-Z][A-Za-z'’-]+(?:\s[A-Z][A-Za-z'’-]+)?\s*,?\s+(?:QLD|NSW|VIC|TAS|ACT|SA|WA|NT)\s+\d{4}(?![\w-])",
                     C.ADDRESS, 0.8)
# Rural routes and highway contract boxes: "RR 2 Box 117", "Rt 4, Box 22", "HC 61 Box 12", "Star Route 2", "Route 9"
RURAL = rule(
    r"\b(?:(?:RR|R\.R\.|HC|Rt\.?|Rte\.?)\s*#?\s*\d{1,4},?\s*Box\s+\d{1,5}"  # "RR 14" alone is a respiratory rate
    r"|(?:Rural\s+Route|Star\s+Route|Route|County\s+(?:Rd|Road)|State\s+(?:Rd|Road|Route)|Highway|Hwy)\s*-?\s*\d{1,4}[A-Z]?(?![\w])"
    r"(?:,?\s*Box\s+\d{1,5})?)|\bGeneral\s+Delivery\b",
    C.ADDRESS,
)
_UK_CA_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)"
# Postcodes of the UK (HG1 4QT, SW1A 1AA) and Canada (A1C 5H1): shaped enough to take anywhere
POSTCODE = rule(rf"(?<![\w-]){_UK_CA_POSTCODE}(?![\w-])", C.ADDRESS, 0.7)
PO_BOX = rule(r"\b(?i:p\.?\s?o\.?\s*box)\s+\d+", C.ADDRESS)
COUNTY = rule(rf"(?<![\w'’.-])(?:{_CAP}\s+){{1,2}}(?:County|Parish)\b", C.ADDRESS)
ZIP_CONTEXT = rule(rf"(?i:\bzip(?:\s*code)?)[\s:#]*(?P<phi>{_ZIP})(?!\d)", C.ADDRESS)
# "..., Twin Falls 83301" / "..., 28 Elm St, Dover 19901": a town and a ZIP with no state, after a comma (an
# address line); the town may be unknown to every lexicon. Not after an upper-case code ("CPT 99213").
TOWN_ZIP = rule(rf",\s*(?P<phi>(?:[A-Z][a-z][A-Za-z'’.-]*\s){{1,3}}(?:{_ZIP}|{_UK_CA_POSTCODE})|(?:[A-Z]{{3,}}\s){{1,3}}{_UK_CA_POSTCODE})"
                rf"(?=\s*(?:[.,;)]|$))", C.ADDRESS, 0.8, flags=re.M)
# "Springfield, IL 62704": the city and the ZIP, not the state
CITY_STATE_ZIP = re.compile(
    rf"(?<![\w'’.-])(?P<city>(?:[A-Z][A-Za-z'’.-]*\s(?:(?:or|of|on|upon|de|la|del|du|le|the)\s)?){{0,3}}[A-Z][A-Za-z'’.-]*),\s*{_STATE}\.?"
    rf"(?:,?\s+(?P<zip>{_ZIP}))?(?![\w-])"
)
_CONTEXT_BEFORE = re.compile(
    r"(?i:(?:lives|living|lived|resides|residing|resided|born|moved|relocated|native|resident|hometown|visiting|"
    r"travel+ed|returned|came|transferred|raised|grew\s+up|located|staying)\s+(?:\w+\s+){0,3}(?:in|to|from|of|at|near|outside)"
    r"|from|near|outside(?:\s+of)?)\s+$"
)
# A place no lexicon knows, right after a strong cue: "lives in Chimney Rock", "moved from Kharkiv", "a hotel in Rochester"
_STRONG_PLACE_CUE = re.compile(
    r"(?i:\b(?:lives|living|lived|resides|residing|resided|born|raised|grew\s+up|relocated|moved\s+(?:here\s+)?|"
    r"originally|immigrated|emigrated|visiting|staying|family|hotel|farm|ranch|home)\s+(?:\w+\s+){0,3}?"
    r"(?:in|from|near|outside(?:\s+of)?|at)"
    # a capitalised word right after "near"/"outside of"/"north of" is a place whatever the verb ("a cabin near Heby")
    r"|\b(?:near|outside\s+of|close\s+to|(?:north|south|east|west)\s+of|just\s+outside))\s+$"
)
_PLACE_RUN = re.compile(r"(?<![\w'’.-])[A-Z][\w'’-]*(?:\s(?:(?:or|of|on|upon|in|de|la|del|du|le|the|do|da|dos|das|di|am|an|im|sur|en)\s)?[A-Z][\w'’-]*){0,3}")
_NOT_PLACE = frozenset(
    """dr doctor mr mrs ms the a an his her their this that home work school church hospital clinic er ed icu or
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december today yesterday""".split()
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
        out += self._cued_places(text)
        return out

    def _cued_places(self, text: str) -> list[RecognizerResult]:
        out = self._lower_cued_places(text)
        for m in _PLACE_RUN.finditer(text):
            if not _STRONG_PLACE_CUE.search(text[max(0, m.start() - 48) : m.start()]):
                continue
            words = m.group().split()
            keys = [key(w).rstrip(".") for w in words]
            if keys[0] in _NOT_PLACE or keys[0] in STOP or " ".join(keys) in _STATE_KEYS:
                continue
            lex = self.lex
            if len(words) == 1 and (keys[0] in lex.clinical_words or keys[0] in lex.clinical or words[0].isupper()):
                continue
            out.append(RecognizerResult(C.ADDRESS.value, m.start(), m.end(), 0.7))
        return out

    def _lower_cued_places(self, text: str) -> list[RecognizerResult]:
        """Places in lower case after a strong cue ("home in gateshead", "lives at sunset lodge in hallowell"): a city of
        the lexicon or a word no vocabulary holds, with a second such word when one follows."""
        lex = self.lex
        out = []
        for m in _LOWER_PLACE_RUN.finditer(text):
            if not _STRONG_PLACE_CUE.search(text[max(0, m.start("p") - 48) : m.start("p")]):
                continue
            words = m.group("p").split()
            n = 2 if len(words) == 2 and self._is_city(words) else 1
            if n == 1 and not (self._is_city(words[:1]) or len(words[0]) >= 4 and key(words[0]) not in lex.common_words):
                continue
            if n == 1 and len(words) == 2 and key(words[1]) not in lex.common_words and key(words[1]) not in _STATE_KEYS:
                n = 2
            out.append(RecognizerResult(C.ADDRESS.value, m.start("p"), m.start("p") + len(" ".join(words[:n])), 0.7))
        return out


# candidates right after the preposition that ends every strong cue; the cue itself is checked before the preposition
_LOWER_PLACE_RUN = re.compile(r"\b(?:in|from|near|at|of|outside|to)\s+(?P<p>[a-z][a-z'’-]+(?: [a-z][a-z'’-]+)?)")


def address_recognizer() -> RegexRecognizer:
    return RegexRecognizer("DeidAddressRecognizer", [STREET, UNIT_FIRST, NUMBER_AFTER, FOREIGN_ADDRESS, RURAL, POSTCODE, PO_BOX, COUNTY, ZIP_CONTEXT,
                                                     TOWN_ZIP, NUMBER_FIRST_ROMANCE, LOWER_STREET, HOUSE_NUMBER, TOWN_PIN, TOWN_PROVINCE, TOWN_AU_STATE])

"""Every date element except the year: numeric ("3/14/2024", "2024-03-14", "03/14/24", "3/14" in date
context), spelled out ("March 14th", "14-Mar-2024", "the 14th of March", "March 2024")."""

from __future__ import annotations

import re

from engine.deid.recognizers.base import RegexRecognizer, rule
from schemas.phi import PhiCategory as C

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_ABBREVS = ("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")


def _cased(words) -> str:
    """Title-case or upper-case only: "may" and "march" in lower case are usually verbs."""
    return "|".join(sorted({f(w) for w in words for f in (str.title, str.upper)}, key=len, reverse=True))


MONTH = rf"(?:(?:{_cased(_MONTHS)})|(?:{_cased(_ABBREVS)})\.?|(?:May|MAY)\.(?=\s*\d))(?![a-z])"  # "May. 19": abbreviated by habit
DAY = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?(?!\d)"
YEAR = r"(?:1[89]\d\d|20\d\d|'\d\d)(?!\d)"
_NB = r"(?<![\w/.-])"  # not glued to a preceding number or word
_NA = r"(?![\w/]|-\d|\.\d)"
_WEEKDAYS = r"mon|monday|tue|tues|tuesday|wed|wednesday|thu|thur|thurs|thursday|fri|friday|sat|saturday|sun|sunday"
_DATE_CONTEXT = (
    r"(?i:\b(?:on|since|from|to|until|till|through|thru|dated?|dob|d\.o\.b\.?|as\s+of|by|of|after|before|"
    r"starting|effective|admitted|adm|admit|discharged|d/c|seen|visit|last|next|between|and|born|birth|surgery|"
    r"date\s+of\s+\w+|signed|sent|collected|drawn|done|performed|scheduled|due|recheck|returns?|called|"
    rf"tmrw|tomorrow|today|yesterday|tonight|{_WEEKDAYS})"
    r"[\s:,]+(?:the\s+|on\s+)?)"
)
# m/d with no date word before it ("transferred 3/11 with NSTEMI") unless it reads as a ratio or score:
# "5/5 strength", "2/6 murmur", "pain 7/10", "Apgar 8/9", "1/2 tab".
_RATIO_BEFORE = re.compile(
    r"(?i:(?:strength|power|motor|murmur|grade|reflex(?:es)?|pulses?|pain|score|scale|gcs|apgars?|ratio|tone|bp|"
    r"vision|acuity|sides?|cuff|x|gravida|para|rated|level|fraction|titer|titre|dilution|ml|mg|of)\s*[:=]?\s*)$"
)
_RATIO_AFTER = re.compile(
    r"(?i:\s*(?:strength|power|motor|murmur|systolic|diastolic|holosystolic|pulses?|reflex|pain|in\b|of\b|tabs?\b|"
    r"tablets?|teaspoons?|tsp|cups?|mg|mcg|ml|units?|\+|bilat|score|scale|vision|cm|mm|hours|hrs|days|weeks|x\b|"
    r"dilution|titer|lesions|nodes|positive|sessions|doses|vials|ratio|fingers|toes|%))"
)


def bare_month_day(m: re.Match[str]) -> bool:
    if not _valid_md(m):
        return False
    text = m.string
    return not _RATIO_BEFORE.search(text, max(0, m.start() - 24), m.start()) and not _RATIO_AFTER.match(text, m.end())


def _valid_md(m: re.Match[str]) -> bool:
    return 1 <= int(m.group("a")) <= 12 and 1 <= int(m.group("b")) <= 31


def _valid_mdy(m: re.Match[str]) -> bool:
    a, b = int(m.group("a")), int(m.group("b"))
    return (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)  # m/d or d/m


DATE_RULES = (
    # 3/14/2024, 03-14-24, 14.03.2024
    rule(rf"{_NB}(?P<a>\d{{1,2}})([/-])(?P<b>\d{{1,2}})\2(?:\d{{4}}|\d{{2}}){_NA}", C.DATE, accept=_valid_mdy),
    rule(rf"{_NB}(?P<a>\d{{1,2}})\.(?P<b>\d{{1,2}})\.\d{{4}}{_NA}", C.DATE, accept=_valid_mdy),
    # 2024-03-14, 2024/3/14, optionally with an ISO 8601 time and zone (2019-03-04T10:22Z, ...T07:05:00-05:00)
    rule(rf"{_NB}(?:1[89]|20)\d\d([-/.])(?:0?[1-9]|1[0-2])\1(?:3[01]|[12]\d|0?[1-9])"
         rf"(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?{_NA}", C.DATE),
    # 20230519 (YYYYMMDD), with a date word before it
    rule(rf"{_NB}(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_NA}", C.DATE, before=_DATE_CONTEXT + r"|(?i:date\s*:?\s*|exam\s+date\s*:?\s*)"),
    # 05161951 (MMDDYYYY), 16051951 (DDMMYYYY), with a date word before it ("DOB 05161951"); bare, an 8-digit ID
    rule(rf"{_NB}(?:(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2]))(?:19|20)\d\d{_NA}", C.DATE,
         before=_DATE_CONTEXT + r"|(?i:date\s*:?\s*)"),
    # 03/2024: month and year
    rule(rf"{_NB}(?:0?[1-9]|1[0-2])[/-](?:1[89]|20)\d\d{_NA}", C.DATE),
    # 3/14 with a date word before it ("on 3/14", "DOB: 3/14"), or alone when it does not read as a ratio
    rule(rf"{_NB}(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}}){_NA}", C.DATE, accept=_valid_mdy, before=_DATE_CONTEXT),
    rule(rf"{_NB}(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}}){_NA}", C.DATE, 0.6, accept=bare_month_day),
    # 3/14-3/16 after a date word; 04/03 (both zero-padded: not a ratio or a score)
    rule(rf"{_NB}(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})\s*-\s*\d{{1,2}}/\d{{1,2}}{_NA}", C.DATE, accept=_valid_mdy, before=_DATE_CONTEXT),
    rule(rf"{_NB}(?:0[1-9]|1[0-2])/(?:0[1-9]|[12]\d|3[01]){_NA}", C.DATE),
    # March 14th, March 14, 2024, Mar. 14 2024, March the 14th, Mar-04
    rule(rf"\b{MONTH}\s*(?:the\s+|-\s*)?{DAY}(?:(?:,\s*|\s+|-)(?:of\s+)?{YEAR})?", C.DATE),
    # 14th of March, 14 March 2024, 14-Mar-2024, 14/Mar/24, 04Mar2019, 04MAR19
    rule(rf"{_NB}{DAY}(?:\s+of\s+|(?:\s*[-/]\s*|\s+)|(?=[A-Z])){MONTH}(?:,?\s*(?:[-/]\s*)?{YEAR}|-?\d\d(?![\d/]))?", C.DATE),
    # Aug '19
    rule(rf"\b{MONTH}\s*'\d\d(?!\d)", C.DATE),
    # March 2024, Mar-2024, March of 2024
    rule(rf"\b{MONTH}(?:\s+of\s+|,?(?:\s*[-/]\s*|\s+)){YEAR}", C.DATE),
    # a month name alone after a date word ("in March", "since January")
    rule(rf"\b(?:{_cased(m for m in _MONTHS if m != 'may')})\b", C.DATE,
         before=r"(?i:\b(?:in|since|during|until|till|by|early|late|mid|last|next|this|of)\s+)"),
)


# Dates written in lower case or spoken ("march third", "june ninth", "the seventeenth of may", "12th april",
# "oct 2"). Lower-case "may"/"march" are dates only with an ordinal ("march third", "may 3rd", "the 5th of may").
_ORDINAL_WORDS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
                  "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth").split()
_ORD_WORD = rf"(?:(?:twenty|thirty)[- ](?:{'|'.join(_ORDINAL_WORDS[:9])})|{'|'.join(sorted(_ORDINAL_WORDS, key=len, reverse=True))})"
_DAY_ORD = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)"
_ANY_MONTH = rf"(?i:{'|'.join(sorted(_MONTHS + _ABBREVS, key=len, reverse=True))})(?![a-z])"
_PLAIN_MONTH = rf"(?:{'|'.join(sorted(set(_MONTHS + _ABBREVS) - {'may', 'march', 'mar', 'dec'}, key=len, reverse=True))})(?![a-z])"
_NOT_A_DOSE = r"(?!\d|\s*(?i:mg|mcg|ml|units?|tabs?|x\b|%|/|times|hours|days|weeks))"
SPOKEN_DATE_RULES = (
    rule(rf"\b(?=[JFMASONDjfmasond])(?!may\s)(?i:{_ANY_MONTH}\s+(?:the\s+)?(?:{_DAY_ORD}|{_ORD_WORD}))(?![\w-])", C.DATE),  # march third, jan 29th
    rule(rf"\bmay\s+{_DAY_ORD}(?!\w)", C.DATE),  # may 3rd
    rule(rf"(?i:\bthe\s+(?P<phi>(?:{_DAY_ORD}|{_ORD_WORD})\s+of\s+{_ANY_MONTH}))", C.DATE),  # the 19th of april, the seventeenth of may
    rule(rf"(?<![\w/.-])(?i:{_DAY_ORD}\s+{_ANY_MONTH})", C.DATE),  # 12th april
    rule(rf"\b(?=[jfasond]){_PLAIN_MONTH}\.?\s+{DAY}{_NOT_A_DOSE}", C.DATE),  # oct 2, sept 14th
    rule(rf"(?<![\w/.-])(?:3[01]|[12]\d|0?[1-9])\s+{_PLAIN_MONTH}", C.DATE),  # 14 oct
)
# "05 - 11 - 1948" (spaced, as forms are filled in) and OCR letters for digits ("O1/O6/1951", "l2/03/1947")
_OCR_DIGIT = "0-9OoIl"
_OCR_FIXES = str.maketrans("OoIl", "0011")
FORM_DATE_RULES = (
    rule(rf"{_NB}(?P<a>\d{{1,2}})\s+([/.-])\s+(?P<b>\d{{1,2}})\s+\2\s+(?:1[89]|20)\d\d{_NA}", C.DATE, accept=_valid_mdy),
    rule(rf"(?<![\w/.-])[{_OCR_DIGIT}]{{1,2}}/[{_OCR_DIGIT}]{{1,2}}/(?:1[89]|20)[{_OCR_DIGIT}]{{2}}(?![\w/])", C.DATE,
         accept=lambda m: not m.group().isdigit() and _valid_ocr(m.group())),
)


def _valid_ocr(value: str) -> bool:
    a, b, _ = value.translate(_OCR_FIXES).split("/")
    return a.isdigit() and b.isdigit() and (1 <= int(a) <= 12 and 1 <= int(b) <= 31 or 1 <= int(b) <= 12 and 1 <= int(a) <= 31)


def date_recognizer() -> RegexRecognizer:
    return RegexRecognizer("DeidDateRecognizer", DATE_RULES + SPOKEN_DATE_RULES + FORM_DATE_RULES)

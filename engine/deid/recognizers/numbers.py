"""Numbers that identify: phone/fax, SSN, MRN/account/plan/licence/vehicle/device IDs, ages over 89."""

from __future__ import annotations

import re

from engine.deid.recognizers.base import RegexRecognizer, rule
from schemas.phi import PhiCategory as C

I = re.IGNORECASE
_SEP = r"[\s.-]?"

PHONE = rule(
    rf"(?<![\w+])(?P<phi>(?:\+?1{_SEP})?(?:\(\d{{3}}\)\s?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}"
    rf"(?:\s?(?:x|ext\.?|extension)\s?\d{{1,6}})?)(?![\w])",
    C.PHONE,
)
SSN = rule(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])", C.ID, 0.9)

_ID_WORDS = (
    r"mrn|medical\s+record|record|account|acct|member|subscriber|policy|group|health\s+plan|insurance|"
    r"beneficiary|ssn|social\s+security|licen[cs]e|dea|npi|plate|vin|serial|device|model|patient\s+id|"
    r"pt\.?\s+id|id|identifier|case|encounter|visit|fin|accession|specimen|claim|chart|certificate|passport|"
    r"lot|implant|pacemaker|tag|badge|employee"
)
_YEAR = re.compile(r"(?:19|20)\d\d")  # "visit 2019": a year alone may stay
_ID_FILLER = r"(?:\s*(?:number|num|no\.?|nbr|id|#|is|:|plate|registration)\s*){0,3}"
# An identifier after a context word: one token of letters/digits/hyphens that holds at least one digit.
CONTEXT_ID = rule(
    r"(?<![\w-])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9](?![\w])",
    C.ID,
    0.95,  # an identifier announced by its label beats the phone-number reading of the same digits
    accept=lambda m: len(m.group()) >= 4 and not _YEAR.fullmatch(m.group()),
    before=rf"(?i:\b(?:{_ID_WORDS})\b){_ID_FILLER}[\s:#.]*",
)
LONG_NUMBER = rule(r"(?<![\w.,/-])\d{7,}(?![\w,/]|\.\d)", C.ID, 0.6)  # bare 7+ digit runs
LETTERS_DIGITS = rule(r"(?<![\w-])[A-Z]{1,4}-?\d{6,}(?![\w-])", C.ID, 0.6)  # e.g. AB12345678
VIN = rule(r"(?<![\w-])(?=[A-HJ-NPR-Z0-9]{17}(?![\w-]))(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-HJ-NPR-Z0-9]{17}", C.ID)

_OLD = r"(?:9\d|1[0-4]\d)"  # ages over 89 (to 149)
AGES = (
    rule(rf"(?<![\w.])(?P<phi>{_OLD})(?=\s*-?\s*(?:years?|yrs?|y\.?\s?o\.?|y/o)\b)", C.AGE, flags=I),
    rule(rf"(?<![\w.]){_OLD}(?!\w|\.\d)", C.AGE, before=r"(?i:\bage[d:]?\s*(?:of\s*)?)"),
    rule(rf"(?<![\w.]){_OLD}'?s\b", C.AGE, before=r"(?i:\bin\s+(?:his|her|their)\s+(?:late\s+|early\s+|mid-?\s*)?)"),
    rule(rf"(?<![\w.])(?P<phi>{_OLD})(?=\s?(?:yo|M|F)\b)", C.AGE),
)


def number_recognizer() -> RegexRecognizer:
    return RegexRecognizer("DeidNumberRecognizer", [PHONE, SSN, CONTEXT_ID, LONG_NUMBER, LETTERS_DIGITS, VIN, *AGES])

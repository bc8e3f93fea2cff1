"""Numbers that identify: phone/fax, SSN, MRN/account/plan/licence/vehicle/device IDs, ages over 89."""

from __future__ import annotations

import re

from engine.deid.recognizers.base import RegexRecognizer, rule
from schemas.phi import PhiCategory as C

I = re.IGNORECASE
_SEP = r"[\s.-]?"

_EXT = r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?"
PHONE = rule(
    rf"(?<![\w+])(?P<phi>(?:\+?1{_SEP})?(?:\(\d{{3}}\)\s?|\d{{3}}(?:{_SEP}|/))\d{{3}}{_SEP}\d{{4}}{_EXT})(?![\w])",
    C.PHONE,
)
# International: +44 20 7946 0958, +81 3-5555-0143, +52 55 1234 5678, +1.408.555.0102, +33 (0)1 43 74 83 37
INTL_PHONE = rule(
    r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(\d{1,4}\)|[\s.-]?\d{1,5}){2,6}" + _EXT + r"(?![\w])",
    C.PHONE,
    accept=lambda m: 8 <= sum(c.isdigit() for c in m.group()) <= 17,
)
# Seven digits (555-1234, 555 0188): with a phone word before it, or hyphenated and not followed by a unit
_UNITS = re.compile(r"\s*(?:mg|mcg|g\b|ml|cc|units?|u\b|iu|%|cells|/|x\b|mm|cm|k\b|ft|feet|lbs?|kg|steps|hours|days)", re.I)
_PHONE_WORDS = (r"(?i:\b(?:phone|tel|telephone|call|called|cell|mobile|fax|number|contact|reach|reached|at|pager|page|ph|voicemail|vm|ring|#)"
                r"\b\.?\s*:?\s*(?:back\s+at\s+|at\s+|is\s+|(?:me|us|him|her|them)\s+(?:on|at)\s+|on\s+)?)")  # "ring me on 0412 558 903"
PHONE7 = rule(r"(?<![\w+./-])[2-9]\d\d[-. ]\d{4}" + _EXT + r"(?![\w-]|\.\d)", C.PHONE, 0.7, before=_PHONE_WORDS)
PHONE7_BARE = rule(r"(?<![\w+./,-])[2-9]\d\d-\d{4}" + _EXT + r"(?![\w-]|\.\d)", C.PHONE, 0.6,
                   accept=lambda m: not _UNITS.match(m.string, m.end()))
# Local and foreign formats after a phone word: "reached at (02659) 8468225", "text to 57 097 780", "0827 181 6912"
PHONE_AFTER_WORD = rule(r"(?<![\w+./-])(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-])\d{2,8}(?:[\s.-]\d{2,5}){0,3}" + _EXT + r"(?![\w-]|\.\d)",
                        C.PHONE, 0.7, before=_PHONE_WORDS + r"|(?i:\b(?:text(?:\s+messages?)?|texts?|sms|whatsapp|home|work|mobile)\s*(?:to|at|on|is|:)\s*)",
                        accept=lambda m: 8 <= sum(c.isdigit() for c in m.group()) <= 13 and not _UNITS.match(m.string, m.end()))
# Any phone-shaped digit groups labelled by what follows: "... and 0827 181 6912 (work)", "736 004 883 (cell)"
PHONE_BEFORE_LABEL = rule(r"(?<![\w+./-])\+?(?:\(\d{1,5}\)\s?)?\d{1,8}(?:[\s.-]\d{1,8}){0,4}(?=\s*\((?i:home|work|cell|mobile|office|fax|landline|pager)\))",
                          C.PHONE, 0.7, accept=lambda m: 7 <= sum(c.isdigit() for c in m.group()) <= 13)
# National numbers with the trunk prefix in brackets, as written in the UK, Australia, Germany...: "(03) 9562 4418",
# "(0161) 496 0732"
TRUNK_PHONE = rule(r"(?<![\w+./-])\(0\d{1,4}\)\s?\d{3,4}[\s-]?\d{3,4}(?![\w-]|\.\d)", C.PHONE, 0.7,
                   accept=lambda m: 8 <= sum(c.isdigit() for c in m.group()) <= 12)
# Digits dictated as words: "two zero seven five five five zero one eight three" (seven or more in a row)
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
SPOKEN_PHONE = rule(rf"(?i:\b{_DIGIT_WORD}(?:[\s,-]+{_DIGIT_WORD}){{6,14}}\b)", C.PHONE, 0.7)
SSN = rule(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])", C.ID, 0.9)

_ID_WORDS = (
    r"mrn|medical\s+record|record|account|acct|member|subscriber|policy|group|health\s+plan|insurance|"
    r"beneficiary|ssn|social\s+security|licen[cs]e|dea|npi|plate|vin|serial|device|model|patient\s+id|"
    r"pt\.?\s+id|id|identifier|case|encounter|visit|fin|accession|specimen|claim|chart|certificate|passport|"
    r"lot|implant|pacemaker|tag|badge|employee|medicare|medicaid|tricare|mbi|hicn|beneficiary|research|study|"
    r"enrollment|subject|ref|reference|sn|s/n|serial\s+number|catalog|udi|registration|permit|card"
)
_YEAR = re.compile(r"(?:19|20)\d\d")  # "visit 2019": a year alone may stay
_ID_FILLER = r"(?:\s*(?:number|num|no\.?|nbr|id|#|is|:|plate|registration|shows|reads|lists)\s*){0,3}"
# An identifier after a context word: one token of letters/digits/hyphens that holds at least one digit.
CONTEXT_ID = rule(
    r"(?<![\w-])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9](?![\w])",
    C.ID,
    0.95,  # an identifier announced by its label beats the phone-number reading of the same digits
    accept=lambda m: len(m.group()) >= 4 and not _YEAR.fullmatch(m.group()),
    before=rf"(?i:\b(?:{_ID_WORDS})\b){_ID_FILLER}[\s:#.]*",
)
# An identifier of spaced digit groups after its label, with letters first or not: "INSURANCE NB 229 481 073",
# "health card 4532 781 926"
SPACED_CONTEXT_ID = rule(r"(?<![\w-])(?:[A-Z]{1,3}\s?)?\d{2,5}(?:\s\d{2,5}){1,4}(?![\w-]|\.\d)", C.ID, 0.9,
                         accept=lambda m: sum(c.isdigit() for c in m.group()) >= 6,
                         before=rf"(?i:\b(?:{_ID_WORDS})\b){_ID_FILLER}[\s:#.]*")
LONG_NUMBER = rule(r"(?<![\w.,/-])\d{7,}(?![\w,/]|\.\d)", C.ID, 0.6)  # bare 7+ digit runs
LETTERS_DIGITS = rule(r"(?<![\w-])[A-Z]{1,4}-?\d{6,}[A-Z]{0,3}(?![\w-])", C.ID, 0.6)  # e.g. AB12345678, PZK408871S
# Medicare Beneficiary Identifier (1EG4-TE5-MK73): a fixed shape over an alphabet without S, L, O, I, B, Z
_MBI_A = "[AC-HJKMNP-RT-Y]"
MBI = rule(rf"(?<![\w-])[1-9]{_MBI_A}[0-9AC-HJKMNP-RT-Y]\d-?{_MBI_A}[0-9AC-HJKMNP-RT-Y]\d-?{_MBI_A}{{2}}\d\d(?![\w-])", C.ID, 0.9)
# Codes of upper-case letters and digits (ENC7781204, A12-5589-03, RAD-2023-0048812, 7KQR552): at least four
# digits, one letter and six characters, so COVID-19, HLA-B27, BRCA1, L4-L5 or E11.65 stay
ALNUM_ID = rule(
    r"(?<![\w.-])(?=[A-Z0-9-]{6,}(?![\w.-]))(?=(?:[A-Z-]*\d){4})(?=[0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)*(?![\w.-])",
    C.ID, 0.6, accept=lambda m: not _YEAR_RANGE.fullmatch(m.group()),
)
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d-(?:19|20)?\d\d")
# Three or more hyphenated groups of digits or upper-case letters and digits with six digits in all (K466-6022-34,
# 274-701-219, 0A6W-Y82-UE19): the shapes of plan, card and device numbers; dates and phones are their own rules
# and win on the same span by category order, ratios/levels such as "T4-T5-T6" have too few digits.
GROUPED_ID = rule(r"(?<![\w.-])[A-Z0-9]{1,6}(?:-[A-Z0-9]{2,6}){2,4}(?![\w-]|\.\w)", C.ID, 0.6,
                  accept=lambda m: sum(c.isdigit() for c in m.group()) >= 6)
DIGIT_GROUPS = rule(r"(?<![\w.-])\d{4} \d{4} \d{4}(?: \d{4})?(?![\w-]|\.\d)", C.ID, 0.6)  # card-like numbers
VIN = rule(r"(?<![\w-])(?=[A-HJ-NPR-Z0-9]{17}(?![\w-]))(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-HJ-NPR-Z0-9]{17}", C.ID)

_OLD = r"(?:9\d|1[0-4]\d)"  # ages over 89 (to 149)
_UNITS_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_OLD_WORDS = (rf"(?:ninety(?:[- ]{_UNITS_WORDS})?|(?:one|a)\s+hundred(?:\s+(?:and\s+)?(?:{_UNITS_WORDS}|ten|eleven|twelve))?)")
_OLD_ANY = rf"(?:{_OLD}|(?i:{_OLD_WORDS}))"
_YEARS_AFTER = r"(?=\s*-?\s*(?i:years?|yrs?|y\.?\s?o\.?|y/o|yo|year-old|yr-old)\b)"
_AGE_BEFORE = (r"(?i:\b(?:age[d:]?|ages|at\s+age|(?:who|she|he|patient|pt)\s+(?:is|was)(?:\s+now)?|turned|turns|"
               r"turning|is\s+now|age\s+of)\s*(?:of\s*)?"
               # "Patient Eudora Pettigrew is 102", "Mrs. Okafor was 95": a titled or announced name, not a lab ("Chloride is 102")
               r"|\b(?i:patient|pt|mr|mrs|ms|miss)\.?\s+(?:[A-Z][\w'’-]+\s+){1,3}(?:is|was)\s+)")
AGES = (
    rule(rf"(?<![\w.])(?P<phi>{_OLD_ANY}){_YEARS_AFTER}", C.AGE),
    rule(rf"(?<![\w.-]){_OLD_ANY}(?![\w-]|\.\d|/|\s*(?:%|mg|kg|lbs?|bpm|beats|mm|cm|percent|minutes|min\b|mmHg))", C.AGE, before=_AGE_BEFORE),
    rule(rf"(?<![\w.]){_OLD}'?s\b", C.AGE, before=r"(?i:\bin\s+(?:his|her|their|the)\s+(?:late\s+|early\s+|mid-?\s*)?)"),
    rule(r"(?<![\w.])(?i:ninet(?:ies))\b", C.AGE, before=r"(?i:\bin\s+(?:his|her|their|the)\s+(?:late\s+|early\s+|mid-?\s*)?)"),
    rule(rf"(?<![\w.])(?P<phi>{_OLD})(?=\s?(?:yo|y|M|F)\b)", C.AGE),
    # "Faith Morningstar, ninety-one, from ...", "Smith (97) admitted": an age in apposition to a name
    rule(rf"(?<![\w.-])(?P<phi>{_OLD_ANY})(?=\s*[,)]\s*[a-z]|\s*\)\s)", C.AGE, 0.7, before=r"[^\W\d_]\s*(?:,\s*|\()"),
)


def number_recognizer() -> RegexRecognizer:
    return RegexRecognizer("DeidNumberRecognizer", [PHONE, INTL_PHONE, TRUNK_PHONE, SPOKEN_PHONE, PHONE7, PHONE7_BARE, PHONE_AFTER_WORD, PHONE_BEFORE_LABEL, SSN, CONTEXT_ID, SPACED_CONTEXT_ID,
                                                    LONG_NUMBER, LETTERS_DIGITS, MBI, ALNUM_ID, GROUPED_ID, DIGIT_GROUPS, VIN, *AGES])

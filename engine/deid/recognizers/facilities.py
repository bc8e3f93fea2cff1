"""Facilities and employers: hospitals, clinics, nursing homes, schools, companies ("Mercy Ridge Community
Hospital", "Sunnyside Family Medicine", "Hartwell Plastics", "Delmar & Finch LLP"). Redacted as ADDRESS
(the i2b2 convention files them under LOCATION): a named facility places the patient as a town does.

Two rules: a capitalised name ending in a facility or company word, when at least one word of it is not a
generic word ("Internal Medicine Clinic", "Cancer Center" stay); and a capitalised name after an employment
or care cue ("works at", "employed by", "retired from", "transferred from", "admitted to")."""

from __future__ import annotations

import re

from engine.deid._presidio import EntityRecognizer, RecognizerResult
from engine.deid.lexicons import Lexicons, key, load_lexicons
from engine.deid.recognizers.names import STOP
from schemas.phi import PhiCategory as C

HEADS = (
    r"Hospitals?|Medical\s+Cent(?:er|re)|Health\s+Cent(?:er|re)|Cent(?:er|re)|Clinics?|Institute|Associates|Practice|"
    r"Medicine|Medical\s+Group|Health\s+System|Healthcare|Health|Nursing(?:\s+(?:Home|Center|Facility))?|Living|Home|"
    r"Hospice|Rehabilitation|Rehab|Care|Villa|Manor|Pharmacy|Drugs?|School|Academy|University|College|Memorial|Regional|"
    r"Dental|Cardiology|Orthopa?edics|Pediatrics|Dermatology|Oncology|Imaging|Radiology|Laboratories|Labs|Mills?|"
    r"Plastics|Industries|Manufacturing|Foods|Farms?|Ranch|Motors|Construction|Logistics|Systems|Solutions|Services|"
    r"Partners|Group|Foundation|Company|Co\.?|Corp\.?|Corporation|Inc\.?|LLC|LLP|Ltd\.?|PLC|GmbH|S\.A\.|Bank|Church|Shelter|"
    r"Infirmary|Lodge|Parish|Elementary|Apothecary|Chemist|Spine|Pain|Wellness|Physiotherapy|Paper"
)
# A name of two or more capitalised words before a lower-case facility word: "the Kings Langley clinic", "Our Lady of
# the Lakes parish" (one word before it is too often a service: "Memory clinic", "Wound clinic")
_LOWER_HEAD = re.compile(r"(?<![\w'’.-])(?P<name>[A-Z][\w'’-]*(?:\s+(?:[A-Z][\w'’-]*|of|the|de|la|and|&)){1,5})"
                         r"\s+(?:hospital|clinic|infirmary|parish|church|hospice|lodge|practice|surgery|nursing\s+home)(?![\w-])")
_WORD = r"(?:St\.|Mt\.|[A-Z][\w'’-]*|&|and|of|the|de|la)"
FACILITY = re.compile(rf"(?<![\w'’.-])(?P<name>(?:[A-Z][\w'’-]*|St\.|Mt\.)(?:\s+{_WORD}){{0,5}}?(?:\s+(?:&\s+|and\s+)?(?:{HEADS})(?![\w-]))+)")
_CUE = re.compile(
    r"(?i:\b(?:works?|worked|working|employed|employee|retired|job|volunteers?|teaches|taught|attends?|studies|"
    r"transferred|transfer|admitted|discharged|resides|residing|lives|living|placed|going|sent|referred|followed)\s+"
    r"(?:\w+\s+){0,3}?(?:at|for|by|from|to|with|in)|employer\s*:?|works\s+for|company\s*:?)\s+$"
)
# Employment cues after which any capitalised name is an employer, even one word with no company word ("works at
# Garmin", "Occupation: warehouse associate, Nordstrom", "Formerly employed at DTE Energy", "... at The Happy Bear")
_EMPLOYER_CUE = re.compile(
    r"(?i:\b(?:works?|worked|working|employed|employee|job|student|studying|enrolled)\s+(?:\w+\s+){0,3}?(?:at|for|by|with)|\bemployer\s*:?"
    r"|\boccupation\s*:?\s*(?:[a-z][\w/-]*\s+){0,3}?[a-z][\w/-]*\s*,)\s+$"
)
_EMPLOYER_LABEL = re.compile(r"\b(?:EMPLOYER|Employer|employer)\s*:?[ \t]+")
_NOT_EMPLOYER = frozenset("retired unemployed disabled homemaker student none self unknown home n/a".split())
_CUED_NAME = re.compile(r"(?<![\w'’.-])(?:[A-Z][\w'’-]*|St\.|Mt\.)(?:\s+(?:&\s+)?[A-Z][\w'’-]*|\s+(?:of|and|OF|AND)\s+[A-Z][\w'’-]*){0,5}"
                        r"(?:,?\s+(?:Inc|LLC|LLP|Ltd|Co|Corp|PLC)\.?)?")
_GENERIC = frozenset(
    """st mt saint mount the of and de la general community regional memorial county city university medical health
    care center centre clinic hospital institute family internal medicine urgent emergency department primary
    specialty surgery surgical children women womens childrens heart cancer eye dental skilled nursing home living
    assisted senior rehab rehabilitation behavioral mental services service group practice associates physicians
    veterans affairs va national state public private home new north south east west central division
    department section unit program office ward wing lab labs laboratory laboratories disease diseases clinics
    hospitals outpatient inpatient ambulatory pediatric pediatrics cardiology oncology neurology radiology imaging
    orthopedics orthopaedics dermatology pharmacy school college academy high middle elementary medical""".split()
)


_HEAD_WORD = re.compile(rf"(?i:{HEADS})")


def specific(words: list[str], lex: Lexicons) -> bool:
    """At least one word that is not generic, a stop word or a clinical word ("Cancer Center" stays)."""
    for w in words:
        k = key(w).rstrip(".").removesuffix("'s").removesuffix("’s")
        if not k or k in _GENERIC or k in STOP or k in lex.clinical or k in lex.clinical_if_head:
            continue
        if k in lex.clinical_words and not (k in lex.first_names or k in lex.last_names):
            continue
        if w.isupper() and len(w) <= 3:  # "ICU", "VA"
            continue
        return True
    return False


def named_facility(words: list[str], lex: Lexicons) -> bool:
    """A facility word after at least one specific word, in any case ("sunset lodge", "pleasant hill office";
    not "the clinic", "wound clinic", "nursing home")."""
    return len(words) >= 2 and bool(_HEAD_WORD.fullmatch(words[-1])) and specific(words[:-1], lex)


class FacilityRecognizer(EntityRecognizer):
    def __init__(self, lexicons: Lexicons | None = None) -> None:
        self.lex = lexicons or load_lexicons()
        super().__init__(supported_entities=[C.ADDRESS.value], name="DeidFacilityRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities=None, nlp_artifacts=None) -> list[RecognizerResult]:
        out = []
        for m in FACILITY.finditer(text):
            name = m.group("name")
            words = name.split()
            # drop leading sentence words ("Transferred from Mercy Ridge Hospital" is matched from "Mercy")
            start = m.start("name")
            while len(words) > 2 and key(words[0]) in STOP and key(words[0]) not in ("st", "mt"):  # "St Brigid's" stays whole
                start += len(words[0]) + 1
                words = words[1:]
            if specific(words[:-1], self.lex):
                out.append(RecognizerResult(C.ADDRESS.value, start, m.end("name"), 0.75))
        for m in _LOWER_HEAD.finditer(text):
            words = m.group("name").split()
            while len(words) > 2 and key(words[0]) in STOP:
                words = words[1:]
            capitals = [w for w in words if w[:1].isupper()]
            if len(capitals) >= 2 and words[-1][:1].isupper() and key(words[0]) not in STOP and specific(words, self.lex):
                out.append(RecognizerResult(C.ADDRESS.value, m.end("name") - len(" ".join(words)), m.end(), 0.7))
        for m in _EMPLOYER_LABEL.finditer(text):  # "EMPLOYER IRVING PULP AND PAPER": the label joins the capitals
            name = _CUED_NAME.match(text, m.end())
            first = key(name.group().split()[0]) if name else ""
            if name and first not in _NOT_EMPLOYER and first not in STOP:
                out.append(RecognizerResult(C.ADDRESS.value, name.start(), name.end(), 0.7))
        for m in _CUED_NAME.finditer(text):
            before = text[max(0, m.start() - 64) : m.start()]
            words = m.group().split()
            if _EMPLOYER_CUE.search(before):
                if key(words[-1]).rstrip(".") in STOP and len(words) == 1 or key(words[0]) in _NOT_EMPLOYER:
                    continue
            elif not _CUE.search(before[-48:]) or key(words[0]) in STOP or not specific(words, self.lex):
                continue
            out.append(RecognizerResult(C.ADDRESS.value, m.start(), m.end(), 0.7))
        return out

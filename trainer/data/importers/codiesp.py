"""CodiEsp (CLEF eHealth 2020) as published: ``{split}/text_files_en/*.txt`` (or ``text_files/`` for the
Spanish originals) and diagnosis codes in ``{split}/{split}D.tsv`` (``docID<TAB>code``, lower case with
dots). Case reports have no patients or dates: the patient id is the note id."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterator

from schemas.notes import NoteRecord
from trainer.data.importers import DataError, ImportReport, MissingDataError, clean_code, read_text_file, where

SPLITS = ("train", "dev", "test", "background")
TEXT_DIRS = {"en": "text_files_en", "es": "text_files"}


def available_splits(root: Path) -> list[str]:
    return [s for s in SPLITS if (Path(root) / s).is_dir()]


def read_codes(tsv: Path) -> dict[str, list[str]]:
    """``docID<TAB>code`` lines -> codes per document, in file order, duplicates removed."""
    codes: dict[str, list[str]] = defaultdict(list)
    try:
        lines = tsv.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{tsv}: cannot read ({type(err).__name__})") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataError(f"{where(tsv, number)}: expected 'docID<TAB>code', found {len(fields)} field(s)")
        code = clean_code(fields[1], tsv, number)
        if code not in codes[fields[0].strip()]:
            codes[fields[0].strip()].append(code)
    return codes


def read_codiesp(root: Path, split: str, language: str = "en", report: ImportReport | None = None) -> Iterator[NoteRecord]:
    """Notes of one split. Every coded document must have a text file (else DataError); empty text files
    are skipped and counted. ``background`` has no codes."""
    if split not in SPLITS:
        raise DataError(f"unknown CodiEsp split {split!r}; expected one of {SPLITS}")
    if language not in TEXT_DIRS:
        raise DataError(f"unknown CodiEsp language {language!r}; expected 'en' or 'es'")
    report = report if report is not None else ImportReport(f"codiesp/{split}")
    text_dir = Path(root) / split / TEXT_DIRS[language]
    if not text_dir.is_dir():
        raise MissingDataError(f"{text_dir}: no such directory (is {root} a CodiEsp directory as published?)")
    tsv = Path(root) / split / f"{split}D.tsv"
    if split != "background" and not tsv.is_file():
        raise MissingDataError(f"{tsv}: diagnosis code file missing")
    codes = read_codes(tsv) if split != "background" else {}
    files = sorted(text_dir.glob("*.txt"))
    missing = sorted(set(codes) - {f.stem for f in files})
    if missing:
        raise DataError(f"{tsv}: {len(missing)} coded document(s) have no text file in {text_dir}, e.g. {missing[0]}")
    for path in files:
        text = read_text_file(path)
        if not text.strip():
            report.skip("empty text file")
            continue
        report.notes += 1
        yield NoteRecord(
            note_id=path.stem,
            patient_id=path.stem,
            text=text,
            codes=tuple(codes.get(path.stem, ())),
            note_type="case report",
            source="codiesp",
        )

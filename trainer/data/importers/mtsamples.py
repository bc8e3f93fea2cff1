"""MTSamples transcriptions (CSV: note_id, description, medical_specialty, sample_name, transcription,
keywords). No ICD labels. Many transcriptions repeat under several specialties: keep the first of each
text (compared after lower-casing and collapsing white space)."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Iterator

from schemas.cli import default_data_dir
from schemas.notes import NoteRecord
from trainer.data.importers import DataError, ImportReport, MissingDataError, where

REQUIRED_COLUMNS = ("note_id", "medical_specialty", "transcription")


def _dedup_key(text: str) -> str:
    return " ".join(text.lower().split())


def read_mtsamples(path: Path, report: ImportReport | None = None) -> Iterator[NoteRecord]:
    report = report if report is not None else ImportReport("mtsamples")
    path = Path(path)
    seen: set[str] = set()
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{where(path, 1)}: header lacks column(s) {missing}")
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    raise DataError(f"{where(path, line)}: row does not have the header's {len(reader.fieldnames)} fields")
                text = row["transcription"]
                if not text.strip():
                    report.skip("no transcription")
                    continue
                key = _dedup_key(text)
                if key in seen:
                    report.skip("duplicate text")
                    continue
                seen.add(key)
                report.notes += 1
                note_id = f"mtsamples-{row['note_id'].strip() or line}"
                yield NoteRecord(
                    note_id=note_id,
                    patient_id=note_id,
                    text=text,
                    note_type=row["medical_specialty"].strip() or None,
                    source="mtsamples",
                )
    except FileNotFoundError as err:
        raise MissingDataError(f"{path}: no such file") from err
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read as UTF-8 CSV ({type(err).__name__})") from err


def mtsamples_texts(csv_path: Path | None = None, *, min_chars: int = 0, sample: int | None = None, seed: int = 0) -> list[str]:
    """The distinct transcriptions of at least ``min_chars`` characters in file order, or a seeded random
    ``sample`` of them (their length distribution, not the first n). Default file: the data directory's
    ``mtsamples/mtsamples.csv`` ($ICDCODER_DATA_DIR)."""
    path = csv_path if csv_path is not None else default_data_dir() / "mtsamples" / "mtsamples.csv"
    texts = [record.text for record in read_mtsamples(path) if len(record.text) >= min_chars]
    return texts if sample is None else random.Random(seed).sample(texts, min(sample, len(texts)))

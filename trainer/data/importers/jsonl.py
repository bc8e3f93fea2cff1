"""The project's own JSON lines: one ``NoteRecord`` per line (what ``prepare`` writes), or the
``{"record": ..., "phi": [...]}`` lines that ``trainer synthetic`` writes. A line that is not valid JSON or
not a valid record (e.g. a note without text) is an error naming file and line: this format is ours, so a
bad line means a broken file, not data to skip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from schemas.notes import NoteRecord
from trainer.data.importers import DataError, ImportReport, MissingDataError, clean_code, where


def describe_validation_error(err: ValidationError) -> str:
    """Field and message only: pydantic's default text echoes the input, which may be PHI."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in err.errors()[:3])


def read_jsonl(path: Path, report: ImportReport | None = None) -> Iterator[NoteRecord]:
    report = report if report is not None else ImportReport("jsonl")
    path = Path(path)
    try:
        f = path.open("rb")  # decoded per line, so an encoding error names its line
    except OSError as err:
        kind = MissingDataError if isinstance(err, FileNotFoundError) else DataError
        raise kind(f"{path}: cannot open ({err.strerror})") from err
    with f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{where(path, number)}: not UTF-8 text (byte {err.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where(path, number)}: malformed JSON ({err.msg} at column {err.colno})") from None
            if isinstance(obj, dict) and "record" in obj and "phi" in obj:
                obj = obj["record"]
            try:
                record = NoteRecord.model_validate(obj)
            except ValidationError as err:
                raise DataError(f"{where(path, number)}: not a note record ({describe_validation_error(err)})") from None
            codes = tuple(dict.fromkeys(clean_code(c, path, number) for c in record.codes))
            report.notes += 1
            yield record.model_copy(update={"codes": codes, "source": record.source or "jsonl"})

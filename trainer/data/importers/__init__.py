"""Importers: each turns one source format into ``NoteRecord``s and counts what it skipped and why.

Malformed input that means the file is not what it claims to be (unreadable file, bad JSON or TSV line,
a code that is not even shaped like an ICD-10-CM code) raises ``DataError`` naming the file and line.
Input that a real feed legitimately contains (a note without text, a duplicate, a resource of another
type) is skipped and counted in ``ImportReport.skipped`` by reason; callers print the counts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from schemas.cli import UserError
from schemas.icd10cm import normalise

# Letter, digit, digit-or-letter, then up to 4 more characters: the shape of any ICD-10-CM code.
_CODE_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


class DataError(UserError, ValueError):
    """Input data that cannot be read as documented; the message names the file (and line).
    A ``UserError`` for the CLIs, and a ``ValueError`` for callers that catch that."""


class MissingDataError(DataError, FileNotFoundError):
    """A file the reader needs is absent (a dataset split, a label space, an input file)."""


def where(path: Path, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


@dataclass
class ImportReport:
    """What one importer read: notes produced and notes skipped, by reason."""

    source: str
    notes: int = 0
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        return f"{self.source}: {self.notes} notes read; skipped: {skipped}"


def clean_code(raw: str, path: Path, line: int | None = None) -> str:
    """Normalise a code as written in a file; raise DataError if it is not shaped like ICD-10-CM at all
    (a shifted column, a header). Well-shaped codes absent from the code set are mapped later, in prepare."""
    code = normalise(raw)
    if not _CODE_SHAPE.match(code):
        raise DataError(f"{where(path, line)}: {raw.strip()[:20]!r} is not an ICD-10-CM code")
    return code


def read_text_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start})") from err

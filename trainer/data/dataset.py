"""Read a prepared dataset directory (written by ``trainer prepare``).

Errors are ``DataError`` (a ``UserError`` and a ``ValueError``); a missing file is ``MissingDataError``,
also a ``FileNotFoundError``."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from schemas.labels import LabelSpace
from schemas.notes import SPLITS, NoteRecord
from trainer.data.importers import DataError, MissingDataError
from trainer.data.importers.jsonl import describe_validation_error, read_jsonl

LABELS_FILE = "labels.json"


def split_path(directory: str | Path, split: str) -> Path:
    return Path(directory) / f"{split}.jsonl"


def evaluation_split(directory: str | Path) -> str:
    """The split results are reported on: ``test``, or ``dev`` where the dataset has no test split (``trainer
    prepare`` keeps CodiEsp's given train/dev and writes only the splits that exist)."""
    return "test" if split_path(directory, "test").is_file() else "dev"


def load_split(directory: str | Path, split: str) -> list[NoteRecord]:
    """All records of ``train``/``dev``/``test`` (or ``unlabelled``); DataError if missing or empty."""
    if split not in (*SPLITS, "unlabelled"):
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS} or 'unlabelled'")
    path = split_path(directory, split)
    if not path.is_file():
        present = sorted(p.stem for p in Path(directory).glob("*.jsonl")) if Path(directory).is_dir() else []
        raise MissingDataError(f"{path}: no {split} split (present: {present or 'none'}; run `python -m trainer prepare`)")
    records = list(read_jsonl(path))
    if not records:
        raise DataError(f"{path}: the {split} split is empty")
    return records


def load_label_space(directory: str | Path) -> LabelSpace:
    path = Path(directory) / LABELS_FILE
    if not path.is_file():
        raise MissingDataError(f"{path}: no label space (run `python -m trainer prepare`; an unlabelled-only dataset has none)")
    try:
        return LabelSpace.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise DataError(f"{path}: not a label space ({describe_validation_error(err)})") from None

"""Read a prepared dataset directory (written by ``trainer prepare``).

Errors are ``DataError`` (a ``UserError`` and a ``ValueError``); a missing file is ``MissingDataError``,
also a ``FileNotFoundError``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from schemas.labels import LabelSpace
from schemas.notes import SPLITS, NoteRecord
from trainer.data.importers import DataError, MissingDataError
from trainer.data.importers.jsonl import describe_validation_error, read_jsonl
from trainer.data.split import patient_key

LABELS_FILE = "labels.json"


def split_path(directory: str | Path, split: str) -> Path:
    return Path(directory) / f"{split}.jsonl"


def evaluation_split(directory: str | Path) -> str:
    """The split results are reported on: ``test``, or ``dev`` where the dataset has no test split (``trainer
    prepare`` keeps CodiEsp's given train/dev and writes only the splits that exist)."""
    return "test" if split_path(directory, "test").is_file() else "dev"


SELECTION_SHARE = 0.2  # share of train (by patient) that selects when the dataset has no test split
SELECTION_SEED = 0


@dataclass(frozen=True)
class SelectionSplit:
    """Which labelled notes train a model and which select it (stopping step, thresholds, fusion weights,
    hyper-parameters). With a test split, dev selects and test reports. Without one (CodiEsp as published:
    train and dev only), a slice of train selects, so dev stays a true held-out report split."""

    train: list[NoteRecord]
    select: list[NoteRecord]
    name: str  # "dev" or "train-slice"
    description: str  # said in summaries

    @property
    def all_training(self) -> list[NoteRecord]:
        """Every labelled note a served model may be refit on once selection is done (never the report split)."""
        return self.train + self.select if self.name == "train-slice" else self.train


def in_selection_slice(record: NoteRecord, share: float = SELECTION_SHARE, seed: int = SELECTION_SEED) -> bool:
    """Stable by patient (a patient's notes stay together) and independent of the other notes."""
    digest = hashlib.sha256(f"selection\x00{seed}\x00{patient_key(record)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def selection_split(directory: str | Path, share: float = SELECTION_SHARE, seed: int = SELECTION_SEED) -> SelectionSplit:
    """Train/selection notes of a prepared dataset (see ``SelectionSplit``)."""
    train = load_split(directory, "train")
    if split_path(directory, "test").is_file():
        return SelectionSplit(train, load_split(directory, "dev"), "dev", "selection on dev, report on test")
    if not 0 < share < 1:
        raise DataError(f"the selection share must be in (0, 1) (got {share})")
    select = [r for r in train if in_selection_slice(r, share, seed)]
    rest = [r for r in train if not in_selection_slice(r, share, seed)]
    if not select or not rest:
        raise DataError(f"{directory}: {len(train)} train notes are too few to keep a {share:.0%} selection slice")
    return SelectionSplit(rest, select, "train-slice",
                          f"selection on {len(select)} train notes ({share:.0%} of train by patient hash, seed {seed}); "
                          f"trained on the other {len(rest)}; dev is never used for selection")


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

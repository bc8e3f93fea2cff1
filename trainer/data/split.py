"""Patient-level split 70/10/20 (train/dev/test), seeded and deterministic: a note's split is a hash of its
patient id and the seed, so a patient's notes never straddle two splits and adding notes never moves a
patient. Sources that come with splits (CodiEsp train/dev) keep them."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Iterable

from schemas.notes import NoteRecord

FRACTIONS = (("train", 0.7), ("dev", 0.1), ("test", 0.2))


def patient_key(record: NoteRecord) -> str:
    """The unit of splitting: the patient, or the note itself when the source has no patients."""
    return record.patient_id or f"note:{record.note_id}"


def split_of(key: str, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, fraction in FRACTIONS:
        cumulative += fraction
        if u < cumulative:
            return name
    return FRACTIONS[-1][0]


def check_no_leakage(splits: dict[str, Iterable[NoteRecord]]) -> None:
    """Raise ValueError naming a patient found in two splits (the id is a pseudonymous key, not PHI)."""
    seen: dict[str, str] = {}
    for name, records in splits.items():
        for r in records:
            key = patient_key(r)
            if seen.setdefault(key, name) != name:
                raise ValueError(f"patient {key!r} is in both {seen[key]} and {name}")


def assign_splits(records: Iterable[tuple[NoteRecord, str | None]], seed: int) -> dict[str, list[NoteRecord]]:
    """(record, given split or None) -> records per split; given splits are kept, the rest hashed."""
    out: dict[str, list[NoteRecord]] = defaultdict(list)
    for record, given in records:
        out[given or split_of(patient_key(record), seed)].append(record)
    result = {name: out[name] for name, _ in FRACTIONS if out.get(name)}
    check_no_leakage(result)
    return result

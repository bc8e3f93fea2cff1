"""The note record used by training and evaluation (one JSON object per line in a dataset split)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator


class NoteRecord(BaseModel):
    """One clinical note with its ICD-10-CM codes (normalised: upper case, with dot, e.g. ``I10``, ``E11.9``).

    ``codes`` may be empty: notes without in-scope codes are kept as all-negative examples (paper 4.1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    note_id: str = Field(min_length=1)
    patient_id: str | None = None
    encounter_id: str | None = None
    date: dt.date | None = None
    note_type: str | None = None
    text: str
    codes: tuple[str, ...] = ()
    source: str | None = None  # importer that produced it, e.g. "codiesp", "mtsamples", "fhir"

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("note has no text")
        return v


SPLITS = ("train", "dev", "test")

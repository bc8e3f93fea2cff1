"""The label space: the ordered ICD-10-CM codes a model predicts, with their release and descriptions."""

from __future__ import annotations

from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LabelSpace(BaseModel):
    """Column j of every score matrix is ``codes[j]``. Saved with datasets, checkpoints and exports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: tuple[str, ...] = Field(min_length=1)
    descriptions: tuple[str, ...]
    code_set_release: str  # e.g. "ICD-10-CM 2026"
    min_train_positives: int | None = None  # the frequency cut that chose these codes, if any

    @model_validator(mode="after")
    def _consistent(self) -> "LabelSpace":
        if len(self.descriptions) != len(self.codes):
            raise ValueError(f"{len(self.codes)} codes but {len(self.descriptions)} descriptions")
        if len(set(self.codes)) != len(self.codes):
            dupes = sorted({c for c in self.codes if self.codes.count(c) > 1})
            raise ValueError(f"duplicate codes in label space: {dupes[:10]}")
        missing = [c for c, d in zip(self.codes, self.descriptions) if not d.strip()]
        if missing:
            raise ValueError(f"codes without descriptions: {missing[:10]}")
        return self

    @cached_property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}

    def __len__(self) -> int:
        return len(self.codes)

    def description(self, code: str) -> str:
        return self.descriptions[self.index[code]]

"""PHI categories and the typed placeholders that replace them (HIPAA Safe Harbor identifiers that occur
in clinical text). Shared by the de-identifier (engine), the synthetic-note generator and the vocabulary
builder (trainer), which keeps every placeholder as one token so it is never split."""

from __future__ import annotations

from enum import Enum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

# The de-identifier's settings (engine ``DeidConfig.model``, ``ICDCODER_ENGINE_DEID_MODEL``, the CLIs): the rules alone,
# or the rules with learned recognisers beside them (union): the spaCy NER ("ner"), the fine-tuned MiniLM ("transformer").
DeidModel = Literal["rules+ner", "rules", "rules+transformer", "rules+ner+transformer"]
DEID_MODELS: tuple[str, ...] = get_args(DeidModel)


class PhiCategory(str, Enum):
    NAME = "NAME"  # patients, relatives, clinicians; with or without titles; initials; "Last, First"
    DATE = "DATE"  # every date element except the year
    AGE = "AGE"  # ages over 89
    PHONE = "PHONE"  # phone and fax numbers
    EMAIL = "EMAIL"
    ID = "ID"  # SSN, MRN, account, health-plan, licence, vehicle, device and other ID numbers
    ADDRESS = "ADDRESS"  # street addresses, cities, ZIP codes
    URL = "URL"
    IP = "IP"

    @property
    def placeholder(self) -> str:
        return f"[{self.value}]"


PLACEHOLDERS: tuple[str, ...] = tuple(c.placeholder for c in PhiCategory)


class PhiSpan(BaseModel):
    """A stretch of text ``[start, end)`` that is PHI of a category (gold span or detection)."""

    model_config = ConfigDict(frozen=True)

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    category: PhiCategory

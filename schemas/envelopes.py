"""Message envelopes the engine writes and reads besides FHIR: audit records, worklist items, coder
decisions. FHIR resources themselves stay fhir.resources models and are not re-declared here.

None of these may carry PHI: text appears only de-identified (and only when configured), identifiers are
FHIR references the hospital already uses to route data, never names or free text.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceSpan(_Frozen):
    """A stretch of the ORIGINAL note text that supports a code: character offsets and attention weight."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    weight: float


class Suggestion(_Frozen):
    code: str
    display: str
    score: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    evidence: tuple[EvidenceSpan, ...] = ()


class ModelRef(_Frozen):
    name: str
    version: int
    code_set_release: str


class SourcePosition(_Frozen):
    topic: str
    partition: int
    offset: int


class AuditRecord(_Frozen):
    """One per processed note, on the audit topic; enough to replay the note through another model."""

    schema_version: Literal[1] = 1
    document_reference: str  # "DocumentReference/<id>"
    document_version: str | None = None
    subject: str | None = None  # "Patient/<id>" reference, as routed by the EHR
    encounter: str | None = None
    source: SourcePosition | None = None
    model: ModelRef
    threshold_global: float
    deid_text: str | None = None  # present only when the engine is configured to keep it
    deid_text_sha256: str
    scores: dict[str, float]  # every code scoring above the audit floor
    suggestions: tuple[Suggestion, ...]
    timings_ms: dict[str, float] = {}
    processed_at: dt.datetime
    # "retracted": the document turned out entered-in-error; ``retracted_conditions`` are the identifiers of the
    # Conditions withdrawn (set to entered-in-error). Earlier "coded" records of the document stay on the topic.
    event: Literal["coded", "retracted"] = "coded"
    retracted_conditions: tuple[str, ...] = ()


class NoteSuggestions(_Frozen):
    """The suggestions of one note inside a worklist item."""

    document_reference: str
    document_version: str | None = None
    suggestions: tuple[Suggestion, ...]
    processed_at: dt.datetime
    model: ModelRef | None = None  # the version that coded this note (None in items stored before it was kept)


class WorklistItem(_Frozen):
    """One encounter awaiting a coder: codes with the maximum score over its notes."""

    item_id: str  # the encounter (or patient) reference
    subject: str | None = None
    encounter: str | None = None
    model: ModelRef
    codes: dict[str, float]  # code -> max score over the encounter's notes
    notes: tuple[NoteSuggestions, ...]
    status: Literal["queued", "claimed", "completed"] = "queued"
    claimed_by: str | None = None
    lease_expires_at: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class CodeDecision(_Frozen):
    code: str
    action: Literal["accept", "reject", "add"]


class CoderDecision(_Frozen):
    """What a coder decided about one worklist item; published to the feedback topic as FHIR too."""

    item_id: str
    coder: str  # the coder's user id in the hospital directory (a workforce identifier, not a patient's)
    decisions: tuple[CodeDecision, ...]
    model: ModelRef
    decided_at: dt.datetime

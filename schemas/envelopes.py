"""Message envelopes the engine writes and reads besides FHIR: audit records, worklist items, coder
decisions. FHIR resources themselves stay fhir.resources models and are not re-declared here.

None of these may carry PHI: text appears only de-identified (and only when configured), identifiers are
FHIR references the hospital already uses to route data, never names or free text.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.context import Context


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceSpan(_Frozen):
    """A stretch of the ORIGINAL note text that supports a code: character offsets and attention weight."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    weight: float
    # Evidence context (engine.pipeline.context; None: not classified). ``cue`` is the rule's canonical phrase
    # ("no evidence of", "section: family history"), never note text; cue_start/cue_end locate the words that
    # matched in the same text as start/end, so a display can quote "no evidence of pneumonia".
    context: Context | None = None
    cue: str | None = None
    cue_start: int | None = Field(None, ge=0)
    cue_end: int | None = Field(None, ge=0)


class Suggestion(_Frozen):
    code: str
    display: str
    score: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    evidence: tuple[EvidenceSpan, ...] = ()
    context: Context | None = None  # the suggestion's context from its evidence (schemas.context; None: not classified)
    model_score: float | None = Field(None, ge=0, le=1)  # the model's score when the context policy changed ``score``
    policy: Literal["demoted", "suppressed"] | None = None  # what the context policy did (None: nothing)


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
    withheld: tuple[Suggestion, ...] = ()  # suggestions the context policy suppressed (model score, evidence context)
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
    # where the engine read the note (input topic, partition, offset): the workbench re-reads its text from
    # there at display time, so the worklist never holds note text (None: read from a file, or stored before)
    source: SourcePosition | None = None


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


# Why a coder decided as they did: a fixed list, never free text (free text could carry PHI into Redis and
# onto the feedback topic).
DecisionReason = Literal["not-documented", "negated", "uncertain", "historical", "family-history", "more-specific-code",
                         "missed-by-model", "other"]


class CodeDecision(_Frozen):
    code: str
    action: Literal["accept", "reject", "add"]
    reason: DecisionReason | None = None


class CoderDecision(_Frozen):
    """What a coder decided about one worklist item; published to the feedback topic as FHIR too."""

    item_id: str
    coder: str  # the coder's user id in the hospital directory (a workforce identifier, not a patient's)
    decisions: tuple[CodeDecision, ...]
    model: ModelRef
    decided_at: dt.datetime

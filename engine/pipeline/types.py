"""What flows between pipeline stages. Plain frozen dataclasses; no I/O here.

PHI: ``ParsedNote.text`` and ``ProcessedNote.deid`` hold note text. They are never logged, put in metrics,
exception messages or dead-letter headers. Error messages name the problem and the place (topic,
partition, offset, field), never the content.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from schemas.envelopes import ModelRef, SourcePosition, Suggestion


@dataclass(frozen=True)
class SourceRecord:
    """One message as read from the input topic (or a file line for ``engine code``)."""

    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    position: SourcePosition | None = None  # None when read from a file
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class ParsedNote:
    """A validated DocumentReference reduced to what the pipeline needs."""

    document_id: str
    document_version: str | None  # meta.versionId
    subject: str | None  # "Patient/123"
    encounter: str | None  # "Encounter/456"
    date: dt.datetime | None
    note_type: str | None  # type.coding[0].code (e.g. a LOINC code) if present
    text: str  # the ORIGINAL note text (PHI); empty for a note that is not coded (status, below)
    fhir_version: str  # "R4" or "R5"
    # DocumentReference.status: current | superseded | entered-in-error (engine/pipeline/status.py), whatever the
    # source format (an HL7 v2 MDM^T11 cancel is entered-in-error).
    status: str = "current"
    doc_status: str | None = None  # DocumentReference.docStatus: "preliminary" | "final" | ... (HL7 TXA-17)
    source_format: str = "fhir"  # "fhir" or "hl7v2": where the identifiers came from (docs/hl7.md)
    parent_document: str | None = None  # the document this one appends to or replaces (HL7 TXA-13); informational

    @property
    def reference(self) -> str:
        return f"DocumentReference/{self.document_id}"


@dataclass(frozen=True)
class ProcessedNote:
    """Everything the sinks need about one coded note."""

    note: ParsedNote
    source: SourcePosition | None
    deid_text: str  # de-identified text the model saw
    deid_text_sha256: str
    model: ModelRef
    thresholds_global: float
    scores: dict[str, float]  # every code above the audit floor
    suggestions: tuple[Suggestion, ...]  # evidence offsets point into the ORIGINAL text
    bundle_json: bytes  # the validated FHIR transaction Bundle, serialised deterministically
    output_key: bytes  # encounter (or patient) reference: keeps one encounter's output ordered
    processed_at: dt.datetime
    timings_ms: dict[str, float] = field(default_factory=dict)
    # "retract": an entered-in-error note; bundle_json withdraws what the document produced (status.py),
    # ``retracts`` names the withdrawn Conditions' identifiers; no scores, no suggestions, no text
    action: str = "code"
    retracts: tuple[str, ...] = ()
    withheld: tuple[Suggestion, ...] = ()  # suppressed by the context policy: audit only, never output


class Sink(Protocol):
    """Receives a batch of processed notes and returns only when every write is acknowledged."""

    def write(self, notes: Sequence[ProcessedNote]) -> None: ...

    def close(self) -> None: ...

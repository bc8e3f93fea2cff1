"""FHIR DocumentReference messages from note text (R4 or R5 shape), as an EHR would send them.

Used by the demo, the benchmarks and the tests to feed the engine. The text travels base64-encoded in
``content[0].attachment.data`` (a base64 STRING: fhir.resources would treat raw bytes as already-encoded
base64). Torch-free.
"""

from __future__ import annotations

import base64
from typing import Any

from schemas.notes import NoteRecord

LOINC = "http://loinc.org"
PROGRESS_NOTE = "11506-3"  # LOINC "Progress note"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def document_reference(
    text: str | None,
    doc_id: str = "doc-1",
    *,
    subject: str | None = "Patient/p-1",
    encounter: str | None = "Encounter/e-1",
    version_id: str | None = "1",
    date: str | None = "2026-03-04T10:20:30Z",
    fhir_version: str = "R4",
    content_type: str = "text/plain; charset=utf-8",
    charset: str = "utf-8",
    note_type: str | None = PROGRESS_NOTE,
    url: str | None = None,
) -> dict[str, Any]:
    """A DocumentReference as JSON-able data. ``text=None`` with ``url`` makes a URL-only attachment."""
    attachment: dict[str, Any] = {"contentType": content_type}
    if text is not None:
        attachment["data"] = b64(text.encode(charset))
    if url is not None:
        attachment["url"] = url
    doc: dict[str, Any] = {"resourceType": "DocumentReference", "id": doc_id, "status": "current", "content": [{"attachment": attachment}]}
    if version_id is not None:
        doc["meta"] = {"versionId": version_id}
    if subject is not None:
        doc["subject"] = {"reference": subject}
    if date is not None:
        doc["date"] = date
    if note_type is not None:
        doc["type"] = {"coding": [{"system": LOINC, "code": note_type}]}
    if encounter is not None:
        doc["context"] = [{"reference": encounter}] if fhir_version == "R5" else {"encounter": [{"reference": encounter}]}
    return doc


def from_note_record(record: NoteRecord, fhir_version: str = "R4") -> dict[str, Any]:
    """A DocumentReference for a training/synthetic note (ids become FHIR references)."""
    return document_reference(
        record.text,
        doc_id=fhir_id(record.note_id),
        subject=f"Patient/{fhir_id(record.patient_id)}" if record.patient_id else "Patient/unknown",
        encounter=f"Encounter/{fhir_id(record.encounter_id)}" if record.encounter_id else None,
        date=f"{record.date.isoformat()}T12:00:00Z" if record.date else None,
        fhir_version=fhir_version,
    )


def fhir_id(value: str) -> str:
    """FHIR ids allow [A-Za-z0-9-.]{1,64}."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in value)[:64]

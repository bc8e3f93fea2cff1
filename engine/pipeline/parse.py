"""Stage 1: message bytes -> a validated DocumentReference -> ``ParsedNote``.

R4 messages validate with ``fhir.resources.R4B`` (wire-compatible with R4 for DocumentReference), R5 with
the library's default classes. The note text comes from ``content[].attachment`` by the rules of
``schemas.fhir.attachment`` (shared with the trainer's FHIR importer). Errors are ``ProcessingError`` with a
stable reason; details name field paths, never values (PHI).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from engine.pipeline.parse_hl7 import looks_like_hl7, parse_hl7_message
from engine.pipeline.types import ParsedNote, SourceRecord
from schemas.errors import ProcessingError
from schemas.fhir.attachment import extract_text
from schemas.fhir.json_guard import load_json
from schemas.fhir.release import resource_class
from schemas.fhir.validation import error_locations

# Raw-message guard before JSON parsing: base64 grows text by 4/3 and UTF-8 takes up to 4 bytes a char.
_RAW_BYTES_PER_CHAR = 6
_RAW_OVERHEAD_BYTES = 64 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


def parse_note(record: SourceRecord, input_format: str = "fhir", fhir_version: str = "R4", max_note_chars: int = 200_000) -> ParsedNote:
    """Stage 1 by the configured input format (``ICDCODER_ENGINE_INPUT_FORMAT``): ``fhir``, ``hl7v2`` or ``auto``
    (ER7 starts with MSH, anything else is read as FHIR JSON)."""
    if input_format == "hl7v2" or (input_format == "auto" and looks_like_hl7(record.value)):
        return parse_hl7_message(record, fhir_version, max_note_chars)
    return parse_document_reference(record, fhir_version, max_note_chars)


def document_reference_class(fhir_version: str) -> type:
    """The fhir.resources DocumentReference class for a FHIR release ("R4" reads as R4B)."""
    return resource_class(fhir_version, "DocumentReference")


def parse_document_reference(record: SourceRecord, fhir_version: str = "R4", max_note_chars: int = 200_000) -> ParsedNote:
    """Validate one message as a FHIR DocumentReference and extract its text and routing fields."""
    if len(record.value) > max_note_chars * _RAW_BYTES_PER_CHAR + _RAW_OVERHEAD_BYTES:
        raise ProcessingError("too_large", f"message of {len(record.value)} bytes exceeds the limit for {max_note_chars} characters")
    obj = load_json(record.value)  # nesting depth checked before parsing: too_deep, never a RecursionError
    if not isinstance(obj, dict):
        raise ProcessingError("not_document_reference", f"top-level JSON is {type(obj).__name__}, not an object")
    resource_type = obj.get("resourceType")
    if resource_type != "DocumentReference":
        shown = resource_type if isinstance(resource_type, str) and _SAFE_NAME.match(resource_type) else "missing or not a name"
        raise ProcessingError("not_document_reference", f"resourceType is {shown}")

    doc = _validate(obj, fhir_version)
    if not doc.id:
        raise ProcessingError("invalid_resource", "id (missing: needed to reference the note)")
    status = getattr(doc, "status", None) or "current"
    if status != "current":  # not coded (engine/pipeline/status.py): its text is not needed, not even read
        return _note(doc, fhir_version, "", status)
    text = extract_text(doc.content or [])
    if len(text) > max_note_chars:
        raise ProcessingError("too_large", f"note text has {len(text)} characters, limit {max_note_chars}")
    if not text.strip():
        raise ProcessingError("no_text", "attachment text is empty")
    return _note(doc, fhir_version, text, status)


def _note(doc: Any, fhir_version: str, text: str, status: str) -> ParsedNote:
    return ParsedNote(
        document_id=doc.id,
        document_version=doc.meta.versionId if doc.meta else None,
        subject=doc.subject.reference if doc.subject else None,
        encounter=_encounter(doc, fhir_version),
        date=doc.date,
        note_type=_note_type(doc),
        text=text,
        fhir_version=fhir_version,
        status=status,
    )


def _validate(obj: dict[str, Any], fhir_version: str) -> Any:
    cls = document_reference_class(fhir_version)
    try:
        return cls.model_validate(obj)
    except ValidationError as err:
        errors = err.errors()
        if errors and all(e["type"] == "base64_decode" for e in errors):
            raise ProcessingError("bad_base64", error_locations(err)) from None
        raise ProcessingError("invalid_resource", error_locations(err)) from None


def _encounter(doc: Any, fhir_version: str) -> str | None:
    context = doc.context
    if not context:
        return None
    if fhir_version == "R4":  # R4/R4B: context.encounter[0]
        refs = context.encounter or []
    else:  # R5: context is a list of references (Appointment | Encounter | EpisodeOfCare)
        refs = context
    refs = [r.reference for r in refs if r.reference]
    return next((r for r in refs if r.startswith("Encounter/") or "/Encounter/" in r), refs[0] if refs else None)


def _note_type(doc: Any) -> str | None:
    if doc.type and doc.type.coding:
        return doc.type.coding[0].code
    return None



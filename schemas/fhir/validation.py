"""Validation errors of FHIR resources, described without their content: where validation failed and what kind
of failure, never the values (a note's fields are PHI). Used by the engine's dead letters and error records
and by the trainer's FHIR importer."""

from __future__ import annotations

import re

from pydantic import ValidationError

_ELEMENT_NAME = re.compile(r"^[a-z][A-Za-z0-9_]{0,63}$")  # FHIR element names are lowerCamelCase


def _location(error: dict) -> str:
    """A field path safe to publish: the sender chooses the keys of a JSON object, so a key not shaped like
    a FHIR element name (lowerCamelCase: "John Smith", "MRN 12345") is replaced by ``<key>``, never echoed."""
    return ".".join(str(p) if isinstance(p, int) or _ELEMENT_NAME.match(p) else "<key>" for p in error["loc"])


def error_locations(err: ValidationError, limit: int = 10) -> str:
    """Where validation failed and what kind of failure: ``loc.path (error_type)``. Never input values."""
    parts = [f"{_location(e) or '(resource)'} ({e['type']})" for e in err.errors()[:limit]]
    more = err.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

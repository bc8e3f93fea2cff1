"""FHIR ``DocumentReference.status`` -> what the engine does with the note. One decision for ``engine run``,
``engine code`` and replay (and for any other source that states a note's status, e.g. an HL7 v2 document
cancel, which means ``entered-in-error``).

| status | decision | what happens |
|---|---|---|
| ``current`` (or absent) | ``code`` | coded as usual |
| ``superseded`` | ``skip`` | not coded: a newer version (the DocumentReference that ``relatesTo.replaces`` it, or a later ``meta.versionId``) is coded instead; what this one produced before stays (it was not wrong when made) |
| ``entered-in-error`` | ``retract`` | never coded; everything this document produced is withdrawn: its Conditions are sent again with ``verificationStatus`` ``entered-in-error`` (same identifiers), its worklist entry is removed, and an audit record of the retraction is added (earlier audit records stay) |

``retraction_bundle`` builds the withdrawal: from the Bundles the document produced earlier (every version,
every model version, as the processed-note store or ``engine code`` kept them), each Condition entry with the
same ``fullUrl``, identifier and conditional-update request, ``verificationStatus`` ``entered-in-error`` and
no ``clinicalStatus`` (FHIR invariant con-5), plus a Provenance (activity ``NULLIFY``) pointing at the
retracting DocumentReference version. A document never coded gives a Bundle without entries.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Literal, Sequence

from engine.pipeline.fhir_bundle import (BUNDLE_ID_SYSTEM, DEVICE_ID, PARTICIPANT_TYPE_SYSTEM, VERIFICATION_STATUS_SYSTEM, _instant,
                                         _urn, bundle_class, concept, note_key, serialise, versioned_reference)
from engine.pipeline.types import ParsedNote
from schemas.envelopes import ModelRef, SourcePosition
from schemas.errors import ProcessingError
from schemas.fhir.validation import error_locations

Decision = Literal["code", "skip", "retract"]
STATUSES: dict[str, Decision] = {"current": "code", "superseded": "skip", "entered-in-error": "retract"}


def decide(status: str | None) -> Decision:
    """What to do with a note of this ``DocumentReference.status`` (absent: ``current``)."""
    return STATUSES.get(status or "current", "code")


@dataclass(frozen=True)
class SkippedNote:
    """A note that is deliberately not coded (``superseded``): no output, no dead letter; its offset commits."""

    note: ParsedNote
    source: SourcePosition | None
    reason: str = "superseded"


def withdrawn_conditions(produced: Sequence[bytes]) -> list[dict]:
    """The Condition entries of earlier Bundles, each once, set to ``entered-in-error``."""
    entries: dict[str, dict] = {}
    for raw in produced:
        for entry in json.loads(raw).get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") != "Condition" or entry["fullUrl"] in entries:
                continue
            withdrawn = {k: v for k, v in resource.items() if k != "clinicalStatus"}
            withdrawn["verificationStatus"] = concept(VERIFICATION_STATUS_SYSTEM, "entered-in-error")
            entries[entry["fullUrl"]] = {**entry, "resource": withdrawn}
    return [entries[k] for k in sorted(entries)]


def retraction_bundle(note: ParsedNote, produced: Sequence[bytes], model: ModelRef, recorded: dt.datetime) -> tuple[bytes, tuple[str, ...]]:
    """The transaction Bundle withdrawing what ``produced`` (earlier Bundles of this document) suggested, and
    the identifiers of the Conditions it withdraws. Deterministic: same inputs, same bytes."""
    conditions = withdrawn_conditions(produced)
    entries = list(conditions)
    if conditions:
        prov_id = "icdcoder-" + note_key(note, model)[:40]
        device = ({"resourceType": "Device", "id": DEVICE_ID, "name": [{"value": model.name, "type": "user-friendly-name"}], "version": [{"value": str(model.version)}]}
                  if note.fhir_version == "R5" else
                  {"resourceType": "Device", "id": DEVICE_ID, "deviceName": [{"name": model.name, "type": "model-name"}], "version": [{"value": str(model.version)}]})
        prov = {
            "resourceType": "Provenance", "id": prov_id, "contained": [device],
            "target": [{"reference": e["fullUrl"]} for e in conditions], "recorded": _instant(recorded),
            "activity": concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "NULLIFY", "nullify"),
            "agent": [{"type": concept(PARTICIPANT_TYPE_SYSTEM, "assembler", "Assembler"), "who": {"reference": f"#{DEVICE_ID}"}}],
            "entity": [{"role": "source", "what": {"reference": versioned_reference(note.reference, note.document_version)}}],
        }
        entries.append({"fullUrl": _urn(prov_id), "resource": prov, "request": {"method": "PUT", "url": f"Provenance/{prov_id}"}})
    data = {"resourceType": "Bundle", "type": "transaction", "identifier": {"system": BUNDLE_ID_SYSTEM, "value": note_key(note, model)}, "entry": entries}
    try:
        bundle_class(note.fhir_version).model_validate(data)
    except Exception as err:  # noqa: BLE001 - a pydantic ValidationError: the stored Bundles were not ours
        raise ProcessingError("invalid_output", error_locations(err) if hasattr(err, "errors") else type(err).__name__) from None
    identifiers = tuple(sorted(c["resource"]["identifier"][0]["value"] for c in conditions))
    return serialise(data), identifiers


class ProductionIndex:
    """What each document produced so far in this process (``engine code``: a file may hold a note and, later,
    its entered-in-error version). A ``productions_lookup`` for ``NoteProcessor``; the service uses the
    processed-note store in Redis instead (``engine.io.processed``)."""

    def __init__(self) -> None:
        self._bundles: dict[str, list[bytes]] = {}

    def record(self, results: Sequence[object]) -> None:
        from engine.pipeline.types import ProcessedNote

        for r in results:
            if isinstance(r, ProcessedNote) and r.action == "code":
                self._bundles.setdefault(r.note.document_id, []).append(r.bundle_json)

    def __call__(self, document_ids: Sequence[str]) -> dict[str, list[bytes]]:
        return {d: list(self._bundles[d]) for d in document_ids if d in self._bundles}

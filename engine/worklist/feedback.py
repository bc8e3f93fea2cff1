"""Coder decisions -> the feedback topic, as FHIR (reading them back: ``engine.audit.feedback``).

One record per completed worklist item:
- value: a FHIR transaction Bundle (R4B by default, R5 when ``ICDCODER_ENGINE_FHIR_VERSION=R5``) with
  - for a decided code the engine suggested: the engine's own suggestion Condition of every note that
    suggested it, rebuilt exactly (``fhir_bundle.condition_entry``: same identifier, same conditional update)
    but with the coder's verificationStatus, ``confirmed`` (accepted) or ``refuted`` (rejected), so the
    decision updates the suggestion in place instead of writing a second Condition beside it;
  - for a code no note suggested (added by the coder): a new Condition, ``confirmed``, whose id is
    deterministic (item + code), so a re-decided encounter updates the same one;
  - one Provenance whose agent is the coder (``Practitioner/<coder id>``, a human verifier), whose targets
    are the Bundle's Conditions and whose entities are the item's DocumentReference versions;
- header ``icd-coder-decision``: the ``schemas.envelopes.CoderDecision`` as JSON, so tools (evaluation)
  read decisions without parsing FHIR; header ``icd-decision-id``: a stable id to drop duplicates (the
  outbox publishes at least once);
- key: the item id (the encounter reference), so one encounter's decisions stay ordered.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Sequence

from pydantic import ValidationError

from engine.infra.producer import send_all
from engine.pipeline.fhir_bundle import (
    CATEGORY_SYSTEM,
    CLINICAL_STATUS_SYSTEM,
    PARTICIPANT_TYPE_SYSTEM,
    VERIFICATION_STATUS_SYSTEM,
    bundle_class,
    concept,
    condition_entry,
    serialise,
    versioned_reference,
)
from engine.pipeline.types import ParsedNote
from engine.worklist.decisions import code_display
from schemas.envelopes import CoderDecision, NoteSuggestions, WorklistItem
from schemas.fhir.validation import error_locations
from schemas.icd10cm import ICD10CM_SYSTEM

CONDITION_IDENTIFIER_SYSTEM = "urn:icd-coder:worklist-condition"
DECISION_HEADER = "icd-coder-decision"
DECISION_ID_HEADER = "icd-decision-id"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def check_coder_id(coder: str) -> str:
    """A coder id must be usable as a FHIR id (it becomes ``Practitioner/<id>``)."""
    if not _FHIR_ID.match(coder):
        raise ValueError(f"coder id {coder!r} is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)")
    return coder


def condition_id(item_id: str, code: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{CONDITION_IDENTIFIER_SYSTEM}|{item_id}|{code}"))


def _set_status(resource: dict[str, Any], confirmed: bool, fhir_version: str) -> dict[str, Any]:
    """The coder's verdict on a Condition. A confirmed diagnosis is active. A refuted one has no clinical
    status in R4 (optional there, and its value set has no ``unknown``); R5 requires one and has ``unknown``."""
    resource["verificationStatus"] = concept(VERIFICATION_STATUS_SYSTEM, "confirmed" if confirmed else "refuted")
    if confirmed:
        resource["clinicalStatus"] = concept(CLINICAL_STATUS_SYSTEM, "active")
    elif fhir_version == "R5":
        resource["clinicalStatus"] = concept(CLINICAL_STATUS_SYSTEM, "unknown")
    else:
        resource.pop("clinicalStatus", None)
    return resource


def _parsed_note(item: WorklistItem, note: NoteSuggestions, fhir_version: str) -> ParsedNote:
    """One of the item's notes as the engine saw it, as far as its Conditions need (never its text: a
    Condition does not carry it)."""
    kind, _, document_id = note.document_reference.partition("/")
    if kind != "DocumentReference" or not document_id:
        raise ValueError(f"item {item.item_id!r} has a note reference that is not DocumentReference/<id>")
    return ParsedNote(document_id=document_id, document_version=note.document_version, subject=item.subject,
                      encounter=item.encounter, date=None, note_type=None, text="", fhir_version=fhir_version)


def _suggestion_entries(code: str, confirmed: bool, item: WorklistItem, fhir_version: str) -> list[dict[str, Any]]:
    """The engine's suggestion Condition of ``code`` in every note that suggested it, with the coder's verdict.
    Rebuilt from what the engine used (the note version, the item's model, the note's processing time as
    ``recorded``), so identifier and content match what the engine wrote; only the statuses change."""
    entries = []
    for n in item.notes:
        for s in n.suggestions:
            if s.code == code:
                entry = condition_entry(_parsed_note(item, n, fhir_version), s, n.model or item.model, n.processed_at)
                _set_status(entry["resource"], confirmed, fhir_version)
                entries.append(entry)
    return entries


def _new_condition_entry(code: str, confirmed: bool, decision: CoderDecision, item: WorklistItem, fhir_version: str) -> dict[str, Any]:
    """A Condition for a code no note suggested (the coder added it): nothing to update, so a new resource
    with a deterministic id."""
    cid = condition_id(item.item_id, code)
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "identifier": [{"system": CONDITION_IDENTIFIER_SYSTEM, "value": cid}],
        "category": [concept(CATEGORY_SYSTEM, "encounter-diagnosis", "Encounter Diagnosis")],
        "code": concept(ICD10CM_SYSTEM, code, code_display(code)),
        "subject": {"reference": item.subject},
        "recordedDate": decision.decided_at.isoformat(),
    }
    if item.encounter:
        resource["encounter"] = {"reference": item.encounter}
    return {"fullUrl": f"urn:uuid:{cid}", "resource": _set_status(resource, confirmed, fhir_version),
            "request": {"method": "PUT", "url": f"Condition/{cid}"}}


def _provenance_entry(decision: CoderDecision, item: WorklistItem, targets: Sequence[str]) -> dict[str, Any]:
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": decision.decided_at.isoformat(),
        "agent": [{"type": concept(PARTICIPANT_TYPE_SYSTEM, "verifier", "Verifier"), "who": {"reference": f"Practitioner/{decision.coder}"}}],
        "entity": [{"role": "source", "what": {"reference": versioned_reference(n.document_reference, n.document_version)}} for n in item.notes],
    }
    return {"resource": provenance, "request": {"method": "POST", "url": "Provenance"}}


def decision_bundle(decision: CoderDecision, item: WorklistItem, fhir_version: str) -> bytes:
    """The FHIR transaction Bundle for one completed item, validated with fhir.resources and serialised
    deterministically (``fhir_bundle.serialise``)."""
    if not item.subject:
        raise ValueError(f"item {item.item_id!r} has no subject reference: a FHIR Condition needs one")
    check_coder_id(decision.coder)
    entries = []
    for d in decision.decisions:
        confirmed = d.action in ("accept", "add")
        entries += _suggestion_entries(d.code, confirmed, item, fhir_version) or [_new_condition_entry(d.code, confirmed, decision, item, fhir_version)]
    entries.append(_provenance_entry(decision, item, [e["fullUrl"] for e in entries]))
    data = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    try:
        bundle_class(fhir_version).model_validate(data)  # validates every entry's resource too
    except ValidationError as err:
        raise ValueError(f"the feedback Bundle of item {item.item_id!r} is not valid FHIR: {error_locations(err)}") from None
    return serialise(data)


class FeedbackPublisher:
    """Publishes outbox entries to the feedback topic; returns once the broker acknowledged (acks=all)."""

    def __init__(self, producer, topic: str, fhir_version: str) -> None:
        self.producer = producer
        self.topic = topic
        self.fhir_version = fhir_version

    def __call__(self, decision_id: str, decision: CoderDecision, payload: bytes) -> None:
        headers = [
            ("content-type", b"application/fhir+json"),
            ("fhir-version", self.fhir_version.encode()),
            (DECISION_ID_HEADER, decision_id.encode()),
            (DECISION_HEADER, decision.model_dump_json().encode()),
        ]
        send_all(self.producer, [(self.topic, decision.item_id.encode(), payload, headers)])

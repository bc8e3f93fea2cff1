"""Coder decisions -> the feedback topic, as FHIR.

One record per completed worklist item:
- value: a FHIR transaction Bundle (R4B by default, R5 when ``ICDCODER_ENGINE_FHIR_VERSION=R5``) with one
  Condition per decided code, verificationStatus ``confirmed`` (accepted or added) or ``refuted``
  (rejected), and one Provenance whose agent is the coder (``Practitioner/<coder id>``, a human) and whose
  entities are the item's DocumentReferences;
- header ``icd-coder-decision``: the ``schemas.envelopes.CoderDecision`` as JSON, so tools (evaluation)
  read decisions without parsing FHIR; header ``icd-decision-id``: a stable id to drop duplicates (the
  outbox publishes at least once);
- key: the item id (the encounter reference), so one encounter's decisions stay ordered.

Condition ids are deterministic (item + code), so a re-decided encounter updates the same Conditions.
"""

from __future__ import annotations

import re
import uuid
from typing import Sequence

from engine.audit import read_topic
from engine.fhir_release import resource_class
from engine.pipeline.sinks import send_all
from engine.worklist.decisions import code_display
from schemas.envelopes import CoderDecision, WorklistItem
from schemas.settings import KafkaSettings

ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
CONDITION_IDENTIFIER_SYSTEM = "urn:icd-coder:worklist-condition"
DECISION_HEADER = "icd-coder-decision"
DECISION_ID_HEADER = "icd-decision-id"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def check_coder_id(coder: str) -> str:
    """A coder id must be usable as a FHIR id (it becomes ``Practitioner/<id>``)."""
    if not _FHIR_ID.match(coder):
        raise ValueError(f"coder id {coder!r} is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)")
    return coder


def _concept(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def condition_id(item_id: str, code: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{CONDITION_IDENTIFIER_SYSTEM}|{item_id}|{code}"))


def decision_bundle(decision: CoderDecision, item: WorklistItem, fhir_version: str) -> bytes:
    """The FHIR transaction Bundle for one completed item (validated with fhir.resources)."""
    if not item.subject:
        raise ValueError(f"item {item.item_id!r} has no subject reference: a FHIR Condition needs one")
    check_coder_id(decision.coder)
    displays = {s.code: s.display for n in item.notes for s in n.suggestions}
    Condition, Provenance, Bundle = (resource_class(fhir_version, n) for n in ("Condition", "Provenance", "Bundle"))
    entries, targets = [], []
    for d in decision.decisions:
        cid = condition_id(item.item_id, d.code)
        confirmed = d.action in ("accept", "add")
        resource = {
            "resourceType": "Condition",
            "id": cid,
            "identifier": [{"system": CONDITION_IDENTIFIER_SYSTEM, "value": cid}],
            "verificationStatus": _concept(_VER, "confirmed" if confirmed else "refuted"),
            "category": [_concept(_CATEGORY, "encounter-diagnosis")],
            "code": _concept(ICD10CM_SYSTEM, d.code, displays.get(d.code) or code_display(d.code)),
            "subject": {"reference": item.subject},
            "recordedDate": decision.decided_at.isoformat(),
        }
        if confirmed:
            resource["clinicalStatus"] = _concept(_CLINICAL, "active")
        elif fhir_version == "R5":  # R5 requires a clinical status; a refuted diagnosis's is unknown
            resource["clinicalStatus"] = _concept(_CLINICAL, "unknown")
        if item.encounter:
            resource["encounter"] = {"reference": item.encounter}
        full_url = f"urn:uuid:{cid}"
        targets.append({"reference": full_url})
        # One Condition per decided code, idempotent by id. It is a NEW resource beside the engine's
        # unconfirmed suggestion (that one is keyed by note and model version, which the item does not
        # keep per code); see docs/worklist.md.
        entries.append({"fullUrl": full_url, "resource": Condition.model_validate(resource).model_dump(mode="json", exclude_none=True),
                        "request": {"method": "PUT", "url": f"Condition/{cid}"}})
    provenance = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": decision.decided_at.isoformat(),
        "agent": [{"type": _concept(_PARTICIPANT, "verifier"), "who": {"reference": f"Practitioner/{decision.coder}"}}],
        "entity": [{"role": "source", "what": {"reference": n.document_reference + (f"/_history/{n.document_version}" if n.document_version else "")}}
                   for n in item.notes],
    }
    entries.append({"resource": Provenance.model_validate(provenance).model_dump(mode="json", exclude_none=True),
                    "request": {"method": "POST", "url": "Provenance"}})
    bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return bundle.model_dump_json(exclude_none=True).encode()


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


def read_decisions(kafka: KafkaSettings, topic: str | None = None, idle_s: float = 0.5) -> tuple[list[CoderDecision], int]:
    """Every coder decision on the feedback topic, duplicates (same decision id) dropped, and the number
    of records skipped because they carried no readable CoderDecision header."""
    seen: dict[str, CoderDecision] = {}
    skipped = 0
    for record in read_topic(kafka, topic or kafka.feedback_topic, idle_s=idle_s):
        headers = dict(record.headers or [])
        try:
            decision = CoderDecision.model_validate_json(headers[DECISION_HEADER])
        except (KeyError, ValueError):
            skipped += 1
            continue
        decision_id = headers.get(DECISION_ID_HEADER, b"").decode() or f"{decision.item_id}|{decision.decided_at.isoformat()}"
        seen[decision_id] = decision
    return list(seen.values()), skipped


def final_codes(decisions: Sequence[CoderDecision]) -> dict[str, tuple[CoderDecision, set[str], set[str]]]:
    """Per item, the latest decision with its final codes (accepted + added) and its rejected codes."""
    latest: dict[str, CoderDecision] = {}
    for d in decisions:
        if d.item_id not in latest or d.decided_at > latest[d.item_id].decided_at:
            latest[d.item_id] = d
    return {
        item: (d, {c.code for c in d.decisions if c.action in ("accept", "add")}, {c.code for c in d.decisions if c.action == "reject"})
        for item, d in latest.items()
    }


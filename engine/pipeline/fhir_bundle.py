"""Stage 6: a note's suggestions -> one FHIR transaction Bundle (Conditions + one Provenance), validated and
serialised deterministically.

Per suggested code, a Condition: ICD-10-CM coding with display and code-set release, verificationStatus
``unconfirmed`` (R4) / ``provisional`` with clinicalStatus ``active`` (R5, where clinicalStatus is
required), category ``encounter-diagnosis``, subject and encounter from the note, evidence pointing to the
DocumentReference, and the score, threshold and evidence spans as extensions (URLs below).

Idempotency: every id derives from sha256(DocumentReference id | versionId | code | model name | model
version). Conditions carry that as an identifier and are written with a conditional update
(``PUT Condition?identifier=system|value``); the Provenance has no searchable identifier, so it gets a
client-assigned id from the same hash and a plain ``PUT Provenance/<id>``. Re-sending a note's Bundle
therefore changes nothing on a FHIR server; a new model version creates new resources beside the old.
The coder feedback (``engine/worklist/feedback.py``) sends the same Condition entries (``condition_entry``) with
the coder's verification status, so a decision updates the suggestion in place (re-sending the engine's
Bundle after that would set it back to unconfirmed; see ``docs/worklist.md``).

Validation, per note, covers what varies between notes: the Bundle envelope, the first Condition and the
Provenance, validated with fhir.resources (the note's release). Every other Condition of the Bundle is the
first one built by the same function with another code, display, score, threshold and evidence offsets:
codes and displays are validated once per label space (``check_codings``, at engine start), the numbers are
checked finite here. Validating all 25 Conditions costs ~1 ms each, more than inference of a short note.

Determinism: same inputs -> byte-identical output (sorted keys, compact separators, UTF-8). The only
time in the Bundle is ``recorded`` (Provenance.recorded and Condition.recordedDate), passed in by the
caller: the first time this note version was coded by this model (see ``docs/engine-stages.md``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from functools import lru_cache
from typing import Any, Sequence

from pydantic import ValidationError

from engine.pipeline.types import ParsedNote
from schemas.envelopes import EvidenceSpan, ModelRef, Suggestion
from schemas.errors import ProcessingError
from schemas.fhir.release import resource_class
from schemas.fhir.validation import error_locations
from schemas.icd10cm import ICD10CM_SYSTEM
from schemas.model_repo import ModelMetadata

PROJECT_FHIR_BASE = "https://icd-coder.org/fhir"  # canonical base of this project's FHIR artefacts
EXT_SCORE = f"{PROJECT_FHIR_BASE}/StructureDefinition/suggestion-score"  # valueDecimal 0..1
EXT_THRESHOLD = f"{PROJECT_FHIR_BASE}/StructureDefinition/suggestion-threshold"  # valueDecimal 0..1
EXT_EVIDENCE = f"{PROJECT_FHIR_BASE}/StructureDefinition/suggestion-evidence"  # complex: start, end, weight[, context, cue, cueStart, cueEnd]
SUGGESTION_ID_SYSTEM = f"{PROJECT_FHIR_BASE}/NamingSystem/suggestion-id"
BUNDLE_ID_SYSTEM = f"{PROJECT_FHIR_BASE}/NamingSystem/note-coding-id"
_UUID_NAMESPACE = uuid.UUID("6f0b5a52-43a4-5c4e-9d0e-7c1cbd1e4a8e")
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
VERIFICATION_STATUS_SYSTEM = f"{_TERMINOLOGY}/condition-ver-status"
CLINICAL_STATUS_SYSTEM = f"{_TERMINOLOGY}/condition-clinical"
CATEGORY_SYSTEM = f"{_TERMINOLOGY}/condition-category"
PARTICIPANT_TYPE_SYSTEM = f"{_TERMINOLOGY}/provenance-participant-type"
DEVICE_ID = "model"


def note_key(note: ParsedNote, model: ModelRef) -> str:
    """Stable key of "this note version coded by this model version" (also the processed-record key)."""
    return _hash(note.document_id, note.document_version or "", model.name, str(model.version))


def suggestion_key(note: ParsedNote, code: str, model: ModelRef) -> str:
    return _hash(note.document_id, note.document_version or "", code, model.name, str(model.version))


def _hash(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def _urn(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, key)}"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding."""
    return {"coding": [_coding(system, code, display)]}


def versioned_reference(reference: str, version: str | None) -> str:
    """``reference`` pinned to ``version`` (``.../_history/<version>``) when there is one."""
    return reference + (f"/_history/{version}" if version else "")


def _decimal(value: float) -> float:
    """FHIR decimals as JSON numbers, rounded so the bytes are stable across runs and platforms."""
    if not math.isfinite(value):  # NaN/inf would serialise to invalid JSON and FHIR
        raise ProcessingError("invalid_output", "Condition.extension.valueDecimal (not finite)")
    return round(float(value), 4)


def _instant(t: dt.datetime) -> str:
    """A FHIR instant in UTC with a ``Z`` (microseconds only when present)."""
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def evidence_parts(span: EvidenceSpan) -> list[dict[str, Any]]:
    """The sub-extensions of one evidence span: offsets and weight, then its context when classified
    (``context`` valueCode affirmed|negated|uncertain|historical|family; ``cue`` valueString, the rule's canonical
    phrase, never note text; ``cueStart``/``cueEnd`` valueInteger, where the cue stands in the note)."""
    parts: list[dict[str, Any]] = [
        {"url": "start", "valueInteger": span.start},
        {"url": "end", "valueInteger": span.end},
        {"url": "weight", "valueDecimal": _decimal(span.weight)},
    ]
    if span.context is not None:
        parts.append({"url": "context", "valueCode": span.context})
    if span.cue is not None:
        parts.append({"url": "cue", "valueString": span.cue})
    if span.cue_start is not None and span.cue_end is not None:
        parts += [{"url": "cueStart", "valueInteger": span.cue_start}, {"url": "cueEnd", "valueInteger": span.cue_end}]
    return parts


def condition(note: ParsedNote, s: Suggestion, model: ModelRef, recorded: dt.datetime) -> dict[str, Any]:
    r5 = note.fhir_version == "R5"
    evidence_ext = [{"url": EXT_EVIDENCE, "extension": evidence_parts(span)} for span in s.evidence]
    docref = {"reference": note.reference}
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "identifier": [{"system": SUGGESTION_ID_SYSTEM, "value": suggestion_key(note, s.code, model)}],
        "extension": [
            {"url": EXT_SCORE, "valueDecimal": _decimal(s.score)},
            {"url": EXT_THRESHOLD, "valueDecimal": _decimal(s.threshold)},
            *evidence_ext,
        ],
        "verificationStatus": concept(VERIFICATION_STATUS_SYSTEM, "provisional" if r5 else "unconfirmed"),
        "category": [concept(CATEGORY_SYSTEM, "encounter-diagnosis", "Encounter Diagnosis")],
        "code": {"coding": [{"system": ICD10CM_SYSTEM, "version": model.code_set_release, "code": s.code, "display": s.display}], "text": s.display},
        "subject": {"reference": note.subject},
        "recordedDate": _instant(recorded),
        "evidence": [{"reference": docref}] if r5 else [{"detail": [docref]}],
    }
    if r5:
        res["clinicalStatus"] = concept(CLINICAL_STATUS_SYSTEM, "active")
    if note.encounter:
        res["encounter"] = {"reference": note.encounter}
    return res


def provenance(note: ParsedNote, model: ModelRef, targets: Sequence[str], recorded: dt.datetime) -> dict[str, Any]:
    r5 = note.fhir_version == "R5"
    if r5:
        device = {"resourceType": "Device", "id": DEVICE_ID, "name": [{"value": model.name, "type": "user-friendly-name"}], "version": [{"value": str(model.version)}]}
    else:
        device = {"resourceType": "Device", "id": DEVICE_ID, "deviceName": [{"name": model.name, "type": "model-name"}], "version": [{"value": str(model.version)}]}
    source = versioned_reference(note.reference, note.document_version)
    return {
        "resourceType": "Provenance",
        "id": "icdcoder-" + note_key(note, model)[:40],
        "contained": [device],
        "target": [{"reference": t} for t in targets],
        "recorded": _instant(recorded),
        "activity": concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE", "create"),
        "agent": [{"type": concept(PARTICIPANT_TYPE_SYSTEM, "assembler", "Assembler"), "who": {"reference": f"#{DEVICE_ID}"}}],
        "entity": [{"role": "source", "what": {"reference": source}}],
    }


def condition_entry(note: ParsedNote, s: Suggestion, model: ModelRef, recorded: dt.datetime) -> dict[str, Any]:
    """The Bundle entry of one suggestion's Condition: written with a conditional update on its identifier,
    so whoever sends it again (this engine, or the coder feedback with another status) updates the same
    resource."""
    value = suggestion_key(note, s.code, model)
    return {
        "fullUrl": _urn(value),
        "resource": condition(note, s, model, recorded),
        "request": {"method": "PUT", "url": f"Condition?identifier={SUGGESTION_ID_SYSTEM}|{value}"},
    }


def bundle_dict(note: ParsedNote, suggestions: Sequence[Suggestion], model: ModelRef, recorded: dt.datetime) -> dict[str, Any]:
    """The transaction Bundle as plain JSON-able data (not yet validated). No suggestions: no entries."""
    if recorded.tzinfo is None:
        raise ValueError("recorded must be timezone-aware")
    if not note.subject:
        raise ProcessingError("no_subject", "subject (needed for Condition.subject)")
    entries = [condition_entry(note, s, model, recorded) for s in suggestions]
    if entries:
        prov = provenance(note, model, [e["fullUrl"] for e in entries], recorded)
        entries.append({"fullUrl": _urn(prov["id"]), "resource": prov, "request": {"method": "PUT", "url": f"Provenance/{prov['id']}"}})
    return {"resourceType": "Bundle", "type": "transaction", "identifier": {"system": BUNDLE_ID_SYSTEM, "value": note_key(note, model)}, "entry": entries}


def bundle_class(fhir_version: str) -> type:
    return resource_class(fhir_version, "Bundle")


def serialise(data: dict[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8. Serialises the validated plain data rather
    than the fhir.resources model: ``model_dump_json`` costs ~2 ms per Condition, more than validation."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _per_note_part(data: dict[str, Any]) -> dict[str, Any]:
    """The Bundle with only its first Condition and its Provenance: what varies from note to note."""
    entries = data["entry"]
    return data if len(entries) <= 2 else {**data, "entry": [entries[0], entries[-1]]}


def build_bundle(note: ParsedNote, suggestions: Sequence[Suggestion], model: ModelRef, recorded: dt.datetime) -> bytes:
    """Build, validate with fhir.resources (the note's FHIR version; see the module docstring for what is
    validated per note) and serialise a note's Bundle."""
    data = bundle_dict(note, suggestions, model, recorded)
    try:
        bundle_class(note.fhir_version).model_validate(_per_note_part(data))
    except ValidationError as err:
        raise ProcessingError("invalid_output", error_locations(err)) from None
    return serialise(data)


@lru_cache(maxsize=65_536)
def check_coding(code: str, display: str, release: str, fhir_version: str) -> None:
    """Validate one ``Condition.code.coding`` once (cached): the codes a description scorer suggests come from
    tens of thousands of candidates, too many to validate at start like the label space (``check_codings``).
    Raises ProcessingError (the note is dead-lettered with the place, never the text) if it is invalid FHIR."""
    try:
        resource_class(fhir_version, "Coding").model_validate({"system": ICD10CM_SYSTEM, "version": release, "code": code, "display": display})
    except ValidationError as err:
        raise ProcessingError("invalid_output", f"Condition.code.coding ({error_locations(err)})") from None


def check_codings(metadata: ModelMetadata, fhir_version: str) -> None:
    """Validate, once per model version, the ``Condition.code.coding`` of every code of the label space (the
    per-code part of a Condition that ``build_bundle`` does not validate per note). Raises ValueError naming
    the codes whose coding is invalid FHIR, so the engine refuses to start rather than dead-letter notes."""
    coding_class = resource_class(fhir_version, "Coding")
    release = metadata.labels.code_set_release
    bad = []
    for code, display in zip(metadata.labels.codes, metadata.labels.descriptions):
        try:
            coding_class.model_validate({"system": ICD10CM_SYSTEM, "version": release, "code": code, "display": display})
        except ValidationError as err:
            bad.append(f"{code} ({error_locations(err)})")
    if bad:
        raise ValueError(f"{len(bad)} label(s) of {metadata.model_name} v{metadata.version} make invalid FHIR codings: {', '.join(bad[:10])}")

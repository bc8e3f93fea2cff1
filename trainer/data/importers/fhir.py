"""FHIR R4 notes with their diagnoses: ``DocumentReference`` resources (text from inline attachments) and
``Condition`` resources coded in ICD-10-CM, from NDJSON (one resource or Bundle per line) or JSON files
(one resource or Bundle), or a directory of them. Parsed with ``fhir.resources.R4B`` (wire-compatible
with R4 for these two resources).

A Condition labels a note when it names the note's encounter (``Condition.encounter`` equals one of
``DocumentReference.context.encounter``) or points at the note as evidence
(``Condition.evidence.detail`` = ``DocumentReference/<id>``). Text extraction is the engine's
(``schemas.fhir.attachment.extract_text``: text/plain with its charset, HTML reduced to text), so training
and serving read attachments identically.

Errors (DataError, file and line): malformed JSON, a resource that fails validation, a DocumentReference
without id, an ICD-10-CM code that is not shaped like one. Skipped and counted: notes without inline
text (url only, unsupported type, bad charset), other resource types, Conditions without an ICD-10-CM
coding, Conditions that are not established (refuted, entered-in-error, unconfirmed, provisional or
differential: the engine's undecided suggestions are unconfirmed/provisional), Conditions linked to no note.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from schemas.fhir.ndjson import read_resources
from schemas.icd10cm import ICD10CM_SYSTEM
from schemas.notes import NoteRecord
from trainer.data.importers import DataError, ImportReport, MissingDataError, clean_code, where

# Not established diagnoses. "unconfirmed"/"provisional" also mark this engine's own suggestions that no
# coder has decided: training on them would teach the next model its predecessor's guesses.
_IGNORED_STATUSES = {"refuted", "entered-in-error", "unconfirmed", "provisional", "differential"}


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".ndjson", ".jsonl", ".json"))
        if not files:
            raise DataError(f"{path}: no .ndjson, .jsonl or .json files")
        return files
    if not path.is_file():
        raise MissingDataError(f"{path}: no such file or directory")
    return [path]


def _raw_resources(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, resource dict) for every resource in a file (``schemas.fhir.ndjson``), Bundles flattened; an
    unreadable line is a DataError naming the file and line."""
    try:
        for entry in read_resources(path):
            if entry.error is not None:
                problem = "malformed JSON" if entry.error.reason == "not_json" else "not a FHIR resource"
                raise DataError(f"{where(path, entry.line)}: {problem} ({entry.error.detail})")
            if entry.resource is not None:
                yield entry.line, entry.resource
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from err


def _validate(cls: type, obj: dict[str, Any], path: Path, line: int | None) -> Any:
    from schemas.fhir.validation import error_locations  # field paths only, never values (PHI)

    try:
        return cls.model_validate(obj)
    except ValidationError as err:
        raise DataError(f"{where(path, line)}: invalid {cls.__name__} ({error_locations(err, 3)})") from None


def _icd_codes(condition: Any, path: Path, line: int | None) -> list[str]:
    codings = condition.code.coding if condition.code and condition.code.coding else []
    return [clean_code(c.code, path, line) for c in codings if c.system == ICD10CM_SYSTEM and c.code]


def _as_date(value: Any) -> dt.date | None:
    """FHIR dateTime may be partial ("2024", "2024-03"): those give no day and count as undated."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def read_fhir(path: Path, report: ImportReport | None = None) -> Iterator[NoteRecord]:
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.documentreference import DocumentReference

    from schemas.errors import ProcessingError
    from schemas.fhir.attachment import extract_text

    report = report if report is not None else ImportReport("fhir")
    docs: list[tuple[Any, str]] = []  # (DocumentReference, text)
    by_encounter: dict[str, list[str]] = defaultdict(list)
    by_document: dict[str, list[str]] = defaultdict(list)
    conditions = 0
    for file in _files(Path(path)):
        for line, obj in _raw_resources(file):
            kind = obj.get("resourceType")
            if kind == "DocumentReference":
                doc = _validate(DocumentReference, obj, file, line)
                if not doc.id:
                    raise DataError(f"{where(file, line)}: DocumentReference without id")
                try:
                    text = extract_text(doc.content or [])
                except ProcessingError as err:
                    report.skip(f"note without inline text ({err.reason})")
                    continue
                if not text.strip():
                    report.skip("note without inline text (no_text)")
                    continue
                docs.append((doc, text))
            elif kind == "Condition":
                cond = _validate(Condition, obj, file, line)
                status = cond.verificationStatus.coding[0].code if cond.verificationStatus and cond.verificationStatus.coding else None
                if status in _IGNORED_STATUSES:
                    report.skip(f"condition {status}")
                    continue
                codes = _icd_codes(cond, file, line)
                if not codes:
                    report.skip("condition without ICD-10-CM coding")
                    continue
                conditions += 1
                linked = False
                if cond.encounter and cond.encounter.reference:
                    by_encounter[cond.encounter.reference] += codes
                    linked = True
                for evidence in cond.evidence or []:
                    for detail in evidence.detail or []:
                        if detail.reference and detail.reference.startswith("DocumentReference/"):
                            by_document[detail.reference.split("/", 1)[1]] += codes
                            linked = True
                if not linked:
                    report.skip("condition linked to no encounter or note")
            else:
                report.skip(f"resource type {kind if isinstance(kind, str) and kind.isalpha() else '(missing)'}")
    for doc, text in docs:
        encounters = [r.reference for r in (doc.context.encounter or [])] if doc.context else []
        codes = [c for e in encounters if e for c in by_encounter.get(e, ())] + by_document.get(doc.id, [])
        period_start = doc.context.period.start if doc.context and doc.context.period else None
        date = _as_date(doc.date) or _as_date(period_start)
        note_type = None
        if doc.type and doc.type.coding:
            note_type = doc.type.coding[0].display or doc.type.coding[0].code
        report.notes += 1
        yield NoteRecord(
            note_id=doc.id,
            patient_id=doc.subject.reference if doc.subject and doc.subject.reference else None,
            encounter_id=next((e for e in encounters if e), None),
            date=date,
            note_type=note_type,
            text=text,
            codes=tuple(dict.fromkeys(codes)),
            source="fhir",
        )

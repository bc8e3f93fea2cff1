"""Hand-built ProcessedNotes for the worklist/audit/feedback tests (the engine's output, without a model)."""

from __future__ import annotations

import datetime as dt
import hashlib

from engine.pipeline.types import ParsedNote, ProcessedNote
from schemas.envelopes import EvidenceSpan, ModelRef, SourcePosition, Suggestion

MODEL = ModelRef(name="bert_xml", version=1, code_set_release="ICD-10-CM 2026")
T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)


def processed_note(doc: str, encounter: str | None, suggested: dict[str, float], *, subject: str = "Patient/p1",
                   below: dict[str, float] | None = None, threshold: float = 0.5, minutes: int = 0,
                   version: str = "1", model: ModelRef = MODEL, text: str = "Original text with PHI: John Smith",
                   deid_text: str = "Original text with PHI: [NAME]", offset: int = 0) -> ProcessedNote:
    """``suggested``: code -> score at/above ``threshold``; ``below``: other scores above the audit floor."""
    at = T0 + dt.timedelta(minutes=minutes)
    suggestions = tuple(
        Suggestion(code=c, display=f"display of {c}", score=s, threshold=threshold, evidence=(EvidenceSpan(start=0, end=8, weight=0.9),))
        for c, s in sorted(suggested.items(), key=lambda kv: -kv[1])
    )
    return ProcessedNote(
        note=ParsedNote(document_id=doc, document_version=version, subject=subject, encounter=encounter, date=at,
                        note_type=None, text=text, fhir_version="R4"),
        source=SourcePosition(topic="ehr.documentreference", partition=0, offset=offset),
        deid_text=deid_text,
        deid_text_sha256=hashlib.sha256(deid_text.encode()).hexdigest(),
        model=model,
        thresholds_global=threshold,
        scores={**(below or {}), **suggested},
        suggestions=suggestions,
        bundle_json=b"{}",
        output_key=(encounter or subject).encode(),
        processed_at=at,
        timings_ms={"total": 12.5},
    )

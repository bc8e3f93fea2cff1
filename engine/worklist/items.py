"""Pure worklist logic, no I/O: which item a note joins, merging a note into its item, priority scores.

An item is one encounter (or, without an encounter, the patient; without either, the note itself). Its
``codes`` are recomputed from its notes every time, so a re-processed note (new version, or redelivery
after a crash) replaces its earlier entry instead of leaving a stale maximum behind.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from engine.pipeline.types import ProcessedNote
from schemas.envelopes import NoteSuggestions, WorklistItem

Priority = Literal["oldest", "confidence", "uncertain"]
PRIORITIES: tuple[Priority, ...] = ("oldest", "confidence", "uncertain")
PRIORITY_HELP = {
    "oldest": "oldest item first (first note's processing time)",
    "confidence": "lowest confidence first (the weakest suggested code's score)",
    "uncertain": "most uncertain first (a score nearest its threshold)",
}


def item_id_for(encounter: str | None, subject: str | None, document_reference: str) -> str:
    """The worklist item a note belongs to; the same rule joins audit records with coder decisions."""
    return encounter or subject or document_reference


def note_margin(note: ProcessedNote) -> float:
    """How close the note's nearest code is to its decision threshold (small: uncertain).

    Suggested codes use their own threshold; codes below threshold (the audit scores) the global one.
    """
    per_code = {s.code: s.threshold for s in note.suggestions}
    margins = [abs(score - per_code.get(code, note.thresholds_global)) for code, score in note.scores.items()]
    margins += [abs(s.score - s.threshold) for s in note.suggestions]
    return min(margins, default=1.0)


def merge_note(item: WorklistItem | None, note: ProcessedNote, now: dt.datetime) -> WorklistItem:
    """``item`` with ``note`` added (or replacing the same DocumentReference's earlier entry)."""
    entry = NoteSuggestions(
        document_reference=note.note.reference,
        document_version=note.note.document_version,
        suggestions=note.suggestions,
        processed_at=note.processed_at,
        model=note.model,
    )
    if item is None:
        notes = (entry,)
        created = now
    else:
        notes = tuple(n for n in item.notes if n.document_reference != entry.document_reference) + (entry,)
        created = item.created_at
    notes = tuple(sorted(notes, key=lambda n: (n.processed_at, n.document_reference)))
    codes: dict[str, float] = {}
    for n in notes:
        for s in n.suggestions:
            codes[s.code] = max(codes.get(s.code, 0.0), s.score)
    return WorklistItem(
        item_id=item_id_for(note.note.encounter, note.note.subject, note.note.reference),
        subject=note.note.subject or (item.subject if item else None),
        encounter=note.note.encounter or (item.encounter if item else None),
        model=note.model,
        codes=dict(sorted(codes.items())),
        notes=notes,
        created_at=created,
        updated_at=now,
    )


def remove_note(item: WorklistItem, document_reference: str, now: dt.datetime) -> WorklistItem | None:
    """``item`` without that note (an entered-in-error document); None when no note is left."""
    notes = tuple(n for n in item.notes if n.document_reference != document_reference)
    if not notes:
        return None
    codes: dict[str, float] = {}
    for n in notes:
        for s in n.suggestions:
            codes[s.code] = max(codes.get(s.code, 0.0), s.score)
    return item.model_copy(update={"notes": notes, "codes": dict(sorted(codes.items())), "updated_at": now})


def same_content(a: WorklistItem | None, b: WorklistItem) -> bool:
    """True when merging changed nothing a coder would see (a redelivered note): no reopen, no requeue."""
    if a is None:
        return False
    return a.codes == b.codes and a.notes == b.notes and a.model == b.model


def priority_scores(item: WorklistItem, margins: dict[str, float]) -> dict[Priority, float]:
    """Sorted-set scores, lowest first for every priority.

    ``margins``: note reference -> ``note_margin`` for the item's current notes.
    """
    return {
        "oldest": item.created_at.timestamp(),
        # An item with no suggestion at all is the least confident: the coder codes it from scratch.
        "confidence": min(item.codes.values(), default=0.0),
        "uncertain": min(margins.values(), default=1.0),
    }

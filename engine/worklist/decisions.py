"""Coder input -> ``CodeDecision``s: codes normalised and checked against the ICD-10-CM code set."""

from __future__ import annotations

from typing import Iterable

from engine.worklist.store import WorklistError
from schemas.envelopes import CodeDecision
from schemas.icd10cm import RELEASE, load_code_set, normalise


def parse_decisions(accept: Iterable[str] = (), reject: Iterable[str] = (), add: Iterable[str] = ()) -> list[CodeDecision]:
    """Every code normalised (``e119`` -> ``E11.9``); an unknown code or a code named twice is a WorklistError."""
    code_set = load_code_set()
    decisions: dict[str, CodeDecision] = {}
    for action, codes in (("accept", accept), ("reject", reject), ("add", add)):
        for given in codes:
            code = normalise(given)
            if not code_set.is_valid(code):
                raise WorklistError(f"{given!r} (to {action}) is not a code of {RELEASE}; nothing changed")
            if code in decisions:
                raise WorklistError(f"{code} is named twice ({decisions[code].action} and {action}); nothing changed")
            decisions[code] = CodeDecision(code=code, action=action)
    if not decisions:
        raise WorklistError("give at least one --accept, --reject or --add code")
    return list(decisions.values())


def code_display(code: str) -> str | None:
    """The code set's description of ``code`` (None when the code is not in it)."""
    code_set = load_code_set()
    return code_set.description(code) if code_set.is_valid(code) else None

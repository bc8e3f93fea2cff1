"""Coder input -> ``CodeDecision``s: codes normalised and checked against the ICD-10-CM code set."""

from __future__ import annotations

from typing import Iterable

from engine.worklist.store import WorklistError
from schemas.envelopes import CodeDecision
from schemas.icd10cm import RELEASE, load_code_set, normalise


def parse_decisions(accept: Iterable[str] = (), reject: Iterable[str] = (), add: Iterable[str] = ()) -> list[CodeDecision]:
    """Every code normalised (``e119`` -> ``E11.9``); an unknown code or a code named twice is a WorklistError."""
    entries = [(code, action, None) for action, codes in (("accept", accept), ("reject", reject), ("add", add)) for code in codes]
    if not entries:
        raise WorklistError("give at least one --accept, --reject or --add code")
    return parse_decision_list(entries)


def parse_decision_list(entries: Iterable[tuple[str, str, str | None]]) -> list[CodeDecision]:
    """(code as given, action, reason) -> CodeDecisions, codes normalised and checked against the code set. An
    unknown code or a code named twice is a WorklistError whose ``code`` is the code as given."""
    code_set = load_code_set()
    decisions: dict[str, CodeDecision] = {}
    for given, action, reason in entries:
        code = normalise(given)
        if not code_set.is_valid(code):
            raise WorklistError(f"{given!r} (to {action}) is not a code of {RELEASE}; nothing changed", code=given)
        if code in decisions:
            raise WorklistError(f"{code} is named twice ({decisions[code].action} and {action}); nothing changed", code=given)
        decisions[code] = CodeDecision(code=code, action=action, reason=reason)
    return list(decisions.values())


def code_display(code: str) -> str | None:
    """The code set's description of ``code`` (None when the code is not in it)."""
    code_set = load_code_set()
    return code_set.description(code) if code_set.is_valid(code) else None

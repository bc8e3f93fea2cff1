"""The candidate codes of the description scorer and the terms that describe them.

Candidates (``scope``): every billable ICD-10-CM 2026 code (``billable``, ~75k, what serving uses), or only the
billable codes of the label space's 3-character categories (``categories``: the more specific siblings of what
the classifier knows; a few hundred codes, for quick runs and the demo), or none (``labels``) - always plus the
codes of the label space themselves, billable or not (a dataset may code at category level, e.g. ``T81.4``
after mapping ``t81.4xx``), so the fused ranking covers every code the classifier knows. Terms of a code: its title and its inclusion terms / "includes"
notes from the tabular list (``schemas.icd10cm.CodeSet.inclusion_terms``: "Pain NOS" for R52, "high blood
pressure" for I10). A code's similarity to a sentence is the best of its terms'.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from schemas.icd10cm import RELEASE, load_code_set


@dataclass(frozen=True)
class CodeCatalogue:
    codes: tuple[str, ...]  # candidate codes (column order of the scorer's code indices)
    displays: tuple[str, ...]  # code titles, what a suggestion shows
    terms: tuple[str, ...]  # every term text (row order of the term matrix)
    term_code: tuple[int, ...]  # the candidate index each term describes
    release: str = RELEASE

    def __post_init__(self) -> None:
        if len(self.codes) != len(self.displays) or len(self.terms) != len(self.term_code):
            raise ValueError("catalogue: codes/displays and terms/term_code must have equal lengths")
        if self.term_code and not 0 <= min(self.term_code) <= max(self.term_code) < len(self.codes):
            raise ValueError("catalogue: a term points outside the candidate codes")

    def __len__(self) -> int:
        return len(self.codes)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self)) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "CodeCatalogue":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


SCOPES = ("billable", "categories", "labels")


def build_catalogue(extra_codes: Sequence[str] = (), scope: str = "billable") -> CodeCatalogue:
    """The ``scope``'s billable codes plus ``extra_codes`` (e.g. a label space), with their terms."""
    if scope not in SCOPES:
        raise ValueError(f"unknown candidate scope {scope!r}; choose from {SCOPES}")
    code_set = load_code_set()
    billable = code_set.billable_codes() if scope != "labels" else []
    if scope == "categories":
        categories = {c[:3] for c in extra_codes}
        billable = [c for c in billable if c[:3] in categories]
    codes = list(dict.fromkeys([*billable, *extra_codes]))
    displays, terms, term_code = [], [], []
    for index, code in enumerate(codes):
        title = code_set.description(code)
        displays.append(title)
        for term in dict.fromkeys((title, *code_set.inclusion_terms(code))):
            terms.append(term)
            term_code.append(index)
    return CodeCatalogue(tuple(codes), tuple(displays), tuple(terms), tuple(term_code))

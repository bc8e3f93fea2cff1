"""Dataset statistics: notes per split, codes per note, note lengths, code frequencies; as a pydantic model
(written to stats.json) and as a readable table."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Sequence

import numpy as np
from pydantic import BaseModel

from schemas.labels import LabelSpace
from schemas.notes import NoteRecord

PERCENTILES = (5, 25, 50, 75, 95, 99)
FREQUENCY_CUTS = (1, 5, 10, 50, 100, 500)


class SplitStats(BaseModel):
    notes: int
    notes_without_codes: int
    codes_per_note: dict[str, float]  # mean, median, max of all (mapped) codes
    label_codes_per_note: dict[str, float]  # the same, counting only codes in the label space
    chars: dict[str, float]  # length percentiles "p5".."p99" and "max"
    tokens: dict[str, float] | None = None  # the same in word pieces, plus share over 512 and 1,024


class DatasetStats(BaseModel):
    sources: dict[str, dict]  # importer -> {"notes": n, "skipped": {reason: n}}
    notes_filtered_short: int
    min_chars: int
    deid: bool
    splits: dict[str, SplitStats]
    unlabelled_notes: int
    unlabelled: SplitStats | None = None  # lengths of the unlabelled notes (vocabulary/pretraining text)
    distinct_codes: dict[str, int]  # code mapping counts: total, valid, mapped, unmappable
    code_occurrences_dropped: int  # labels removed because their code had no valid ancestor
    labels_imputed: int
    train_code_frequency: dict[str, int]  # ">=k": distinct codes with at least k positive train notes
    label_space_size: int
    min_train_positives: int


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "max": 0.0}
    return {"mean": round(statistics.fmean(values), 2), "median": float(statistics.median(values)), "max": float(max(values))}


def length_percentiles(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {}
    values = np.percentile(np.asarray(lengths), PERCENTILES)
    out = {f"p{p}": round(float(v), 1) for p, v in zip(PERCENTILES, values)}
    out["max"] = float(max(lengths))
    return out


def split_stats(records: Sequence[NoteRecord], labels: LabelSpace | None, token_lengths: Sequence[int] | None = None) -> SplitStats:
    in_space = set(labels.codes) if labels else set()
    tokens = None
    if token_lengths is not None:
        tokens = length_percentiles(token_lengths)
        tokens["share_over_512"] = round(sum(n > 512 for n in token_lengths) / max(len(token_lengths), 1), 3)
        tokens["share_over_1024"] = round(sum(n > 1024 for n in token_lengths) / max(len(token_lengths), 1), 3)
    return SplitStats(
        notes=len(records),
        notes_without_codes=sum(not r.codes for r in records),
        codes_per_note=_summary([len(r.codes) for r in records]),
        label_codes_per_note=_summary([len(in_space.intersection(r.codes)) for r in records]),
        chars=length_percentiles([len(r.text) for r in records]),
        tokens=tokens,
    )


def code_frequency(counts: Counter) -> dict[str, int]:
    return {f">={k}": sum(1 for n in counts.values() if n >= k) for k in FREQUENCY_CUTS}


def format_table(stats: DatasetStats) -> str:
    """A plain-text report for the terminal."""
    lines = ["Sources"]
    for name, info in stats.sources.items():
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(info["skipped"].items())) or "none"
        lines.append(f"  {name:<22} {info['notes']:>7} notes   skipped: {skipped}")
    lines.append(f"  notes under {stats.min_chars} characters dropped: {stats.notes_filtered_short}")
    lines.append(f"  de-identified: {'yes' if stats.deid else 'NO (--no-deid)'}")
    header = f"\n{'split':<8}{'notes':>8}{'no code':>9}{'codes/note mean':>17}{'median':>8}{'max':>6}{'in labels':>11}   chars p5/p50/p95/max"
    lines.append(header)
    for name, s in stats.splits.items():
        c = s.chars
        lines.append(
            f"{name:<8}{s.notes:>8}{s.notes_without_codes:>9}{s.codes_per_note['mean']:>17}{s.codes_per_note['median']:>8g}"
            f"{s.codes_per_note['max']:>6g}{s.label_codes_per_note['mean']:>11}   "
            f"{c.get('p5', 0):g}/{c.get('p50', 0):g}/{c.get('p95', 0):g}/{c.get('max', 0):g}"
        )
        if s.tokens:
            t = s.tokens
            lines.append(f"{'':<8}tokens p5/p50/p95/max {t['p5']:g}/{t['p50']:g}/{t['p95']:g}/{t['max']:g}; "
                         f">512: {t['share_over_512']:.1%}, >1024: {t['share_over_1024']:.1%}")
    if stats.unlabelled:
        c = stats.unlabelled.chars
        lines.append(f"{'unlab.':<8}{stats.unlabelled.notes:>8}{'  (unlabelled.jsonl: vocabulary, pretraining)':<54}"
                     f"{c.get('p5', 0):g}/{c.get('p50', 0):g}/{c.get('p95', 0):g}/{c.get('max', 0):g}")
    d = stats.distinct_codes
    lines.append(f"\nDistinct codes: {d.get('total', 0)} ({d.get('valid', 0)} valid, {d.get('mapped', 0)} mapped to an ancestor, "
                 f"{d.get('unmappable', 0)} unmappable; {stats.code_occurrences_dropped} labels dropped)")
    lines.append(f"Chronic labels imputed: {stats.labels_imputed}")
    freq = "  ".join(f"{k}: {v}" for k, v in stats.train_code_frequency.items())
    lines.append(f"Codes by positive train notes: {freq}")
    lines.append(f"Label space: {stats.label_space_size} codes with >= {stats.min_train_positives} train positives")
    return "\n".join(lines)


def plot_statistics(splits: dict[str, Sequence[NoteRecord]], train_counts: Counter, path) -> None:
    """stats.png: note length per split (characters) and the train code-frequency curve (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, records in splits.items():
        left.hist([len(r.text) for r in records], bins=40, alpha=0.5, label=f"{name} ({len(records)})")
    left.set(title="Note length", xlabel="characters", ylabel="notes")
    if splits:
        left.legend()
    frequencies = sorted(train_counts.values(), reverse=True)
    if frequencies:
        right.loglog(range(1, len(frequencies) + 1), frequencies, marker=".", linestyle="none")
    right.set(title="Codes by positive train notes", xlabel="code rank", ylabel="positive notes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

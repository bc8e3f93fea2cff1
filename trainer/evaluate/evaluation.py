"""Evaluation as in the paper (4.3-4.4): micro/macro-AUC with bootstrap intervals (Table 2), macro-AUC by
training frequency incl. the low-frequency slice (Table 3), per-code AUC with positive counts (Table 4) and
its distribution (Figure 2), micro/macro-F1 at the thresholds tuned on the selection split, precision@k and
the label-space MAP; and as CodiEsp scores it (``ranking``): the official MAP against ALL gold codes of a
note, the coverage of gold occurrences, MAP on codes seen / not seen in training. A run with a description
scorer (``trainer fuse``) is also evaluated as the served combination and as the description scorer alone.

``evaluate_run`` returns a JSON-able dict; ``write_report`` writes JSON, Markdown, CSV and PNG. Undefined
numbers (no positives) are ``None`` with a note saying why, never NaN.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from schemas.cli import UserError  # noqa: E402
from schemas.labels import LabelSpace  # noqa: E402
from trainer.evaluate.metrics import (  # noqa: E402
    auc_by_frequency,
    bootstrap_ci,
    f1_at,
    macro_auc,
    mean_average_precision,
    micro_auc,
    precision_at_k,
    rank_auc,
)
from trainer.evaluate.ranking import ranking_report  # noqa: E402
from trainer.finetune.data import label_matrix  # noqa: E402
from trainer.models.scorer import load_scorer  # noqa: E402

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationConfig:
    split: str = "test"
    bootstrap: int = 500  # resamples of notes for the AUC intervals; 0: none
    confidence: float = 0.95
    ks: tuple[int, ...] = (1, 5, 8, 15)
    frequency_edges: tuple[int, ...] = (0, 1, 11, 51, 101, 501, 1001)  # bins of training positives
    low_frequency_max: int = 100  # the low-frequency slice: codes with 1..this many training notes
    batch_size: int = 16
    device: str = "cpu"
    seed: int = 0
    combinations: bool = True  # with a description scorer in the run: also the served combination and the scorer alone


def check_label_spaces(model_labels: LabelSpace, data_labels: LabelSpace) -> None:
    """The model and the dataset must know the same codes (order may differ: targets are built by name)."""
    missing, extra = set(model_labels.codes) - set(data_labels.codes), set(data_labels.codes) - set(model_labels.codes)
    if missing or extra:
        raise UserError(
            f"the model's label space ({len(model_labels)} codes) differs from the dataset's ({len(data_labels)}): "
            f"{len(missing)} model codes not in the dataset (e.g. {sorted(missing)[:5]}), {len(extra)} dataset codes "
            f"not in the model (e.g. {sorted(extra)[:5]}); evaluate on data prepared with the model's labels.json"
        )


def evaluate_scores(targets: np.ndarray, scores: np.ndarray, labels: LabelSpace, thresholds: np.ndarray, train_counts: np.ndarray | None, cfg: EvaluationConfig) -> dict[str, Any]:
    """All metrics from [notes, codes] targets and probabilities."""
    notes: list[str] = []
    positives = targets.sum(axis=0).astype(int)
    per_code = rank_auc(targets, scores)
    micro = micro_auc(targets, scores)
    macro, n_macro = macro_auc(targets, scores)
    if micro is None:
        notes.append(f"the {cfg.split} split has no positive labels: AUC, F1 and MAP are undefined")
    without = int((positives == 0).sum())
    if without:
        notes.append(f"{without} of {len(labels)} codes have no positive note in the {cfg.split} split and are left out of macro averages")
    predicted = scores >= thresholds
    micro_f1, macro_f1 = f1_at(targets, predicted)
    map_value, map_notes = mean_average_precision(targets, scores)
    result: dict[str, Any] = {
        "split": cfg.split,
        "notes": int(targets.shape[0]),
        "codes": len(labels),
        "codes_with_positives": int((positives > 0).sum()),
        "micro_auc": micro,
        "macro_auc": macro,
        "macro_auc_codes": n_macro,
        "micro_f1": micro_f1 if micro is not None else None,
        "macro_f1": macro_f1,
        "precision_at_k": {str(k): precision_at_k(targets, scores, k) for k in cfg.ks},
        "map": map_value,
        "map_notes": map_notes,
    }
    if cfg.bootstrap:
        for name, metric in (("micro_auc", micro_auc), ("macro_auc", lambda y, p: macro_auc(y, p)[0])):
            result[f"{name}_ci"] = asdict(bootstrap_ci(targets, scores, metric, cfg.bootstrap, cfg.confidence, cfg.seed))
        result["ci_confidence"] = cfg.confidence
    result["per_code"] = [
        {"code": c, "description": d, "positives": int(positives[j]), "train_positives": None if train_counts is None else int(train_counts[j]),
         "auc": None if np.isnan(per_code[j]) else float(per_code[j])}
        for j, (c, d) in enumerate(zip(labels.codes, labels.descriptions))
    ]
    if train_counts is not None:
        result["auc_by_train_frequency"] = [{"bin": b.label, **asdict(b)} for b in auc_by_frequency(per_code, train_counts, cfg.frequency_edges)]
        low = (train_counts >= 1) & (train_counts <= cfg.low_frequency_max) & ~np.isnan(per_code)
        result["low_frequency"] = {"train_positives": f"1-{cfg.low_frequency_max}", "codes": int(low.sum()), "macro_auc": float(per_code[low].mean()) if low.any() else None}
    else:
        notes.append("the dataset has no train split: no frequency bins")
    result["report_notes"] = notes
    return result


def evaluate_run(run_dir: Path, data_dir: Path, cfg: EvaluationConfig) -> dict[str, Any]:
    from trainer.data.dataset import load_label_space, load_split

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    try:
        scorer = load_scorer(run_dir, cfg.device, cfg.batch_size, progress=True)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot load the model in {run_dir}: {err}") from None
    try:
        data_labels = load_label_space(data_dir)
        records = load_split(data_dir, cfg.split)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot read the {cfg.split} split of {data_dir}: {err}") from None
    if not records:
        raise UserError(f"the {cfg.split} split of {data_dir} has no notes: nothing to evaluate")
    check_label_spaces(scorer.labels, data_labels)
    targets, outside = label_matrix(records, scorer.labels)
    try:
        train = load_split(data_dir, "train")
        train_counts = label_matrix(train, scorer.labels)[0].sum(axis=0)
        seen = {c for r in train for c in r.codes}
    except FileNotFoundError:
        train_counts, seen = None, set(scorer.labels.codes)
    texts, gold = [r.text for r in records], [r.codes for r in records]
    scores = scorer.score(texts)
    result = evaluate_scores(targets, scores, scorer.labels, scorer.thresholds.vector(scorer.labels.codes), train_counts, cfg)
    result.update(ranking_report(gold, scorer.labels.codes, scores, seen))
    if outside:
        result["report_notes"].append(f"{sum(outside.values())} code occurrences outside the label space are missed by the label-space "
                                      "metrics; the official MAP counts them")
    result.update(run=str(run_dir), data=str(data_dir), architecture=scorer.config.architecture, thresholds={"global": scorer.thresholds.global_threshold, "per_code": len(scorer.thresholds.per_code)})
    from trainer.describe.fuse import has_descriptions

    if cfg.combinations and has_descriptions(run_dir):
        result["combinations"] = evaluate_combinations(run_dir, texts, gold, seen, scores, targets, scorer.labels, train_counts, cfg)
    return result


def evaluate_combinations(run_dir: Path, texts: list[str], gold: list, seen: set[str], probs: np.ndarray, targets: np.ndarray, labels: LabelSpace,
                          train_counts: np.ndarray | None, cfg: EvaluationConfig) -> dict[str, Any]:
    """The served combination and the description scorer alone (``trainer fuse``), each: the ranking report
    over every candidate code, micro-F1 at its threshold against all gold codes, and the label-space metrics
    of its scores on the classifier's columns (comparable with the classifier's own)."""
    from dataclasses import replace

    from trainer.describe.build import score_with
    from trainer.describe.fuse import load_descriptions
    from trainer.describe.select import Components, label_candidates

    model = load_descriptions(run_dir)
    columns = label_candidates(labels.codes, model.catalogue.codes)
    components = Components(model.catalogue.codes, score_with(model.scorer, texts, model.tokenizer), model.neighbours, probs, columns)
    out: dict[str, Any] = {"candidates": len(model.catalogue), "refit_on": model.fusion.refit_on, "selected_on": model.fusion.served.selected_on}
    label_cfg = replace(cfg, bootstrap=0)
    for name in ("served", "without_classifier", "descriptions_only"):
        fusion = getattr(model.fusion, name)
        fused = components.fused(fusion)
        on_labels = fused[:, columns]
        block = evaluate_scores(targets, on_labels, labels, np.full(len(labels), fusion.threshold), train_counts, label_cfg)
        block.pop("per_code")
        block.update(ranking_report(gold, model.catalogue.codes, fused, seen))
        predicted = fused >= fusion.thresholds(fused.shape[1], columns)
        block["all_codes_micro_f1"] = _micro_f1_all(predicted, gold, model.catalogue.codes)
        block["fusion"] = fusion.model_dump()
        out[name] = block
    return out


def _micro_f1_all(predicted: np.ndarray, gold: list, codes: tuple[str, ...]) -> float:
    """Micro-F1 of the suggested codes against every gold code (those no candidate covers are misses)."""
    tp = sum(sum(1 for j in np.nonzero(predicted[i])[0] if codes[j] in set(g)) for i, g in enumerate(gold))
    n_pred, n_gold = int(predicted.sum()), sum(len(set(g)) for g in gold)
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(result: dict[str, Any], name: str) -> str:
    ci = result.get(f"{name}_ci")
    return "" if not ci or ci["low"] is None else f" [{_fmt(ci['low'])}, {_fmt(ci['high'])}]"


def render_markdown(result: dict[str, Any], top: int = 20) -> str:
    r = result
    lines = [
        f"# Evaluation: {r.get('architecture', '?')} on the {r['split']} split",
        "", f"{r['notes']} notes, {r['codes']} codes ({r['codes_with_positives']} with positives in this split).", "",
        "| metric | value |", "|---|---|",
        f"| micro-AUC | {_fmt(r['micro_auc'])}{_ci(r, 'micro_auc')} |",
        f"| macro-AUC ({r['macro_auc_codes']} codes) | {_fmt(r['macro_auc'])}{_ci(r, 'macro_auc')} |",
        f"| micro-F1 | {_fmt(r['micro_f1'])} |", f"| macro-F1 | {_fmt(r['macro_f1'])} |",
        *[f"| P@{k} | {_fmt(v)} |" for k, v in r["precision_at_k"].items()],
        f"| label-space MAP ({r['map_notes']} notes) | {_fmt(r['map'])} |",
        f"| official MAP (all gold codes; {r['official_map_notes']} notes) | {_fmt(r['official_map'])} |",
        f"| gold occurrences the model can rank | {r['coverage']['covered']} of {r['coverage']['gold_occurrences']} ({r['coverage']['share']:.1%}) |",
        f"| MAP on codes seen / not seen in training | {_fmt(r['map_seen'])} / {_fmt(r['map_unseen'])} |",
    ]
    for name, title in (("served", "served combination"), ("without_classifier", "without the classifier"), ("descriptions_only", "description scorer alone")):
        c = r.get("combinations", {}).get(name)
        if c:
            lines.append(f"| {title}: official MAP / seen / unseen / micro-F1 (all codes) | {_fmt(c['official_map'])} / {_fmt(c['map_seen'])} / "
                         f"{_fmt(c['map_unseen'])} / {_fmt(c['all_codes_micro_f1'])} |")
    if "ci_confidence" in r:
        lines += ["", f"Intervals: {r['ci_confidence']:.0%} bootstrap percentile intervals over notes."]
    if "auc_by_train_frequency" in r:
        lines += ["", "## Macro-AUC by training frequency (Table 3)", "", "| training notes | codes | evaluated | macro-AUC |", "|---|---|---|---|"]
        lines += [f"| {b['bin']} | {b['codes']} | {b['evaluated']} | {_fmt(b['macro_auc'])} |" for b in r["auc_by_train_frequency"]]
        low = r["low_frequency"]
        lines += ["", f"Low-frequency slice ({low['train_positives']} training notes): macro-AUC {_fmt(low['macro_auc'])} over {low['codes']} codes."]
    ranked = sorted((c for c in r["per_code"] if c["auc"] is not None), key=lambda c: -c["auc"])
    lines += ["", f"## Per-code AUC (Table 4): best and worst {top}", "", "| code | description | AUC | positives | training positives |", "|---|---|---|---|---|"]
    shown = ranked if len(ranked) <= 2 * top else ranked[:top] + ranked[-top:]
    lines += [f"| {c['code']} | {c['description'][:60]} | {c['auc']:.4f} | {c['positives']} | {c['train_positives']} |" for c in shown]
    if r["report_notes"]:
        lines += ["", "## Notes", "", *[f"- {n}" for n in r["report_notes"]]]
    return "\n".join(lines) + "\n"


def plot_auc_distribution(result: dict[str, Any], path: Path) -> Path:
    """Figure 2: histogram of per-code AUC, and AUC against training frequency."""
    rows = [c for c in result["per_code"] if c["auc"] is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist([c["auc"] for c in rows], bins=20, range=(0, 1), color="tab:blue")
    axes[0].set_xlabel("per-code AUC")
    axes[0].set_ylabel("codes")
    axes[0].set_title(f"{len(rows)} codes with positives ({result['split']})")
    if rows and rows[0]["train_positives"] is not None:
        axes[1].scatter([max(c["train_positives"], 0.8) for c in rows], [c["auc"] for c in rows], s=8, alpha=0.6)
        axes[1].set_xscale("log")
        axes[1].set_xlabel("training notes with the code")
    axes[1].set_ylabel("AUC")
    axes[1].set_title("AUC vs training frequency")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split = result["split"]
    paths = {"json": out_dir / f"eval_{split}.json", "markdown": out_dir / f"eval_{split}.md", "csv": out_dir / f"per_code_auc_{split}.csv", "png": out_dir / f"auc_distribution_{split}.png"}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(result), encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["code", "description", "auc", "positives", "train_positives"])
        writer.writeheader()
        writer.writerows(result["per_code"])
    plot_auc_distribution(result, paths["png"])
    return paths

"""Evidence context (issue 17): the classifier on the hand-labelled sets, and the context policy's effect on the
engine's suggestions for CodiEsp.

1. Classification: per-class precision/recall on ``tests/data/context/report.jsonl`` (labelled after the rules
   were frozen; the figure that counts) and on ``dev.jsonl`` (the set the rules were tuned on; shown for
   comparison, never for a goal). Goal: negation recall >= 0.90 and precision >= 0.85.
2. Policy: the served combination (the quality family's served row fused with the description scorer, reused when
   built), exported, and
   the engine's ``NoteProcessor`` (de-identify, segment, onnxruntime, aggregate, context) run on CodiEsp notes
   with every policy action "keep", so each suggestion's evidence is classified once; every policy variant is
   then applied to the same suggestions (``engine.pipeline.context.apply_policy``, the engine's own function).
   Measured on a train slice (where the default is chosen) and on dev (the report split): precision, recall and
   micro-F1 of the suggested codes against the gold codes, and CodiEsp's official MAP (per note, average
   precision of the ranked codes over ALL its gold codes, codes outside the label space included, then the
   mean over notes): the ranking is the engine's per-note score map (codes above the audit floor) with the
   policy's demoted scores, suppressed codes left out.
3. Cost: the context stage's milliseconds per note in that run, beside inference's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from bench.artifacts import MODEL_NAME, Artifacts
from bench.common import BenchConfig, Stopwatch, say
from trainer.evaluate.ranking import average_precision

POLICIES = {  # name -> (negated action, family action)
    "none (context flagged only)": ("keep", "keep"),
    "negated: demote": ("demote", "keep"),
    "negated: suppress": ("suppress", "keep"),
    "negated + family: demote": ("demote", "demote"),
    "negated + family: suppress": ("suppress", "suppress"),
}
BASELINE = "none (context flagged only)"


def classification(cfg: BenchConfig) -> dict[str, Any]:
    from bench.context_eval.labelled import load_set
    from bench.context_eval.scoring import predict, score

    out = {}
    for name in ("report", "dev"):
        items, docs = load_set(name, cfg.data_dir)
        with Stopwatch() as sw:
            predicted = predict(items, docs)
        result = score(items, predicted)
        result["ms_per_mention"] = round(sw.seconds * 1000 / max(len(items), 1), 3)
        out[name] = result
        say(f"context: {name} set, {len(items)} mentions, accuracy {result['accuracy']}, negation P {result['per_class']['negated']['precision']} "
            f"R {result['per_class']['negated']['recall']}")
    return out


def _model_repository(art: Artifacts) -> tuple[Path, str]:
    """The quality family's served combination (its classifier row, trained here if not yet, plus the description
    scorer and fusion), exported once: the policy is measured on what the engine serves."""
    from bench.families import quality
    from trainer.export.repository import ExportOptions, export_model

    row = quality.served_row(art.cfg)
    if row is None:
        raise RuntimeError("this bench mode has no served row (quality_presets leaves out EHR-BERT + XML)")
    run_dir = quality.row_dir(art, row)
    if not (run_dir / "thresholds.json").is_file():
        say(f"context: training quality row {row.name!r} ...")
        quality.train_row(art.cfg, art, row)
    quality.fuse_served(art.cfg, art, run_dir)
    repo = art.root / "context" / "model_repository"
    if not (repo / MODEL_NAME / "1" / "model.onnx").is_file():
        export_model(run_dir, repo, ExportOptions(name=MODEL_NAME, variants=("cpu-python",)))
    return repo, f"{row.name} + description scorer (the served combination)"


def _read_split(dataset: Path, split: str, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in (dataset / f"{split}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def code_notes(repo: Path, rows: Sequence[dict], threads: int) -> list:
    """Every note through the engine's NoteProcessor, context classified, no policy applied."""
    from bench.docref import document_reference
    from engine.infra.model import load_runtime
    from engine.pipeline.context import ContextClassifier, ContextStage
    from engine.pipeline.infer.local import LocalOnnxBackend
    from engine.pipeline.processor import NoteProcessor
    from engine.pipeline.types import ProcessedNote, SourceRecord
    from schemas.context import ContextPolicy
    from schemas.settings import EngineSettings, ModelSettings

    runtime = load_runtime(repo, MODEL_NAME)
    processor = NoteProcessor(runtime, LocalOnnxBackend(runtime.onnx_path, intra_op_threads=threads), EngineSettings(model=ModelSettings(repository=repo)))
    processor.context = ContextStage(ContextClassifier(), ContextPolicy(negated="keep", family="keep"))
    records = [SourceRecord(value=json.dumps(document_reference(r["text"], doc_id=f"ctx-{i}", subject=f"Patient/ctx-{i}")).encode()) for i, r in enumerate(rows)]
    out: list = []
    try:
        for start in range(0, len(records), 32):
            out += processor.process_batch(records[start : start + 32])
    finally:
        processor.close()
    bad = [r for r in out if not isinstance(r, ProcessedNote)]
    if bad:
        raise RuntimeError(f"{len(bad)} CodiEsp notes failed in the engine, e.g. {bad[0]}")
    return out


def policy_effect(notes: Sequence, rows: Sequence[dict]) -> dict[str, Any]:
    from engine.pipeline.context import apply_policy
    from schemas.context import ContextPolicy

    out: dict[str, Any] = {}
    for name, (negated, family) in POLICIES.items():
        policy = ContextPolicy(negated=negated, family=family)
        tp = fp = fn = changed = changed_gold = 0
        aps = []
        for note, row in zip(notes, rows):
            gold = set(row["codes"])
            shown, withheld = apply_policy(note.suggestions, policy)
            scores = dict(note.scores)
            for s in withheld:
                scores.pop(s.code, None)
            for s in shown:
                if s.policy == "demoted":
                    scores[s.code] = s.score
            suggested = {s.code for s in shown if s.policy is None}
            affected = [s.code for s in shown if s.policy] + [s.code for s in withheld]
            changed += len(affected)
            changed_gold += sum(c in gold for c in affected)
            tp += len(suggested & gold)
            fp += len(suggested - gold)
            fn += len(gold - suggested)
            aps.append(average_precision(sorted(scores, key=lambda c: -scores[c]), gold))
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / (tp + fn) if tp + fn else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
        out[name] = {"negated": negated, "family": family, "precision": _r(precision), "recall": _r(recall), "micro_f1": _r(f1),
                     "official_map": _r(sum(aps) / len(aps)) if aps else None, "suggestions": tp + fp,
                     "suggestions_changed": changed, "changed_that_were_gold": changed_gold}
    return out


def context_counts(notes: Sequence) -> dict[str, int]:
    counts: dict[str, int] = {}
    for note in notes:
        for s in note.suggestions:
            key = s.context or "unclassified"
            counts[key] = counts.get(key, 0) + 1
    return counts


def choose_default(train: dict[str, Any]) -> dict[str, Any]:
    """The variant with the best official MAP on the train slice (micro-F1 breaks ties; "none" wins a full tie)."""
    best = max(train, key=lambda n: (train[n]["official_map"] or 0.0, train[n]["micro_f1"] or 0.0, n == BASELINE))
    return {"variant": best, "negated": train[best]["negated"], "family": train[best]["family"], "chosen_on": "train slice (official MAP, then micro-F1)"}


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    result: dict[str, Any] = {"what": "evidence-context classifier on hand-labelled sentences; context policy on the engine's CodiEsp suggestions",
                              "classification": classification(cfg)}
    repo, row_name = _model_repository(art)
    train_notes = 100 if cfg.quick else 250
    splits = {"train": _read_split(art.dataset, "train", train_notes), art.eval_split: _read_split(art.dataset, art.eval_split, None)}
    policy: dict[str, Any] = {"model": row_name, "splits": {}}
    stage_ms = infer_ms = 0.0
    n = 0
    for split, rows in splits.items():
        say(f"context: coding {len(rows)} CodiEsp {split} notes through the engine ...")
        notes = code_notes(repo, rows, cfg.threads)
        policy["splits"][split] = {"notes": len(rows), "suggestion_contexts": context_counts(notes), "policies": policy_effect(notes, rows)}
        stage_ms += sum(note.timings_ms.get("context", 0.0) for note in notes)
        infer_ms += sum(note.timings_ms.get("infer", 0.0) for note in notes)
        n += len(notes)
    policy["default"] = choose_default(policy["splits"]["train"]["policies"])
    policy["report_split"] = art.eval_split
    result["policy"] = policy
    result["cost"] = {"notes": n, "context_ms_per_note": round(stage_ms / max(n, 1), 3), "infer_ms_per_note": round(infer_ms / max(n, 1), 3),
                      "context_share_of_infer": round(stage_ms / infer_ms, 4) if infer_ms else None}
    return result


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)

"""The paper's Table 2/3 on public data as an ablation table: CodiEsp English diagnosis codes, every row a
``trainer finetune`` preset trained on train minus a 20% selection slice, selected (stopping step, thresholds,
fusion weights) on that slice, evaluated by ``trainer.evaluate.evaluation`` on the report split (test when the
dataset has one, else dev, which then nothing was tuned on). Plus the vocabulary comparison of 4.2.1 and what the
EHR-BERT pretraining reached (loss curve, held-out loss, fill-mask examples).

Rows are configs, never code: ``TABLE2_PRESETS`` with an encoder (EHR-BERT pretrained here, or the "Finetuned
BERT": MiniLM with continued MLM) and the mode's sizes; the last three rows are the served combination and two
ablations of it (``trainer fuse`` on the served row's run: one evaluation gives the three).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.artifacts import Artifacts, read_json
from bench.common import BenchConfig, Stopwatch, say

log = logging.getLogger(__name__)
LOW_FREQUENCY_MAX = 10  # Table 3's low-frequency slice at CodiEsp scale: codes with 1-10 training notes
COMBINATIONS = {"served": "Served combination (EHR-BERT 512 + XML, descriptions, examples, kNN)",
                "without_classifier": "Training examples + kNN + descriptions, no classifier",
                "descriptions_only": "Description scorer alone (titles and inclusion terms)"}
FILL_MASK = ("the patient was admitted with acute [MASK] and fever .", "no chest [MASK] or shortness of breath .",
             "history of type 2 diabetes [MASK] and hypertension .", "the biopsy confirmed a [MASK] carcinoma .",
             "ultrasound showed a [MASK] cyst of 3 cm .")


@dataclass(frozen=True)
class Row:
    name: str  # as printed in the table
    preset: str  # trainer.models.TABLE2_PRESETS key
    encoder: str | None  # "ehr", "finetuned-bert" or None
    max_length: int | None = None  # None: the preset's
    served: bool = False  # the row the served combination fuses with the description scorer


def table_rows(cfg: BenchConfig) -> list[Row]:
    sizes = cfg.sizes
    lengths = sizes.bert_lengths
    first, longest = min(lengths), max(lengths)
    rows = [Row("Logistic regression (TF-IDF)", "logreg", None), Row("Bi-GRU attention", "bigru-attention", "ehr", longest),
            Row(f"EHR-BERT {first} [CLS]", "bert-cls-512", "ehr", first)]
    rows += [Row(f"EHR-BERT {n} + XML", "bert-xml-512", "ehr", n, served=n == first) for n in lengths]
    rows.append(Row(f"EHR-BERT {first} + XML, random label init", "bert-xml-1024-random-labels", "ehr", first))
    if sizes.finetuned_bert:
        rows.append(Row(f"Finetuned BERT (MiniLM + clinical MLM) {first} + XML", "bert-xml-512", "finetuned-bert", first))
    return [r for r in rows if not sizes.quality_presets or r.preset in sizes.quality_presets]


def served_row(cfg: BenchConfig) -> Row | None:
    return next((r for r in table_rows(cfg) if r.served), None)


def speed_model_row(cfg: BenchConfig) -> Row | None:
    """The row whose trained (and fused) model the speed families run, when the mode has one of their shape
    (EHR-BERT + XML, speed-sized encoder): speed and overhead are then measured on a model whose suggestions are
    realistic, not on untrained weights that flag hundreds of codes per note."""
    sizes = cfg.sizes
    if sizes.speed_encoder != sizes.pretrain_encoder:
        return None
    return served_row(cfg)


def row_dir(art: Artifacts, row: Row) -> Path:
    return art.root / "quality" / re.sub(r"[^a-z0-9]+", "-", row.name.lower().replace("+", " plus ")).strip("-")


def train_row(cfg: BenchConfig, art: Artifacts, row: Row) -> Path:
    """Fine-tune ``row`` into ``row_dir`` (the run directory ``trainer.evaluate.evaluation``/``trainer.export.repository`` read)."""
    coder, tokenizer = _coder(row, cfg, art)
    out = row_dir(art, row)
    finetune_row(cfg, art.dataset, out, coder, tokenizer)
    return out


def finetune_row(cfg: BenchConfig, data: Path, out: Path, coder, tokenizer: Path | None, max_steps: int | None = None) -> Path:
    """``trainer.finetune.train.finetune`` with the mode's optimisation settings: pretrained encoders at
    ``encoder_lr`` with the head at ``head_lr``; the bi-GRU (no pretrained encoder) all at ``head_lr``."""
    import torch

    from trainer.finetune.train import FINETUNE_OPTIM_DEFAULTS, FinetuneOptions, finetune
    from trainer.training import override

    torch.set_num_threads(cfg.threads)
    sizes = cfg.sizes
    from_scratch = coder.architecture == "bigru-attention"
    optim = override(FINETUNE_OPTIM_DEFAULTS, {
        "lr": sizes.head_lr if from_scratch else sizes.encoder_lr, "head_lr": sizes.head_lr, "epochs": sizes.finetune_epochs, "batch_size": 8,
        "log_every": 5, "seed": cfg.seed, "precision": sizes.precision, "max_steps": sizes.finetune_max_steps if max_steps is None else max_steps,
    })
    options = FinetuneOptions(patience=sizes.finetune_patience, device="cpu")
    return finetune(data, out, coder, optim, options, tokenizer_path=tokenizer)


def _coder(row: Row, cfg: BenchConfig, art: Artifacts):
    from trainer.models.config import TABLE2_PRESETS

    coder = TABLE2_PRESETS[row.preset]
    changes: dict[str, Any] = {}
    if row.max_length:
        changes["max_length"] = row.max_length
    tokenizer: Path | None = art.vocab / "tokenizer.json"
    if row.encoder == "ehr":
        changes["encoder"] = str(art.ehr_encoder)
    elif row.encoder == "finetuned-bert":
        changes["encoder"] = str(art.finetuned_bert)
        tokenizer = art.finetuned_bert / "tokenizer.json"
    if row.preset == "bigru-attention":
        changes.update(cfg.sizes.bigru)
    if row.preset == "logreg":
        tokenizer = None
        changes["logreg_max_features"] = cfg.sizes.logreg_max_features
    return coder.with_(**changes), tokenizer


def fuse_served(cfg: BenchConfig, art: Artifacts, run_dir: Path) -> None:
    """``trainer fuse`` on the served row's run (description scorer + fusion chosen on the selection slice)."""
    import torch

    from trainer.describe.fuse import FuseOptions, fuse_run, has_descriptions
    from trainer.describe.tune import TuneOptions

    if has_descriptions(run_dir):
        return
    torch.set_num_threads(cfg.threads)
    fuse_run(run_dir, art.dataset, FuseOptions(cache_dir=art.cfg.work_dir / "cache", candidates=cfg.sizes.description_candidates,
                                               tune=TuneOptions(max_steps=cfg.sizes.description_tune_steps)))


KEEP = ("notes", "codes", "codes_with_positives", "micro_auc", "macro_auc", "macro_auc_codes", "map", "map_notes", "micro_f1", "macro_f1",
        "precision_at_k", "low_frequency", "auc_by_train_frequency", "micro_auc_ci", "macro_auc_ci", "report_notes", "official_map",
        "official_map_notes", "coverage", "candidate_codes", "map_seen", "map_unseen", "map_unseen_notes", "gold_occurrences_unseen_in_training",
        "all_codes_micro_f1", "fusion")


def evaluate_row(run_dir: Path, art: Artifacts, quick: bool) -> dict[str, Any]:
    from trainer.evaluate.evaluation import EvaluationConfig, evaluate_run, write_report

    config = EvaluationConfig(split=art.eval_split, bootstrap=0 if quick else 200, low_frequency_max=LOW_FREQUENCY_MAX, device="cpu")
    result = evaluate_run(run_dir, art.dataset, config)
    write_report(result, run_dir / "evaluation")  # JSON, Markdown, CSV, AUC-distribution PNG beside the run
    out = {k: result[k] for k in KEEP if k in result}
    out["combinations"] = {name: {k: block[k] for k in KEEP if k in block} for name, block in result.get("combinations", {}).items()
                           if isinstance(block, dict)}
    return out


def vocabulary_comparison(art: Artifacts) -> dict[str, Any]:
    from schemas.text import load_tokenizer
    from trainer.encoder import minilm_dir
    from trainer.vocab import oov_comparison

    held_out = art.corpus.held_out
    comparison = oov_comparison({"general English (MiniLM uncased WordPiece)": load_tokenizer(minilm_dir()), "EHR (trained here)": load_tokenizer(art.vocab)}, held_out)
    return {"held_out_notes": len(held_out), "deidentified": art.cfg.sizes.prepare_deid, "paper_oov_per_note": {"general": 49.2, "ehr": 0.93}, "vocabularies": comparison}


def fill_mask_examples(model_dir: Path, top: int = 5) -> list[dict[str, Any]]:
    """The pretrained encoder's top predictions for [MASK] in a few clinical sentences (paper Figure 1)."""
    from trainer.cli.fill_mask import MaskFiller

    filler = MaskFiller(model_dir)
    return [{"text": text, "predictions": [[p.token for p in slot] for slot in filler(text, top)]} for text in FILL_MASK]


def pretraining_report(art: Artifacts) -> dict[str, Any] | None:
    """Per phase: steps, length, tokens/s, first/final/held-out loss and the loss history (the curve)."""
    phases = []
    for path in art.pretrain_phase_dirs:
        if not (path / "summary.json").is_file():
            return None
        s = read_json(path / "summary.json")
        phases.append({"phase": path.name, "max_length": s.get("setup", {}).get("max_length"), "png": str(path / "loss.png"),
                       **{k: s.get(k) for k in ("steps", "tokens", "tokens_per_s", "elapsed_s", "first_loss", "final_loss", "held_out_loss", "precision", "loss_history")}})
    return {"phases": phases, "held_out_loss": phases[-1]["held_out_loss"] if phases else None, "goal_held_out_loss": 3.0}


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    say("quality: dataset, vocabulary, EHR-BERT pretraining (reused when built)")
    vocab = vocabulary_comparison(art)
    rows_out = []
    rows = table_rows(cfg)
    for i, row in enumerate(rows, 1):
        say(f"quality row {i}/{len(rows)}: {row.name}")
        out = row_dir(art, row)
        entry: dict[str, Any] = {"row": row.name, "preset": row.preset, "encoder": row.encoder}
        try:
            coder, _ = _coder(row, cfg, art)
            entry["recipe"] = _recipe(cfg, coder)
            entry["max_length"] = coder.max_length if coder.architecture != "logreg" else None
            entry["reused_run"] = (out / "thresholds.json").is_file()  # a finished run from an earlier bench: its time is not this run's
            with Stopwatch() as train_sw:
                if not entry["reused_run"]:
                    train_row(cfg, art, row)
            with Stopwatch() as fuse_sw:
                if row.served:
                    fuse_served(cfg, art, out)
            with Stopwatch() as eval_sw:
                metrics = evaluate_row(out, art, cfg.quick)
            entry["metrics"] = {k: v for k, v in metrics.items() if k != "combinations"}
            entry.update(train_seconds=round(train_sw.seconds, 1), eval_seconds=round(eval_sw.seconds, 1), run_dir=str(out))
            entry["training"] = _training_facts(out)
            m = entry["metrics"]
            say(f"  official MAP {m.get('official_map')}, label-space MAP {m.get('map')}, micro-AUC {m.get('micro_auc')} ({train_sw.seconds + eval_sw.seconds:.0f} s)")
            rows_out.append(entry)
            for name, block in metrics.get("combinations", {}).items():
                rows_out.append({"row": COMBINATIONS.get(name, name), "combination": name, "base_row": row.name, "metrics": block,
                                 "recipe": {**entry["recipe"], "fusion": block.get("fusion")}, "max_length": entry["max_length"],
                                 "train_seconds": round(train_sw.seconds + fuse_sw.seconds, 1), "fuse_seconds": round(fuse_sw.seconds, 1),
                                 "eval_seconds": round(eval_sw.seconds, 1), "reused_run": entry["reused_run"], "run_dir": str(out)})
                say(f"  {name}: official MAP {block.get('official_map')} (unseen {block.get('map_unseen')})")
        except Exception as err:  # noqa: BLE001 - one broken row must not hide the others; it is reported
            log.exception("quality row %s failed", row.name)
            entry["error"] = f"{type(err).__name__}: {err}"[:500]
            rows_out.append(entry)
    pretraining = pretraining_report(art) if art.is_built("ehr_encoder") else None
    if pretraining is not None:
        try:
            pretraining["fill_mask"] = fill_mask_examples(art.ehr_encoder)
        except Exception as err:  # noqa: BLE001 - the table matters more than the examples
            pretraining["fill_mask_error"] = f"{type(err).__name__}: {err}"[:300]
    return {
        "what": "CodiEsp English diagnosis codes (ICD-10-CM), paper Table 2/3 rows at CPU-feasible sizes, plus the served combination and its ablations",
        "dataset": str(art.dataset), "train_split": "train minus the selection slice", "selection_split": _selection(art),
        "report_split": art.eval_split,
        "report_split_note": None if art.eval_split == "test" else
        "CodiEsp here has no test split: metrics are on dev, which nothing was tuned on (stopping steps, thresholds and fusion weights "
        "were chosen on a 20% slice of train; dev text was not used for the vocabulary or pretraining either)",
        "low_frequency_slice": f"codes with 1-{LOW_FREQUENCY_MAX} training notes",
        "vocabulary": vocab, "ehr_encoder": str(art.ehr_encoder) if art.is_built("ehr_encoder") else None,
        "ehr_pretraining": pretraining, "rows": rows_out,
    }


def _selection(art: Artifacts) -> str:
    from trainer.data.dataset import selection_split

    return selection_split(art.dataset).description


def _recipe(cfg: BenchConfig, coder) -> dict[str, Any]:
    """What a row was trained with (kept in the results so the table can be reproduced)."""
    sizes = cfg.sizes
    recipe: dict[str, Any] = {"coder": {k: v for k, v in vars(coder).items() if v is not None}}
    if coder.architecture != "logreg":
        recipe["optim"] = {"lr": sizes.head_lr if coder.architecture == "bigru-attention" else sizes.encoder_lr, "head_lr": sizes.head_lr,
                           "max_epochs": sizes.finetune_epochs, "patience": sizes.finetune_patience, "batch_size": 8, "warmup_ratio": 0.1,
                           "schedule": "linear warm-up, linear decay", "precision": sizes.precision, "select_metric": "label-space MAP on the selection slice"}
    return recipe


def _training_facts(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "training_summary.json"
    if not path.is_file():
        return {}
    s = read_json(path)
    t = s.get("training") or {}
    return {"best_step": s.get("best_step"), "steps": t.get("steps"), "steps_per_epoch": s.get("steps_per_epoch"), "stopped_early": s.get("stopped_early"),
            "tokens_per_s": t.get("tokens_per_s"), "precision": t.get("precision")}

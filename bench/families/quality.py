"""The paper's Table 2/3 on public data: CodiEsp English diagnosis codes, each row a ``trainer finetune``
preset trained on train, selected (early stopping, thresholds) on dev, evaluated by ``trainer.evaluate.evaluation`` on
test when the dataset has one, else on dev (said in the result). Plus the vocabulary comparison of 4.2.1.

Rows are configs, never code: ``TABLE2_PRESETS`` with the encoder (EHR-BERT pretrained here, or MiniLM
extended to 1,024 positions) and the mode's sizes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.artifacts import Artifacts
from bench.common import BenchConfig, Stopwatch, say

log = logging.getLogger(__name__)
LOW_FREQUENCY_MAX = 10  # Table 3's low-frequency slice at CodiEsp scale: codes with 1-10 training notes


@dataclass(frozen=True)
class Row:
    name: str  # as printed in the table
    preset: str  # trainer.models.TABLE2_PRESETS key
    encoder: str | None  # "ehr", "minilm" or None
    max_length: int | None = None  # None: the preset's (or the mode's longest BERT length)


def table_rows(cfg: BenchConfig) -> list[Row]:
    sizes = cfg.sizes
    rows = [Row("Logistic regression (TF-IDF)", "logreg", None), Row("Bi-GRU attention", "bigru-attention", "ehr", max(sizes.bert_lengths))]
    if sizes.minilm:
        rows += [Row("Off-the-shelf BERT (MiniLM, 1,024) [CLS]", "bert-cls-512", "minilm", 1024),
                 Row("Off-the-shelf BERT (MiniLM, 1,024) + XML", "bert-xml-1024", "minilm", 1024)]
    for length in sizes.bert_lengths:
        rows += [Row(f"EHR-BERT {length} [CLS]", "bert-cls-512", "ehr", length),
                 Row(f"EHR-BERT {length} + XML", "bert-xml-512", "ehr", length)]
    longest = max(sizes.bert_lengths)
    rows.append(Row(f"EHR-BERT {longest} + XML, random label init", "bert-xml-1024-random-labels", "ehr", longest))
    return [r for r in rows if not sizes.quality_presets or r.preset in sizes.quality_presets]


def speed_model_row(cfg: BenchConfig) -> Row | None:
    """The Table 2 row whose trained model the speed families run, when the mode has one of their shape
    (EHR-BERT + XML at the longest speed length, speed-sized encoder): speed and overhead are then measured on
    a model whose suggestions are realistic, not on untrained weights that flag hundreds of codes per note."""
    sizes = cfg.sizes
    if sizes.speed_encoder != sizes.pretrain_encoder:
        return None
    longest = max(sizes.speed_lengths)
    return next((r for r in table_rows(cfg) if r.preset == "bert-xml-512" and r.encoder == "ehr" and r.max_length == longest), None)


def row_dir(art: Artifacts, row: Row) -> Path:
    return art.root / "quality" / re.sub(r"[^a-z0-9]+", "-", row.name.lower().replace("+", " plus ")).strip("-")


def train_row(cfg: BenchConfig, art: Artifacts, row: Row) -> Path:
    """Fine-tune ``row`` into ``row_dir`` (the run directory ``trainer.evaluate.evaluation``/``trainer.export.repository`` read)."""
    coder, tokenizer = _coder(row, cfg, art)
    out = row_dir(art, row)
    finetune_row(cfg, art.dataset, out, coder, tokenizer)
    return out


def finetune_row(cfg: BenchConfig, data: Path, out: Path, coder, tokenizer: Path | None, max_steps: int | None = None) -> Path:
    """``trainer.finetune.train.finetune`` with the mode's optimisation settings."""
    import torch

    from trainer.finetune.train import FINETUNE_OPTIM_DEFAULTS, FinetuneOptions, finetune
    from trainer.training import override

    torch.set_num_threads(cfg.threads)
    sizes = cfg.sizes
    from_scratch_lr = 1e-3 if cfg.quick or coder.architecture == "bigru-attention" else 1e-4
    optim = override(FINETUNE_OPTIM_DEFAULTS, {
        "lr": from_scratch_lr, "epochs": sizes.finetune_epochs, "batch_size": 8, "log_every": 5, "seed": cfg.seed,
        "max_steps": sizes.finetune_max_steps if max_steps is None else max_steps,
    })
    options = FinetuneOptions(patience=0 if cfg.quick else 2, device="cpu")
    return finetune(data, out, coder, optim, options, tokenizer_path=tokenizer)


def _coder(row: Row, cfg: BenchConfig, art: Artifacts):
    from trainer.encoder import MINILM, minilm_dir
    from trainer.models.config import TABLE2_PRESETS

    coder = TABLE2_PRESETS[row.preset]
    changes: dict[str, Any] = {}
    if row.max_length:
        changes["max_length"] = row.max_length
    tokenizer: Path | None = art.vocab / "tokenizer.json"
    if row.encoder == "ehr":
        changes["encoder"] = str(art.ehr_encoder)
    elif row.encoder == "minilm":
        changes["encoder"] = MINILM
        tokenizer = minilm_dir() / "tokenizer.json"
    if row.preset == "bigru-attention":
        changes.update(cfg.sizes.bigru)
    if row.preset == "logreg":
        tokenizer = None
        changes["logreg_max_features"] = cfg.sizes.logreg_max_features
    return coder.with_(**changes), tokenizer


def evaluate_row(run_dir: Path, art: Artifacts, quick: bool) -> dict[str, Any]:
    from trainer.evaluate.evaluation import EvaluationConfig, evaluate_run, write_report

    config = EvaluationConfig(split=art.eval_split, bootstrap=0 if quick else 200, low_frequency_max=LOW_FREQUENCY_MAX, device="cpu")
    result = evaluate_run(run_dir, art.dataset, config)
    write_report(result, run_dir / "evaluation")  # JSON, Markdown, CSV, AUC-distribution PNG beside the run
    keep = ("notes", "codes", "codes_with_positives", "micro_auc", "macro_auc", "macro_auc_codes", "map", "map_notes", "micro_f1",
            "macro_f1", "precision_at_k", "low_frequency", "auc_by_train_frequency", "micro_auc_ci", "macro_auc_ci", "report_notes")
    return {k: result[k] for k in keep if k in result}


def vocabulary_comparison(art: Artifacts) -> dict[str, Any]:
    from schemas.text import load_tokenizer
    from trainer.encoder import minilm_dir
    from trainer.vocab import oov_comparison

    held_out = art.corpus.held_out
    comparison = oov_comparison({"general English (MiniLM uncased WordPiece)": load_tokenizer(minilm_dir()), "EHR (trained here)": load_tokenizer(art.vocab)}, held_out)
    return {"held_out_notes": len(held_out), "deidentified": art.cfg.sizes.prepare_deid, "paper_oov_per_note": {"general": 49.2, "ehr": 0.93}, "vocabularies": comparison}


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
            entry["max_length"] = coder.max_length if coder.architecture != "logreg" else None
            entry["reused_run"] = (out / "thresholds.json").is_file()  # a finished run from an earlier bench: its time is not this run's
            with Stopwatch() as train_sw:
                if not entry["reused_run"]:
                    train_row(cfg, art, row)
            with Stopwatch() as eval_sw:
                entry["metrics"] = evaluate_row(out, art, cfg.quick)
            entry.update(train_seconds=round(train_sw.seconds, 1), eval_seconds=round(eval_sw.seconds, 1), run_dir=str(out))
            m = entry["metrics"]
            say(f"  micro-AUC {m.get('micro_auc')}, macro-AUC {m.get('macro_auc')}, MAP {m.get('map')} ({train_sw.seconds + eval_sw.seconds:.0f} s)")
        except Exception as err:  # noqa: BLE001 - one broken row must not hide the others; it is reported
            log.exception("quality row %s failed", row.name)
            entry["error"] = f"{type(err).__name__}: {err}"[:500]
        rows_out.append(entry)
    pretrain_summary = art.ehr_encoder.parent / "summary.json" if art.is_built("ehr_encoder") else None
    return {
        "what": "CodiEsp English diagnosis codes (ICD-10-CM), paper Table 2/3 rows at CPU-feasible sizes",
        "dataset": str(art.dataset), "train_split": "train", "selection_split": "dev", "report_split": art.eval_split,
        "report_split_note": None if art.eval_split == "test" else
        "CodiEsp here has no test split: metrics are on dev, which also chose the stopping step and the thresholds (F1 is optimistic; AUC/MAP do not use thresholds)",
        "low_frequency_slice": f"codes with 1-{LOW_FREQUENCY_MAX} training notes",
        "vocabulary": vocab, "ehr_encoder": str(art.ehr_encoder),
        "ehr_pretraining": _read_optional(pretrain_summary), "rows": rows_out,
    }


def _read_optional(path: Path | None) -> dict[str, Any] | None:
    from bench.artifacts import read_json

    if path is None or not path.is_file():
        return None
    s = read_json(path)
    return {k: s.get(k) for k in ("steps", "tokens", "tokens_per_s", "elapsed_s", "first_loss", "final_loss", "held_out_loss", "real_token_share")}

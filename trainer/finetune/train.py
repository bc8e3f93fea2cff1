"""Fine-tuning an ICD coder (paper 4.2.2) and writing its run directory (``trainer.models.run_dir``).

AdamW (weight decay, no decay on biases/LayerNorm; the output layer with its own peak rate ``head_lr``),
linear warm-up then linear decay to 0, BCE with equal weights on note-level logits (max over segments, see
``finetune_data``), mixed precision, torchrun/DDP, checkpoints and exact resume: all from ``trainer.training``.

Selection (``trainer.data.dataset.selection_split``): the stopping step and the thresholds are chosen on a
slice of train (20% by patient) when the dataset has no test split, on dev otherwise; the report split is
never looked at here. The selection metric is the label-space MAP (ranking quality, what CodiEsp scores)
or micro-AUC (``FinetuneOptions.select_metric``); the split's BCE when it has no positives.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from tokenizers import Tokenizer
from torch import nn

from schemas.cli import UserError
from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams, TrainingSummary
from schemas.text import load_tokenizer, max_over_segments
from trainer.encoder import resolve_tokenizer
from trainer.evaluate.metrics import f1_at, macro_auc, mean_average_precision, micro_auc
from trainer.finetune.data import SegmentedNotes, collate_notes, label_matrix, pad_id_of, segment_max, segment_split
from trainer.finetune.thresholds import ThresholdReport, tune_thresholds
from trainer.models.config import CoderConfig
from trainer.models.logistic_regression import LogisticRegressionCoder
from trainer.models.predict import segment_logits, sigmoid
from trainer.models.prior import init_code_prior
from trainer.models.registry import build_coder
from trainer.models.run_dir import CHECKPOINT_DIR, SELECTION_METRICS_FILE, save_model_files, save_run_metadata
from trainer.training import (
    DistInfo,
    OptimConfig,
    TrainingLoop,
    barrier,
    broadcast_object,
    cleanup,
    config_hash,
    find_resume_checkpoint,
    hash_vocab,
    plot_loss_curve,
    setup_distributed,
    training_summary,
    unwrap,
    wrap_ddp,
)

if TYPE_CHECKING:
    from trainer.data.dataset import SelectionSplit

log = logging.getLogger(__name__)

# Paper 4.2.2: lr 2e-5, 10% warm-up, 3 epochs. Tiny test models want a higher lr (--lr). The output layer
# gets its own rate (--head-lr): measured on the CodiEsp selection slice, docs/finetuning.md.
FINETUNE_OPTIM_DEFAULTS = OptimConfig(lr=2e-5, head_lr=1e-3, warmup_ratio=0.1, epochs=3, batch_size=8, weight_decay=0.01, log_every=10)
BEST_WEIGHTS = "best.safetensors"
BEST_STATE = "best.json"


@dataclass(frozen=True)
class FinetuneOptions:
    patience: int = 2  # selection evaluations without improvement before stopping; 0: never stop early
    eval_every: int = 0  # optimizer steps between selection evaluations; 0: at the end of every epoch
    per_code_thresholds: bool = False
    per_code_min_positives: int = 5  # fewer selection positives: the code uses the global threshold
    select_metric: str = "map"  # "map" (label-space MAP) or "micro_auc"
    eval_batch_size: int = 16
    device: str | None = None  # None: CUDA when available


@dataclass
class SelectionTracker:
    """Model selection on the selection split, kept on disk beside the checkpoints so a resumed run selects the same."""

    best_value: float = -np.inf
    best_step: int = -1
    evaluations_since_best: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)
    metric: str = "micro_auc"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), default=float))

    @classmethod
    def load(cls, path: Path) -> "SelectionTracker":
        raw = json.loads(path.read_text())
        raw["history"] = [tuple(p) for p in raw["history"]]
        return cls(**raw)


class Selection:
    """Scores the selection notes (max over segments), keeps the best weights, decides early stopping (rank 0 decides)."""

    def __init__(self, dev: SegmentedNotes, pad_id: int, max_length: int, options: FinetuneOptions, info: DistInfo, out_dir: Path, resume: bool):
        if options.select_metric not in ("map", "micro_auc"):
            raise UserError(f"unknown selection metric {options.select_metric!r}; choose map or micro_auc")
        self.dev, self.pad_id, self.max_length, self.options, self.info = dev, pad_id, max_length, options, info
        self.best_weights = out_dir / CHECKPOINT_DIR / BEST_WEIGHTS
        self.state_path = out_dir / CHECKPOINT_DIR / BEST_STATE
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.tracker = SelectionTracker.load(self.state_path) if resume and self.state_path.is_file() else SelectionTracker(metric=options.select_metric)
        self.stopped_early = False

    def note_logits(self, bare: nn.Module) -> np.ndarray:
        logits = segment_logits(bare, self.dev.segments, self.pad_id, self.max_length, self.options.eval_batch_size, self.info.device)
        return max_over_segments(logits, [s.note_index for s in self.dev.segments], len(self.dev))

    def evaluated_at(self, step: int) -> bool:
        return bool(self.tracker.history) and self.tracker.history[-1][0] == step

    def evaluate(self, model: nn.Module, step: int) -> bool:
        """Evaluate at ``step``; True when training should stop early (same answer on every rank)."""
        stop = None
        if self.info.is_main:
            t = self.tracker
            scores = self.note_logits(unwrap(model))
            value = micro_auc(self.dev.targets, scores) if t.metric == "micro_auc" else mean_average_precision(self.dev.targets, scores)[0]
            if value is None:  # a selection split without positives: select on its loss instead
                t.metric = "neg_dev_bce"
                value = -float(F.binary_cross_entropy_with_logits(torch.from_numpy(scores), torch.from_numpy(self.dev.targets)))
            t.history.append((step, value))
            if value > t.best_value:
                t.best_value, t.best_step, t.evaluations_since_best = value, step, 0
                save_model(unwrap(model), str(self.best_weights))
            else:
                t.evaluations_since_best += 1
            t.save(self.state_path)
            log.info("step %d: selection %s %.4f (best %.4f at step %d)", step, t.metric, value, t.best_value, t.best_step)
            stop = bool(self.options.patience) and t.evaluations_since_best >= self.options.patience
        stop = bool(broadcast_object(stop, self.info))
        barrier(self.info)
        if stop:
            log.info("early stop at step %d: no improvement on the selection split in %d evaluations", step, self.options.patience)
            self.stopped_early = True
        return stop


def read_dataset(data_dir: Path) -> tuple[LabelSpace, "SelectionSplit"]:
    """The label space and the train/selection notes (``trainer.data.dataset.selection_split``)."""
    from trainer.data.dataset import load_label_space, selection_split

    try:
        return load_label_space(data_dir), selection_split(data_dir)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot read the dataset in {data_dir}: {err}") from None


def check_resume(coder: CoderConfig, optim: OptimConfig, options: FinetuneOptions, data_dir: Path, out_dir: Path, tokenizer: Tokenizer, info: DistInfo, resume: bool) -> str:
    """The run's config hash, after the resume checks (checkpoints of another configuration or vocabulary,
    checkpoints without ``resume``): they need no data, so they run before notes are read and segmented.
    ``coder`` is hashed as given, before ``build_coder`` fills in the vocabulary size: ``hash_vocab`` covers that."""
    run_hash = config_hash(coder, optim, options.patience, options.eval_every, str(data_dir.resolve()), hash_vocab(tokenizer), info.world_size)
    find_resume_checkpoint(out_dir, run_hash, resume)
    return run_hash


def note_bce(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """BCE with equal weights on note logits = max over the note's segments."""
    logits = model(batch["input_ids"], batch["attention_mask"]).logits.float()
    note_logits = segment_max(logits, batch["segment_note"], batch["targets"].shape[0])
    return F.binary_cross_entropy_with_logits(note_logits, batch["targets"])


def selection_metrics(targets: np.ndarray, scores: np.ndarray, report: ThresholdReport, labels: LabelSpace) -> dict[str, float]:
    """Headline numbers on the selection split for the summary (undefined ones are left out, never NaN)."""
    out: dict[str, float] = {}
    micro = micro_auc(targets, scores)
    macro, n_codes = macro_auc(targets, scores)
    predicted = scores >= report.thresholds.vector(labels.codes)
    micro_f1, macro_f1 = f1_at(targets, predicted)
    label_map = mean_average_precision(targets, scores)[0]
    for name, value in (("micro_auc", micro), ("macro_auc", macro), ("macro_auc_codes", float(n_codes)), ("micro_f1", micro_f1), ("macro_f1", macro_f1),
                        ("map", label_map)):
        if value is not None:
            out[name] = float(value)
    return out


def finetune(data_dir: Path, out_dir: Path, coder: CoderConfig, optim: OptimConfig = FINETUNE_OPTIM_DEFAULTS, options: FinetuneOptions = FinetuneOptions(), tokenizer_path: Path | None = None, resume: bool = False) -> Path:
    """Train ``coder`` on the training notes, select on the selection notes, and write ``out_dir`` as a run directory."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    segmentation = SegmentationParams(max_length=coder.max_length)
    if coder.architecture == "logreg":  # needs no tokenizer; one given is kept with the run
        tokenizer_file = resolve_tokenizer(None, tokenizer_path) if tokenizer_path else None
        return fit_logreg(data_dir, out_dir, coder, segmentation, tokenizer_file, options)
    tokenizer_path = resolve_tokenizer(coder.encoder, tokenizer_path)
    tokenizer = load_tokenizer(tokenizer_path)
    info = setup_distributed(options.device)
    try:
        run_hash = check_resume(coder, optim, options, data_dir, out_dir, tokenizer, info, resume)
        labels, split = read_dataset(data_dir)
        torch.manual_seed(optim.seed)  # the head's initialisation
        model, coder = build_coder(coder, labels, tokenizer)
        if hasattr(model, "return_attention"):
            model.return_attention = False  # the [B, C, T] attention is for evidence, not for the loss
        train = segment_split(split.train, tokenizer, segmentation, labels, "train")
        dev = segment_split(split.select, tokenizer, segmentation, labels, split.name)
        if not resume:
            init_code_prior(model, train.targets)  # output biases at the training log-odds (trainer.models.prior)
        pad_id = pad_id_of(tokenizer)
        model = wrap_ddp(model, info)
        selection = Selection(dev, pad_id, coder.max_length, options, info, out_dir, resume)

        def evaluate_dev(state) -> None:
            if selection.evaluate(model, state.step):
                loop.stop()  # early stop: ends after this step; the final checkpoint is still written

        def on_step(state, loss: float) -> None:
            if options.eval_every and state.step % options.eval_every == 0:
                evaluate_dev(state)

        loop = TrainingLoop(
            model, optim, info, out_dir, train.note_lengths(),
            make_batch=lambda indices, generator: collate_notes(train, indices, pad_id, coder.max_length),
            loss_fn=note_bce, run_hash=run_hash, resume=resume, on_step=on_step,
            on_epoch_end=None if options.eval_every else evaluate_dev, desc=f"finetune {coder.architecture}",
        )
        result = loop.run()
        if not selection.evaluated_at(result.state.step):
            selection.evaluate(model, result.state.step)
        tracker = selection.tracker
        if info.is_main:
            bare = unwrap(model)
            load_model(bare, str(selection.best_weights), device=str(info.device))
            scores = sigmoid(selection.note_logits(bare))
            report = tune_thresholds(dev.targets, scores, labels, options.per_code_thresholds, options.per_code_min_positives, split.name)
            metrics = selection_metrics(dev.targets, scores, report, labels)
            stats = training_summary(result.state.step, result.state.tokens, result.state.examples, result.state.elapsed_s, info.device, info.world_size,
                                     precision=loop.precision.precision)
            summary = TrainingSummary(
                dataset=data_dir.name, notes_per_split={"train": len(split.train), split.name: len(split.select)}, encoder=coder.encoder,
                selection=split.description, selection_metrics=metrics, steps_per_epoch=loop.batches_per_epoch // max(optim.grad_accum_steps, 1),
                architecture=coder.architecture, best_step=tracker.best_step, selection_metric=tracker.metric,
                stopped_early=selection.stopped_early,
                threshold_notes=report.notes, training=stats, resumed_from=str(result.resumed_from) if result.resumed_from else None,
            )
            if hasattr(bare, "return_attention"):
                bare.return_attention = True
            save_model_files(out_dir, bare, coder)
            save_run_metadata(out_dir, labels, report.thresholds, segmentation, summary, tokenizer_path)
            (out_dir / SELECTION_METRICS_FILE).write_text(json.dumps({"step": tracker.best_step, **metrics, "history": tracker.history}, indent=2) + "\n")
            plot_loss_curve(result.state.loss_history, out_dir / "loss_curve.png", title=f"{coder.architecture}: training loss (BCE)")
            plot_loss_curve(result.state.grad_norm_history, out_dir / "grad_norm_curve.png", title=f"{coder.architecture}: gradient norm before clipping", ylabel="gradient norm")
            plot_loss_curve(tracker.history, out_dir / "selection_curve.png", title=f"{split.name} {tracker.metric}", ylabel=tracker.metric)
            log.info("wrote %s (%s %s)", out_dir, split.name, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        barrier(info)
    finally:
        cleanup()
    return out_dir


def fit_logreg(data_dir: Path, out_dir: Path, coder: CoderConfig, segmentation: SegmentationParams, tokenizer_path: Path | None, options: FinetuneOptions) -> Path:
    """The TF-IDF logistic-regression baseline: fit on the training notes, thresholds on the selection notes,
    same run directory files."""
    labels, split = read_dataset(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_targets, _ = label_matrix(split.train, labels)
    select_targets, _ = label_matrix(split.select, labels)
    threads = torch.get_num_threads()  # this process's thread plan (trainer.cli sets torch's)
    model = LogisticRegressionCoder(coder.logreg_c, coder.logreg_max_features).fit([r.text for r in split.train], train_targets, threads=threads)
    scores = model.predict_proba([r.text for r in split.select])
    report = tune_thresholds(select_targets, scores, labels, options.per_code_thresholds, options.per_code_min_positives, split.name)
    metrics = selection_metrics(select_targets, scores, report, labels)
    model.save(out_dir)
    (out_dir / "coder_config.json").write_text(coder.to_json() + "\n", encoding="utf-8")
    summary = TrainingSummary(dataset=data_dir.name, notes_per_split={"train": len(split.train), split.name: len(split.select)}, encoder=None,
                              selection=split.description, selection_metrics=metrics, architecture="logreg", threshold_notes=report.notes)
    save_run_metadata(out_dir, labels, report.thresholds, segmentation, summary, tokenizer_path)  # tokenizer: optional here
    (out_dir / SELECTION_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("wrote %s (%s %s)", out_dir, split.name, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return out_dir

"""The fine-tuning run directory: what ``trainer finetune`` writes and ``trainer export``/``evaluate`` read.

    RUN_DIR/coder_config.json       CoderConfig (architecture, encoder, max_length, head sizes, ...)
    RUN_DIR/encoder_config.json     the BERT encoder's shape (BertConfig), so no pretrained weights are needed to load
    RUN_DIR/model.safetensors       all weights of the torch coder (logreg: logreg.joblib instead)
    RUN_DIR/labels.json             schemas.labels.LabelSpace (column order of the outputs)
    RUN_DIR/thresholds.json         schemas.model_repo.Thresholds (tuned on the selection split)
    RUN_DIR/segmentation.json       schemas.model_repo.SegmentationParams
    RUN_DIR/tokenizer.json          the tokenizer the model was trained with
    RUN_DIR/training_summary.json   schemas.model_repo.TrainingSummary
    RUN_DIR/selection_metrics.json, loss_curve.png, selection_curve.png, checkpoints/
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from pydantic import BaseModel
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import BertConfig

from schemas.labels import LabelSpace
from schemas.model_repo import SegmentationParams, Thresholds, TrainingSummary
from schemas.text import PAD, load_tokenizer
from trainer.models.config import CoderConfig
from trainer.models.output import CoderOutput
from trainer.models.registry import skeleton_coder

CONFIG_FILE = "coder_config.json"
ENCODER_CONFIG_FILE = "encoder_config.json"
WEIGHTS_FILE = "model.safetensors"
LABELS_FILE = "labels.json"
THRESHOLDS_FILE = "thresholds.json"
SEGMENTATION_FILE = "segmentation.json"
TOKENIZER_FILE = "tokenizer.json"
SUMMARY_FILE = "training_summary.json"
SELECTION_METRICS_FILE = "selection_metrics.json"
CHECKPOINT_DIR = "checkpoints"


class FinetunedCoder(nn.Module):
    """A fine-tuned torch coder in eval mode plus everything needed to use it."""

    def __init__(self, model: nn.Module, config: CoderConfig, labels: LabelSpace, thresholds: Thresholds, segmentation: SegmentationParams, run_dir: Path | None = None):
        super().__init__()
        self.model = model
        self.config = config
        self.labels = labels
        self.thresholds = thresholds
        self.segmentation = segmentation
        self.run_dir = run_dir
        self.eval()

    @property
    def architecture(self) -> str:
        return self.config.architecture

    @property
    def tokenizer_path(self) -> Path | None:
        return self.run_dir / TOKENIZER_FILE if self.run_dir else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CoderOutput:
        return self.model(input_ids, attention_mask)


def _write_json(path: Path, model: BaseModel) -> None:
    path.write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")


def save_model_files(run_dir: Path, model: nn.Module, config: CoderConfig) -> None:
    """Weights + the configs that rebuild the model's shape."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(config.to_json() + "\n", encoding="utf-8")
    encoder = getattr(model, "encoder", None)
    if encoder is not None:
        (run_dir / ENCODER_CONFIG_FILE).write_text(encoder.config.to_json_string(), encoding="utf-8")
    save_model(model, str(run_dir / WEIGHTS_FILE))


def save_run_metadata(run_dir: Path, labels: LabelSpace, thresholds: Thresholds, segmentation: SegmentationParams, summary: TrainingSummary, tokenizer_file: Path | None) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / LABELS_FILE, labels)
    _write_json(run_dir / THRESHOLDS_FILE, thresholds)
    _write_json(run_dir / SEGMENTATION_FILE, segmentation)
    _write_json(run_dir / SUMMARY_FILE, summary)
    if tokenizer_file is not None and Path(tokenizer_file).resolve() != (run_dir / TOKENIZER_FILE).resolve():
        shutil.copyfile(tokenizer_file, run_dir / TOKENIZER_FILE)


def read_run_metadata(run_dir: Path) -> tuple[CoderConfig, LabelSpace, Thresholds, SegmentationParams]:
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, LABELS_FILE, THRESHOLDS_FILE, SEGMENTATION_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a complete fine-tuning run directory: {name} is missing")
    config = CoderConfig.load(run_dir / CONFIG_FILE)
    if config.is_torch and not (run_dir / TOKENIZER_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a complete fine-tuning run directory: {TOKENIZER_FILE} is missing")
    return (
        config,
        LabelSpace.model_validate_json((run_dir / LABELS_FILE).read_text(encoding="utf-8")),
        Thresholds.model_validate_json((run_dir / THRESHOLDS_FILE).read_text(encoding="utf-8")),
        SegmentationParams.model_validate_json((run_dir / SEGMENTATION_FILE).read_text(encoding="utf-8")),
    )


def load_finetuned(run_dir: str | Path, device: str | torch.device = "cpu") -> FinetunedCoder:
    """Rebuild a fine-tuned torch coder from its run directory (eval mode, on ``device``)."""
    run_dir = Path(run_dir)
    config, labels, thresholds, segmentation = read_run_metadata(run_dir)
    if not config.is_torch:
        raise ValueError(f"{run_dir} holds a {config.architecture} model, which is not a torch coder (not exportable); use trainer.evaluate.evaluation for it")
    encoder_config = None
    if config.architecture in ("bert-xml", "bert-cls"):
        encoder_config = BertConfig.from_json_file(str(run_dir / ENCODER_CONFIG_FILE))
    pad_id = load_tokenizer(run_dir).token_to_id(PAD)
    model = skeleton_coder(config, len(labels), encoder_config, pad_id)
    try:
        missing, unexpected = load_model(model, str(run_dir / WEIGHTS_FILE), strict=False, device=str(device))
    except RuntimeError as err:  # shape mismatch, e.g. labels.json edited after training
        raise ValueError(f"{run_dir / WEIGHTS_FILE} does not fit {run_dir / CONFIG_FILE} with {len(labels)} codes: {str(err).splitlines()[0]}") from None
    if missing or unexpected:
        raise ValueError(f"{run_dir / WEIGHTS_FILE} does not match the {config.architecture} model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return FinetunedCoder(model, config, labels, thresholds, segmentation, run_dir).to(device)

"""Fine-tuning run directory -> a new version in a Triton model repository (layout: schemas.model_repo).

    <repository>/<name>/config.pbtxt                the primary variant (first of --variant)
    <repository>/<name>/configs/<variant>.pbtxt     every other variant (tritonserver --model-config-name)
    <repository>/<name>/<version>/model.onnx        fused (trainer.export.optimize); fp32, fp16 (--fp16) or int8 (--int8)
    <repository>/<name>/<version>/metadata.json     schemas.model_repo.ModelMetadata
    <repository>/<name>/<version>/tokenizer.json
    <repository>/<name>/<version>/model.py          cpu-python variant only (deploy/triton/python_backend)
    <repository>/<name>/<version>/descriptions/     a run with a description scorer (``trainer fuse``): its
    <repository>/<name>_descriptions/...            engine-side files, and its graph as a second Triton model
                                                    of the same version (``trainer.export.descriptions``)

A version is built in a hidden staging directory and renamed into place only after its ONNX graph matched
PyTorch and its config checked out, so a polling Triton never sees half a version and a failed export
leaves the repository as it was. Existing versions are never touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from schemas.cli import UserError
from schemas.context import ContextPolicy
from schemas.model_repo import (
    METADATA_FILE,
    ONNX_FILE,
    TOKENIZER_FILE,
    ModelMetadata,
    TrainingSummary,
    list_versions,
)
from schemas.phi import PLACEHOLDERS
from schemas.text import PAD, SPECIAL_TOKENS, load_tokenizer
from trainer.export.triton_config import (
    EXPECTED_INPUTS,
    PYTHON_BACKEND_MODEL,
    VARIANTS,
    ServingConfig,
    check_config,
    expected_outputs,
    onnx_signature,
    parse_config,
    render_config,
)

if TYPE_CHECKING:
    from trainer.export.onnx_graph import Parity
    from trainer.models import FinetunedCoder

log = logging.getLogger(__name__)
CONFIG_FILE = "config.pbtxt"
CONFIGS_DIR = "configs"  # tritonserver --model-config-name=<variant> reads configs/<variant>.pbtxt
SUMMARY_FILE = "training_summary.json"
# What an export needs besides the model itself (coder/encoder config, weights), which load_finetuned checks.
RUN_FILES = ("labels.json", "thresholds.json", "segmentation.json", SUMMARY_FILE, TOKENIZER_FILE)


@dataclass(frozen=True)
class ExportOptions:
    name: str = "bert_xml"
    variants: tuple[str, ...] = ("gpu-onnxruntime",)
    fp16: bool = False
    int8: bool = False  # dynamic int8 quantization (CPU serving); excludes fp16
    fuse: bool = True  # fused transformer operators (one Attention node per encoder layer); False: the plain graph
    top_k: int = 8
    version: int | None = None  # None: highest existing + 1
    serving: ServingConfig = field(default_factory=ServingConfig)
    tolerance: float | None = None  # parity bound; None: 1e-4 for fp32, 5e-2 for fp16 and int8
    context_policy: ContextPolicy = field(default_factory=ContextPolicy)  # what the engine does with negated/family evidence

    @property
    def precision(self) -> str:
        return "fp16" if self.fp16 else "int8" if self.int8 else "fp32"


@dataclass(frozen=True)
class ExportResult:
    model_dir: Path
    version: int
    version_dir: Path
    configs: tuple[Path, ...]
    metadata: ModelMetadata
    parity: "Parity"
    seconds: float
    fused_ops: dict[str, int] = field(default_factory=dict)  # fused operator -> nodes; empty when not fused


def check_run_dir(run_dir: Path) -> None:
    """Refuse a run directory without the files an export needs, before anything heavy is loaded."""
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise UserError(f"{run_dir} is not an exportable fine-tuning run: missing {', '.join(missing)}")


def read_training_summary(run_dir: Path) -> TrainingSummary:
    """The one run file ``load_finetuned`` does not read: it goes into the metadata as is."""
    try:
        return TrainingSummary.model_validate_json((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    except ValidationError as err:
        raise UserError(f"{run_dir / SUMMARY_FILE}: {_first_problem(err)}") from None


def load_coder(run_dir: Path) -> "FinetunedCoder":
    """The fine-tuned coder with its labels, thresholds and segmentation: the run directory read once."""
    from trainer.models import load_finetuned

    try:
        return load_finetuned(run_dir)
    except ValidationError as err:  # labels/thresholds/segmentation JSON of the wrong shape
        raise UserError(f"{run_dir}: {_first_problem(err)}") from None
    except (ValueError, FileNotFoundError) as err:
        raise UserError(f"cannot load the model in {run_dir}: {err}") from None


def _first_problem(err: ValidationError) -> str:
    """Schema, message and place only: never the offending input."""
    first = err.errors()[0]
    return f"not a valid {err.title}: {first['msg']} at {first['loc']}"


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or any(p.name.isdigit() for p in path.iterdir() if p.is_dir()))


def next_version(repository: Path, name: str, requested: int | None, companions: tuple[str, ...] = ()) -> int:
    """The version to write; refuses a repository that holds other things, or an existing version."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"model name {name!r}: use letters, digits, '_' and '-' only")
    if repository.exists() and not repository.is_dir():
        raise UserError(f"repository {repository} exists and is not a directory")
    if repository.is_dir():
        strangers = [p.name for p in repository.iterdir() if not p.name.startswith(".") and not _is_model_dir(p)]
        if strangers:
            raise UserError(f"{repository} does not look like a Triton model repository: {sorted(strangers)[:5]} are not "
                            f"model directories (config.pbtxt or numbered versions); choose an empty or new directory")
        model_dir = repository / name
        allowed = {CONFIG_FILE, CONFIGS_DIR}
        odd = [p.name for p in model_dir.iterdir() if not p.name.startswith(".") and p.name not in allowed and not p.name.isdigit()] if model_dir.is_dir() else []
        if odd:
            raise UserError(f"{model_dir} holds {sorted(odd)[:5]}, which trainer export does not write; refusing to add a version there")
    existing = sorted({v for model in (name, *companions) for v in list_versions(repository, model)})
    if requested is not None:
        if requested < 1:
            raise UserError(f"--version must be >= 1 (got {requested})")
        if requested in existing:
            raise UserError(f"{repository / name / str(requested)} already exists; versions are never overwritten (existing: {existing})")
        return requested
    return (existing[-1] + 1) if existing else 1


def _site_packages() -> str:
    """Where this interpreter's numpy/onnxruntime live: the cpu-python model.py puts it on sys.path."""
    return sysconfig.get_paths()["purelib"]


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def export_model(run_dir: Path, repository: Path, options: ExportOptions = ExportOptions()) -> ExportResult:
    """Export one fine-tuned run as a new version; raises UserError for anything the user can fix."""
    import torch

    from trainer.export.onnx_graph import ServedCoder, check_parity, convert_fp16, example_batch, export_onnx, transformer_encoders
    from trainer.export.optimize import fuse_encoder, quantize_int8

    started = time.monotonic()
    run_dir, repository = Path(run_dir), Path(repository)
    options = dataclasses.replace(options, variants=tuple(dict.fromkeys(options.variants)))
    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown or not options.variants:
        raise UserError(f"unknown variant(s) {unknown or '(none)'}; choose from {', '.join(VARIANTS)}")
    if options.top_k < 0:
        raise UserError(f"--top-k must be >= 0 (got {options.top_k})")
    if options.fp16 and options.int8:
        raise UserError("choose one of --fp16 (GPU) and --int8 (CPU)")
    check_run_dir(run_dir)
    summary = read_training_summary(run_dir)
    from trainer.describe.fuse import has_descriptions, load_descriptions
    from trainer.export.descriptions import scorer_model_name

    described = has_descriptions(run_dir)
    version = next_version(repository, options.name, options.version, (scorer_model_name(options.name),) if described else ())
    descriptions = load_descriptions(run_dir) if described else None
    coder = load_coder(run_dir)
    labels, segmentation, tokenizer_path = coder.labels, coder.segmentation, coder.tokenizer_path
    tokenizer = load_tokenizer(tokenizer_path)

    example = example_batch(tokenizer.get_vocab_size(), len(SPECIAL_TOKENS), lengths=(min(37, segmentation.max_length), 24, 9))
    with torch.no_grad():
        probe = coder(*example)
    top_k = options.top_k if probe.token_attention is not None else 0
    if options.top_k and not top_k:
        log.info("%s has no per-code token attention: exporting probs only (evidence_top_k=0)", coder.architecture)
    served = ServedCoder(coder, top_k)
    tolerance = options.tolerance or (1e-4 if options.precision == "fp32" else 5e-2)
    serving = options.serving
    if "cpu-python" in options.variants and not serving.site_packages:
        serving = dataclasses.replace(serving, site_packages=_site_packages())
    serving = dataclasses.replace(serving, pad_token_id=tokenizer.token_to_id(PAD))

    model_dir = repository / options.name
    new_model = not model_dir.exists()
    repository.mkdir(parents=True, exist_ok=True)
    # New model: stage the whole model dir; existing model: stage the version inside it. Hidden names and a
    # rename at the end: Triton's poll ignores them, and nothing is left behind on failure.
    staging_root = Path(tempfile.mkdtemp(prefix=f".{options.name}.export-", dir=repository if new_model else model_dir))
    scorer_stage: _StagedModel | None = None
    try:
        staged_model = staging_root if new_model else model_dir
        staged_version = staging_root / str(version)
        staged_version.mkdir()
        onnx_path = staged_version / ONNX_FILE
        log.info("exporting %s (%s, %d codes, top-k %d) to ONNX", run_dir, coder.architecture, len(labels), top_k)
        export_onnx(served, onnx_path, example, len(labels))
        encoders = transformer_encoders(coder)
        fused: dict[str, int] = {}
        if options.fuse and encoders:
            c = encoders[0].config
            fused = fuse_encoder(onnx_path, onnx_path, c.num_attention_heads, c.hidden_size, c.num_hidden_layers, full=options.fp16)
        if options.fp16:
            convert_fp16(onnx_path, onnx_path)
        if options.int8:
            fp32_path = onnx_path.with_name("fp32.onnx")
            os.replace(onnx_path, fp32_path)
            quantize_int8(fp32_path, onnx_path)
            fp32_path.unlink()
        batches = [tuple(t.numpy() for t in example_batch(tokenizer.get_vocab_size(), len(SPECIAL_TOKENS), lengths, seed))
                   for seed, lengths in enumerate([(20, 11), (min(64, segmentation.max_length), 40, 7, 3)])]
        parity = check_parity(served, onnx_path, batches, tie_gap=1e-5 if options.precision == "fp32" else tolerance)
        log.info("parity ONNX vs PyTorch (%s): %s", options.precision, parity)
        if not parity.within(tolerance):
            raise UserError(f"the exported graph does not reproduce the PyTorch model: {parity} (tolerance {tolerance:g}); nothing written")

        scorer_fields = {}
        if descriptions is not None:
            scorer_stage = _stage_scorer(descriptions, run_dir, repository, options, serving, version, staged_version)
            scorer_fields = {"description_scorer": scorer_stage.info, "fusion": descriptions.fusion.served}
        metadata = ModelMetadata(
            model_name=options.name, version=version, architecture=coder.architecture,
            created_at=dt.datetime.now(dt.timezone.utc), labels=labels, thresholds=coder.thresholds,
            segmentation=segmentation, tokenizer_file=TOKENIZER_FILE, deid_placeholders=PLACEHOLDERS,
            evidence_top_k=top_k, precision=options.precision, training=summary,
            context_policy=options.context_policy, **scorer_fields,
        )
        (staged_version / METADATA_FILE).write_text(metadata.model_dump_json(indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(tokenizer_path, staged_version / TOKENIZER_FILE)
        if "cpu-python" in options.variants:
            shutil.copyfile(PYTHON_BACKEND_MODEL, staged_version / "model.py")

        inputs, outputs = onnx_signature(onnx_path)
        if [s.name for s in inputs] != EXPECTED_INPUTS or [s.name for s in outputs] != expected_outputs(top_k):
            raise UserError(f"ONNX graph tensors {[s.name for s in inputs]} -> {[s.name for s in outputs]} differ from the contract")
        rendered = {}
        for i, variant in enumerate(options.variants):
            text = render_config(options.name, variant, inputs, outputs, serving)
            where = CONFIG_FILE if i == 0 else f"{CONFIGS_DIR}/{variant}.pbtxt"
            check_config(parse_config(text, where), inputs, outputs, where)
            rendered[where] = text

        config_paths = tuple(model_dir / where for where in rendered)
        if scorer_stage is not None:  # the scorer first: whoever sees the classifier's version finds its scorer
            config_paths += scorer_stage.publish()
        if new_model:
            for where, text in rendered.items():
                _write_text_atomic(staged_model / where, text)
            os.rename(staging_root, model_dir)
        else:
            os.rename(staged_version, model_dir / str(version))
            for where, text in rendered.items():
                _write_text_atomic(model_dir / where, text)
    finally:
        if staging_root.exists():
            shutil.rmtree(staging_root, ignore_errors=True)
        if scorer_stage is not None:
            scorer_stage.discard()

    seconds = time.monotonic() - started
    log.info("wrote %s version %d (%s) in %.1f s", model_dir, version, ", ".join(options.variants), seconds)
    return ExportResult(model_dir, version, model_dir / str(version), config_paths, metadata, parity, seconds, fused)


@dataclass
class _StagedModel:
    """A version of a companion model (the description scorer) built in a hidden staging directory."""

    model_dir: Path
    version: int
    root: Path  # staging: the whole model dir (new model) or the version dir's parent
    new_model: bool
    configs: dict[str, str]
    info: object  # schemas.model_repo.DescriptionScorerInfo

    def publish(self) -> tuple[Path, ...]:
        if self.new_model:
            for where, text in self.configs.items():
                _write_text_atomic(self.root / where, text)
            os.rename(self.root, self.model_dir)
        else:
            os.rename(self.root / str(self.version), self.model_dir / str(self.version))
            for where, text in self.configs.items():
                _write_text_atomic(self.model_dir / where, text)
        return tuple(self.model_dir / where for where in self.configs)

    def discard(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


def _stage_scorer(descriptions, run_dir: Path, repository: Path, options: ExportOptions, serving: ServingConfig, version: int,
                  classifier_version_dir: Path) -> _StagedModel:
    """Export the description scorer graph (parity-checked against PyTorch) and its configs to a staging
    directory, and write its engine-side files into the classifier's staged version."""
    from trainer.export.descriptions import check_scorer_parity, export_scorer_onnx, scorer_info, scorer_model_name, write_engine_files

    name = scorer_model_name(options.name)
    model_dir = repository / name
    new_model = not model_dir.exists()
    root = Path(tempfile.mkdtemp(prefix=f".{name}.export-", dir=repository if new_model else model_dir))
    staged = root / str(version)
    # a failure here must not leave the staging directory behind: Triton tries to load every directory of a
    # repository, hidden ones included, and refuses to start on a half-written one
    try:
        staged.mkdir()
        onnx_path = staged / ONNX_FILE
        log.info("exporting the description scorer (%d candidate codes) to ONNX", descriptions.fusion.candidates)
        export_scorer_onnx(descriptions, onnx_path)
        log.info("parity description scorer ONNX vs PyTorch: max |diff| %.2e", check_scorer_parity(descriptions, onnx_path))
        if "cpu-python" in options.variants:
            shutil.copyfile(PYTHON_BACKEND_MODEL, staged / "model.py")
        write_engine_files(descriptions, run_dir, classifier_version_dir)
        inputs, outputs = onnx_signature(onnx_path)
        scorer_serving = dataclasses.replace(serving, pad_token_id=descriptions.tokenizer.token_to_id(PAD))
        configs = {}
        for i, variant in enumerate(options.variants):
            text = render_config(name, variant, inputs, outputs, scorer_serving)
            where = CONFIG_FILE if i == 0 else f"{CONFIGS_DIR}/{variant}.pbtxt"
            check_config(parse_config(text, where), inputs, outputs, where)
            configs[where] = text
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return _StagedModel(model_dir, version, root, new_model, configs, scorer_info(descriptions, options.name))

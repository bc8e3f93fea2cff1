"""What every benchmark family shares: the run configuration, progress lines, timing and result files.

A family module exposes ``run(cfg: BenchConfig, artifacts: Artifacts) -> dict``; the dict is written to
``<out>/<family>.json`` with the machine description and the mode, and summarised in ``SUMMARY.md``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from schemas.cli import UserError

FAMILIES = ("quality", "inference", "training", "shared", "deid", "pipeline", "context", "workbench", "chaos", "gpu")
DEFAULT_FAMILIES = FAMILIES[:-1]  # `gpu` runs on request (--only gpu): the GPU check, or its CPU rehearsal
NO_DATA_FAMILIES = ("gpu",)  # families that need no public data (random inputs)


@dataclass(frozen=True)
class BenchSizes:
    """How much work each family does. ``QUICK`` is minutes on a 2-core CPU; ``FULL`` is sized from the per-row
    costs measured on the 2-core machine (bench/README.md, "Modes and expected time"), about 3 hours there."""

    # quality: EHR-BERT pretraining, in phases of (max length, optimizer steps), each continuing the previous
    pretrain_encoder: str = "cpu"  # trainer.encoder preset of the EHR-BERT pretrained here
    pretrain_encoder_overrides: dict[str, float] = field(default_factory=lambda: {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    pretrain_phases: tuple[tuple[int, int], ...] = ((128, 1500), (512, 100))  # ~6.5M tokens: ~40 min at 2 threads without native bf16
    pretrain_tokens_per_step: int = 4096  # batch = this // max length (32 x 128, 8 x 512)
    pretrain_lr: float = 1e-3
    precision: str = "auto"  # bf16 where it is faster (GPU; a CPU where a probe measures it), else fp32 (trainer.training.precision)
    # the paper's "Finetuned BERT": MiniLM + continued MLM on the same text
    minilm_mlm_steps: int = 300
    minilm_mlm_length: int = 256
    minilm_mlm_lr: float = 1e-4
    # fine-tuning: up to this many epochs, the best selection-slice step kept (patience below)
    finetune_epochs: int = 8
    finetune_max_steps: int = 0  # 0: whole epochs
    finetune_patience: int = 2
    encoder_lr: float = 5e-5  # pretrained encoders (EHR-BERT, MiniLM); the head has head_lr
    head_lr: float = 1e-3
    bert_lengths: tuple[int, ...] = (512, 1024)  # EHR-BERT + XML rows
    finetuned_bert: bool = True  # the "Finetuned BERT" row
    prepare_deid: bool = True
    logreg_max_features: int = 50_000  # TF-IDF uni+bigrams; liblinear time grows with it
    quality_presets: tuple[str, ...] = ()  # only these TABLE2_PRESETS rows; empty: every row
    bigru: dict[str, int] = field(default_factory=lambda: {"embedding_dim": 300, "gru_hidden": 256, "attention_heads": 50, "attention_dim": 128})
    description_candidates: str = "billable"  # the description scorer's candidates besides the label space (trainer.describe.catalogue.SCOPES)
    description_tune_steps: int = 0  # the sentence encoder's tuning (trainer fuse): 0 = its default epochs, else a cap on steps
    # speed
    speed_encoder: str = "cpu"  # encoder size of the model the speed benchmarks run
    speed_notes: int = 200  # MTSamples notes per speed measurement
    speed_lengths: tuple[int, ...] = (256, 512, 1024)
    speed_repeats: int = 2  # each inference measurement: best of this many passes (least disturbed by other load)
    training_steps: int = 30
    deid_notes: int = 300
    deid_words: int = 1000
    pipeline_notes: int = 200
    pipeline_rate: float = 0.0  # notes/s offered for the latency percentiles; 0: half the measured backlog throughput
    workbench_coders: int = 50  # simulated coders working the workbench at once (issue 16: 50 coders, 500 items)
    workbench_items: int = 500
    workbench_seconds: float = 60.0  # the fixed time; the run ends earlier when the queue is empty


FULL = BenchSizes()
QUICK = BenchSizes(
    pretrain_encoder="tiny", pretrain_phases=((64, 300), (128, 100)), pretrain_tokens_per_step=2048, minilm_mlm_steps=0,
    finetune_epochs=1, finetune_max_steps=150, finetune_patience=0, encoder_lr=1e-3, bert_lengths=(128,), finetuned_bert=False, prepare_deid=False,
    logreg_max_features=10_000, bigru={"embedding_dim": 64, "gru_hidden": 64, "attention_heads": 8, "attention_dim": 32},
    description_candidates="categories", description_tune_steps=10, speed_encoder="tiny", speed_notes=60, speed_lengths=(128, 256, 512), speed_repeats=3, training_steps=10,
    deid_notes=100, pipeline_notes=48, workbench_seconds=20.0,
)


def changed_sizes(base: BenchSizes, assignments: Sequence[str]) -> BenchSizes:
    """``base`` with ``KEY=VALUE`` changes (values are Python literals: numbers, strings, tuples, dicts)."""
    import ast
    import dataclasses

    known = {f.name for f in dataclasses.fields(BenchSizes)}
    changes = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or key.strip() not in known:
            raise UserError(f"--set {assignment!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}")
        try:
            changes[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise UserError(f"--set {assignment!r}: the value is not a Python literal") from None
    return dataclasses.replace(base, **changes)


@dataclass(frozen=True)
class BenchConfig:
    data_dir: Path
    out_dir: Path  # results: <family>.json, SUMMARY.md (small, commit-worthy)
    work_dir: Path  # models, datasets, server logs (large, git-ignored)
    quick: bool = False
    seed: int = 0
    sizes_override: BenchSizes | None = None  # e.g. the smoke test's tiny sizes
    threads: int = 1  # torch / onnxruntime intra-op threads: per-core figures on a shared machine

    @property
    def sizes(self) -> BenchSizes:
        if self.sizes_override is not None:
            return self.sizes_override
        return QUICK if self.quick else FULL

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"


def say(message: str) -> None:
    """A progress line with the wall-clock time (benchmarks run for minutes to hours)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def best_of(fn, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls: on a loaded shared machine the minimum is the least noisy."""
    times = []
    for _ in range(max(1, repeats)):
        with Stopwatch() as sw:
            fn()
        times.append(sw.seconds)
    return min(times)


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 90, 95, 99)) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, dtype=np.float64)
    return {f"p{p}": round(float(np.percentile(arr, p)), 3) for p in points} | {"max": round(float(arr.max()), 3), "n": len(values)}


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _clean(value: Any) -> Any:
    """JSON without NaN/inf (they would not parse elsewhere): undefined numbers become null."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def write_result(cfg: BenchConfig, family: str, payload: dict[str, Any], machine: dict[str, Any]) -> Path:
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.out_dir / f"{family}.json"
    doc = {"family": family, "mode": cfg.mode, "machine": machine, "sizes": asdict(cfg.sizes), **payload}
    path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")
    return path


def read_results(out_dir: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for family in FAMILIES:
        path = Path(out_dir) / f"{family}.json"
        if path.is_file():
            results[family] = json.loads(path.read_text(encoding="utf-8"))
    return results

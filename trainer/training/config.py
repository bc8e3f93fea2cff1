"""Training configuration (one dataclass) and the one way to override any config dataclass from a JSON
file and ``--set key=value`` options, shared by pretraining, fine-tuning and the encoder presets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Literal, TypeVar

from schemas.cli import UserError

Precision = Literal["fp32", "bf16", "fp16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "auto")  # auto: bf16 where the hardware has it (training.precision)


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation and loop settings. ``batch_size`` is per device and per micro-batch: the effective
    batch is ``batch_size * grad_accum_steps * world_size``."""

    lr: float = 5e-4
    head_lr: float = 0.0  # peak lr of a coder's output layer (everything outside `.encoder`); 0: the same as lr
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06  # share of optimizer steps spent warming up linearly from 0 to lr
    max_grad_norm: float = 1.0  # 0 disables clipping
    grad_accum_steps: int = 1
    precision: Precision = "fp32"
    seed: int = 0
    batch_size: int = 8
    epochs: int = 1
    max_steps: int = 0  # optimizer steps; 0: run `epochs` full epochs
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0: only at the end
    log_every: int = 10  # optimizer steps between loss-history points / log lines

    def __post_init__(self) -> None:
        errors = []
        if self.lr <= 0:
            errors.append(f"lr must be > 0 (got {self.lr})")
        if self.head_lr < 0:
            errors.append(f"head_lr must be >= 0 (got {self.head_lr})")
        if self.weight_decay < 0:
            errors.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if not 0 <= self.warmup_ratio < 1:
            errors.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.max_grad_norm < 0:
            errors.append(f"max_grad_norm must be >= 0 (got {self.max_grad_norm})")
        for name in ("grad_accum_steps", "batch_size", "epochs", "log_every"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("max_steps", "checkpoint_every"):
            if getattr(self, name) < 0:
                errors.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.precision not in PRECISIONS:
            errors.append(f"precision must be one of {PRECISIONS} (got {self.precision!r})")
        if errors:
            raise UserError("invalid training config: " + "; ".join(errors))


C = TypeVar("C")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Turn a JSON value or a ``--set`` string into the field's declared type."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise UserError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], where)
    try:
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if annotation is int:
            number = float(value)  # accepts "1e4" and 10000.0, rejects 2.5
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if annotation in (float, str):
            return annotation(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {value!r} is not a valid {annotation.__name__}") from None
    return value


def override(config: C, values: dict[str, Any], source: str = "overrides") -> C:
    """A copy of the dataclass ``config`` with ``values`` applied; unknown keys are an error naming them."""
    hints = typing.get_type_hints(type(config))
    known = {f.name for f in fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{source}: unknown {type(config).__name__} field(s) {unknown}; known: {sorted(known)}")
    coerced = {k: _coerce(v, hints[k], f"{source}: {k}") for k, v in values.items()}
    return dataclasses.replace(config, **coerced)  # type: ignore[type-var]


def parse_set_options(options: Iterable[str], source: str = "--set") -> dict[str, str]:
    """``["hidden_size=128", "lr=1e-4"]`` -> ``{"hidden_size": "128", "lr": "1e-4"}``."""
    out: dict[str, str] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{source} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def load_config(base: C, json_file: str | Path | None = None, sets: Iterable[str] = ()) -> C:
    """``base`` <- the JSON object in ``json_file`` <- ``--set KEY=VALUE`` options, in that order."""
    config = base
    if json_file:
        path = Path(json_file)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise UserError(f"config file {path} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise UserError(f"config file {path} must hold a JSON object")
        config = override(config, data, str(path))
    return override(config, parse_set_options(sets), "--set")


def config_hash(*configs: Any) -> str:
    """A short stable hash of dataclasses / JSON-able values: identifies a run for resuming."""
    payload = [dataclasses.asdict(c) if dataclasses.is_dataclass(c) else c for c in configs]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def hash_vocab(tokenizer: Any) -> str:
    """Identifies a vocabulary (a ``tokenizers.Tokenizer``) for resuming: same size is not the same vocabulary."""
    return config_hash(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))


def add_optim_arguments(parser: Any, defaults: OptimConfig | None = None) -> None:
    """Standard options for an :class:`OptimConfig` (``--optim-config FILE`` then ``--train-set K=V``)."""
    d = defaults or OptimConfig()
    g = parser.add_argument_group("optimisation")
    g.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    g.add_argument("--head-lr", type=float, default=d.head_lr, help="peak learning rate of a coder's output layer (0: --lr)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="per-device micro-batch size")
    g.add_argument("--grad-accum-steps", type=int, default=d.grad_accum_steps)
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--max-steps", type=int, default=d.max_steps, help="optimizer steps; 0: whole epochs")
    g.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="optimizer steps; 0: at the end only")
    g.add_argument("--log-every", type=int, default=d.log_every)
    g.add_argument("--optim-config", metavar="JSON", help="JSON object of OptimConfig fields (applied after the options above)")


def optim_config_from_args(args: Any) -> OptimConfig:
    names = [f.name for f in fields(OptimConfig)]
    config = OptimConfig(**{n: getattr(args, n) for n in names})
    return load_config(config, getattr(args, "optim_config", None))

"""How many CPU threads a command uses, and the runtime settings that keep it fast when the machine is shared.

One implementation for every command that computes (``python -m trainer|engine|bench``; ``schemas.cli``
applies it before the command's module, and so torch or onnxruntime, is imported).

Why (measured on the 2-core dev machine, docs/design.md "Threads on a shared machine"): PyTorch's CPU build
runs its intra-op work on a GNU OpenMP team of one thread per core whose idle workers spin. When another
process holds one of the cores, every parallel region waits for the team member that is not scheduled, and
the spinning members burn the CPU time the straggler and the other process need: the demo's fine-tuning
ran 4-12x slower beside one other job, far more than the 2x of losing a core. So:

- **threads**: ``--threads N`` (a number or ``auto``), else ``ICDCODER_THREADS``, else ``auto`` = the usable
  cores (CPU affinity and cgroup quota) minus the tasks other processes keep runnable when the command
  starts (``/proc/loadavg``; background tasks niced 10 or more do not count: they yield), at least 1. An explicit number is exported as ``ICDCODER_THREADS`` so child
  processes follow it; ``auto`` is decided afresh by each process when it starts.
- ``OMP_WAIT_POLICY=PASSIVE``: an OpenMP worker waiting for the others sleeps instead of spinning.
- ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = threads (torch reads them when imported), ``RAYON_NUM_THREADS`` =
  threads (the Hugging Face tokenizers' pool); onnxruntime sessions get the same number of intra-op threads,
  one inter-op thread and no spin-waiting (:func:`configure_onnxruntime`).
A wait policy the user set is kept; the thread counts always follow the plan.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ENV = "ICDCODER_THREADS"
AUTO = "auto"


class ThreadsError(ValueError):
    """A --threads / ICDCODER_THREADS value that is neither a positive integer nor ``auto``."""


def usable_cores() -> int:
    """Cores this process may run on: CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


BACKGROUND_NICE = 10  # a task niced this much or more yields its core to ours (CFS weight <= 1/10): not "busy"


def _running_tasks(root: int) -> tuple[int, list[int]]:
    """(threads in state R of process ``root`` and all its descendants - children it started: servers,
    commands -, the process ids of the threads in state R outside that tree niced to ``BACKGROUND_NICE`` or more)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        text = _read(stat)
        if text:
            parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    in_tree, background = 0, []
    for stat in Path("/proc").glob("[0-9]*/task/*/stat"):
        text = _read(stat)
        fields = text.rsplit(")", 1)[1].split() if text else ()
        if not fields or fields[0] != "R":
            continue
        pid = int(stat.parent.parent.parent.name)
        if pid in tree:
            in_tree += 1
        elif int(fields[16]) >= BACKGROUND_NICE:  # field 19 of stat: nice
            background.append(pid)
    return in_tree, background


def _running_in_tree(root: int) -> int:
    return _running_tasks(root)[0]


def runnable_elsewhere(root: int | None = None, count_background: bool = False) -> float | None:
    """Tasks runnable now outside the process tree of ``root`` (default: this process): the 4th field of
    /proc/loadavg ('running/total') minus the tree's running threads and, unless ``count_background``, minus
    background tasks (niced to ``BACKGROUND_NICE`` or more: they leave a core to us), scaled to the cores this
    process may use when /proc/loadavg counts a bigger machine (a container with a CPU quota). None where /proc
    is absent."""
    text = _read(Path("/proc/loadavg"))
    if text is None:
        return None
    total = int(text.split()[3].split("/")[0])
    in_tree, background = _running_tasks(root or os.getpid())
    outside = max(0, total - max(1, in_tree) - (0 if count_background else len(background)))  # the reader itself is running
    return outside * min(1.0, usable_cores() / (os.cpu_count() or 1))


def busy_elsewhere(samples: int = 5, interval_s: float = 0.03, sample: Callable[[], float | None] = runnable_elsewhere) -> float:
    """Median over a few samples of :func:`runnable_elsewhere`; 0 when unknown."""
    values = []
    for i in range(samples):
        value = sample()
        if value is None:
            return 0.0
        values.append(value)
        if i + 1 < samples:
            time.sleep(interval_s)
    return float(statistics.median(values))


@dataclass(frozen=True)
class ThreadPlan:
    threads: int
    cores: int
    busy_elsewhere: float | None  # measured for "auto" only
    source: str  # "--threads", ENV or "auto"

    def describe(self) -> str:
        why = (f"{self.busy_elsewhere:.1f} busy elsewhere at start" if self.busy_elsewhere is not None else f"from {self.source}")
        return f"{self.threads} thread(s) of {self.cores} core(s) ({why}; --threads N or {ENV} to choose)"


def parse_threads(value: str | int | None, where: str) -> int | None:
    """A positive int, None for ``auto``/empty; anything else is a ThreadsError naming ``where``."""
    if value is None or str(value).strip().lower() in ("", AUTO):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise ThreadsError(f"{where} must be a positive number of threads or '{AUTO}' (got {value!r})")
    return number


def plan_threads(requested: str | int | None = None, measure: Callable[[], float] = busy_elsewhere) -> ThreadPlan:
    """``requested`` (the --threads value) first, then ICDCODER_THREADS, then the idle cores."""
    cores = usable_cores()
    number = parse_threads(requested, "--threads")
    if number is not None:
        return ThreadPlan(number, cores, None, "--threads")
    number = parse_threads(os.environ.get(ENV), ENV)
    if number is not None:
        return ThreadPlan(number, cores, None, ENV)
    busy = measure()
    return ThreadPlan(max(1, min(cores, round(cores - busy))), cores, round(busy, 2), AUTO)


_applied: ThreadPlan | None = None


def apply_threads(plan: ThreadPlan) -> ThreadPlan:
    """Set the environment the plan needs (before torch/onnxruntime are imported, which read it once) and,
    if torch is already imported, its intra-op thread count."""
    global _applied
    count = str(plan.threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[name] = count
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if plan.source != AUTO:
        os.environ[ENV] = count
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(plan.threads)
    _applied = plan
    return plan


def current_threads() -> int:
    """The applied plan's threads; otherwise the plan this process would get now (decided once)."""
    return (_applied or apply_threads(plan_threads())).threads


def configure_onnxruntime(options: Any, threads: int | None = None) -> Any:
    """An ``onnxruntime.SessionOptions`` set to the plan: intra-op threads, one inter-op thread, no spinning
    (spinning workers take the CPU the engine's own threads - de-identification, FHIR - and neighbours need)."""
    options.intra_op_num_threads = threads or current_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def add_threads_argument(parser: argparse.ArgumentParser, default: str = AUTO) -> None:
    parser.add_argument("--threads", default=default, metavar="N|auto",
                        help=f"CPU threads for torch/onnxruntime/tokenizers (default {default}"
                             + (": the cores idle at start" if default == AUTO else "") + f"; also {ENV})")


def pre_parse_threads(argv: list[str], default: str = AUTO) -> str:
    """The --threads value from raw arguments, before the command's module (and torch) is imported."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", default=default)
    known, _ = pre.parse_known_args(argv)
    return known.threads

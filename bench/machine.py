"""The machine a benchmark ran on: every figure is only meaningful next to this."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        # bench/results is what a run writes: a run in progress must not call its own code uncommitted
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+uncommitted changes" if dirty.stdout.strip() else "")


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - a missing package is reported as None
        return None


def describe_machine() -> dict[str, Any]:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
        "gpu": gpu or "none",
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": _version("onnxruntime"),
        "transformers": _version("transformers"),
        "git_commit": _git_commit(Path(__file__).resolve().parents[1]),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line for the summary."""
    load = machine.get("load_average_1_5_15")
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB RAM, GPU: {machine['gpu']}; "
            f"load average {load[0] if load else '?'} at start; torch {machine['torch']}, onnxruntime {machine['onnxruntime']}; "
            f"commit {machine['git_commit']}; {machine['date_utc']} UTC")

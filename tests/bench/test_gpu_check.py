"""The GPU check's CPU rehearsal (``python -m bench run --only gpu`` without a GPU), run the way the lent GPU
machine will run it: with only PyTorch, transformers, onnxruntime (and their own requirements) and the wheels of
bench/gpu-requirements.txt importable, so the check cannot rot or grow a dependency the machine lacks."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROVIDED = ("torch", "transformers", "onnxruntime")  # what the lent machine has (besides the standard library)


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def carried() -> list[str]:
    lines = (ROOT / "bench" / "gpu-requirements.txt").read_text(encoding="utf-8").splitlines()
    return [Requirement(line.split("#")[0]).name for line in lines if line.split("#")[0].strip()]


def closure(names: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions ``names`` need, their requirements included (no extras)."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if _key(name) in found:
            continue
        dist = metadata.distribution(name)
        found[_key(name)] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def isolated_site(target: Path, dists: dict[str, metadata.Distribution]) -> Path:
    """A directory holding only these distributions (links to their top-level files and metadata)."""
    target.mkdir()
    for dist in dists.values():
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


def test_gpu_check_rehearsal_with_only_the_gpu_machines_packages(tmp_path):
    site = isolated_site(tmp_path / "site", closure(list(PROVIDED) + carried()))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}", "ICDCODER_THREADS": "1"}
    done = subprocess.run([sys.executable, "-S", "-m", "bench", "run", "--only", "gpu", "--out", str(out), "--work-dir", str(tmp_path / "work")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "gpu.json").read_text())
    assert result["cuda"] is False and result["sizes"]["encoder"] == "tiny"
    trained = [t for t in result["training"] if "tokens_per_s" in t]
    assert {(t["task"], t["precision"], t["attention"]) for t in trained} >= {("finetune", "bf16", "sdpa"), ("pretrain", "fp32", "sdpa"), ("finetune", "fp32", "eager")}
    assert all(t["tokens_per_s"] > 0 and t["mfu"] is None for t in trained)  # no GPU peak to divide by on a CPU
    assert any(c["task"] == "finetune" and c["precision"] == "bf16" and c["attention"] == "sdpa" and "met" in c for c in result["cost_ratio"])
    assert {i["runtime"] for i in result["inference"] if "sequences_per_s" in i} == {"pytorch", "onnxruntime CPU"}
    parity = result["parity"][0]
    assert parity["precision"] == "bf16" and parity["max_abs_probs"] < 2e-2 and parity["positions_agree"] == 1.0
    summary = (out / "SUMMARY.md").read_text()
    assert "## GPU check" in summary and "Cost of a sequence at the longer length" in summary


def test_the_isolated_site_really_lacks_the_rest(tmp_path):
    """The rehearsal above proves something only if packages outside the list cannot be imported there."""
    site = isolated_site(tmp_path / "site", closure(list(PROVIDED) + carried()))
    probe = "import importlib.util as u; print([m for m in ('sklearn', 'fhir', 'presidio_analyzer', 'torch', 'pydantic') if u.find_spec(m)])"
    done = subprocess.run([sys.executable, "-S", "-c", probe], env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['torch', 'pydantic']"

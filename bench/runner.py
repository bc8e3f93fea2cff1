"""Run the chosen benchmark families in order, write each result as it finishes, then SUMMARY.md."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Sequence

from bench.artifacts import Artifacts
from bench.common import DEFAULT_FAMILIES, FAMILIES, BenchConfig, Stopwatch, read_results, say, write_result
from bench.load import LoadMonitor
from bench.machine import describe_machine
from bench.report import render_summary

log = logging.getLogger(__name__)
MODULES = {"quality": "bench.families.quality", "inference": "bench.families.inference", "training": "bench.families.training",
           "deid": "bench.families.deid", "pipeline": "bench.families.pipeline", "context": "bench.families.context",
           "workbench": "bench.families.workbench",
           "chaos": "bench.families.chaos",
           "shared": "bench.families.shared", "gpu": "bench.families.gpu"}
RUN_FILE = "run.json"
SUMMARY_FILE = "SUMMARY.md"


def run_benchmarks(cfg: BenchConfig, families: Sequence[str] = DEFAULT_FAMILIES, note: str | None = None, artifacts: Artifacts | None = None) -> Path:
    """Each family in FAMILIES order; a failing family is reported (run.json, SUMMARY.md) and the others still run.
    ``artifacts``: some already built (``Artifacts.prebuilt``). Returns the SUMMARY.md path."""
    import torch

    torch.set_num_threads(cfg.threads)
    chosen = [f for f in FAMILIES if f in families]
    art = artifacts or Artifacts(cfg)
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with Stopwatch() as total:
        for family in chosen:
            say(f"=== {family} ({cfg.mode} mode) ===")
            machine = describe_machine()  # per family: the load average at its start
            with Stopwatch() as sw, LoadMonitor(cfg.threads) as load:
                try:
                    payload = importlib.import_module(MODULES[family]).run(cfg, art)
                except Exception as err:  # noqa: BLE001 - reported in run.json and SUMMARY.md
                    log.exception("benchmark family %s failed", family)
                    errors[family] = f"{type(err).__name__}: {err}"[:500]
                    continue
            payload["family_seconds"] = round(sw.seconds, 1)
            payload["load"] = load.result()
            if payload["load"]["warning"]:
                say(f"WARNING {family}: {payload['load']['warning']}")
            path = write_result(cfg, family, payload, machine)
            seconds[family] = round(sw.seconds, 1)
            say(f"{family} done in {sw.seconds:.0f} s -> {path}")
    this_run = {"families": chosen, "seconds": round(total.seconds, 1), "family_seconds": seconds, "errors": errors,
                "artifacts": art.summary(), "note": note, "date_utc": describe_machine()["date_utc"]}
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    run_file = cfg.out_dir / RUN_FILE
    earlier = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {}
    run_file.write_text(json.dumps(merge_run_info(earlier, this_run, cfg.mode), indent=2) + "\n", encoding="utf-8")
    summary = write_summary(cfg.out_dir, cfg.mode)
    say(f"summary: {summary} ({total.seconds / 60:.1f} min)")
    return summary


def merge_run_info(earlier: dict, this_run: dict, mode: str) -> dict:
    """run.json after this run. A run of some families (e.g. ``--only pipeline`` after an engine change)
    replaces those families' results but keeps the others', so run.json lists every run whose results the
    summary still shows; a run in another mode starts afresh."""
    earlier_runs = earlier.get("runs") or ([earlier] if "families" in earlier else [])  # run.json of one run (older format)
    runs = [dict(r) for r in earlier_runs if earlier.get("mode") == mode]
    for r in runs:  # a family measured again no longer comes from the earlier run
        r["families"] = [f for f in r["families"] if f not in this_run["families"]]
        r["family_seconds"] = {f: s for f, s in r.get("family_seconds", {}).items() if f in r["families"]}
    runs = [r for r in runs if r["families"]] + [this_run]
    errors: dict[str, str] = {}
    for r in runs:
        errors.update({f: e for f, e in r.get("errors", {}).items() if f in r["families"]})
    return {"mode": mode, "runs": runs, "errors": errors}


def write_summary(out_dir: Path, mode: str) -> Path:
    """(Re)write SUMMARY.md from the result files of ``mode`` and the last run's run.json."""
    run_file = out_dir / RUN_FILE
    run_info = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {"mode": mode}
    results = {k: v for k, v in read_results(out_dir).items() if v.get("mode") == mode}
    summary = out_dir / SUMMARY_FILE
    summary.write_text(render_summary(results, run_info), encoding="utf-8")
    return summary

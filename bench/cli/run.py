"""``python -m bench run --data-dir DIR --out bench/results [--quick] [--only FAMILY ...]``: the paper's
tables on public data (CodiEsp, MTSamples) and speed against the goals; JSON per family + SUMMARY.md.

Full mode takes hours on a CPU (see bench/README.md); ``--quick`` takes minutes and is labelled as such.
Models, datasets and server logs go to ``--work-dir`` (default bench/work, git-ignored) and are reused."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from bench.common import DEFAULT_FAMILIES, FAMILIES, NO_DATA_FAMILIES
from schemas.cli import UserError, default_data_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="public data: codiesp/ and mtsamples/ (default $ICDCODER_DATA_DIR or ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results directory (JSON per family, SUMMARY.md)")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/work"), help="models, datasets, logs (large; reused between runs)")
    parser.add_argument("--quick", action="store_true", help="minutes instead of hours: tiny models, few steps, a subset of rows")
    parser.add_argument("--only", nargs="+", choices=FAMILIES, default=list(DEFAULT_FAMILIES), metavar="FAMILY",
                        help=f"families to run: {', '.join(FAMILIES)} (default: all but gpu, the GPU check: bench/README.md)")
    parser.add_argument("--set", dest="sizes", action="append", default=[], metavar="KEY=VALUE",
                        help="change one of the mode's sizes (bench.common.BenchSizes, a Python literal), e.g. "
                             "--set 'pretrain_phases=((128, 1500),)' --set \"quality_presets=('logreg',)\"; the summary names every change")
    parser.add_argument("--note", help="a line for SUMMARY.md (e.g. 'shared machine, other jobs running')")
    parser.add_argument("--report-only", action="store_true", help="only rewrite SUMMARY.md from the JSON results in --out")
    parser.add_argument("--speed-repository", type=Path, metavar="DIR",
                        help="an exported model repository (Triton CPU variant) to serve instead of building the mode's speed model; "
                             "for families whose figures do not depend on the model (chaos). Recorded in the results")


def run(args: argparse.Namespace) -> int:
    from bench.common import BenchConfig
    from bench.runner import run_benchmarks

    if args.report_only:
        from bench.runner import write_summary

        if not any(args.out.glob("*.json")):
            raise UserError(f"--out {args.out} holds no benchmark results to summarise")
        summary = write_summary(args.out, "quick" if args.quick else "full")
        print(summary.read_text(encoding="utf-8"))
        return 0

    needs_data = any(f not in NO_DATA_FAMILIES for f in args.only) and not (args.speed_repository and set(args.only) <= {"chaos"})
    for sub in ("codiesp", "mtsamples") if needs_data else ():
        if not (args.data_dir / sub).is_dir():
            raise UserError(f"--data-dir {args.data_dir} has no {sub}/ directory (set ICDCODER_DATA_DIR or pass --data-dir)")
    cfg = BenchConfig(data_dir=args.data_dir.resolve(), out_dir=args.out, work_dir=args.work_dir.resolve(), quick=args.quick, threads=args.threads)
    note = args.note
    if args.sizes:
        from bench.common import changed_sizes

        cfg = replace(cfg, sizes_override=changed_sizes(cfg.sizes, args.sizes))
        note = "; ".join(filter(None, [f"{cfg.mode} mode with sizes changed: " + ", ".join(args.sizes), note]))
    artifacts = None
    if args.speed_repository:
        from bench.artifacts import Artifacts

        if not args.speed_repository.is_dir():
            raise UserError(f"--speed-repository {args.speed_repository} is not a directory")
        artifacts = Artifacts.prebuilt(cfg, speed_repository=args.speed_repository.resolve())
    summary = run_benchmarks(cfg, args.only, note, artifacts)
    print(summary.read_text(encoding="utf-8"))
    print(f"results in {args.out}")
    return 0

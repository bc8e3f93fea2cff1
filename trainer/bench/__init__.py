"""Benchmarks (``python -m trainer bench``): the paper's tables on public data, and speed against the goals.

One module per family: ``quality`` (Table 2/3, vocabulary), ``inference_speed``, ``training_speed``,
``deid_speed``, ``pipeline_speed``; ``artifacts`` builds what they share with the project's own steps,
``machine`` describes the machine, ``report`` writes SUMMARY.md. ``run_benchmarks`` runs a selection.
"""

from trainer.bench.common import FAMILIES, FULL, QUICK, BenchConfig, BenchSizes
from trainer.bench.runner import run_benchmarks

__all__ = ["FAMILIES", "FULL", "QUICK", "BenchConfig", "BenchSizes", "run_benchmarks"]

"""Benchmark families: one module each, ``run(cfg, artifacts) -> dict`` (see ``bench.common``)."""

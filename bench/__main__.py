"""``python -m bench COMMAND``: developer tooling that drives the trainer and the engine together (the demo,
the benchmarks, the de-identification evaluation). Shipped in neither image."""

import sys

from schemas.cli import Command, main

COMMANDS = [
    Command("demo", "bench.cli.demo", "the whole loop on one machine: data, model, export, Kafka, Triton, Redis, engine"),
    Command("run", "bench.cli.run", "benchmarks: the paper's tables on public data, and speed", threads="1"),
    Command("deid-eval", "bench.cli.deid_eval", "measure de-identification recall/precision per PHI category on notes with gold spans"),
]

if __name__ == "__main__":
    sys.exit(main("python -m bench", __doc__, COMMANDS))

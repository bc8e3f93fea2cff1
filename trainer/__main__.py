"""``python -m trainer COMMAND``: every step from raw notes to a Triton model repository."""

import sys

from schemas.cli import Command, main

COMMANDS = [
    Command("prepare", "trainer.data.prepare_cli", "import notes (CodiEsp, MTSamples, FHIR, JSONL), build the label space, split, report statistics"),
    Command("synthetic", "trainer.data.synthetic_cli", "write seeded synthetic clinical notes with known ICD-10-CM codes and planted PHI spans"),
    Command("codes", "trainer.data.codes_cli", "look up, normalise and validate ICD-10-CM codes against the 2026 code set"),
]

if __name__ == "__main__":
    sys.exit(main("python -m trainer", __doc__, COMMANDS))

"""``python -m engine COMMAND``: the streaming ICD-10-CM coding service and its tools."""

import sys

from schemas.cli import Command, main

COMMANDS = [
    Command("config", "engine.config_cli", "validate the ICDCODER_* environment and print the settings (secrets masked)"),
]

if __name__ == "__main__":
    sys.exit(main("python -m engine", __doc__, COMMANDS))

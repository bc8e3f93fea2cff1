"""``python -m engine config``: validate settings from the environment and print them, secrets masked."""

import argparse
import json

from schemas.settings import describe_settings, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    settings = load_settings()  # a SettingsError is a UserError: reported without a traceback
    print(json.dumps(describe_settings(settings), indent=2))
    return 0

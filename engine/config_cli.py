"""``python -m engine config``: validate settings from the environment and print them, secrets masked."""

import argparse
import json

from schemas.cli import UserError
from schemas.settings import SettingsError, describe_settings, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as err:
        raise UserError(str(err)) from None
    print(json.dumps(describe_settings(settings), indent=2))
    return 0

"""One command-line style for ``python -m trainer``, ``python -m engine`` and ``python -m bench``.

Each subcommand is a module with ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their subcommand runs, so ``--help`` is instant and the engine never pulls in torch. A command
that computes declares ``threads`` (its ``--threads`` default): the thread plan (``schemas.threads``) is
applied before its module, and so torch or onnxruntime, is imported, and ``args.threads`` is the number.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from schemas.secrets import mask_secrets


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # dotted module path with add_arguments() and run()
    help: str  # one line, shown by --help
    threads: str | None = None  # default of the shared --threads option ("auto" or a number); None: no option


def default_data_dir() -> Path:
    """The public data (CodiEsp, MTSamples): $ICDCODER_DATA_DIR, else ``shared/data`` beside the repository
    (``../shared/data`` from its root). An empty variable counts as unset."""
    return Path(os.environ.get("ICDCODER_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


class UserError(Exception):
    """A problem the user can fix (bad input, bad option): printed without a traceback, exit status 2."""


def main(prog: str, description: str, commands: list[Command], argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers = {c.name: sub.add_parser(c.name, help=c.help, description=c.help) for c in commands}
    by_name = {c.name: c for c in commands}

    # Find the subcommand first, then import only its module to add its options.
    chosen = next((a for a in argv if a in by_name), None)
    if chosen is None:
        args = parser.parse_args(argv)  # handles --help, or reports the missing/unknown command
        parser.print_help()
        return 2
    command = by_name[chosen]
    plan = None
    if command.threads is not None:
        from schemas import threads

        try:  # before the module is imported: torch and OpenMP read the environment once, when loaded
            plan = threads.apply_threads(threads.plan_threads(threads.pre_parse_threads(argv, command.threads)))
        except threads.ThreadsError as err:
            print(f"{prog} {chosen}: error: {err}", file=sys.stderr)
            return 2
        threads.add_threads_argument(subparsers[chosen], command.threads)
    module = importlib.import_module(command.module)
    module.add_arguments(subparsers[chosen])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_mask_log_record)
    if plan is not None:
        args.threads = plan.threads
        logging.getLogger(prog.split()[-1]).info("threads: %s", plan.describe())
    try:
        status = int(module.run(args) or 0)
        sys.stdout.flush()  # here, not at interpreter exit, so a closed pipe is handled below
        return status
    except UserError as err:
        print(f"{prog} {chosen}: error: {mask_secrets(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {chosen}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _mask_log_record(record: logging.LogRecord) -> bool:
    """A client library may log its connection URL: credentials in it are masked before any handler writes."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return True
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    return True


def _reader_went_away() -> int:
    """stdout's reader closed the pipe (``... | head -1``): not an error of ours. Point stdout at /dev/null so
    the interpreter's final flush cannot raise again, and exit quietly with the shell's status for SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141

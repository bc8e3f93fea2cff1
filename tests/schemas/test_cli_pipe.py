"""A command whose reader goes away (``... | head -1``) ends quietly, without a BrokenPipeError traceback."""

from __future__ import annotations

import subprocess
import sys


def test_closed_pipe_ends_quietly():
    # engine worklist list --json | head -1 printed a BrokenPipeError traceback; any command with a lot of
    # output to a closed pipe goes through the same path in schemas.cli.main
    script = ("import sys; from schemas.cli import Command, main; "
              "sys.exit(main('prog', '', [Command('spam', 'tests.schemas.spam_command', 'x')], ['spam']))")
    proc = subprocess.run(f"{sys.executable} -c \"{script}\" | head -1", shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stdout == "line 0\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr

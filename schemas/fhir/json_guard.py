"""JSON from senders, parsed only within limits checked BEFORE parsing: size and nesting depth.

Python's ``json`` module and the validation after it recurse once per nesting level: a message nested a few
hundred levels deep (``{"extension": [{"extension": [...]}]}``, ``[[[[...]]]]``) raises ``RecursionError``,
which is no ``ProcessingError`` and used to end ``engine code`` with a traceback (and reached the stream's
dead-letter topic only as ``internal_error``). ``load_json`` measures the depth with a flat scan (strings
removed by one regular expression, then brackets counted) and refuses what is too deep or too big with a
``ProcessingError``: ``too_deep`` or ``too_large``. The engine's parse stage and the NDJSON reader shared by
``engine code`` and the trainer's FHIR importer both parse through it: one policy for every input.

FHIR resources are shallow: a DocumentReference with contained resources and nested extensions stays under
~15 levels. ``MAX_JSON_DEPTH`` leaves ample room and stays far below where parsing and validation recurse
out of stack.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from schemas.errors import ProcessingError

MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (strings ignored); malformed input gives an
    estimate that is never below the true depth of its well-formed prefix."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    return max(0, max(accumulate(1 if c in _OPENERS else -1 for c in brackets)))


def load_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH, max_bytes: int | None = None) -> Any:
    """The JSON value of ``raw``, or a ``ProcessingError``: ``too_large`` (over ``max_bytes``), ``too_deep``
    (nested deeper than ``max_depth``) or ``not_json`` (not UTF-8, or malformed; detail: where)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise ProcessingError("too_large", f"{len(raw)} bytes exceeds the limit of {max_bytes}")
    depth = json_depth(raw)
    if depth > max_depth:
        raise ProcessingError("too_deep", f"JSON nested {depth} levels deep, limit {max_depth}")
    try:
        return json.loads(raw)
    except UnicodeDecodeError as err:
        raise ProcessingError("not_json", f"not UTF-8 at byte {err.start}") from None
    except json.JSONDecodeError as err:
        raise ProcessingError("not_json", f"line {err.lineno} column {err.colno}: {err.msg}") from None
    except RecursionError:  # cannot happen below max_depth; kept so no input can escape as a crash
        raise ProcessingError("too_deep", f"JSON nested too deeply to parse, limit {max_depth}") from None

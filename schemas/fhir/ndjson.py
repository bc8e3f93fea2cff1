"""FHIR resources from files, as EHR exports write them: NDJSON (one resource or Bundle per line) or one
pretty-printed JSON resource per file. Bundles are flattened into their entries' resources.

One reader for ``engine code`` and the trainer's FHIR importer, with one error policy: a line that cannot
be read yields a ``FileEntry`` with an ``error`` (a ``ProcessingError`` naming the problem, never the
content) and reading goes on, also for lines too long or nested too deep to parse (limits checked before
parsing, ``schemas.fhir.json_guard``); the caller decides what an error means (``engine code`` reports it and codes
the rest, the importer stops with the file and line). An unreadable file is an ``OSError`` for the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from schemas.errors import ProcessingError
from schemas.fhir.json_guard import MAX_JSON_DEPTH, load_json

MAX_LINE_BYTES = 64 * 1024 * 1024  # one resource per line; a longer line is an error entry, never held whole


@dataclass(frozen=True)
class FileEntry:
    """One resource read from a file (or why a line could not be read), with where it came from."""

    file: Path
    line: int  # 1-based; a pretty-printed file is line 1
    entry: int | None = None  # position in a Bundle's entry list
    resource: dict[str, Any] | None = None  # None for an error, or a Bundle entry without a resource
    raw: bytes = b""  # the resource's JSON: the line itself for a top-level resource
    error: ProcessingError | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" + (f" entry {self.entry}" if self.entry is not None else "")

    @property
    def kind(self) -> str:
        """The resourceType, or a placeholder that never echoes a sender's text."""
        kind = self.resource.get("resourceType") if self.resource else None
        return kind if isinstance(kind, str) and kind.isalnum() else "(no resource)"


def read_resources(path: Path, max_line_bytes: int = MAX_LINE_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Iterator[FileEntry]:
    """Every resource of ``path`` in file order (Bundles flattened), and an error entry per unreadable line.

    Lines are read one at a time and never more than ``max_line_bytes`` of one is held: a longer line is a
    ``too_large`` error entry (the reader skips to the next line); a line nested deeper than ``max_depth`` is
    a ``too_deep`` one (``schemas.fhir.json_guard``). No line can end the reading early."""
    with Path(path).open("rb") as f:
        first = _first_line(f, max_line_bytes)
        if first is not None and not isinstance(_loads(first, max_depth), dict):
            whole = _whole_file(f, max_line_bytes, max_depth)
            if isinstance(whole, dict):  # one pretty-printed resource, not NDJSON
                yield from _entries(path, 1, whole, json.dumps(whole).encode("utf-8"))
                return
        f.seek(0)
        for lineno, line in enumerate(_lines(f, max_line_bytes), 1):
            if isinstance(line, ProcessingError):
                yield FileEntry(path, lineno, error=line)
                continue
            if not line.strip():
                continue
            obj = _loads(line, max_depth)
            if isinstance(obj, ProcessingError):
                yield FileEntry(path, lineno, raw=line, error=obj)
            elif not isinstance(obj, dict):
                yield FileEntry(path, lineno, raw=line, error=ProcessingError("invalid_resource", f"top-level JSON is {type(obj).__name__}, not an object"))
            else:
                yield from _entries(path, lineno, obj, line)


def _lines(f: IO[bytes], max_line_bytes: int) -> Iterator[bytes | ProcessingError]:
    """The file's lines without their end, or a ``too_large`` error for a line longer than the limit."""
    while True:
        line = f.readline(max_line_bytes + 1)
        if not line:
            return
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            size = len(line)
            while line and not line.endswith(b"\n"):  # skip the rest of the line, a bounded chunk at a time
                line = f.readline(1 << 20)
                size += len(line)
            yield ProcessingError("too_large", f"line of {size} bytes exceeds the limit of {max_line_bytes}")
            continue
        yield line.rstrip(b"\r\n")


def _first_line(f: IO[bytes], max_line_bytes: int) -> bytes | None:
    """The first non-blank line (None if there is none, or if it is too long to be a resource's first line)."""
    for line in _lines(f, max_line_bytes):
        if isinstance(line, ProcessingError):
            return None
        if line.strip():
            return line
    return None


def _whole_file(f: IO[bytes], max_bytes: int, max_depth: int) -> Any:
    f.seek(0)
    data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None  # too big to be one resource: read line by line, where each line says what it is
    return _loads(data, max_depth)


def _loads(raw: bytes, max_depth: int) -> Any:
    """The JSON value, or a ProcessingError saying why it cannot be read (malformed, too deep)."""
    try:
        return load_json(raw, max_depth)
    except ProcessingError as err:
        return err


def _entries(path: Path, line: int, obj: dict[str, Any], raw: bytes) -> Iterator[FileEntry]:
    if obj.get("resourceType") != "Bundle":
        yield FileEntry(path, line, resource=obj, raw=raw)
        return
    entries = obj.get("entry") or []
    if not isinstance(entries, list):
        yield FileEntry(path, line, raw=raw, error=ProcessingError("invalid_resource", "entry (not a list)"))
        return
    for k, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            yield FileEntry(path, line, k, resource=resource, raw=json.dumps(resource).encode("utf-8"))
        else:
            yield FileEntry(path, line, k)

"""FHIR resources from files, as EHR exports write them: NDJSON (one resource or Bundle per line) or one
pretty-printed JSON resource per file. Bundles are flattened into their entries' resources.

One reader for ``engine code`` and the trainer's FHIR importer, with one error policy: a line that cannot
be read yields a ``FileEntry`` with an ``error`` (a ``ProcessingError`` naming the problem, never the
content) and reading goes on; the caller decides what an error means (``engine code`` reports it and codes
the rest, the importer stops with the file and line). An unreadable file is an ``OSError`` for the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from schemas.errors import ProcessingError


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


def read_resources(path: Path) -> Iterator[FileEntry]:
    """Every resource of ``path`` in file order (Bundles flattened), and an error entry per unreadable line."""
    with Path(path).open("rb") as f:
        data = f.read()
    lines = data.splitlines()
    first = next((line for line in lines if line.strip()), b"")
    if first and not isinstance(_loads(first), dict):
        whole = _loads(data)
        if isinstance(whole, dict):  # one pretty-printed resource, not NDJSON
            yield from _entries(path, 1, whole, json.dumps(whole).encode("utf-8"))
            return
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obj = _loads(line)
        if isinstance(obj, ProcessingError):
            yield FileEntry(path, lineno, raw=line, error=obj)
        elif not isinstance(obj, dict):
            yield FileEntry(path, lineno, raw=line, error=ProcessingError("invalid_resource", f"top-level JSON is {type(obj).__name__}, not an object"))
        else:
            yield from _entries(path, lineno, obj, line)


def _loads(raw: bytes) -> Any:
    """The JSON value, or a ProcessingError saying where it is malformed."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError as err:
        return ProcessingError("not_json", f"not UTF-8 at byte {err.start}")
    except json.JSONDecodeError as err:
        return ProcessingError("not_json", f"line {err.lineno} column {err.colno}: {err.msg}")


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

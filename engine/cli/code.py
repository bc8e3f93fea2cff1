"""``python -m engine code FILE...``: the service's pipeline on files, without Kafka.

Input: NDJSON with one DocumentReference or Bundle per line (Bundle entries that are DocumentReferences
are coded; other entries are counted and reported as skipped), a file holding one pretty-printed JSON
resource, or an HL7 v2 archive (ER7 messages, one per segment block: ``engine.io.hl7_file``, docs/hl7.md). Output: one transaction Bundle per coded note, NDJSON, in input order (``--out`` or stdout).
Failures go to stderr as ``FILE:LINE[ entry N]: reason: detail`` and, with ``--errors``, to an NDJSON file.
DocumentReference status (engine/pipeline/status.py): a ``superseded`` note is skipped (a row with
``"skipped": true``); an ``entered-in-error`` one writes the Bundle withdrawing what that document produced
earlier in the run (its Conditions set to ``entered-in-error``).
Exit status: 0 when every note was coded, 1 when some failed, 2 for unusable options or model.
Settings come from ``ICDCODER_*`` like the service; the options below override them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Iterator

from tqdm import tqdm

from engine.io.hl7_file import is_hl7_file, read_hl7_messages
from engine.pipeline.processor import process_isolating
from engine.pipeline.status import ProductionIndex, SkippedNote
from engine.pipeline.types import SourceRecord
from schemas.cli import UserError
from schemas.errors import ProcessingError, TransientError
from schemas.fhir.ndjson import FileEntry, read_resources
from schemas.settings import EngineSettings, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="NDJSON of DocumentReference or Bundle resources (or one JSON resource per file), or HL7 v2 messages")
    parser.add_argument("--out", type=Path, help="write the Bundles here (NDJSON); default: stdout")
    parser.add_argument("--errors", type=Path, help="also write failures here as NDJSON (file, line, entry, reason, detail)")
    parser.add_argument("--model-repository", type=Path, help="model repository directory (ICDCODER_MODEL_REPOSITORY)")
    parser.add_argument("--model-name", help="model name in the repository (ICDCODER_MODEL_NAME)")
    parser.add_argument("--model-version", type=int, help="model version; default the newest (ICDCODER_MODEL_VERSION)")
    parser.add_argument("--triton-url", help="score on this Triton server instead of in-process onnxruntime (ICDCODER_TRITON_URL)")
    parser.add_argument("--fhir-version", choices=["R4", "R5"], help="FHIR release of input and output (ICDCODER_ENGINE_FHIR_VERSION)")
    parser.add_argument("--input-format", choices=["fhir", "hl7v2", "auto"], default="auto", help="how records are read (default auto: ER7 starts with MSH, anything else is FHIR JSON)")
    parser.add_argument("--recorded-at", type=_instant, help="ISO time with zone for Provenance.recorded (reproducible output); default: now")
    parser.add_argument("--batch-size", type=int, default=32, help="notes per inference batch (default 32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _instant(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {value!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-01-01T00:00:00Z")
    return when.astimezone(dt.timezone.utc)


def settings_from_args(args: argparse.Namespace) -> EngineSettings:
    settings = load_settings()  # a SettingsError is a UserError: reported without a traceback
    model = {k: v for k, v in (("repository", args.model_repository), ("name", args.model_name), ("version", args.model_version)) if v is not None}
    engine = {"fhir_version": args.fhir_version} if args.fhir_version else {}
    engine["input_format"] = getattr(args, "input_format", "auto")
    update: dict = {**engine, "model": settings.model.model_copy(update=model)}
    if args.triton_url is not None:
        update["triton"] = settings.triton.model_copy(update={"url": args.triton_url})
    return settings.model_copy(update=update)


def read_items(path: Path, skipped: Counter) -> Iterator[FileEntry]:
    """Notes (DocumentReferences or HL7 v2 messages) and unreadable lines of one file, in order; other
    resources (Bundle entries of another type) are counted in ``skipped``."""
    try:
        if is_hl7_file(path):  # an HL7 v2 archive: every message is a note
            yield from read_hl7_messages(path)
            return
        for entry in read_resources(path):
            if entry.error is not None or entry.kind == "DocumentReference":
                yield entry
            elif entry.entry is None:
                yield entry  # a top-level resource of another type: the parse stage says what it is
            else:
                skipped[entry.kind] += 1
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None


def _batches(items: Iterator[FileEntry], size: int) -> Iterator[list[FileEntry]]:
    batch: list[FileEntry] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count_lines(path: Path) -> int:
    if is_hl7_file(path):  # segments may end in CR alone: count lines as the HL7 reader numbers them
        with path.open("r", encoding="latin-1", newline=None) as text:
            return sum(1 for _ in text)
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def run(args: argparse.Namespace) -> int:
    from engine.app import build_processor

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    for path in args.files:
        if not path.is_file():
            raise UserError(f"no such file: {path}")
    settings = settings_from_args(args)
    clock = {"clock": lambda: args.recorded_at} if args.recorded_at else {}
    productions = ProductionIndex()  # an entered-in-error note withdraws what its document produced earlier in the run
    processor = build_processor(settings, productions_lookup=productions, **clock)
    lines = {path: _count_lines(path) for path in args.files}
    lines_before = {path: sum(list(lines.values())[:i]) for i, path in enumerate(lines)}
    skipped: Counter = Counter()
    coded = failed = suggestions = skipped_notes = retracted = withheld = flagged = 0
    with contextlib.ExitStack() as stack:
        out: IO[bytes] = stack.enter_context(args.out.open("wb")) if args.out else sys.stdout.buffer
        errors_out: IO[str] | None = stack.enter_context(args.errors.open("w", encoding="utf-8")) if args.errors else None
        stack.callback(processor.close)
        bar = stack.enter_context(tqdm(total=sum(lines.values()), unit="line", disable=args.no_progress or None, file=sys.stderr, desc="coding"))
        items = (item for path in args.files for item in read_items(path, skipped))
        for batch in _batches(items, args.batch_size):
            todo = [item for item in batch if item.error is None]
            try:
                results = iter(process_isolating(processor, [SourceRecord(value=item.raw) for item in todo]))
            except TransientError as err:
                raise UserError(f"inference backend unavailable: {err}") from None
            batch_results = [item.error if item.error is not None else next(results) for item in batch]
            productions.record(batch_results)
            for item, result in zip(batch, batch_results):
                if isinstance(result, SkippedNote):  # superseded: a newer version is coded instead
                    skipped_notes += 1
                    tqdm.write(f"{item.where}: skipped: {result.reason}", file=sys.stderr)
                    if errors_out:
                        errors_out.write(json.dumps({"file": str(item.file), "line": item.line, "entry": item.entry, "reason": result.reason, "skipped": True}) + "\n")
                elif isinstance(result, ProcessingError):
                    failed += 1
                    tqdm.write(f"{item.where}: {result.reason}: {result.detail}", file=sys.stderr)  # keeps the bar intact
                    if errors_out:
                        row = {"file": str(item.file), "line": item.line, "entry": item.entry, "reason": result.reason, "detail": result.detail}
                        errors_out.write(json.dumps(row) + "\n")
                else:
                    coded += result.action == "code"
                    retracted += result.action == "retract"
                    suggestions += len(result.suggestions)
                    withheld += len(result.withheld)
                    flagged += sum(s.context not in (None, "affirmed") for s in result.suggestions)
                    out.write(result.bundle_json + b"\n")
            out.flush()
            bar.update(max(0, lines_before[batch[-1].file] + batch[-1].line - bar.n))
            bar.set_postfix(coded=coded, failed=failed, refresh=False)
    skipped_text = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items())) or "none"
    print(f"coded {coded} notes ({suggestions} suggestions, {flagged} with negated/uncertain/historical/family evidence, {withheld} withheld "
          f"by the context policy), {failed} failed, {retracted} retracted (entered-in-error), "
          f"{skipped_notes} skipped (superseded); skipped Bundle entries: {skipped_text}", file=sys.stderr)
    return 1 if failed else 0


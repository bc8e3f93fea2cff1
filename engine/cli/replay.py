"""``python -m engine replay``: re-run audited notes through another model version and report the diff.

Reads the audit topic (by processing time and/or offsets), never the live input, and writes only files
under --out: nothing reaches the output topic or the worklist.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.cli import UserError
from schemas.settings import EngineSettings, load_settings

if TYPE_CHECKING:  # annotations only: like run(), the engine's modules load when the command runs
    from engine.infra.model import ModelRuntime
    from engine.pipeline.infer.base import InferenceBackend


def _when(value: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r} (e.g. 2026-11-24T08:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-time", type=_when, help="first processing time to replay (ISO 8601; no zone: UTC)")
    parser.add_argument("--to-time", type=_when, help="last processing time to replay")
    parser.add_argument("--from-offset", type=int, help="first audit-topic offset (in every partition)")
    parser.add_argument("--to-offset", type=int, help="last audit-topic offset, inclusive (in every partition)")
    parser.add_argument("--model-version", type=int, required=True, help="the model version to replay through")
    parser.add_argument("--model-name", help="default: ICDCODER_MODEL_NAME")
    parser.add_argument("--repository", type=Path, help="model repository with the version's metadata and tokenizer (default: ICDCODER_MODEL_REPOSITORY)")
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument("--triton-url", help="score on this Triton server (default: ICDCODER_TRITON_URL)")
    backend.add_argument("--local", action="store_true", help="score in-process with the version's model.onnx")
    parser.add_argument("--threshold", type=float, help="use this threshold for every code instead of the version's tuned ones")
    parser.add_argument("--score-tolerance", type=float, default=1e-4, help="smaller score changes are not reported")
    parser.add_argument("--audit-topic", help="default: ICDCODER_KAFKA_AUDIT_TOPIC")
    parser.add_argument("--idle-s", type=float, default=0.5, help="the end of the topic: this long without new records")
    parser.add_argument("--out", type=Path, required=True, help="directory for replay_report.md, replay_summary.json, ...")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()  # a SettingsError is a UserError: reported without a traceback
    _check_range(args)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise UserError(f"--threshold must be within [0, 1], got {args.threshold}")

    from engine.audit.records import AuditRange, read_audit
    from engine.audit.replay import diff_note, rescore, select_replayable, summarise, write_report
    from engine.infra.model import load_runtime
    from engine.pipeline.aggregate import AggregationParams
    from engine.pipeline.context import ContextStage
    from schemas.errors import TransientError
    from schemas.model_repo import Thresholds

    name = args.model_name or settings.model.name
    repository = args.repository or settings.model.repository
    try:
        runtime = load_runtime(repository, name, args.model_version)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"model version {args.model_version} cannot be used: {err}") from None
    if args.threshold is not None:
        metadata = runtime.metadata.model_copy(update={"thresholds": Thresholds(global_threshold=args.threshold, tuned_on="replay --threshold")})
        runtime = type(runtime)(metadata=metadata, tokenizer=runtime.tokenizer, directory=runtime.directory)

    selection = AuditRange(args.from_offset, args.to_offset, args.from_time, args.to_time)
    topic = args.audit_topic or settings.kafka.audit_topic
    try:
        found, unreadable = read_audit(settings.kafka, topic, selection, idle_s=args.idle_s, progress=True)
        records, counts = select_replayable([r for _, r in found], f"{topic} ({selection.describe()})")
    except ValueError as err:  # a ReplayError (nothing replayable), or the topic does not exist
        raise UserError(str(err)) from None
    counts["unreadable"] = unreadable

    backend = _backend(args, settings, runtime)
    try:
        context = ContextStage.for_model(runtime.metadata) if settings.evidence_context else None
        replayed = rescore(records, runtime, backend, AggregationParams.from_settings(settings), context=context)
    except TransientError as err:
        raise UserError(f"inference failed: {err}") from None
    finally:
        backend.close()
    diffs = [diff_note(b, a, args.score_tolerance) for b, a in zip(records, replayed)]
    summary = summarise(diffs, name, args.model_version, {k: v for k, v in counts.items() if k != "read" and v},
                        args.score_tolerance, args.threshold)
    paths = write_report(args.out, summary, diffs, replayed)
    print(f"replayed {summary.notes} notes through {name}/{args.model_version}: exact match {summary.exact_match_rate:.3f}, "
          f"mean Jaccard {summary.mean_jaccard:.3f}, {summary.notes_changed} changed; report: {paths['report.md']}")
    if counts["hash_only"]:
        print(f"skipped {counts['hash_only']} audit record(s) that carry only the text hash")
    return 0


def _check_range(args: argparse.Namespace) -> None:
    for name in ("from_offset", "to_offset"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    if args.from_offset is not None and args.to_offset is not None and args.from_offset > args.to_offset:
        raise UserError(f"--from-offset {args.from_offset} is after --to-offset {args.to_offset}")
    if args.from_time and args.to_time and args.from_time > args.to_time:
        raise UserError(f"--from-time {args.from_time.isoformat()} is after --to-time {args.to_time.isoformat()}")


def _backend(args: argparse.Namespace, settings: EngineSettings, runtime: ModelRuntime) -> InferenceBackend:
    """The engine's backend (``make_backend``) for the replayed version: its network on Triton (``--triton-url``,
    else ``ICDCODER_TRITON_URL``) or its model.onnx in-process (``--local``, or no URL)."""
    from engine.pipeline.infer.factory import make_backend
    from schemas.errors import TransientError

    name, version = runtime.metadata.model_name, runtime.metadata.version
    url = "" if args.local else (args.triton_url or settings.triton.url)
    # the replayed version, not ICDCODER_TRITON_MODEL_NAME/_VERSION: those name the live engine's model
    triton = settings.triton.model_copy(update={"url": url, "model_name": name, "model_version": str(version)})
    backend = None
    try:
        backend = make_backend(settings.model_copy(update={"triton": triton}), runtime)
        backend.check()  # fail fast on a version the server does not have, instead of retrying for minutes
    except (FileNotFoundError, ValueError, TransientError) as err:
        if backend is not None:
            backend.close()
        where = f"Triton at {url}" if url else "onnxruntime (in-process)"
        raise UserError(f"{where} cannot serve {name} version {version}: {err}") from None
    return backend

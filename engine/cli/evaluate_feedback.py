"""``python -m engine evaluate-feedback``: suggestions (live audit topic, or a replay's output) joined with
coder decisions from the feedback topic -> precision, recall, F1 and acceptance per model version and code."""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.cli import UserError
from schemas.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replay", type=Path, action="append", default=[], metavar="DIR",
                        help="a replay's --out directory (its replay_audit.ndjson); repeatable. Default: the live audit topic")
    parser.add_argument("--with-live", action="store_true", help="with --replay: evaluate the live audit topic as well")
    parser.add_argument("--audit-topic", help="default: ICDCODER_KAFKA_AUDIT_TOPIC")
    parser.add_argument("--feedback-topic", help="default: ICDCODER_KAFKA_FEEDBACK_TOPIC")
    parser.add_argument("--idle-s", type=float, default=0.5, help="the end of a topic: this long without new records")
    parser.add_argument("--out", type=Path, required=True, help="directory for feedback_eval.md and feedback_eval.json")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()  # a SettingsError is a UserError: reported without a traceback
    from engine.audit.feedback import evaluate, read_decisions, write_reports
    from engine.audit.records import AuditRange, read_audit
    from schemas.envelopes import AuditRecord

    records: list[AuditRecord] = []
    skipped: dict[str, int] = {}
    for directory in args.replay:
        path = directory / "replay_audit.ndjson"
        if not path.is_file():
            raise UserError(f"{directory} is not a replay output directory: {path.name} is missing")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                records.append(AuditRecord.model_validate_json(line))
            except ValueError:
                raise UserError(f"{path}:{n}: not an audit record") from None
    try:
        if not args.replay or args.with_live:
            found, unreadable = read_audit(settings.kafka, args.audit_topic or settings.kafka.audit_topic, AuditRange(), idle_s=args.idle_s, progress=True)
            records += [r for _, r in found]
            if unreadable:
                skipped["unreadable_audit_records"] = unreadable
        decisions, bad = read_decisions(settings.kafka, args.feedback_topic or settings.kafka.feedback_topic, idle_s=args.idle_s)
    except ValueError as err:  # a topic that does not exist
        raise UserError(str(err)) from None
    if bad:
        skipped["feedback_records_without_decision"] = bad
    if not records:
        raise UserError("no suggestions to evaluate: the audit records are empty")
    if not decisions:
        raise UserError("no coder decisions on the feedback topic yet")
    reports = evaluate(records, decisions)
    paths = write_reports(args.out, reports, len({d.item_id for d in decisions}), skipped)
    for r in reports:
        o = r.overall
        show = lambda v: "-" if v is None else f"{v:.3f}"
        print(f"{r.model}/{r.version}: {r.items} items, precision {show(o.precision)}, recall {show(o.recall)}, "
              f"F1 {show(o.f1)}, acceptance {show(o.acceptance_rate)}")
    print(f"report: {paths['md']}")
    return 0

"""``python -m engine worklist list|claim|show|decide|complete``: the coder's side of the worklist.

Settings come from the ``ICDCODER_*`` environment (Redis for the worklist, Kafka for the feedback topic).
``complete`` publishes the item's decisions to the feedback topic (see engine/worklist/feedback.py) before it
returns; a publish that failed is retried by the next ``complete`` (the outbox keeps it).
"""

from __future__ import annotations

import argparse
import json

import redis

from engine.infra.producer import make_producer
from engine.infra.redis import redis_client
from engine.worklist.decisions import parse_decisions
from engine.worklist.feedback import FeedbackPublisher, check_coder_id, decision_bundle
from engine.worklist.items import PRIORITIES, PRIORITY_HELP
from engine.worklist.store import ItemView, WorklistError, WorklistStore
from schemas.cli import UserError
from schemas.errors import TransientError
from schemas.icd10cm import load_code_set
from schemas.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prio_help = "; ".join(f"{k}: {v}" for k, v in PRIORITY_HELP.items())

    p = actions.add_parser("list", help="items by status, in priority order")
    p.add_argument("--status", choices=("queued", "claimed", "completed"), default="queued")
    p.add_argument("--priority", choices=PRIORITIES, default=None, help=f"default ICDCODER_ENGINE_WORKLIST_PRIORITY; {prio_help}")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = actions.add_parser("claim", help="lease the next item (or --item) to a coder")
    p.add_argument("--coder", required=True, help="the coder's workforce id (becomes Practitioner/<id>)")
    p.add_argument("--priority", choices=PRIORITIES, default=None, help=f"default ICDCODER_ENGINE_WORKLIST_PRIORITY; {prio_help}")
    p.add_argument("--item", help="claim this item instead of the next one (or renew your lease on it)")
    p.add_argument("--lease-s", type=float, default=None, help="lease length (default ICDCODER_ENGINE_WORKLIST_LEASE_S); an expired item returns to the queue")
    p.add_argument("--json", action="store_true")

    p = actions.add_parser("show", help="an item with its codes, evidence and decisions so far")
    p.add_argument("item")
    p.add_argument("--json", action="store_true")

    p = actions.add_parser("decide", help="accept/reject suggested codes, add missing ones")
    p.add_argument("item")
    p.add_argument("--coder", required=True)
    p.add_argument("--accept", nargs="+", default=[], metavar="CODE")
    p.add_argument("--reject", nargs="+", default=[], metavar="CODE")
    p.add_argument("--add", nargs="+", default=[], metavar="CODE")

    p = actions.add_parser("complete", help="close the item and publish its decisions to the feedback topic")
    p.add_argument("item")
    p.add_argument("--coder", required=True)


def _line(view: ItemView) -> str:
    item = view.item
    low = min(item.codes.values(), default=0.0)
    holder = f" by {item.claimed_by} until {item.lease_expires_at:%H:%M:%S} UTC" if item.claimed_by else ""
    return (f"{item.item_id:<32} {item.status:<9} codes={len(item.codes):<3} notes={len(item.notes):<3} "
            f"min_score={low:.3f} model={item.model.name}/{item.model.version} created={item.created_at:%Y-%m-%d %H:%M:%S}{holder}")


def _show(view: ItemView) -> str:
    item = view.item
    lines = [_line(view), f"subject={item.subject} encounter={item.encounter}"]
    for code, score in item.codes.items():
        lines.append(f"  {code:<10} {score:.3f}  decision={view.decisions.get(code, '-')}")
    for code, action in view.decisions.items():
        if code not in item.codes:
            lines.append(f"  {code:<10}   -    decision={action}")
    for n in item.notes:
        lines.append(f"  note {n.document_reference} v{n.document_version or '-'} at {n.processed_at.isoformat()}")
        for s in n.suggestions:
            spans = ", ".join(f"{e.start}-{e.end}" for e in s.evidence)
            lines.append(f"    {s.code:<10} {s.score:.3f} (threshold {s.threshold:.3f}) {s.display}  evidence chars: {spans or '-'}")
    return "\n".join(lines)


def _dump(view: ItemView) -> str:
    return json.dumps({"item": view.item.model_dump(mode="json"), "decisions": view.decisions})


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if getattr(args, "priority", "unset") is None:
        args.priority = settings.worklist_priority
    if getattr(args, "lease_s", "unset") is None:
        args.lease_s = settings.worklist_lease_s
    try:
        if getattr(args, "coder", None):
            check_coder_id(args.coder)
        store = WorklistStore(redis_client(settings.redis), settings.redis.key_prefix)
        return _ACTIONS[args.action](args, store, settings)
    except (WorklistError, ValueError) as err:
        raise UserError(str(err)) from None
    except (redis.ConnectionError, redis.TimeoutError) as err:
        raise UserError(f"cannot reach Redis at ICDCODER_REDIS_URL: {type(err).__name__}") from None
    except TransientError as err:
        raise UserError(f"{err} (ICDCODER_KAFKA_BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers})") from None


def _list(args, store: WorklistStore, settings) -> int:
    views = store.list_items(args.status, args.priority, args.limit)
    for v in views:
        print(_dump(v) if args.json else _line(v))
    if not args.json:
        counts = store.counts()
        print(f"# {len(views)} shown; " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def _claim(args, store: WorklistStore, settings) -> int:
    view = store.claim(args.coder, args.lease_s, args.priority, args.item)
    if view is None:
        print("the queue is empty")
        return 1
    print(_dump(view) if args.json else _show(view))
    return 0


def _show_item(args, store: WorklistStore, settings) -> int:
    view = store.get(args.item)
    print(_dump(view) if args.json else _show(view))
    return 0


def _decide(args, store: WorklistStore, settings) -> int:
    view = store.decide(args.item, args.coder, parse_decisions(args.accept, args.reject, args.add))
    print(_show(view))
    return 0


def _complete(args, store: WorklistStore, settings) -> int:
    load_code_set()  # descriptions of added codes: load the table before the item is watched, not during
    decision = store.complete(args.item, args.coder, lambda d, item: decision_bundle(d, item, settings.fhir_version))
    try:
        producer = make_producer(settings.kafka, "feedback")
        try:
            published = store.drain_outbox(FeedbackPublisher(producer, settings.kafka.feedback_topic, settings.fhir_version))
        finally:
            producer.close()
    except TransientError as err:
        raise UserError(f"completed {decision.item_id}, but publishing to {settings.kafka.feedback_topic} failed ({err}); "
                        "the decision stays in the outbox and the next complete publishes it") from None
    decided = ", ".join(f"{d.action} {d.code}" for d in decision.decisions)
    print(f"completed {decision.item_id} by {decision.coder}: {decided}; {published} decision record(s) published "
          f"to {settings.kafka.feedback_topic}")
    return 0


_ACTIONS = {"list": _list, "claim": _claim, "show": _show_item, "decide": _decide, "complete": _complete}

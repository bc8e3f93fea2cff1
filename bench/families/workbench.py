"""The coders' workbench under load, on loopback: ``workbench_coders`` simulated coders (one thread and one HTTP
connection each, each signed in with its own token) claim, decide and complete concurrently on
``workbench_items`` items for at most ``workbench_seconds``, against the real server process
(``python -m engine workbench``, one uvicorn worker), a private Redis and the Tansu Kafka broker.

Checks, reported as met / NOT met: no item claimed by two coders (leases are long, nothing is released), no
decision lost (every completed item's decision is on the feedback topic, once, with exactly what its coder
sent). Figures: latency per action (p50/p95/p99, ms, client side), requests/s, items completed per second.
Items are hand-built (2-4 suggested codes each, no note text: the text source is not measured here).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from typing import Any

from bench.artifacts import Artifacts
from bench.common import BenchConfig, percentiles, say

CODES = ["E11.9", "I10", "J45.909", "E78.5", "N18.3", "K21.9", "F32.A", "M54.50", "R07.9", "Z79.4"]


def _seed(store, items: int) -> None:
    from engine.pipeline.types import ParsedNote, ProcessedNote
    from schemas.envelopes import EvidenceSpan, ModelRef, Suggestion

    model = ModelRef(name="bert_xml", version=1, code_set_release="ICD-10-CM 2026")
    at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    notes = []
    for i in range(items):
        codes = [CODES[(i + k) % len(CODES)] for k in range(2 + i % 3)]
        suggestions = tuple(Suggestion(code=c, display=c, score=0.5 + 0.04 * k, threshold=0.4, evidence=(EvidenceSpan(start=10 * k, end=10 * k + 8, weight=0.5),))
                            for k, c in enumerate(codes))
        notes.append(ProcessedNote(
            note=ParsedNote(document_id=f"load-{i}", document_version="1", subject=f"Patient/p-{i}", encounter=f"Encounter/load-{i}",
                            date=at, note_type=None, text="", fhir_version="R4"),
            source=None, deid_text="", deid_text_sha256="0" * 64, model=model, thresholds_global=0.4, scores={s.code: s.score for s in suggestions},
            suggestions=suggestions, bundle_json=b"{}", output_key=f"Encounter/load-{i}".encode(), processed_at=at + dt.timedelta(seconds=i)))
    for start in range(0, len(notes), 100):
        store.add_notes(notes[start:start + 100])


def _coder(url: str, token: str, deadline: float, log: list, lock: threading.Lock) -> None:
    """One coder's shift: claim, decide every suggested code (accept the first, reject the others, add one on
    every third item), complete; until the queue is empty or the time is up."""
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        n = 0
        while time.monotonic() < deadline:
            calls: list[tuple[str, float, int]] = []

            def call(action: str, method: str, path: str, body=None):
                started = time.perf_counter()
                resp = client.request(method, path, json=body)
                calls.append((action, 1000 * (time.perf_counter() - started), resp.status_code))
                return resp

            claimed = call("claim", "POST", "/api/claims", {})
            if claimed.status_code == 204:
                with lock:
                    log.append({"calls": calls})
                return
            item = claimed.json()
            codes = [c["code"] for c in item["suggested"]]
            sent = [{"code": codes[0], "action": "accept"}] + [{"code": c, "action": "reject"} for c in codes[1:]]
            if n % 3 == 0 and "Z00.00" not in codes:
                sent.append({"code": "Z00.00", "action": "add"})
            call("decide", "POST", f"/api/items/{item['item_id']}/decisions", {"decisions": sent})
            done = call("complete", "POST", f"/api/items/{item['item_id']}/complete")
            with lock:
                log.append({"item": item["item_id"], "sent": {(d["code"], d["action"]) for d in sent}, "calls": calls,
                            "completed": done.status_code in (200, 202)})
            n += 1


def run(cfg: BenchConfig, art: Artifacts) -> dict[str, Any]:
    import redis

    from bench.devservers.environment import engine_environment, kafka_settings, topic_names
    from bench.devservers.kafka import start_kafka
    from bench.devservers.redis import start_redis
    from bench.devservers.workbench import start_workbench
    from engine.infra.kafka import create_topics, read_topic
    from engine.worklist.feedback import DECISION_HEADER, DECISION_ID_HEADER
    from engine.worklist.store import WorklistStore

    sizes = cfg.sizes
    coders, items, seconds = sizes.workbench_coders, sizes.workbench_items, sizes.workbench_seconds
    work = cfg.work_dir / "workbench"
    kafka = start_kafka(work / "kafka")
    redis_server = start_redis(work / "redis", appendonly=True)
    server = None
    try:
        env = engine_environment(kafka.bootstrap, redis_server.url, work, topic_names("bench-workbench"), redis_key_prefix="benchwb:")
        ks = kafka_settings(env)
        create_topics(ks, partitions=1, replication_factor=1)
        store = WorklistStore(redis.Redis.from_url(redis_server.url), "benchwb:")
        _seed(store, items)
        server = start_workbench(env, work)
        tokens = [server.token(f"coder-{k:02d}", "coder") for k in range(coders)]
        say(f"workbench: {coders} coders on {items} items for at most {seconds:.0f} s")
        log: list[dict] = []
        lock = threading.Lock()
        started = time.monotonic()
        threads = [threading.Thread(target=_coder, args=(server.url, t, started + seconds, log, lock)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        done = [e for e in log if e.get("completed")]
        claims = Counter(e["item"] for e in log if "item" in e)
        published: dict[str, set] = {}
        duplicates = 0
        seen_ids: set[str] = set()
        for r in read_topic(ks, ks.feedback_topic, idle_s=2.0):
            headers = dict(r.headers or [])
            decision_id = headers[DECISION_ID_HEADER].decode()
            if decision_id in seen_ids:
                duplicates += 1
                continue
            seen_ids.add(decision_id)
            decision = json.loads(headers[DECISION_HEADER])
            published.setdefault(decision["item_id"], set()).update((d["code"], d["action"]) for d in decision["decisions"])
        lost = [e["item"] for e in done if published.get(e["item"]) != e["sent"]]
        calls = [c for e in log for c in e["calls"]]
        by_action = {a: percentiles([ms for act, ms, _ in calls if act == a]) for a in ("claim", "decide", "complete")}
        errors = Counter(f"{a} {s}" for a, _, s in calls if s >= 400)
        overall = percentiles([ms for _, ms, _ in calls])
        return {
            "what": f"{coders} simulated coders (threads, one connection each) on {items} items, at most {seconds:.0f} s, real server "
                    "(one uvicorn worker), Redis and Kafka on loopback",
            "coders": coders, "items": items, "time_limit_s": seconds, "wall_s": round(wall, 2),
            "items_completed": len(done), "items_left_queued": store.counts()["queued"], "requests": len(calls),
            "requests_per_s": round(len(calls) / wall, 1), "items_per_s": round(len(done) / wall, 2),
            "latency_ms": {"all": overall, **by_action}, "http_errors": dict(errors),
            "no_item_claimed_twice": all(n == 1 for n in claims.values()), "items_claimed_twice": sum(n > 1 for n in claims.values()),
            "no_decision_lost": not lost and len(published) == len(done), "decisions_lost": len(lost),
            "feedback_records": len(seen_ids), "feedback_duplicates": duplicates,
        }
    finally:
        if server is not None:
            server.stop()
        redis_server.stop()
        kafka.stop()

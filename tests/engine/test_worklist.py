"""The coding worklist against a real Redis: merging, priorities, leases, decisions, persistence, CLI."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
import redis

from engine.io.sinks import WorklistSink
from engine.worklist.decisions import parse_decisions
from engine.worklist.store import WorklistError, WorklistStore
from schemas.envelopes import CodeDecision
from tests.fixtures.worklist_notes import processed_note


@pytest.fixture
def store(redis_url) -> WorklistStore:
    return WorklistStore(redis.Redis.from_url(redis_url), f"t{uuid.uuid4().hex[:8]}:")


def test_notes_join_their_encounter_with_max_scores(store):
    sink = WorklistSink(store)
    sink.write([
        processed_note("d1", "Encounter/e1", {"E11.9": 0.7, "I10": 0.9}),
        processed_note("d2", "Encounter/e1", {"E11.9": 0.8}, minutes=1),
        processed_note("d3", "Encounter/e2", {"J45.909": 0.6}, minutes=2),
    ])
    e1 = store.get("Encounter/e1").item
    assert e1.codes == {"E11.9": 0.8, "I10": 0.9}
    assert [n.document_reference for n in e1.notes] == ["DocumentReference/d1", "DocumentReference/d2"]
    assert e1.notes[0].suggestions[0].evidence[0].end == 8
    assert e1.status == "queued" and e1.claimed_by is None
    # a redelivered note changes nothing; a new version of a note replaces its earlier entry
    assert store.add_notes([processed_note("d2", "Encounter/e1", {"E11.9": 0.8}, minutes=1)]) == 0
    assert store.add_notes([processed_note("d2", "Encounter/e1", {"E11.9": 0.6}, minutes=3, version="2")]) == 1
    e1 = store.get("Encounter/e1").item
    assert e1.codes == {"E11.9": 0.7, "I10": 0.9}  # max now comes from d1
    assert len(e1.notes) == 2 and e1.notes[-1].document_version == "2"
    # no encounter: the patient is the item
    store.add_notes([processed_note("d9", None, {"I10": 0.55}, subject="Patient/p9")])
    assert store.get("Patient/p9").item.codes == {"I10": 0.55}
    assert store.counts()["queued"] == 3


def test_priorities_order_the_queue(store):
    store.add_notes([
        # oldest; confident (min 0.95); margin 0.45
        processed_note("a", "Encounter/a", {"I10": 0.95}, minutes=0),
        # lowest confidence (0.55); margin 0.05
        processed_note("b", "Encounter/b", {"I10": 0.55}, minutes=1),
        # medium confidence 0.8; a code just below threshold (0.49 -> margin 0.01): most uncertain
        processed_note("c", "Encounter/c", {"I10": 0.8}, below={"E11.9": 0.49}, minutes=2),
    ])
    ids = lambda prio: [v.item.item_id for v in store.list_items("queued", prio)]
    assert ids("oldest") == ["Encounter/a", "Encounter/b", "Encounter/c"]
    assert ids("confidence") == ["Encounter/b", "Encounter/c", "Encounter/a"]
    assert ids("uncertain") == ["Encounter/c", "Encounter/b", "Encounter/a"]
    view = store.claim("coder1", 60, "uncertain")
    assert view.item.item_id == "Encounter/c"
    assert ids("confidence") == ["Encounter/b", "Encounter/a"]
    with pytest.raises(WorklistError, match="unknown priority"):
        store.claim("coder1", 60, "newest")


def test_lease_expires_and_another_coder_reclaims(store):
    store.add_notes([processed_note("a", "Encounter/a", {"I10": 0.9}), processed_note("b", "Encounter/b", {"I10": 0.9}, minutes=1)])
    first = store.claim("alice", 0.4)
    assert first.item.item_id == "Encounter/a" and first.item.claimed_by == "alice"
    store.decide("Encounter/a", "alice", [CodeDecision(code="I10", action="accept")])
    # bob cannot take alice's live claim, and gets the next item instead
    with pytest.raises(WorklistError, match="claimed by coder 'alice'"):
        store.claim("bob", 60, item_id="Encounter/a")
    assert store.claim("bob", 60).item.item_id == "Encounter/b"
    with pytest.raises(WorklistError, match="claimed by another coder"):
        store.decide("Encounter/b", "alice", [CodeDecision(code="I10", action="reject")])
    time.sleep(0.5)  # alice "crashed": her lease runs out and the item returns to the queue
    assert [v.item.item_id for v in store.list_items("queued")] == ["Encounter/a"]
    with pytest.raises(WorklistError, match="your lease on item 'Encounter/a' expired"):
        store.decide("Encounter/a", "alice", [CodeDecision(code="I10", action="reject")])
    again = store.claim("bob", 60)
    assert again.item.item_id == "Encounter/a" and again.item.claimed_by == "bob"
    assert again.decisions == {}  # alice's unfinished decisions went with her lease
    with pytest.raises(WorklistError, match="expired"):
        store.complete("Encounter/a", "alice", lambda d, i: b"{}")
    assert store.get("Encounter/a").item.claimed_by == "bob"


def test_bad_decisions_are_refused_and_change_nothing(store):
    store.add_notes([processed_note("a", "Encounter/a", {"I10": 0.9, "E11.9": 0.7})])
    accept_i10 = [CodeDecision(code="I10", action="accept")]
    with pytest.raises(WorklistError, match="not claimed by 'carol'; claim it first"):
        store.decide("Encounter/a", "carol", accept_i10)
    with pytest.raises(WorklistError, match="no worklist item 'Encounter/zzz'"):
        store.decide("Encounter/zzz", "carol", accept_i10)
    store.claim("carol", 60)
    with pytest.raises(WorklistError, match="'Q99.99X' .* is not a code of ICD-10-CM 2026"):
        parse_decisions(add=["Q99.99X"])
    assert parse_decisions(accept=["i10"], add=["e785"]) == [CodeDecision(code="I10", action="accept"), CodeDecision(code="E78.5", action="add")]
    with pytest.raises(WorklistError, match="named twice"):
        parse_decisions(accept=["I10"], reject=["i10"])
    with pytest.raises(WorklistError, match="cannot reject J45.909 .* not suggested"):
        store.decide("Encounter/a", "carol", [CodeDecision(code="J45.909", action="reject")])
    with pytest.raises(WorklistError, match="cannot add I10 .* accept it instead"):
        store.decide("Encounter/a", "carol", [CodeDecision(code="I10", action="add")])
    store.decide("Encounter/a", "carol", accept_i10)
    with pytest.raises(WorklistError, match="undecided suggested codes: E11.9"):
        store.complete("Encounter/a", "carol", lambda d, i: b"{}")
    assert store.get("Encounter/a").decisions == {"I10": "accept"}
    store.decide("Encounter/a", "carol", [CodeDecision(code="E11.9", action="reject"), CodeDecision(code="E78.5", action="add")])
    decision = store.complete("Encounter/a", "carol", lambda d, i: b"{}")
    assert {(c.code, c.action) for c in decision.decisions} == {("I10", "accept"), ("E11.9", "reject"), ("E78.5", "add")}
    with pytest.raises(WorklistError, match="already completed"):
        store.complete("Encounter/a", "carol", lambda d, i: b"{}")
    with pytest.raises(WorklistError, match="already completed"):
        store.decide("Encounter/a", "carol", accept_i10)
    assert store.counts() == {"queued": 0, "claimed": 0, "completed": 1, "pending_feedback": 1}
    published = []
    assert store.drain_outbox(lambda i, d, p: published.append(d)) == 1
    assert published == [decision] and store.counts()["pending_feedback"] == 0
    # a new note after completion reopens the item
    store.add_notes([processed_note("b", "Encounter/a", {"J45.909": 0.8}, minutes=5)])
    assert store.get("Encounter/a").item.status == "queued"


def test_acknowledged_items_survive_a_redis_crash(tmp_path):
    from bench.devservers.redis import start_redis

    server = start_redis(tmp_path / "redis", appendonly=True)
    port = server.port
    try:
        store = WorklistStore(redis.Redis.from_url(server.url), "icdcoder:")
        store.r.config_set("appendfsync", "always")  # what docs/worklist.md asks of production Redis
        store.add_notes([processed_note("a", "Encounter/a", {"I10": 0.9}), processed_note("b", "Encounter/b", {"E11.9": 0.6}, minutes=1)])
        store.claim("dave", 600)
        store.decide("Encounter/a", "dave", [CodeDecision(code="I10", action="accept")])
        store.r.close()
        os.kill(server.pid, signal.SIGKILL)  # a crash right after the acknowledgements, not a clean shutdown
    finally:
        server.stop()
    server = start_redis(tmp_path / "redis", port=port, appendonly=True)
    try:
        store = WorklistStore(redis.Redis.from_url(server.url), "icdcoder:")
        a = store.get("Encounter/a")
        assert a.item.status == "claimed" and a.item.claimed_by == "dave" and a.decisions == {"I10": "accept"}
        assert [v.item.item_id for v in store.list_items("queued")] == ["Encounter/b"]
        assert store.get("Encounter/b").item.codes == {"E11.9": 0.6}
        store.r.close()
    finally:
        server.stop()


def test_redis_outage_is_transient_for_the_engine():
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from bench.devservers import free_port
    from schemas.errors import TransientError

    down = WorklistStore(redis.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0)), "x:")
    with pytest.raises(TransientError, match="Redis unavailable for the worklist"):
        WorklistSink(down).write([processed_note("a", "Encounter/a", {"I10": 0.9})])

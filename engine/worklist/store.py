"""The worklist in Redis: items, priority queues, leases, and the feedback outbox (layout: docs/worklist.md).

Atomicity: claiming (and returning expired leases to the queues) is one Lua script, so two coders can never
claim the same item; every other change reads the item under WATCH and writes it in MULTI/EXEC, retrying
when anything touched the item in between. Lease times come from the Redis server clock (TIME), so coders'
clocks do not matter.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import redis

from engine.pipeline.types import ProcessedNote
from engine.worklist.items import PRIORITIES, Priority, item_id_for, merge_note, note_margin, priority_scores, remove_note, same_content
from schemas.envelopes import CodeDecision, CoderDecision, WorklistItem

_LUA_COMMON = """
local prefix = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function requeue(id)
  local key = prefix .. 'wl:item:' .. id
  local p = redis.call('HMGET', key, 'p:oldest', 'p:confidence', 'p:uncertain', 'coder')
  redis.call('ZADD', prefix .. 'wl:queue:oldest', p[1], id)
  redis.call('ZADD', prefix .. 'wl:queue:confidence', p[2], id)
  redis.call('ZADD', prefix .. 'wl:queue:uncertain', p[3], id)
  redis.call('ZREM', prefix .. 'wl:leases', id)
  -- a crashed coder's unfinished decisions go with the lease: the next coder starts clean
  redis.call('HSET', key, 'status', 'queued', 'expired_coder', p[4] or '', 'decisions', '{}')
  redis.call('HDEL', key, 'coder', 'lease_ms')
end
local function reap(now)
  local expired = redis.call('ZRANGEBYSCORE', prefix .. 'wl:leases', '-inf', now)
  for _, id in ipairs(expired) do requeue(id) end
  return #expired
end
"""

# ARGV: prefix, priority, coder, lease_ms, wanted item id ('' = the first in the priority's queue)
_LUA_CLAIM = _LUA_COMMON + """
local priority, coder, lease, wanted = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local now = now_ms()
reap(now)
local id = wanted
if wanted == '' then
  local pick = redis.call('ZRANGE', prefix .. 'wl:queue:' .. priority, 0, 0)
  if #pick == 0 then return {'empty'} end
  id = pick[1]
end
local key = prefix .. 'wl:item:' .. id
local st = redis.call('HGET', key, 'status')
if not st then return {'unknown_item'} end
if st == 'completed' then return {'completed', redis.call('HGET', key, 'completed_by') or ''} end
local holder = redis.call('HGET', key, 'coder')
if st == 'claimed' and holder ~= coder then return {'claimed_by_other', holder} end
if st ~= 'claimed' then redis.call('HSET', key, 'decisions', '{}') end
redis.call('ZREM', prefix .. 'wl:queue:oldest', id)
redis.call('ZREM', prefix .. 'wl:queue:confidence', id)
redis.call('ZREM', prefix .. 'wl:queue:uncertain', id)
local expires = now + lease
redis.call('ZADD', prefix .. 'wl:leases', expires, id)
redis.call('HSET', key, 'status', 'claimed', 'coder', coder, 'lease_ms', expires)
if st == 'claimed' then redis.call('HDEL', key, 'expired_coder') end
return {'ok', id, tostring(expires)}
"""

_LUA_REAP = _LUA_COMMON + "return reap(now_ms())"


class WorklistError(ValueError):
    """A request the worklist refuses (unknown item, not your claim, lease expired, completed twice...).
    Nothing has been changed when it is raised."""


@dataclass(frozen=True)
class ItemView:
    """An item as stored: the envelope (with status and lease filled in) and the claim's decisions so far."""

    item: WorklistItem
    decisions: dict[str, str]  # code -> accept | reject | add
    expired_coder: str | None  # the coder whose lease last expired, if any


def _ms_to_dt(ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def _s(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


class WorklistStore:
    def __init__(self, client: redis.Redis, key_prefix: str = "icdcoder:") -> None:
        self.r = client
        self.prefix = key_prefix
        self._claim = client.register_script(_LUA_CLAIM)
        self._reap = client.register_script(_LUA_REAP)

    # -- keys ---------------------------------------------------------------------------------------------
    def item_key(self, item_id: str) -> str:
        return f"{self.prefix}wl:item:{item_id}"

    def queue_key(self, priority: Priority) -> str:
        return f"{self.prefix}wl:queue:{priority}"

    @property
    def leases_key(self) -> str:
        return f"{self.prefix}wl:leases"

    @property
    def completed_key(self) -> str:
        return f"{self.prefix}wl:completed"

    @property
    def outbox_key(self) -> str:
        return f"{self.prefix}wl:outbox"

    # -- helpers ------------------------------------------------------------------------------------------
    def now(self, client=None) -> dt.datetime:
        sec, usec = (client or self.r).time()
        return dt.datetime.fromtimestamp(sec + usec / 1e6, tz=dt.timezone.utc)

    def reap_expired(self) -> int:
        """Return items whose lease ran out to the queues; the number returned."""
        return int(self._reap(args=[self.prefix]))

    def _view(self, fields: dict[bytes, bytes]) -> ItemView:
        f = {k.decode(): v.decode() for k, v in fields.items()}
        item = WorklistItem.model_validate_json(f["item"]).model_copy(update={
            "status": f["status"],
            "claimed_by": f.get("coder") if f["status"] == "claimed" else None,
            "lease_expires_at": _ms_to_dt(float(f["lease_ms"])) if f.get("lease_ms") else None,
        })
        return ItemView(item, json.loads(f.get("decisions") or "{}"), f.get("expired_coder") or None)

    def _transact(self, item_id: str, body: Callable[[redis.client.Pipeline, dict], object]):
        """Run ``body(pipe, fields)`` under WATCH on the item; body calls pipe.multi() before writing."""
        key = self.item_key(item_id)
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    result = body(pipe, pipe.hgetall(key))
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    # -- the engine side ----------------------------------------------------------------------------------
    def add_notes(self, notes: Sequence[ProcessedNote]) -> int:
        """Merge coded notes into their encounters' items; returns how many items changed."""
        groups: dict[str, list[ProcessedNote]] = {}
        for note in notes:
            groups.setdefault(item_id_for(note.note.encounter, note.note.subject, note.note.reference), []).append(note)
        return sum(bool(self._transact(item_id, lambda p, f, g=group: self._merge(p, f, g))) for item_id, group in groups.items())

    def _merge(self, pipe, fields: dict[bytes, bytes], notes: list[ProcessedNote]) -> bool:
        now = self.now(pipe)
        old = WorklistItem.model_validate_json(fields[b"item"]) if fields else None
        margins = json.loads(fields.get(b"margins", b"{}"))
        new = old
        for note in notes:
            if note.action == "retract":  # entered-in-error: its entry leaves the item (docs/worklist.md)
                new = remove_note(new, note.note.reference, now) if new is not None else None
                continue
            new = merge_note(new, note, now)
            margins[note.note.reference] = note_margin(note)
        if new is None:
            if old is None:
                return False  # a retraction of a note the worklist never had (or already removed)
            self._remove_item(pipe, old.item_id)
            return True
        if same_content(old, new):
            return False  # a redelivered note: nothing a coder would see changed
        margins = {n.document_reference: margins[n.document_reference] for n in new.notes}
        status = fields.get(b"status", b"queued").decode()
        scores = priority_scores(new, margins)
        key = self.item_key(new.item_id)
        pipe.multi()
        if status == "completed":  # a new note after completion reopens the item
            status = "queued"
            pipe.zrem(self.completed_key, new.item_id)
            pipe.hdel(key, "completed_ms", "completed_by")
            pipe.hset(key, "decisions", "{}")
        pipe.hset(key, mapping={
            "item": new.model_dump_json(),
            "margins": json.dumps(margins),
            "status": status,
            **{f"p:{p}": repr(scores[p]) for p in PRIORITIES},
        })
        if status == "queued":
            for p in PRIORITIES:
                pipe.zadd(self.queue_key(p), {new.item_id: scores[p]})
        return True

    def _remove_item(self, pipe, item_id: str) -> None:
        """An item whose every note was entered in error: gone from the queues, leases and completed set;
        its hash is deleted (decisions already completed are on the feedback topic)."""
        pipe.multi()
        for p in PRIORITIES:
            pipe.zrem(self.queue_key(p), item_id)
        pipe.zrem(self.leases_key, item_id)
        pipe.zrem(self.completed_key, item_id)
        pipe.delete(self.item_key(item_id))

    # -- the coder side -----------------------------------------------------------------------------------
    def claim(self, coder: str, lease_s: float, priority: Priority = "oldest", item_id: str | None = None) -> ItemView | None:
        """Lease the next item (or ``item_id``) to ``coder``; None when the queue is empty.
        Claiming an item you already hold renews its lease."""
        if priority not in PRIORITIES:
            raise WorklistError(f"unknown priority {priority!r}; choose one of {', '.join(PRIORITIES)}")
        if lease_s <= 0:
            raise WorklistError(f"lease must be positive, got {lease_s} s")
        res = [_s(x) for x in self._claim(args=[self.prefix, priority, coder, int(lease_s * 1000), item_id or ""])]
        if res[0] == "empty":
            return None
        if res[0] == "unknown_item":
            raise WorklistError(f"no worklist item {item_id!r}")
        if res[0] == "completed":
            raise WorklistError(f"item {item_id!r} is already completed (by {res[1]})")
        if res[0] == "claimed_by_other":
            raise WorklistError(f"item {item_id!r} is claimed by coder {res[1]!r} whose lease has not expired")
        return self.get(res[1])

    def get(self, item_id: str) -> ItemView:
        self.reap_expired()
        fields = self.r.hgetall(self.item_key(item_id))
        if not fields:
            raise WorklistError(f"no worklist item {item_id!r}")
        return self._view(fields)

    def list_items(self, status: str = "queued", priority: Priority = "oldest", limit: int = 20) -> list[ItemView]:
        self.reap_expired()
        if status == "queued":
            ids = self.r.zrange(self.queue_key(priority), 0, limit - 1)
        elif status == "claimed":
            ids = self.r.zrange(self.leases_key, 0, limit - 1)
        elif status == "completed":
            ids = self.r.zrevrange(self.completed_key, 0, limit - 1)
        else:
            raise WorklistError(f"unknown status {status!r}; choose queued, claimed or completed")
        with self.r.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(self.item_key(i.decode()))
            return [self._view(f) for f in pipe.execute() if f]

    def counts(self) -> dict[str, int]:
        self.reap_expired()
        return {
            "queued": self.r.zcard(self.queue_key("oldest")),
            "claimed": self.r.zcard(self.leases_key),
            "completed": self.r.zcard(self.completed_key),
            "pending_feedback": self.r.hlen(self.outbox_key),
        }

    def _held(self, fields: dict[bytes, bytes], item_id: str, coder: str, now: dt.datetime) -> ItemView:
        """The item if ``coder`` holds a live lease on it, else WorklistError saying why not."""
        if not fields:
            raise WorklistError(f"no worklist item {item_id!r}")
        view = self._view(fields)
        item = view.item
        if item.status == "completed":
            raise WorklistError(f"item {item_id!r} is already completed (by {_s(fields.get(b'completed_by'))}); nothing changed")
        if item.status == "claimed" and item.claimed_by == coder and item.lease_expires_at and item.lease_expires_at <= now:
            raise WorklistError(f"your lease on item {item_id!r} expired at {item.lease_expires_at.isoformat()}; claim it again")
        if view.expired_coder == coder and item.claimed_by != coder:
            raise WorklistError(f"your lease on item {item_id!r} expired (it is now {item.status}); claim it again")
        if item.status != "claimed":
            raise WorklistError(f"item {item_id!r} is not claimed by {coder!r}; claim it first")
        if item.claimed_by != coder:
            raise WorklistError(f"item {item_id!r} is claimed by another coder ({item.claimed_by!r})")
        return view

    def decide(self, item_id: str, coder: str, decisions: Iterable[CodeDecision]) -> ItemView:
        """Record decisions on a claimed item (a later decision on the same code replaces the earlier one).
        accept/reject name suggested codes; add names a valid code that was not suggested."""
        decisions = list(decisions)
        if not decisions:
            raise WorklistError("no decisions given")
        self.reap_expired()

        def body(pipe, fields):
            view = self._held(fields, item_id, coder, self.now(pipe))
            suggested = set(view.item.codes)
            for d in decisions:
                if d.action in ("accept", "reject") and d.code not in suggested:
                    raise WorklistError(f"cannot {d.action} {d.code} on item {item_id!r}: it was not suggested "
                                        f"(suggested: {', '.join(sorted(suggested)) or 'none'}); use add")
                if d.action == "add" and d.code in suggested:
                    raise WorklistError(f"cannot add {d.code} on item {item_id!r}: it was suggested; accept it instead")
            merged = {**view.decisions, **{d.code: d.action for d in decisions}}
            pipe.multi()
            pipe.hset(self.item_key(item_id), "decisions", json.dumps(merged, sort_keys=True))
            return None

        self._transact(item_id, body)
        return self.get(item_id)

    def complete(self, item_id: str, coder: str, render: Callable[[CoderDecision, WorklistItem], bytes]) -> CoderDecision:
        """Close a claimed item whose every suggested code is decided. In the same transaction the
        CoderDecision and ``render(decision, item)`` (the FHIR payload) go into the outbox, from which
        ``drain_outbox`` publishes them: a decision is never lost between Redis and Kafka."""
        self.reap_expired()

        def body(pipe, fields):
            now = self.now(pipe)
            view = self._held(fields, item_id, coder, now)
            undecided = sorted(set(view.item.codes) - set(view.decisions))
            if undecided:
                raise WorklistError(f"item {item_id!r} has undecided suggested codes: {', '.join(undecided)}; "
                                    "accept or reject each before completing")
            decision = CoderDecision(
                item_id=item_id,
                coder=coder,
                decisions=tuple(CodeDecision(code=c, action=a) for c, a in sorted(view.decisions.items())),
                model=view.item.model,
                decided_at=now,
            )
            payload = render(decision, view.item)
            decision_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{item_id}|{coder}|{now.isoformat()}"))
            key = self.item_key(item_id)
            pipe.multi()
            pipe.hset(key, mapping={"status": "completed", "completed_ms": int(now.timestamp() * 1000), "completed_by": coder})
            pipe.hdel(key, "coder", "lease_ms")
            pipe.zrem(self.leases_key, item_id)
            pipe.zadd(self.completed_key, {item_id: now.timestamp()})
            pipe.hset(self.outbox_key, decision_id, json.dumps({"decision": decision.model_dump(mode="json"), "payload": payload.decode()}))
            return decision

        return self._transact(item_id, body)

    def drain_outbox(self, publish: Callable[[str, CoderDecision, bytes], None]) -> int:
        """Publish every pending decision (``publish`` returns only once the broker acknowledged), removing
        each from the outbox after its publish; returns how many were published."""
        done = 0
        for decision_id, raw in sorted(self.r.hgetall(self.outbox_key).items()):
            entry = json.loads(raw)
            publish(decision_id.decode(), CoderDecision.model_validate(entry["decision"]), entry["payload"].encode())
            self.r.hdel(self.outbox_key, decision_id)
            done += 1
        return done

"""The streaming loop: poll a batch -> process -> record in Redis -> write every sink and the dead letters
-> commit. At-least-once: offsets are committed only after every output of the batch is acknowledged.

A ``TransientError`` (inference backend, Redis or broker unavailable) retries the unfinished steps of the
same batch with exponential backoff, forever, while the consumer holds its partitions paused; nothing is
dead-lettered or committed meanwhile. A ``ProcessingError`` sends that one message to the dead-letter
topic and the stream goes on. SIGTERM/SIGINT stop polling, finish the batch in hand and commit it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from engine.infra.producer import WriteRefused
from engine.io.dead_letters import DeadLetterWriter
from engine.io.processed import ProcessedStore
from engine.observability import Health, Metrics
from engine.pipeline.processor import process_isolating
from engine.pipeline.status import SkippedNote
from engine.pipeline.types import ProcessedNote, Sink, SourceRecord
from schemas.errors import ProcessingError, TransientError, root_cause_name

log = logging.getLogger(__name__)


class Processor(Protocol):
    def process_batch(self, records: list[SourceRecord]) -> list[ProcessedNote | ProcessingError]: ...


class Source(Protocol):
    def poll_batch(self) -> list[SourceRecord]: ...
    def hold(self) -> None: ...
    def commit(self, records: list[SourceRecord]) -> bool: ...
    def lag(self) -> dict[int, int]: ...


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.initial_s * 2**attempt)
        return base * random.uniform(0.8, 1.0)  # jitter: replicas do not retry in lock step


@dataclass
class RunSummary:
    batches: int = 0
    coded: int = 0
    repeats: int = 0
    dead_letters: int = 0
    skipped: int = 0  # superseded notes: deliberately not coded (engine/pipeline/status.py)
    retractions: int = 0  # entered-in-error notes: what their document produced was withdrawn
    retries: int = 0
    stopped_by: str = ""

    @property
    def notes(self) -> int:
        return self.coded + self.dead_letters + self.skipped


class _Dependency(TransientError):
    def __init__(self, dependency: str, err: TransientError) -> None:
        super().__init__(str(err))
        self.dependency = dependency


@dataclass
class _BatchState:
    """How far a batch got, so a retry redoes only what is unfinished: no second inference after a sink
    failed, no second write to a sink that already acknowledged."""

    records: list[SourceRecord]
    coded: list[ProcessedNote] | None = None  # settled outputs, once processed and recorded in Redis
    failed: list[tuple[SourceRecord, ProcessingError]] = field(default_factory=list)
    repeats: int = 0
    skipped: int = 0
    sinks_done: int = 0
    dead_letters_done: bool = False
    counted: bool = False


@dataclass
class CodingService:
    source: Source
    processor: Processor
    sinks: Sequence[Sink]
    dead_letters: DeadLetterWriter
    store: ProcessedStore
    metrics: Metrics
    health: Health = field(default_factory=Health)
    backoff: Backoff = field(default_factory=Backoff)
    stop: threading.Event = field(default_factory=threading.Event)
    failing: set[str] = field(default_factory=set)  # dependencies whose last call failed (for /readyz)
    exit_on_stall: bool = False  # stop (exit) once health.stalled(), instead of only failing /livez

    def run(self, max_notes: int | None = None, idle_exit_s: float | None = None) -> RunSummary:
        summary = RunSummary()
        last_record = time.monotonic()
        while not self.stop.is_set():
            self.health.tick()
            self.health.progress()  # no batch in hand: waiting for input is not being stuck
            batch = self._poll()
            if not batch:
                if idle_exit_s is not None and time.monotonic() - last_record >= idle_exit_s:
                    summary.stopped_by = "idle"
                    break
                continue
            last_record = time.monotonic()
            self.metrics.batch_size.observe(len(batch))
            if not self._handle(_BatchState(batch), summary):
                # stopped while a dependency was down (or refusing writes): the batch stays uncommitted, re-delivered later
                summary.stopped_by = summary.stopped_by or ("stalled" if self.health.stalled() else "")
                break
            summary.batches += 1
            self._update_lag()
            if max_notes is not None and summary.notes >= max_notes:
                summary.stopped_by = "max_notes"
                break
        summary.stopped_by = summary.stopped_by or "signal"
        log.info("service stopped", extra={"fields": {"reason": summary.stopped_by, "batches": summary.batches,
                 "coded": summary.coded, "repeats": summary.repeats, "dead_letters": summary.dead_letters, "retries": summary.retries}})
        return summary

    def _poll(self) -> list[SourceRecord]:
        """A batch from the source; a broker outage while polling is retried here (the consumer reconnects
        and rejoins its group by itself), with the same backoff and readiness reporting as a batch."""
        attempt = 0
        while True:
            try:
                batch = self.source.poll_batch()
                self.failing.discard("kafka")
                return batch
            except TransientError as err:
                self.failing.add("kafka")
                self.metrics.retries.labels(dependency="kafka").inc()
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("polling the input topic failed; retrying", extra={"fields": {"error": root_cause_name(err), "attempt": attempt, "delay_s": round(delay, 2)}})
                if not self._wait(delay):
                    return []

    def _handle(self, state: _BatchState, summary: RunSummary) -> bool:
        attempt = 0
        while True:
            try:
                self._advance(state, summary)
                self.failing.clear()
                self.health.progress()
                return True
            except WriteRefused as err:
                # the broker refuses these bytes for good (even a dead letter's reference record): retrying
                # cannot help; stop with the reason, leaving the batch uncommitted (docs/engine.md)
                log.error("a write was refused for good; stopping", extra={"fields": {"error": str(err), "records": len(state.records)}})
                summary.stopped_by = "write_refused"
                return False
            except _Dependency as err:
                self.failing.add(err.dependency)
                self.metrics.retries.labels(dependency=err.dependency).inc()
                summary.retries += 1
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("dependency unavailable; retrying the batch", extra={"fields": {
                    "dependency": err.dependency, "error": root_cause_name(err), "attempt": attempt,
                    "delay_s": round(delay, 2), "records": len(state.records)}})
                if self.health.stalled() and self.exit_on_stall:
                    log.error("no progress for too long; stopping so that the engine is restarted", extra={"fields": {
                        "stall_timeout_s": self.health.stall_timeout_s, "dependency": err.dependency}})
                    return False
                if not self._wait(delay):
                    return False

    def _wait(self, delay_s: float) -> bool:
        """Sleep ``delay_s`` while keeping group membership; False if asked to stop meanwhile."""
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:
            self.health.tick()
            try:
                self.source.hold()
            except TransientError:
                pass  # the broker itself is down: the next attempt reports it
            if self.stop.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                return False
        return True

    def _advance(self, state: _BatchState, summary: RunSummary) -> None:
        if state.coded is None:
            t0 = time.perf_counter()
            results = self._step("inference", self._process, state.records)
            self.metrics.stage_seconds.labels(stage="process_batch").observe(time.perf_counter() - t0)
            coded = [r for r in results if isinstance(r, ProcessedNote)]  # coded notes and retractions
            failed = [(rec, r) for rec, r in zip(state.records, results) if isinstance(r, ProcessingError)]
            state.skipped = sum(isinstance(r, SkippedNote) for r in results)
            state.coded, state.repeats = self._step("redis", self.store.settle, coded)
            state.failed = failed
        t0 = time.perf_counter()
        while state.sinks_done < len(self.sinks):
            sink = self.sinks[state.sinks_done]
            self._step(getattr(sink, "dependency", type(sink).__name__), sink.write, state.coded)
            state.sinks_done += 1
        if state.failed and not state.dead_letters_done:
            self._step("kafka", self.dead_letters.write, state.failed)
        state.dead_letters_done = True
        self.metrics.stage_seconds.labels(stage="sinks").observe(time.perf_counter() - t0)
        if not state.counted:
            self._count(state.coded, state.repeats, state.failed, summary)
            self.metrics.notes.labels(outcome="skipped").inc(state.skipped)
            summary.skipped += state.skipped
            state.counted = True
        t0 = time.perf_counter()
        committed = self._step("kafka", self.source.commit, state.records)
        self.metrics.stage_seconds.labels(stage="commit").observe(time.perf_counter() - t0)
        self.metrics.commits.labels(result="ok" if committed else "rebalanced").inc()

    def _process(self, records: list[SourceRecord]) -> list[ProcessedNote | ProcessingError]:
        """The processor's results, one per record; a record that fails unexpectedly becomes its own
        ``internal_error`` dead letter (``process_isolating``) so one bad message cannot stop the stream."""
        return process_isolating(self.processor, records)

    @staticmethod
    def _step(dependency: str, fn, *args):
        """Run ``fn``; a TransientError names the failing dependency (its own, e.g. Redis inside the
        processor's time lookup, or the step's)."""
        try:
            return fn(*args)
        except TransientError as err:
            raise _Dependency(getattr(err, "dependency", dependency), err) from err

    def _count(self, coded: list[ProcessedNote], repeats: int, failed: list, summary: RunSummary) -> None:
        m = self.metrics
        retractions = sum(n.action == "retract" for n in coded)
        m.notes.labels(outcome="retracted").inc(retractions)
        summary.retractions += retractions
        m.notes.labels(outcome="coded").inc(max(0, len(coded) - repeats - retractions))
        m.notes.labels(outcome="repeat").inc(repeats)
        for n in coded:
            for stage, ms in n.timings_ms.items():
                m.stage_seconds.labels(stage=stage).observe(ms / 1000)
        for _, err in failed:
            m.dead_letters.labels(reason=err.reason).inc()
        summary.coded += len(coded)
        summary.repeats += repeats
        summary.dead_letters += len(failed)
        log.info("batch done", extra={"fields": {"records": len(coded) + len(failed), "coded": len(coded),
                 "repeats": repeats, "dead_letters": len(failed), "reasons": sorted({e.reason for _, e in failed})}})

    def _update_lag(self) -> None:
        try:
            for partition, lag in self.source.lag().items():
                self.metrics.consumer_lag.labels(partition=str(partition)).set(lag)
        except Exception:  # lag is informational; Tansu does not always report it
            log.debug("consumer lag unavailable")

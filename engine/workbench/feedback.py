"""The workbench's Kafka side: publishing completed items' decisions (the worklist outbox, as ``engine worklist
complete`` does) and the supervisor's evaluation (the figures of ``engine evaluate-feedback`` on the live topics).
"""

from __future__ import annotations

import logging
import threading
import time

from engine.audit.feedback import evaluate, read_decisions, report_payload
from engine.audit.records import AuditRange, read_audit
from engine.infra.producer import make_producer
from engine.worklist.feedback import FeedbackPublisher
from engine.worklist.store import WorklistStore
from schemas.errors import TransientError
from schemas.settings import EngineSettings

log = logging.getLogger(__name__)


class FeedbackSender:
    """Drains the worklist outbox to the feedback topic with one long-lived producer (made on first use, made
    again after a failure). A failed drain leaves the decisions in the outbox: the next drain (the next
    complete, or the background loop) publishes them."""

    def __init__(self, settings: EngineSettings, store: WorklistStore) -> None:
        self.settings, self.store = settings, store
        self._producer = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> int:
        """Publish every pending decision; the number published. TransientError when the broker is unavailable."""
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(self.settings.kafka, "workbench")
            publish = FeedbackPublisher(self._producer, self.settings.kafka.feedback_topic, self.settings.fhir_version)
            try:
                return self.store.drain_outbox(publish)
            except TransientError:
                self._producer.close(timeout=5)
                self._producer = None
                raise

    def start_background(self, every_s: float = 15.0) -> None:
        """Retry what a failed publish left in the outbox, every ``every_s`` while the outbox is not empty."""

        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    if self.store.r.hlen(self.store.outbox_key):
                        self.drain()
                except Exception as err:  # noqa: BLE001 - keep retrying; the type says what (no message: it may quote a reply)
                    log.warning("feedback outbox drain failed", extra={"fields": {"error": type(err).__name__}})

        self._thread = threading.Thread(target=loop, name="feedback-outbox", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


class SupervisorEvaluation:
    """Suggestions (live audit topic) vs coders' decisions (feedback topic): ``engine.audit.feedback.evaluate``,
    the same function and JSON as ``engine evaluate-feedback``. Reading both topics takes a while, so the result
    is reused for ``cache_s`` seconds."""

    def __init__(self, settings: EngineSettings, cache_s: float) -> None:
        self.settings, self.cache_s = settings, cache_s
        self._cached: tuple[float, dict] | None = None
        self._lock = threading.Lock()

    def figures(self, refresh: bool = False) -> dict:
        with self._lock:
            if self._cached and not refresh and time.monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1]
            kafka = self.settings.kafka
            found, unreadable = read_audit(kafka, kafka.audit_topic, AuditRange())
            decisions, bad = read_decisions(kafka, kafka.feedback_topic)
            skipped = {k: v for k, v in (("unreadable_audit_records", unreadable), ("feedback_records_without_decision", bad)) if v}
            payload = report_payload(evaluate([r for _, r in found], decisions), len({d.item_id for d in decisions}), skipped)
            payload.update(audit_records=len(found), computed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self._cached = (time.monotonic(), payload)
            return payload

"""Operations: Prometheus metrics, liveness/readiness endpoints, structured JSON logs.

Nothing here ever carries PHI: metric labels are stage names, reasons, dependencies and partition
numbers; log lines are fixed messages plus counts/reasons in ``extra={"fields": {...}}``; exception
messages are left out of logs (they can echo input), only their type and stack frames are kept.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from schemas.secrets import mask_secrets

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def engine_version() -> str:
    try:
        return importlib.metadata.version("icd-coder")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (``icdcoder_*``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.notes = Counter("icdcoder_notes", "Notes handled, by outcome (coded, repeat, dead_letter)", ["outcome"], registry=r)
        self.segments = Counter("icdcoder_segments", "Segments sent to the model", registry=r)
        self.stage_seconds = Histogram("icdcoder_stage_seconds", "Latency per pipeline stage (per note for note stages, per batch otherwise)", ["stage"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("icdcoder_batch_size", "Records per batch taken from the input topic", buckets=_BATCH_BUCKETS, registry=r)
        self.dead_letters = Counter("icdcoder_dead_letters", "Messages sent to the dead-letter topic, by reason", ["reason"], registry=r)
        self.retries = Counter("icdcoder_retries", "Batch retries after a dependency failed, by dependency", ["dependency"], registry=r)
        self.consumer_lag = Gauge("icdcoder_consumer_lag", "Records behind the partition end (where the broker reports it)", ["partition"], registry=r)
        self.commits = Counter("icdcoder_commits", "Offset commits, by result (ok, rebalanced)", ["result"], registry=r)
        self.ready = Gauge("icdcoder_ready", "1 when the broker, Redis and the model are ready", registry=r)
        self.info = Gauge("icdcoder_engine_info", "Engine and model version", ["engine_version", "model"], registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Expose /metrics; returns the bound port (0 picks a free one)."""
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return server.server_port


@dataclass
class Health:
    """Liveness: the main loop ticked recently AND it is not stuck: a batch in hand has not gone without
    progress for ``stall_timeout_s`` (retrying a dependency that never comes back, a client that cannot
    recover). Then ``/livez`` answers 503 so an orchestrator restarts the engine; the batch, uncommitted, is
    re-delivered to the new process. Readiness: every dependency check passes."""

    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    stale_after_s: float = 120.0
    stall_timeout_s: float = 300.0
    _last_tick: float = field(default_factory=time.monotonic)
    _last_progress: float = field(default_factory=time.monotonic)
    _server: ThreadingHTTPServer | None = None

    def tick(self) -> None:
        self._last_tick = time.monotonic()

    def progress(self) -> None:
        """A batch finished, or there is none in hand (waiting for input is not being stuck)."""
        self._last_progress = time.monotonic()

    def stalled(self) -> bool:
        return time.monotonic() - self._last_progress >= self.stall_timeout_s

    def alive(self) -> bool:
        return time.monotonic() - self._last_tick < self.stale_after_s and not self.stalled()

    def readiness(self) -> dict[str, bool]:
        out = {}
        for name, check in self.checks.items():
            try:
                out[name] = bool(check())
            except Exception:  # a failing check means not ready, never a crash of the endpoint
                out[name] = False
        return out

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/livez":
                    ok = health.alive()
                    body = {"alive": ok, "stalled": health.stalled()}
                elif self.path == "/readyz":
                    checks = health.readiness()
                    ok, body = all(checks.values()), {"ready": all(checks.values()), "checks": checks}
                else:
                    ok, body = False, {"error": "not found"}
                data = json.dumps(body).encode()
                self.send_response(200 if ok else (404 if "error" in body else 503))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # probes every few seconds: not worth a log line
                pass

        self._server = ThreadingHTTPServer((addr, port), Handler)
        threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True).start()
        return self._server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's ``fields``; exceptions as
    type and frames only (their messages may quote input)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": self._message(record),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            out["exc_type"] = exc_type.__name__
            out["stack"] = [f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)]
        return mask_secrets(json.dumps(out, default=str))  # a library's message may carry a URL with credentials

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        if not isinstance(record.msg, str):
            return type(record.msg).__name__
        if record.name.startswith("engine") or not record.args:
            return record.msg  # the engine's own messages are fixed strings; values go in ``fields``
        try:
            return record.getMessage()  # client libraries: hosts, partitions, error codes
        except (TypeError, ValueError):
            return record.msg


def setup_json_logging(level: str) -> None:
    """Replace the root handlers with one JSON handler on stderr.

    In ``engine.*`` loggers ``%``-style arguments are never interpolated (``msg`` is printed as written), so a
    stray ``log.info("... %s", text)`` cannot leak a value. Client libraries log at WARNING and above only.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("kafka", "urllib3", "tritonclient", "presidio-analyzer", "redis"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class SegmentCountingBackend:
    """Wraps an inference backend to count the segments (rows) it runs; everything else is delegated."""

    def __init__(self, backend, counter: Counter) -> None:
        self._backend = backend
        self._counter = counter

    def infer(self, input_ids, attention_mask):
        result = self._backend.infer(input_ids, attention_mask)
        self._counter.inc(len(input_ids))
        return result

    def infer_many(self, batches):
        results = self._backend.infer_many(batches)
        self._counter.inc(sum(len(ids) for ids, _ in batches))
        return results

    def __getattr__(self, name):
        return getattr(self._backend, name)

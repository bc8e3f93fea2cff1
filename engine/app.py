"""The engine assembled from its settings: the one place where the parts are wired together.

- ``load_model``: the model version named by ``ICDCODER_MODEL_*`` and its inference backend (Triton when
  ``ICDCODER_TRITON_URL`` is set, else the model's ONNX file in-process);
- ``build_processor``: the note pipeline (parse -> ... -> FHIR) on that model, for ``engine code``;
- ``build_service``: the streaming service of ``engine run`` (which the tests, the demo and the benchmarks
  start as a process): Kafka source, processor, the three sinks (output topic, audit topic, worklist),
  dead letters, processed-note store, metrics and health. It waits (with backoff) for the broker and the
  model server at start, so start order does not matter.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Iterator, TypeVar

from engine.infra.producer import make_producer
from engine.infra.model import ModelRuntime, load_runtime_from_settings
from engine.infra.redis import redis_client
from engine.io.dead_letters import DeadLetterWriter
from engine.io.processed import ProcessedStore
from engine.io.sinks import AuditSink, OutputTopicSink, WorklistSink
from engine.io.source import KafkaSource
from engine.observability import Health, Metrics, SegmentCountingBackend, engine_version
from engine.pipeline.infer.base import InferenceBackend
from engine.pipeline.infer.factory import make_backend
from engine.pipeline.processor import NoteProcessor
from engine.service import Backoff, CodingService
from schemas.cli import UserError
from schemas.errors import TransientError, root_cause_name
from schemas.settings import EngineSettings

log = logging.getLogger("engine.run")
T = TypeVar("T")


def load_model(settings: EngineSettings) -> tuple[ModelRuntime, InferenceBackend]:
    """The configured model version and its backend; a missing or malformed repository is a UserError."""
    try:
        runtime = load_runtime_from_settings(settings.model)
        return runtime, make_backend(settings, runtime)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot load model (ICDCODER_MODEL_REPOSITORY/NAME/VERSION or options): {err}") from None


def build_processor(settings: EngineSettings, **kwargs: object) -> NoteProcessor:
    """The note pipeline on the configured model (``processor.backend.check()`` tells whether it can serve);
    ``kwargs`` go to ``NoteProcessor`` (e.g. ``clock``)."""
    runtime, backend = load_model(settings)
    return NoteProcessor(runtime, backend, settings, **kwargs)  # type: ignore[arg-type]


def until_up(what: str, connect: Callable[[], T], stop: threading.Event, backoff: Backoff) -> T:
    """Connect, retrying with ``backoff`` while the dependency is down (a restart order must not matter);
    SystemExit(0) if asked to stop meanwhile."""
    attempt = 0
    while True:
        try:
            return connect()
        except TransientError as err:
            delay = backoff.delay(attempt)
            attempt += 1
            log.warning("dependency unavailable at start; retrying", extra={"fields": {"dependency": what, "error": root_cause_name(err), "delay_s": round(delay, 2)}})
            if stop.wait(delay):
                raise SystemExit(0)


@contextlib.contextmanager
def build_service(settings: EngineSettings, stop: threading.Event) -> Iterator[CodingService]:
    """The streaming service, closed (sinks, producer, source, processor, health server, Redis) on exit."""
    runtime, backend = load_model(settings)
    metrics = Metrics()
    model = runtime.model_ref
    metrics.info.labels(engine_version=engine_version(), model=f"{model.name}/{model.version}").set(1)
    backoff = Backoff(settings.triton.backoff_initial_s, settings.triton.backoff_max_s)
    start_backoff = Backoff(0.5, settings.triton.backoff_max_s)  # waiting for a dependency to come up
    try:
        until_up("inference", backend.check, stop, start_backoff)
    except ValueError as err:  # Triton answers, but with a model that does not match the repository's metadata
        raise UserError(str(err)) from None
    store = ProcessedStore(redis_client(settings.redis), settings.redis.key_prefix, settings.redis.processed_ttl_s)
    processor = NoteProcessor(runtime, SegmentCountingBackend(backend, metrics.segments), settings, processed_at_lookup=store.processed_at,
                              productions_lookup=store.productions)
    producer = until_up("kafka", lambda: make_producer(settings.kafka), stop, start_backoff)
    source = until_up("kafka", lambda: KafkaSource(settings.kafka), stop, start_backoff)
    service = CodingService(
        source=source,
        processor=processor,
        sinks=[
            OutputTopicSink(producer, settings.kafka.output_topic, settings.fhir_version),
            AuditSink.from_settings(settings, producer),
            WorklistSink.from_settings(settings.redis),
        ],
        dead_letters=DeadLetterWriter(producer, settings.kafka.dead_letter_topic, engine_version()),
        store=store,
        metrics=metrics,
        health=Health(stall_timeout_s=settings.stall_timeout_s),
        backoff=backoff,
        stop=stop,
        exit_on_stall=settings.exit_on_stall,
    )
    service.health.checks = {
        "kafka": lambda: source.connected() and "kafka" not in service.failing,
        "redis": lambda: store.ping() and "redis" not in service.failing,
        "model": lambda: "inference" not in service.failing,  # checked at start; then every batch is a check
    }
    ports = {"metrics_port": metrics.serve(settings.metrics_port), "health_port": service.health.serve(settings.health_port)}
    metrics.ready.set_function(lambda: float(all(service.health.readiness().values())))
    log.info("engine started", extra={"fields": {**ports, "engine_version": engine_version(), "model": f"{model.name}/{model.version}",
             "backend": type(backend).__name__}})
    try:
        yield service
    finally:
        for sink in service.sinks:
            sink.close()
        producer.flush(timeout=30)
        producer.close(timeout=30)
        source.close()
        processor.close()  # its inference thread, then the backend
        service.health.close()
        store.client.close()

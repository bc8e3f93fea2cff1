"""``python -m engine run``: serve the stream until SIGTERM/SIGINT (exit 0 after a clean shutdown).

DocumentReference messages in (``ICDCODER_KAFKA_INPUT_TOPIC``), FHIR transaction Bundles out
(``ICDCODER_KAFKA_OUTPUT_TOPIC``), unprocessable messages to ``ICDCODER_KAFKA_DEAD_LETTER_TOPIC``.
Settings come only from the ``ICDCODER_*`` environment (``python -m engine config`` shows them).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from typing import Callable, Iterator

from schemas.cli import UserError
from schemas.settings import EngineSettings, KafkaSettings, load_settings

log = logging.getLogger("engine.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--create-topics", action="store_true", help="create the engine's topics first if missing")
    parser.add_argument("--partitions", type=int, default=3, help="partitions for topics created by --create-topics (default 3)")
    parser.add_argument("--replication-factor", type=int, default=1, help="replication factor for --create-topics (default 1)")
    parser.add_argument("--max-notes", type=int, default=None, metavar="N", help="stop after N notes (coded or dead-lettered); for demos and tests")
    parser.add_argument("--idle-exit-s", type=float, default=None, metavar="S", help="stop after S seconds without input; for demos and tests")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()  # a SettingsError is a UserError: reported without a traceback
    for name in ("max_notes", "partitions", "replication_factor"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    from engine.observability import setup_json_logging

    setup_json_logging("DEBUG" if getattr(args, "verbose", False) else settings.log_level)
    if args.create_topics:
        created = create_topics(settings.kafka, args.partitions, args.replication_factor)
        log.info("topics ready", extra={"fields": {"created": created}})

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("shutdown requested", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    with build_service(settings, stop) as service:
        summary = service.run(max_notes=args.max_notes, idle_exit_s=args.idle_exit_s)
    print(f"engine run: {summary.notes} notes ({summary.coded} coded, of which {summary.repeats} repeats, "
          f"{summary.dead_letters} dead letters), {summary.retries} retries; stopped by {summary.stopped_by}")
    return 0




def create_topics(kafka: KafkaSettings, partitions: int, replication_factor: int) -> list[str]:
    """Create the input, output, dead-letter, audit and feedback topics that do not exist yet."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from engine.kafka_config import admin_kwargs

    names = [kafka.input_topic, kafka.output_topic, kafka.dead_letter_topic, kafka.audit_topic, kafka.feedback_topic]
    admin = KafkaAdminClient(**admin_kwargs(kafka))
    try:
        missing = [n for n in dict.fromkeys(names) if n not in set(admin.list_topics())]
        created = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, partitions, replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:  # another replica created it meanwhile
                pass
        return created
    finally:
        admin.close()


def _until_up(what: str, connect: Callable, stop: threading.Event, backoff_max_s: float):
    """Connect, retrying with backoff while the dependency is down (a restart order must not matter)."""
    from engine.pipeline.types import TransientError, root_cause_name

    delay = 0.5
    while True:
        try:
            return connect()
        except TransientError as err:
            log.warning("dependency unavailable at start; retrying", extra={"fields": {"dependency": what, "error": root_cause_name(err), "delay_s": delay}})
            if stop.wait(delay):
                raise SystemExit(0)
            delay = min(backoff_max_s, delay * 2)


@contextlib.contextmanager
def build_service(settings: EngineSettings, stop: threading.Event) -> Iterator:
    """Wire the service from settings. Sinks, in order: output topic, audit topic, coding worklist (Redis).

    Waits (with backoff) for the broker and the model server at start, so start order does not matter.
    """
    from engine.audit import AuditSink
    from engine.model_runtime import load_runtime_from_settings
    from engine.observability import Health, Metrics, SegmentCountingBackend, engine_version
    from engine.pipeline.dead_letter import DeadLetterWriter
    from engine.pipeline.idempotency import ProcessedStore, redis_client
    from engine.pipeline.infer.factory import make_backend
    from engine.pipeline.processor import NoteProcessor
    from engine.pipeline.sinks import OutputTopicSink, make_producer
    from engine.pipeline.source import KafkaSource
    from engine.service import Backoff, CodingService
    from engine.worklist.sink import WorklistSink

    try:
        runtime = load_runtime_from_settings(settings.model)
        backend = make_backend(settings, runtime)  # a missing or malformed model.onnx is the user's to fix too
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot load the model (ICDCODER_MODEL_REPOSITORY/NAME/VERSION): {err}") from None
    metrics = Metrics()
    model = runtime.model_ref
    metrics.info.labels(engine_version=engine_version(), model=f"{model.name}/{model.version}").set(1)
    backoff_max = settings.triton.backoff_max_s
    try:
        _until_up("inference", backend.check, stop, backoff_max)
    except ValueError as err:  # Triton answers, but with a model that does not match the repository's metadata
        raise UserError(str(err)) from None
    store = ProcessedStore(redis_client(settings.redis), settings.redis.key_prefix, settings.redis.processed_ttl_s)
    processor = NoteProcessor(runtime, SegmentCountingBackend(backend, metrics.segments), settings, processed_at_lookup=store.processed_at)
    producer = _until_up("kafka", lambda: make_producer(settings.kafka), stop, backoff_max)
    source = _until_up("kafka", lambda: KafkaSource(settings.kafka), stop, backoff_max)
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
        health=Health(),
        backoff=Backoff(settings.triton.backoff_initial_s, settings.triton.backoff_max_s),
        stop=stop,
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

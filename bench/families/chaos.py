"""Chaos: one fault at a time while the engine (``python -m engine run``, a child process) codes a stream, on
real servers on loopback. Per fault: nothing lost (every input note is an output Bundle or a dead letter),
no non-identical duplicate (a re-emitted Bundle is byte-identical), recovery without manual action, and the
time to recovery (fault over -> the first note after it handled).

Faults: broker restart with its data kept (Tansu on S3 storage, s3rver) and lost (memory storage), Redis
restart (append-only file), Triton killed and restarted (only with a Triton-served model), the engine
SIGKILLed exactly between "outputs acknowledged" and "offsets committed" (a proxy in front of the broker
kills it at its OffsetCommit request; the restarted engine re-delivers the batch), an oversized (7 MB) and a
deeply nested message mid-stream. "Manual action" is none except for the SIGKILL, where the restart stands
for the orchestrator's. Each fault gets fresh servers (Redis shared, keys separate).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from bench.common import say

FAULTS = ("broker_restart_durable", "broker_restart_memory", "redis_restart", "triton_kill", "engine_kill_before_commit",
          "oversized_message", "nested_message")
ROLES = ("input", "output", "dead_letter", "audit", "feedback")


def _documents(n: int, prefix: str) -> list[dict]:
    from bench.docref import document_reference

    texts = ["History of hypertension and type 2 diabetes mellitus.", "Asthma exacerbation; migraine.", "Chest pain, denies fever."]
    return [document_reference(f"Note {i}. {texts[i % 3]}", doc_id=f"{prefix}-{i}", subject=f"Patient/{prefix}-{i % 5}",
                               encounter=f"Encounter/{prefix}-{i % 7}") for i in range(n)]


def _poison(kind: str, prefix: str) -> bytes:
    from bench.docref import document_reference

    doc = document_reference("x" * 5_200_000 if kind == "oversized_message" else "Hypertension.", doc_id=f"{prefix}-poison")
    if kind == "nested_message":
        ext: dict = {"url": "https://example.org/x", "valueString": "v"}
        for _ in range(300):
            ext = {"url": "https://example.org/x", "extension": [ext]}
        doc["extension"] = [ext]
    return json.dumps(doc).encode()


class Rig:
    """Servers for one fault: Tansu behind a proxy (optionally on s3rver), a Redis, optionally Triton."""

    def __init__(self, stack: ExitStack, workdir: Path, repository: Path, model_name: str, durable: bool, redis_aof: bool, triton: bool) -> None:
        from bench.devservers import free_port
        from bench.devservers.kafka import start_kafka
        from bench.devservers.kafka_proxy import KafkaProxy
        from bench.devservers.redis import start_redis
        from bench.devservers.s3 import start_s3

        self.stack, self.workdir, self.repository, self.model_name = stack, workdir, repository, model_name
        self.s3 = start_s3(workdir / "s3") if durable else None
        if self.s3:
            stack.callback(lambda: self.s3.stop())
        self.broker_port = free_port()
        self.proxy = KafkaProxy(self.broker_port)
        stack.callback(self.proxy.close)
        self.broker = start_kafka(workdir / "kafka", port=self.broker_port, s3=self.s3, advertised_port=self.proxy.port)
        stack.callback(lambda: self.broker.stop())
        self.redis = start_redis(workdir / "redis", appendonly=redis_aof)
        stack.callback(lambda: self.redis.stop())
        self.triton = None
        if triton:
            from bench.devservers.triton import start_triton

            self.triton = start_triton(repository, workdir / "triton", model_control="none")
            stack.callback(lambda: self.triton.stop())
        self.bootstrap = self.broker.bootstrap
        self.topics = {role: f"chaos.{role}" for role in ROLES}
        self.create_topics()
        self.engines: list[subprocess.Popen] = []

    def create_topics(self) -> None:
        from bench.devservers.environment import kafka_settings
        from engine.infra.kafka import create_topics

        create_topics(kafka_settings(self.env()), 1, 1)

    def env(self) -> dict[str, str]:
        from bench.devservers.environment import engine_environment

        return engine_environment(self.bootstrap, self.redis.url, self.repository, self.topics, model_name=self.model_name,
                                  triton_url=self.triton.grpc_url if self.triton else "", kafka_group_id="chaos",
                                  kafka_max_poll_records="4", kafka_session_timeout_ms="4000", triton_backoff_max_s="1.0",
                                  triton_max_retries="1", triton_timeout_s="5")

    def start_engine(self) -> None:
        env = self.env()
        self.metrics_port = int(env["ICDCODER_ENGINE_METRICS_PORT"])
        log = open(self.workdir / f"engine-{len(self.engines)}.log", "wb")
        self.stack.callback(log.close)
        engine = subprocess.Popen([sys.executable, "-m", "engine", "run"], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.engines.append(engine)
        self.stack.callback(lambda: engine.poll() is None and (engine.kill(), engine.wait(10)))

    def handled(self) -> float:
        """Notes the running engine has handled (coded, repeats, dead letters), from its metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in ("icdcoder_notes_total", "icdcoder_dead_letters_total"):
                    total += s.value
        return total

    def wait_handled(self, n: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.handled() < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the engine handled {self.handled():.0f} of {n:.0f} notes within {timeout_s:.0f} s")
            if self.engines[-1].poll() is not None:
                raise RuntimeError(f"the engine exited with status {self.engines[-1].returncode}")
            time.sleep(0.2)

    def produce(self, messages: list[tuple[bytes, bytes]]) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", max_request_size=8 * 1024 * 1024, linger_ms=5)
        try:
            for f in [producer.send(self.topics["input"], key=k, value=v) for k, v in messages]:
                f.get(timeout=60)
        finally:
            producer.close(timeout=10)

    def read(self, role: str, expected: int) -> list:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                                 max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        try:
            # every partition: a memory broker re-creates a topic a client asks for with 4 partitions
            partitions = sorted(consumer.partitions_for_topic(self.topics[role]) or {0})
            consumer.assign([TopicPartition(self.topics[role], p) for p in partitions])
            consumer.seek_to_beginning()
            records, deadline, settle = [], time.monotonic() + 30, None
            while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
                for batch in consumer.poll(timeout_ms=200).values():
                    records.extend(batch)
                if settle is None and len(records) >= expected:
                    settle = time.monotonic() + 1.0
            return records
        finally:
            consumer.close(autocommit=False)


def _inject(fault: str, rig: Rig) -> None:
    """Cause the fault and return once the failed part is back (or, for poison, right away)."""
    from bench.devservers.kafka import read_through, start_kafka
    from bench.devservers.redis import start_redis

    if fault.startswith("broker_restart"):
        rig.broker.stop()
        time.sleep(1.0)
        rig.broker = start_kafka(rig.workdir / "kafka", port=rig.broker_port, s3=rig.s3, advertised_port=rig.proxy.port)
        if rig.s3:
            read_through(rig.bootstrap, list(rig.topics.values()))  # Tansu on S3: restores next offsets
        else:  # the memory broker lost everything. Worst timing for the engine: its consumer asks for the input
            # topic first and Tansu re-creates it (4 partitions); then the topics are provisioned, as an operator would
            _wait_for_topic(rig.bootstrap, rig.topics["input"], 60)
            rig.create_topics()
    elif fault == "redis_restart":
        rig.redis.stop()
        time.sleep(1.0)
        rig.redis = start_redis(rig.workdir / "redis", port=rig.redis.port, appendonly=True)
    elif fault == "triton_kill":
        from bench.devservers.triton import start_triton

        ports = (rig.triton.http_port, rig.triton.grpc_port, rig.triton.metrics_port)
        rig.triton.stop()
        time.sleep(2.0)
        rig.triton = start_triton(rig.repository, rig.workdir / "triton", *ports, model_control="none")


def _wait_for_topic(bootstrap: str, topic: str, timeout_s: float) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while topic not in admin.list_topics():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} was not re-created within {timeout_s:.0f} s")
            time.sleep(0.2)
    finally:
        admin.close()


def run_fault(fault: str, workdir: Path, repository: Path, model_name: str, notes: int, triton: bool = False) -> dict[str, Any]:
    """One fault: half the notes before it, half after (poison in the middle of the second half)."""
    from bench.devservers.environment import engine_environment  # noqa: F401 - fail early without the engine

    prefix = fault.replace("_", "-")  # FHIR ids: letters, digits, '-' and '.'
    first, second = _documents(notes // 2, f"{prefix}-a"), _documents(notes - notes // 2, f"{prefix}-b")
    encode: Callable[[dict], tuple[bytes, bytes]] = lambda d: (d["id"].encode(), json.dumps(d).encode())
    after = [encode(d) for d in second]
    if fault in ("oversized_message", "nested_message"):
        after.insert(len(after) // 2, (b"poison", _poison(fault, prefix)))
    shutil.rmtree(workdir, ignore_errors=True)  # an earlier run's S3 objects or Redis AOF would be loaded again
    with ExitStack() as stack:
        rig = Rig(stack, workdir, repository, model_name, durable=fault == "broker_restart_durable", redis_aof=fault == "redis_restart",
                  triton=triton or fault == "triton_kill")
        rig.produce([encode(d) for d in first])
        rig.start_engine()
        rig.wait_handled(len(first), 300)
        manual = "none"
        t0 = time.monotonic()
        if fault == "engine_kill_before_commit":
            killed = rig.engines[-1]
            rig.proxy.arm(killed.kill)  # at its next OffsetCommit: outputs acknowledged, offsets not committed
            rig.produce(after)
            killed.wait(timeout=120)
            t0 = time.monotonic()
            rig.start_engine()  # the orchestrator's restart
            manual = "engine restarted (as an orchestrator would)"
            rig.wait_handled(len(after), 300)  # the new engine: the uncommitted batch again, then the rest
        else:
            _inject(fault, rig)
            t0 = time.monotonic()
            rig.produce(after)
            base = len(first)
            rig.wait_handled(base + 1, 300)
            recovery = time.monotonic() - t0
            rig.wait_handled(base + len(after), 300)
        if fault == "engine_kill_before_commit":
            recovery = time.monotonic() - t0
        lost_with_broker = fault == "broker_restart_memory"
        expected_in = (after if lost_with_broker else [encode(d) for d in first] + after)
        out = rig.read("output", len(expected_in) - 1)
        dead = rig.read("dead_letter", 0)
        by_note: dict[str, set[bytes]] = {}
        for r in out:
            by_note.setdefault(json.loads(r.value)["identifier"]["value"], set()).add(r.value)
        dead_sources = {dict(r.headers).get("dlq.source.offset") for r in dead}  # a re-delivered batch re-sends its dead letters
        accounted = len(by_note) + len(dead_sources)
        restarts = len(rig.engines) - 1
    return {"fault": fault, "notes_in": len(expected_in), "outputs_distinct": len(by_note), "output_records": len(out),
            "dead_letters": len(dead_sources), "dead_letter_records": len(dead), "dead_letter_kinds": sorted({dict(r.headers).get("dlq.reason", b"").decode() for r in dead}),
            "lost": max(0, len(expected_in) - accounted), "non_identical_duplicates": sum(len(v) > 1 for v in by_note.values()),
            "recovery_s": round(recovery, 2), "manual_action": manual, "engine_restarts": restarts,
            "note": "first half lost with the memory broker; counted from the restart on; the engine's consumer re-created the "
                    "input topic (4 partitions) before it was provisioned again" if lost_with_broker else ""}


def run_faults(workdir: Path, repository: Path, model_name: str, notes: int, faults=FAULTS, triton_available: bool = True) -> list[dict]:
    results = []
    for fault in faults:
        if fault == "triton_kill" and not triton_available:
            results.append({"fault": fault, "skipped": "the model is not served by Triton here"})
            continue
        if fault == "broker_restart_durable":
            from bench.devservers.s3 import s3rver_binary

            if s3rver_binary() is None:
                results.append({"fault": fault, "skipped": "s3rver not installed (make tools)"})
                continue
        say(f"chaos: {fault} ...")
        try:
            results.append(run_fault(fault, workdir / fault, repository, model_name, notes))
        except Exception as err:  # noqa: BLE001 - reported per fault; the others still run
            results.append({"fault": fault, "error": f"{type(err).__name__}: {err}"[:300]})
        say(f"chaos: {fault}: {results[-1]}")
    return results


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when under it (results do not carry home directories)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(cfg, art) -> dict[str, Any]:
    from bench.artifacts import MODEL_NAME

    notes = 16 if cfg.quick else 60
    given = art.is_built("speed_repository")  # given with --speed-repository (bench/cli/run.py), not built by this run
    results = run_faults(art.root / "chaos", art.speed_repository, MODEL_NAME, notes)
    ok = [r for r in results if "fault" in r and "lost" in r]
    return {"what": "one fault at a time while the engine codes a stream (real Tansu, Redis, Triton, s3rver on loopback)",
            "notes_per_fault": notes, "faults": results,
            "model": f"{MODEL_NAME} from {_shown(art.speed_repository)}" + (" (--speed-repository)" if given else f" ({cfg.mode} mode speed model)"),
            "all_met": bool(ok) and len(ok) == len([r for r in results if "skipped" not in r])
                       and all(r["lost"] == 0 and r["non_identical_duplicates"] == 0 for r in ok)}

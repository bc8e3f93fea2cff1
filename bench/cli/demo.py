"""``python -m bench demo`` (``make demo``): the whole loop on one machine, with real servers.

1. prepare a dataset (synthetic notes with planted PHI by default, or CodiEsp with ``--codiesp DIR``),
   de-identified as the engine will de-identify;
2. build the WordPiece vocabulary, pretrain a tiny EHR-BERT, fine-tune BERT-XML (selected on dev: the
   synthetic data has a test split), add the description scorer and choose the fusion (``trainer fuse``),
   evaluate on test, export both graphs to a Triton model repository (each step is the real
   ``python -m trainer`` command; finished steps are reused on a second run unless ``--fresh``);
3. start the Tansu Kafka broker, a private Redis and the real tritonserver on free loopback ports;
4. publish held-out notes as FHIR DocumentReferences (every fourth as an HL7 v2 MDM^T02 message instead, as
   an interface engine sends it: the engine reads both, ``ICDCODER_ENGINE_INPUT_FORMAT=auto``), run
   ``python -m engine run`` against them, and print the Condition suggestions read back from the output
   topic (code, description, score, evidence), marking the codes outside the classifier's label space (found
   by the description scorer);
5. stop everything it started; with ``--workbench``, first serve the worklist it filled in the coders' workbench
   (``python -m engine workbench``, local sign-in, note text read back from the demo's Kafka) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.demo_recipe import SYNTHETIC_NOTES, SYNTHETIC_SEED, Step, training_steps
from schemas.cli import UserError
from trainer.data.dataset import evaluation_split, load_split

PY = sys.executable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="working directory (default demo-out/)")
    parser.add_argument("--codiesp", type=Path, help="use a CodiEsp directory instead of synthetic notes")
    parser.add_argument("--notes", type=int, default=20, help="held-out notes to send through the engine")
    parser.add_argument("--fresh", action="store_true", help="redo every step instead of reusing finished ones")
    parser.add_argument("--show", type=int, default=5, help="notes whose suggestions are printed in full")
    parser.add_argument("--workbench", action="store_true",
                        help="at the end, serve the worklist in the coders' workbench (sign-in links printed) until Ctrl-C")
    parser.add_argument("--workbench-port", type=int, default=8000, help="the workbench's port with --workbench (default 8000)")


def run(args: argparse.Namespace) -> int:
    logging.getLogger("kafka").setLevel(logging.WARNING)  # the demo's own producer/consumer: connection chatter
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data, repo = out / "data", out / "model_repository"
    started = time.monotonic()

    steps = training_steps(out, args.codiesp)
    _banner("1/5 prepare the dataset (de-identified)")
    _step(args, steps["prepare"])

    _banner("2/5 vocabulary, pretraining, fine-tuning, description scorer, evaluation, export")
    for name in ("vocab", "pretrain", "finetune", "fuse"):
        _step(args, steps[name])
    eval_split = evaluation_split(data)
    _step(args, Step("evaluate", out / "evaluation" / f"eval_{eval_split}.json",
                     ("evaluate", "--run", str(out / "run"), "--data", str(data), "--split", eval_split, "--out", str(out / "evaluation"))))
    _step(args, Step("export", repo / "bert_xml" / "1" / "model.onnx", ("export", "--run", str(out / "run"), "--repository", str(repo), "--variant", "cpu-python")))

    _banner("3/5 start Kafka (Tansu), Redis and Triton")
    from bench.devservers.environment import engine_environment, kafka_settings, topic_names
    from bench.devservers.kafka import start_kafka
    from bench.devservers.redis import start_redis
    from bench.devservers.triton import start_triton

    with ExitStack() as stack:
        kafka = start_kafka(out / "servers" / "kafka")
        stack.callback(kafka.stop)
        redis = start_redis(out / "servers" / "redis")
        stack.callback(redis.stop)
        triton = start_triton(repo, out / "servers" / "triton")
        stack.callback(triton.stop)
        print(f"kafka {kafka.bootstrap}   redis {redis.url}   triton grpc {triton.grpc_url}")
        env = engine_environment(kafka.bootstrap, redis.url, repo, topic_names("demo"), triton_url=triton.grpc_url,
                                 engine_input_format="auto")

        _banner("4/5 publish notes and run the engine")
        notes = _held_out_notes(args, data, eval_split)
        engine_kafka = kafka_settings(env)
        _publish(engine_kafka, notes)
        engine = subprocess.run([PY, "-m", "engine", "run", "--max-notes", str(len(notes)), "--idle-exit-s", "60"], env=env)
        if engine.returncode != 0:
            raise UserError(f"the engine exited with status {engine.returncode}")

        _banner("5/5 suggestions read back from the output topic")
        from bench.suggestions import print_suggestions
        from engine.infra.kafka import read_topic

        bundles = [(r.key, r.value) for r in read_topic(engine_kafka, engine_kafka.output_topic, idle_s=2.0)]
        dead = list(read_topic(engine_kafka, engine_kafka.dead_letter_topic, idle_s=0.5))
        from schemas.model_repo import load_metadata

        label_space = set(load_metadata(repo, "bert_xml").labels.codes)
        print_suggestions(bundles, {n.record.note_id: n for n in notes}, show=args.show, label_space=label_space)
        print(f"\n{len(bundles)} Bundles and {len(dead)} dead letters for {len(notes)} notes sent")
        subprocess.run([PY, "-m", "engine", "worklist", "list", "--limit", "5"], env=env)
        if args.workbench:
            _serve_workbench(stack, env, out, args.workbench_port)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; everything it started is stopped. Outputs in {out}")
    return 0


def _serve_workbench(stack: ExitStack, env: dict[str, str], out: Path, port: int) -> None:
    """The worklist in the workbench, on the demo's servers, until Ctrl-C (then everything stops as usual)."""
    from bench.devservers.workbench import start_workbench

    _banner("the coders' workbench (Ctrl-C stops it and everything else)")
    server = start_workbench(env, out / "servers" / "workbench", port=port)
    stack.callback(server.stop)
    print(f"open {server.url}/login#token={server.token('coder1', 'coder')}\n"
          f"  (coder1, a coder; a second coder: {server.url}/login#token={server.token('coder2', 'coder')})\n"
          f"  supervisor: {server.url}/login#token={server.token('lead1', 'coder', 'supervisor')}\n"
          f"more tokens: ICDCODER_WORKBENCH_LOCAL_KEY_FILE={server.key_file} python -m engine workbench token --user ID --role coder\n"
          f"log: {server.log_path}", flush=True)
    try:
        server._process.wait()
    except KeyboardInterrupt:
        print("\nstopping the workbench and the servers")


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _step(args: argparse.Namespace, step: Step) -> None:
    """Run one ``python -m trainer`` step unless its output already exists (reuse across demo runs)."""
    if step.marker.exists() and not args.fresh:
        print(f"reusing {step.marker.parent} (--fresh to redo)")
        return
    print("$ python -m trainer " + " ".join(step.argv), flush=True)
    if subprocess.run([PY, "-m", "trainer", *step.argv]).returncode != 0:
        raise UserError(f"step `trainer {step.name}` failed (see above)")


def _held_out_notes(args: argparse.Namespace, data: Path, split: str) -> list:
    """The ORIGINAL (not de-identified) text of held-out notes: the engine must de-identify it itself."""
    held_out = {r.note_id for r in load_split(data, split)}
    if args.codiesp:
        from trainer.data.importers.codiesp import read_codiesp  # CodiEsp case reports carry no PHI

        originals = [r for r in read_codiesp(args.codiesp, split) if r.note_id in held_out]
        from types import SimpleNamespace

        return [SimpleNamespace(record=r, phi=()) for r in originals][: args.notes]
    from trainer.data.synthetic import generate_notes

    return [n for n in generate_notes(SYNTHETIC_NOTES, seed=SYNTHETIC_SEED) if n.record.note_id in held_out][: args.notes]


def _publish(kafka, notes: list) -> None:
    """Every fourth note as HL7 v2 (MDM^T02, ER7) and the rest as FHIR DocumentReferences, on the one input topic."""
    from bench.docref import from_note_record
    from bench.hl7msg import from_note_record as hl7_from_note_record
    from engine.infra.kafka import create_topics
    from engine.infra.producer import make_producer, send_all

    create_topics(kafka, partitions=1, replication_factor=1)
    producer = make_producer(kafka, "demo")
    values = [hl7_from_note_record(n.record).bytes() if i % 4 == 3 else json.dumps(from_note_record(n.record)).encode("utf-8")
              for i, n in enumerate(notes)]
    send_all(producer, [(kafka.input_topic, None, value, []) for value in values])
    producer.close()
    hl7_ids = [n.record.note_id for i, n in enumerate(notes) if i % 4 == 3]
    print(f"published {len(notes) - len(hl7_ids)} FHIR DocumentReferences and {len(hl7_ids)} HL7 v2 MDM^T02 messages "
          f"({', '.join(hl7_ids) or '-'}) to {kafka.input_topic}")

"""Secrets are never printed: a secret planted in every secret-bearing setting (password fields, URL userinfo,
credential query parameters) must not appear in anything ``engine config``, ``engine run``, ``engine code``
or ``engine worklist`` print, also when they fail to reach the servers those URLs name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from bench.devservers import free_port
from schemas.secrets import mask_secrets
from tests.fixtures.docref import document_reference

SECRETS = {
    "ICDCODER_KAFKA_SASL_PASSWORD": "S3cr3t-sasl-PW",
    "ICDCODER_KAFKA_SSL_PASSWORD": "S3cr3t-sslkey-PW",
    "ICDCODER_REDIS_PASSWORD": "S3cr3t-redis-field-PW",
    "ICDCODER_ENGINE_DEID_DATE_SHIFT_SALT": "S3cr3t-salt",
}


def _environment(redis_port: int, triton_port: int) -> tuple[dict[str, str], list[str]]:
    planted = {
        **SECRETS,
        "ICDCODER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ICDCODER_KAFKA_SASL_MECHANISM": "PLAIN",
        "ICDCODER_KAFKA_SASL_USERNAME": "engine",
        "ICDCODER_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "ICDCODER_REDIS_URL": f"redis://coder:S3cr3t-redis-url-PW@127.0.0.1:{redis_port}/0?password=S3cr3t-redis-query-PW",
        "ICDCODER_TRITON_URL": f"http://triton:S3cr3t-triton-url-PW@127.0.0.1:{triton_port}?token=S3cr3t-triton-token",
        "ICDCODER_TRITON_PROTOCOL": "http",
        "ICDCODER_TRITON_TIMEOUT_S": "1",
        "ICDCODER_TRITON_MAX_RETRIES": "0",
        "ICDCODER_ENGINE_DEID_DATE_SHIFT": "true",
        "ICDCODER_ENGINE_METRICS_PORT": "0",
        "ICDCODER_ENGINE_HEALTH_PORT": "0",
    }
    secrets = [v for k, v in planted.items() if "S3cr3t" in v for v in [v]]
    secrets = sorted({part for v in secrets for part in v.replace("?", " ").replace("=", " ").replace("@", " ").replace(":", " ").split() if "S3cr3t" in part})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICDCODER_")}
    return {**env, **planted}, secrets


def _engine(env, *args, timeout=60) -> str:
    proc = subprocess.run([sys.executable, "-m", "engine", *args], env=env, capture_output=True, text=True, timeout=timeout)
    return proc.stdout + proc.stderr


def test_mask_secrets_covers_userinfo_and_query_credentials():
    assert mask_secrets("redis://u:pw@h:1/0") == "redis://****@h:1/0"
    assert mask_secrets("u:pw@h:8001") == "****@h:8001"
    assert mask_secrets("https://h/?token=abc&db=1") == "https://h/?token=****&db=1"
    assert mask_secrets("rediss://h:6380/0 and 127.0.0.1:9092 and a note@example") == "rediss://h:6380/0 and 127.0.0.1:9092 and a note@example"


def test_planted_secrets_never_appear_in_any_output(tmp_path, handbuilt_model_repo):
    env, secrets = _environment(redis_port=free_port(), triton_port=free_port())
    env["ICDCODER_MODEL_REPOSITORY"] = str(handbuilt_model_repo)
    assert len(secrets) == 8, secrets  # 4 password fields, userinfo and query value in the Redis and Triton URLs
    outputs: dict[str, str] = {}

    outputs["config"] = _engine(env, "config")
    shown = json.loads(outputs["config"])
    assert shown["redis"]["url"].startswith("redis://****@127.0.0.1:") and "password=****" in shown["redis"]["url"]
    assert shown["triton"]["url"].startswith("http://****@127.0.0.1:") and "token=****" in shown["triton"]["url"]

    notes = tmp_path / "notes.ndjson"
    notes.write_text(json.dumps(document_reference("Hypertension.", "n1")) + "\n")
    outputs["code"] = _engine(env, "code", str(notes), "--no-progress")
    assert "inference backend unavailable" in outputs["code"]
    outputs["worklist"] = _engine(env, "-v", "worklist", "list")
    assert "cannot reach Redis" in outputs["worklist"]

    run = subprocess.Popen([sys.executable, "-m", "engine", "-v", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(6)  # waits for Triton at start, logging its retries
    run.send_signal(signal.SIGTERM)
    outputs["run"] = run.communicate(timeout=60)[0]
    assert "dependency unavailable at start" in outputs["run"]

    for command, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"engine {command} printed {secret}:\n{text[-2000:]}"

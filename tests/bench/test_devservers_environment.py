"""bench.devservers.environment: the engine environment the demo, the pipeline benchmark and the server tests
share is read by the engine's own settings exactly as configured (no servers needed: only the names)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.devservers.environment import TOPIC_ROLES, engine_environment, kafka_settings, topic_names
from schemas.settings import load_settings


def _settings_from(env: dict[str, str], monkeypatch):
    for name in [k for k in os.environ if k.startswith("ICDCODER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_the_engine_reads_every_configured_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("ICDCODER_KAFKA_CLIENT_ID", "from-the-developer-shell")  # must not leak into the engine
    monkeypatch.setenv("ICDCODER_DATA_DIR", "/data")  # not an engine setting: inherited
    env = engine_environment("127.0.0.1:9999", "redis://127.0.0.1:7777/0", tmp_path, topic_names("demo"), triton_url="127.0.0.1:8001",
                             model_name="coder", kafka_group_id="demo-group", engine_max_note_chars="20000")
    assert env["ICDCODER_DATA_DIR"] == "/data" and "ICDCODER_KAFKA_CLIENT_ID" not in env
    settings = _settings_from(env, monkeypatch)
    kafka = settings.kafka
    assert (kafka.bootstrap_servers, kafka.group_id, kafka.client_id) == ("127.0.0.1:9999", "demo-group", "icd-coder-engine")
    assert [getattr(kafka, f"{role}_topic") for role in TOPIC_ROLES] == [
        "demo.documentreference", "demo.suggestions", "demo.dead-letter", "demo.audit", "demo.feedback"]
    assert kafka.session_timeout_ms == 6000
    assert (settings.redis.url, settings.triton.url, settings.triton.model_name) == ("redis://127.0.0.1:7777/0", "127.0.0.1:8001", "coder")
    assert (settings.model.repository, settings.model.name, settings.max_note_chars) == (Path(tmp_path), "coder", 20000)
    assert settings.metrics_port not in (0, 9108) and settings.health_port not in (0, 8088, settings.metrics_port)
    assert kafka_settings(env) == kafka


def test_overrides_win_and_unknown_settings_are_refused(tmp_path):
    env = engine_environment("127.0.0.1:1", "redis://127.0.0.1:2/0", tmp_path, topic_names("t"), kafka_session_timeout_ms="4000")
    assert env["ICDCODER_KAFKA_SESSION_TIMEOUT_MS"] == "4000" and env["ICDCODER_TRITON_URL"] == ""
    with pytest.raises(ValueError, match="'kafka_max_pol_records' is not an engine setting"):
        engine_environment("127.0.0.1:1", "redis://127.0.0.1:2/0", tmp_path, topic_names("t"), kafka_max_pol_records="8")
    with pytest.raises(ValueError, match="topics must name exactly"):
        engine_environment("127.0.0.1:1", "redis://127.0.0.1:2/0", tmp_path, {"input": "in"})

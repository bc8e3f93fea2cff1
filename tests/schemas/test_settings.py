import pytest

from schemas.settings import SettingsError, describe_settings, load_settings


def test_defaults_load(monkeypatch):
    for k in list(__import__("os").environ):
        if k.startswith("ICDCODER_"):
            monkeypatch.delenv(k)
    s = load_settings()
    assert s.kafka.input_topic == "ehr.documentreference"
    assert s.triton.url == ""  # empty -> local backend


def test_error_names_the_variable(monkeypatch):
    monkeypatch.setenv("ICDCODER_KAFKA_MAX_POLL_RECORDS", "0")
    monkeypatch.setenv("ICDCODER_TRITON_PROTOCOL", "smoke-signals")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "ICDCODER_KAFKA_MAX_POLL_RECORDS" in str(exc.value)
    assert "ICDCODER_TRITON_PROTOCOL" in str(exc.value)


def test_secrets_never_printed(monkeypatch):
    monkeypatch.setenv("ICDCODER_REDIS_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("ICDCODER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ICDCODER_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("ICDCODER_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("ICDCODER_KAFKA_SASL_PASSWORD", "kafka-secret-pw")
    s = load_settings()
    text = repr(s) + str(describe_settings(s))
    assert "hunter2-secret" not in text and "kafka-secret-pw" not in text
    assert s.redis.password.get_secret_value() == "hunter2-secret"


def test_sasl_requires_credentials(monkeypatch):
    monkeypatch.setenv("ICDCODER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ICDCODER_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.delenv("ICDCODER_KAFKA_SASL_USERNAME", raising=False)
    with pytest.raises(SettingsError, match="ICDCODER_KAFKA"):
        load_settings()

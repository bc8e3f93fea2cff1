"""docker-compose.yml: valid against the Compose Specification schema (vendored in deploy/compose-spec,
validated with jsonschema: neither `docker compose` nor a docker-compose install is available offline on a
fresh machine), every ICDCODER_* variable is a real engine setting and the engine's environment loads,
and the services are production-shaped."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from schemas import settings as settings_module

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "deploy" / "compose-spec" / "compose_spec.json"
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's variable substitution (${X}, ${X:-default}, ${X-default}, ${X:?error}, $$), recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in env and (env[name] or not (op or "").startswith(":")):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg or ""

    return _VAR.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def known_settings() -> set[str]:
    names = set()
    for cls, group in settings_module._GROUP_PREFIX.items():
        for field, info in cls.model_fields.items():
            if isinstance(info.default_factory, type):  # EngineSettings' nested groups, not variables
                continue
            names.add(f"{settings_module.ENV_PREFIX}{group}{field.upper()}")
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_file_is_valid_against_the_compose_spec(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)  # the draft its $schema names
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    # The validator catches mistakes: a misspelt key is rejected.
    broken = json.loads(json.dumps(compose))
    broken["services"]["engine"]["depends_onn"] = broken["services"]["engine"].pop("depends_on")
    assert any("depends_onn" in e.message for e in validator.iter_errors(broken))


def test_every_icdcoder_variable_is_an_engine_setting():
    used = set(re.findall(r"ICDCODER_[A-Z0-9_]+", COMPOSE.read_text(encoding="utf-8")))
    known = known_settings()
    assert "ICDCODER_KAFKA_BOOTSTRAP_SERVERS" in known and "ICDCODER_ENGINE_KAFKA" not in known
    assert used, "the compose file configures the engine through ICDCODER_* variables"
    assert not used - known, f"not settings in schemas/settings.py: {sorted(used - known)}"


def test_engine_environment_loads_as_settings(compose, monkeypatch):
    env = interpolate(compose["services"]["engine"]["environment"], {"REDIS_PASSWORD": "s3cret-test-value"})
    for name in [n for n in __import__("os").environ if n.startswith("ICDCODER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    loaded = settings_module.load_settings()
    assert loaded.kafka.bootstrap_servers == "kafka:9092" and loaded.triton.url == "triton:8001"
    assert loaded.redis.password.get_secret_value() == "s3cret-test-value"
    assert str(loaded.model.repository) == "/models" and loaded.model.name == loaded.triton.model_name
    with pytest.raises(KeyError, match="REDIS_PASSWORD is required"):
        interpolate(compose["services"]["engine"]["environment"], {})


def test_services_are_production_shaped(compose):
    services = compose["services"]
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "broker" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft
    init = services["kafka-init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy" and "--create --if-not-exists" in init["command"][0]
    redis = services["redis"]
    assert "--requirepass" in redis["command"][-1] and "--appendonly yes" in redis["command"][-1]
    triton = services["triton"]
    assert triton["image"].startswith("nvcr.io/nvidia/tritonserver:") and triton["image"].endswith("-py3")
    assert triton["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert any(v.endswith(":/models:ro") for v in triton["volumes"]) and "healthcheck" in triton
    engine = services["engine"]
    assert engine["build"]["dockerfile"] == "deploy/Dockerfile.engine"
    assert {k: v["condition"] for k, v in engine["depends_on"].items()} == {
        "kafka-init": "service_completed_successfully", "redis": "service_healthy", "triton": "service_healthy"}
    assert not engine.get("ports") and "container_name" not in engine  # scalable: --scale engine=N
    trainer = services["trainer"]
    assert trainer["profiles"] == ["train"] and trainer["deploy"]["resources"]["reservations"]["devices"]
    for name, service in services.items():
        if name not in ("kafka-init", "trainer"):
            assert "healthcheck" in service, f"{name} has no health check"


@pytest.mark.parametrize("dockerfile", ["deploy/Dockerfile.engine", "deploy/Dockerfile.trainer"])
def test_dockerfiles_copy_what_exists(dockerfile):
    text = (ROOT / dockerfile).read_text(encoding="utf-8")
    sources = [s for line in re.findall(r"^COPY (.+)$", text, re.M) for s in line.split()[:-1] if not s.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"
    if dockerfile.endswith("engine"):
        requirements = [l.split("#")[0] for l in (ROOT / "deploy" / "requirements-engine.txt").read_text().splitlines()]
        assert "trainer/" not in sources and not [r for r in requirements if "torch" in r]


def test_engine_requirements_match_pyproject_pins():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {re.split(r"[\[=]", d)[0].lower(): d.split("==")[1] for d in (x.split("#")[0].strip() for x in declared)}
    lines = [l.split("#")[0].strip() for l in (ROOT / "deploy" / "requirements-engine.txt").read_text().splitlines()]
    for line in filter(None, lines):
        name, version = re.split(r"[\[=]", line)[0].lower(), line.split("==")[1]
        assert pins.get(name) == version, f"deploy/requirements-engine.txt pins {line}, pyproject.toml {pins.get(name)}"


def test_workbench_runs_the_engine_image_behind_tls_with_oidc(compose, monkeypatch):
    services = compose["services"]
    workbench, tls = services["workbench"], services["workbench-tls"]
    assert workbench["image"] == services["engine"]["image"] and workbench["command"][0] == "workbench"
    assert not workbench.get("ports") and "443:443" in tls["ports"]  # browsers reach it only through TLS termination
    assert (ROOT / "deploy" / "Caddyfile").is_file() and "reverse_proxy workbench:8000" in (ROOT / "deploy" / "Caddyfile").read_text()
    env = interpolate(workbench["environment"], {"REDIS_PASSWORD": "x", "OIDC_ISSUER": "https://login.hospital.example/realms/coding"})
    for name in [n for n in __import__("os").environ if n.startswith("ICDCODER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    loaded = settings_module.load_settings()
    assert loaded.workbench.auth == "oidc" and loaded.workbench.problems() == []
    with pytest.raises(KeyError, match="OIDC_ISSUER is required"):
        interpolate(workbench["environment"], {"REDIS_PASSWORD": "x"})

"""The environment of ``python -m engine run`` against the dev servers, built once for the demo, the pipeline
benchmark and the test fixtures so they configure the engine alike. Variable names come from the settings
classes themselves (``schemas.settings``: ``ICDCODER_`` + ``KAFKA_``/``REDIS_``/``TRITON_``/``MODEL_``/``ENGINE_``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bench.devservers import free_port
from schemas.settings import ENV_PREFIX, EngineSettings, KafkaSettings, ModelSettings, RedisSettings, TritonSettings, WorkbenchSettings

TOPIC_ROLES = ("input", "output", "dead_letter", "audit", "feedback")  # KafkaSettings.<role>_topic
TANSU_SESSION_TIMEOUT_MS = "6000"  # Tansu completes a group's first join only after session_timeout_ms / 2
# variable prefix (ICDCODER_KAFKA_, ...) -> the settings group the engine reads from it
SETTINGS_GROUPS = {group.model_config["env_prefix"]: group for group in (KafkaSettings, RedisSettings, TritonSettings, ModelSettings,
                                                                    WorkbenchSettings, EngineSettings)}


def topic_names(prefix: str) -> dict[str, str]:
    """The engine's topics named under ``prefix`` (``demo`` -> ``demo.documentreference``, ...)."""
    return {"input": f"{prefix}.documentreference", "output": f"{prefix}.suggestions", "dead_letter": f"{prefix}.dead-letter",
            "audit": f"{prefix}.audit", "feedback": f"{prefix}.feedback"}


def engine_environment(kafka_bootstrap: str, redis_url: str, model_repository: Path, topics: Mapping[str, str], *,
                       triton_url: str = "", model_name: str | None = None, **overrides: str) -> dict[str, str]:
    """The whole environment for an engine child process on the given servers.

    This process's environment minus any engine settings it holds (a developer's own ``ICDCODER_KAFKA_*`` must not
    leak in), plus: the servers, ``topics`` (a name for each of ``TOPIC_ROLES``), the model repository, the model
    name for both the repository and Triton (default: the settings' default), free metrics and health ports, the
    Tansu session timeout, and ``overrides`` by group and field, e.g. ``kafka_group_id="bench"`` ->
    ``ICDCODER_KAFKA_GROUP_ID``. An empty ``triton_url`` selects the in-process onnxruntime backend.
    """
    if set(topics) != set(TOPIC_ROLES):
        raise ValueError(f"topics must name exactly {TOPIC_ROLES}, got {sorted(topics)}")
    settings = {f"kafka_{role}_topic": name for role, name in topics.items()}
    settings.update(kafka_bootstrap_servers=kafka_bootstrap, kafka_session_timeout_ms=TANSU_SESSION_TIMEOUT_MS, redis_url=redis_url,
                    triton_url=triton_url, model_repository=str(model_repository),
                    engine_metrics_port=str(free_port()), engine_health_port=str(free_port()))
    if model_name is not None:
        settings.update(model_name=model_name, triton_model_name=model_name)
    settings.update(overrides)
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(SETTINGS_GROUPS))}
    env.update({_variable(name): str(value) for name, value in settings.items()})
    return env


def kafka_settings(env: Mapping[str, str]) -> KafkaSettings:
    """The ``KafkaSettings`` an engine started with ``env`` reads: for the caller's own producers, readers and topics."""
    prefix = KafkaSettings.model_config["env_prefix"]
    return KafkaSettings(**{k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)})


def _variable(setting: str) -> str:
    """``kafka_group_id`` -> ``ICDCODER_KAFKA_GROUP_ID``; a name that is no field of a settings group is refused:
    the engine would silently ignore it."""
    variable = f"{ENV_PREFIX}{setting.upper()}"
    for prefix, group in SETTINGS_GROUPS.items():
        if variable.startswith(prefix) and variable.removeprefix(prefix).lower() in group.model_fields:
            return variable
    raise ValueError(f"{setting!r} is not an engine setting (<group>_<field>, e.g. kafka_group_id)")

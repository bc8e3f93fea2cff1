"""Runtime settings, read from environment variables with the prefix ``ICDCODER_``.

Every group has its own prefix so a variable name says what it configures, e.g.
``ICDCODER_KAFKA_BOOTSTRAP_SERVERS`` or ``ICDCODER_TRITON_URL``. These names are the contract with
``docker-compose.yml`` and the Kubernetes/compose env files: nothing else configures the engine.

``load_settings()`` validates everything at start and raises ``SettingsError`` whose message names
the environment variable at fault. Secrets are ``SecretStr``: printing a settings object shows
``**********``, never the value; ``describe_settings`` also masks credentials inside URLs (``schemas.secrets``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.cli import UserError
from schemas.phi import DeidModel
from schemas.secrets import mask_all

ENV_PREFIX = "ICDCODER_"


def _config(group: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"{ENV_PREFIX}{group}", extra="ignore", frozen=True)


class KafkaSettings(BaseSettings):
    """Broker connection, topics and consumer behaviour (``ICDCODER_KAFKA_*``)."""

    model_config = _config("KAFKA_")

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "icd-coder-engine"
    group_id: str = "icd-coder-engine"
    input_topic: str = "ehr.documentreference"
    output_topic: str = "icd.suggestions"
    dead_letter_topic: str = "icd.dead-letter"
    audit_topic: str = "icd.audit"
    feedback_topic: str = "icd.feedback"
    # Output key: one encounter's (or patient's) suggestions stay in one partition, in order.
    output_key: Literal["encounter", "patient"] = "encounter"
    max_poll_records: int = Field(64, ge=1, le=10_000)
    batch_max_wait_ms: int = Field(500, ge=1, le=60_000)
    max_in_flight_notes: int = Field(256, ge=1)
    session_timeout_ms: int = Field(10_000, ge=1_000)
    # How long a write may wait for the broker's acknowledgement (retries included) before it counts as failed
    # (transient: the batch is retried; the MLLP bridge answers AE). At least the 30 s request timeout + linger.
    delivery_timeout_ms: int = Field(120_000, ge=31_000)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> "KafkaSettings":
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError("sasl_username and sasl_password are required for SASL PLAIN/SCRAM")
        return self


class RedisSettings(BaseSettings):
    """Worklist and processed-note store (``ICDCODER_REDIS_*``)."""

    model_config = _config("REDIS_")

    url: str = "redis://127.0.0.1:6379/0"
    password: SecretStr | None = None
    tls: bool = False
    ssl_ca_certs: Path | None = None
    key_prefix: str = "icdcoder:"
    processed_ttl_s: int = Field(30 * 24 * 3600, ge=60)

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v


class TritonSettings(BaseSettings):
    """Inference server (``ICDCODER_TRITON_*``). An empty URL selects the in-process ``local`` backend."""

    model_config = _config("TRITON_")

    url: str = ""
    protocol: Literal["grpc", "http"] = "grpc"
    model_name: str = "bert_xml"
    model_version: str = ""  # empty: the version whose metadata the engine loaded (ICDCODER_MODEL_VERSION, else the newest)
    tls: bool = False
    ssl_ca_certs: Path | None = None
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(8, ge=0)
    backoff_initial_s: float = Field(0.2, gt=0)
    backoff_max_s: float = Field(10.0, gt=0)
    # Segments per inference request. 1: a request is padded only to its own segment's 32-token bucket, never
    # to a longer neighbour's; Triton's dynamic batcher merges concurrent same-shape requests into GPU batches.
    # On CPU, 1 runs 2x the notes/s of 32 at max length 1,024 (docs/deploy.md, "Batching numbers").
    max_segments_per_request: int = Field(1, ge=1)


class ModelSettings(BaseSettings):
    """Where the engine finds the exported model and its metadata (``ICDCODER_MODEL_*``)."""

    model_config = _config("MODEL_")

    repository: Path = Path("model_repository")
    name: str = "bert_xml"
    version: int | None = None  # None: the highest version in the repository


class WorkbenchSettings(BaseSettings):
    """The coders' web application (``ICDCODER_WORKBENCH_*``; docs/workbench.md). What serving needs is checked
    by ``problems()`` when the workbench starts, so the engine's other commands never depend on it."""

    model_config = _config("WORKBENCH_")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # oidc: bearer JWTs from the hospital's identity provider, checked against its JWKS; local: tokens signed
    # with a key file (`python -m engine workbench keygen|token`), for the demo and a single machine
    auth: Literal["oidc", "local"] = "oidc"
    oidc_issuer: str | None = None  # the `iss` every token must carry; its discovery document names the JWKS
    oidc_jwks_url: str | None = None  # default: jwks_uri of <issuer>/.well-known/openid-configuration
    oidc_audience: str = "icd-coder-workbench"
    oidc_algorithms: str = "RS256,ES256,PS256"  # accepted signature algorithms (never "none", never HS*)
    user_claim: str = "sub"  # the coder id on decisions (a FHIR id: it becomes Practitioner/<id>)
    roles_claim: str = "roles"  # a dotted path into the token, e.g. realm_access.roles (Keycloak)
    coder_role: str = "coder"
    supervisor_role: str = "supervisor"
    clock_skew_s: int = Field(30, ge=0, le=600)
    local_key_file: Path | None = None  # auth=local: the EC private key (PEM) tokens are signed with
    # where a note's text is read at display time (never stored in Redis): the input record the engine consumed,
    # or the hospital's FHIR server (DocumentReference read by id and version)
    text_source: Literal["kafka", "fhir"] = "kafka"
    fhir_base_url: str | None = None
    fhir_token: SecretStr | None = None  # bearer token for the FHIR server
    fhir_ca_certs: Path | None = None
    fhir_timeout_s: float = Field(10.0, gt=0)
    lease_s: float | None = Field(None, gt=0)  # default: ICDCODER_ENGINE_WORKLIST_LEASE_S
    evaluation_cache_s: float = Field(60.0, ge=0)  # the supervisor view reads two whole topics: reuse it this long

    def problems(self) -> list[str]:
        """What is missing to serve, one line per variable."""
        out = []
        if self.auth == "oidc" and not self.oidc_issuer:
            out.append("ICDCODER_WORKBENCH_OIDC_ISSUER: required with ICDCODER_WORKBENCH_AUTH=oidc")
        if self.auth == "local" and not self.local_key_file:
            out.append("ICDCODER_WORKBENCH_LOCAL_KEY_FILE: required with ICDCODER_WORKBENCH_AUTH=local")
        if self.text_source == "fhir" and not self.fhir_base_url:
            out.append("ICDCODER_WORKBENCH_FHIR_BASE_URL: required with ICDCODER_WORKBENCH_TEXT_SOURCE=fhir")
        return out


class EngineSettings(BaseSettings):
    """The streaming service (``ICDCODER_ENGINE_*``) and the groups above."""

    model_config = _config("ENGINE_")

    fhir_version: Literal["R4", "R5"] = "R4"
    # What the input topic carries: FHIR DocumentReference JSON, HL7 v2 ER7 (MDM/ORU, docs/hl7.md), or either
    # (told apart per message: ER7 starts with MSH). Output is FHIR (fhir_version) in every case.
    input_format: Literal["fhir", "hl7v2", "auto"] = "fhir"
    max_note_chars: int = Field(200_000, ge=100)
    max_suggestions_per_note: int = Field(25, ge=1)
    # Notes per inference chunk: while the model (Triton) runs one chunk, the engine de-identifies and
    # segments the next and builds the previous one's FHIR, so its own CPU work hides behind inference.
    infer_chunk_notes: int = Field(16, ge=1)
    evidence_tokens_per_code: int = Field(5, ge=0)
    # Classify each evidence span's context (negated, uncertain, historical, family) and apply the model
    # version's context policy (engine/pipeline/context.py); false: evidence carries no context, nothing demoted.
    evidence_context: bool = True
    audit_include_text: bool = False  # False: audit records carry only a hash of the de-identified text
    audit_score_floor: float = Field(0.01, ge=0, le=1)
    deid_date_shift: bool = False  # shift dates consistently per patient instead of "[DATE]"
    deid_date_shift_salt: SecretStr | None = None  # required when deid_date_shift is on
    # "rules+ner": rules and the learned NER pipeline (recall on unseen PHI; ~2x the CPU per note, docs/deid.md);
    # "rules": the rules alone (faster, misses names and places without cues); "rules+transformer" and
    # "rules+ner+transformer": with the fine-tuned MiniLM recogniser (docs/deid.md, "Seventh round": its cost and figures)
    deid_model: DeidModel = "rules+ner"
    worklist_priority: Literal["oldest", "confidence", "uncertain"] = "oldest"
    worklist_lease_s: float = Field(900.0, gt=0)  # a claimed item returns to the queue after this
    # Liveness: /livez turns 503 when a batch in hand has made no progress for this long (a dependency that
    # never comes back, a client that cannot recover), so an orchestrator restarts the engine; with
    # exit_on_stall the engine also exits by itself (status 3), for supervisors without probes.
    stall_timeout_s: float = Field(300.0, gt=0)
    exit_on_stall: bool = False
    metrics_port: int = Field(9108, ge=0, le=65535)
    health_port: int = Field(8088, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    triton: TritonSettings = Field(default_factory=TritonSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    workbench: WorkbenchSettings = Field(default_factory=WorkbenchSettings)


class SettingsError(UserError, ValueError):
    """A configuration problem; the message names each environment variable at fault. A ``UserError``, so
    every command that calls ``load_settings()`` reports it without a traceback."""


_GROUP_PREFIX = {
    KafkaSettings: "KAFKA_",
    RedisSettings: "REDIS_",
    TritonSettings: "TRITON_",
    ModelSettings: "MODEL_",
    WorkbenchSettings: "WORKBENCH_",
    EngineSettings: "ENGINE_",
}


def _explain(cls: type[BaseSettings], err: ValidationError) -> list[str]:
    prefix = ENV_PREFIX + _GROUP_PREFIX.get(cls, "")
    lines = []
    for e in err.errors():
        field = "_".join(str(p) for p in e["loc"]) if e["loc"] else "(whole group)"
        # Never echo the offending input: it may be a secret.
        lines.append(f"{prefix}{field.upper()}: {e['msg']}")
    return lines


def load_settings() -> EngineSettings:
    """Read and validate all settings from the environment, or raise SettingsError naming the variables."""
    problems: list[str] = []
    groups = {}
    for name, cls in (("kafka", KafkaSettings), ("redis", RedisSettings), ("triton", TritonSettings), ("model", ModelSettings),
                      ("workbench", WorkbenchSettings)):
        try:
            groups[name] = cls()
        except ValidationError as err:
            problems += _explain(cls, err)
    if not problems:
        try:
            return EngineSettings(**groups)
        except ValidationError as err:
            problems += _explain(EngineSettings, err)
    raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems))


def describe_settings(settings: EngineSettings) -> dict:
    """A JSON-able view for logs and `engine config`; secrets stay masked: ``SecretStr`` fields by pydantic,
    and credentials inside plain strings (URL userinfo, ``?password=``-like query values) by ``mask_all``."""
    return mask_all(settings.model_dump(mode="json"))

"""Triton Inference Server backend (tritonclient; gRPC by default, HTTP by setting).

- Model version: ``ICDCODER_TRITON_MODEL_VERSION`` when set, else the version whose metadata the engine
  loaded, so labels and thresholds always match the network that scored the note.
- Requests carry several notes' segments (up to ``max_segments_per_request``), padded to a bucketed
  length (``schemas.text.pad_batch``) so Triton's dynamic batcher can merge requests of the same shape;
  gRPC requests of one batch are sent concurrently so the batcher gets the chance.
- Failures: unavailable/overloaded/timed-out calls are retried with exponential backoff (with jitter) up to
  ``max_retries``, then raise ``TransientError``; any other server error raises ``TransientError`` at once.
  Neither is the note's fault, so the service retries the batch and never dead-letters for it.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
from tritonclient.utils import InferenceServerException

from engine.pipeline.infer.base import InferenceBackend, InferenceResult
from schemas.errors import TransientError
from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, OUTPUT_PROBS
from schemas.model_repo import output_names as output_names_for
from schemas.settings import TritonSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# gRPC status names (HTTP errors surface as status codes or connection exceptions) worth retrying.
RETRYABLE_STATUS = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "429", "502", "503", "504"}


def _is_retryable(err: Exception) -> bool:
    if isinstance(err, (ConnectionError, TimeoutError, OSError)):
        return True
    if isinstance(err, InferenceServerException):
        status = str(err.status() or "").rsplit(".", 1)[-1]
        return status in RETRYABLE_STATUS or "timed out" in str(err).lower()
    return False


def _strip_scheme(url: str) -> tuple[str, bool]:
    """tritonclient wants ``host:port``; an https/grpcs scheme implies TLS."""
    for scheme, tls in (("https://", True), ("grpcs://", True), ("http://", False), ("grpc://", False)):
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/"), tls
    return url.rstrip("/"), False


class TritonBackend(InferenceBackend):
    def __init__(self, settings: TritonSettings, model_version: int, evidence: bool, concurrency: int = 8, sleep: Callable[[float], None] = time.sleep,
                 n_codes: int | None = None, model_name: str | None = None, output_names: Sequence[str] | None = None) -> None:
        """``model_name``/``output_names``: another graph of the version than the classifier (the description
        scorer, ``engine.pipeline.describe``); its outputs are read with ``outputs()``."""
        if not settings.url:
            raise ValueError("TritonBackend needs ICDCODER_TRITON_URL")
        self.settings = settings
        self.model_name = model_name or settings.model_name
        self.model_version = settings.model_version or str(model_version)
        self.evidence = evidence
        self.n_codes = n_codes  # the label count of the metadata the engine loaded; check() compares Triton's
        self.max_segments_per_request = settings.max_segments_per_request
        self._sleep = sleep
        url, scheme_tls = _strip_scheme(settings.url)
        tls = settings.tls or scheme_tls
        ca = str(settings.ssl_ca_certs) if settings.ssl_ca_certs else None
        if settings.protocol == "grpc":
            import tritonclient.grpc as client_mod

            self.client: Any = client_mod.InferenceServerClient(url, ssl=tls, root_certificates=ca)
            self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="triton")
        else:
            import tritonclient.http as client_mod

            self.client = client_mod.InferenceServerClient(
                url,
                connection_timeout=settings.timeout_s,
                network_timeout=settings.timeout_s,
                ssl=tls,
                ssl_options={"ca_certs": ca} if ca else None,
            )
            self._pool = None  # the HTTP client is not thread-safe: one request at a time
        self._mod = client_mod
        self._output_names = list(output_names) if output_names is not None else output_names_for(evidence)

    # -- calls with retries ---------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], retries: int | None = None) -> T:
        s = self.settings
        retries = s.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                return fn()
            except Exception as err:  # noqa: BLE001 - classified below; never includes note content
                if not _is_retryable(err):
                    raise TransientError(f"triton {what} failed on {self.model_name}/{self.model_version}: {err}") from err
                if attempt == retries:
                    raise TransientError(f"triton {what} unavailable after {attempt + 1} attempts: {err}") from err
                delay = min(s.backoff_initial_s * 2**attempt, s.backoff_max_s) * random.uniform(0.5, 1.0)
                log.warning("triton call failed; retrying", extra={"fields": {  # engine logs take values as fields only
                    "call": what, "error": type(err).__name__, "attempt": attempt + 1, "max_retries": retries, "delay_s": round(delay, 2)}})
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _timeout_kwargs(self) -> dict[str, Any]:
        return {"client_timeout": self.settings.timeout_s} if self.settings.protocol == "grpc" else {}

    def check(self) -> None:
        """Server ready, the model version ready, and its outputs what the engine expects. One attempt, no
        retries: a health probe must answer quickly; callers that wait for Triton loop on it themselves."""

        def ready() -> None:
            if not self.client.is_model_ready(self.model_name, self.model_version, **self._timeout_kwargs()):
                raise InferenceServerException(f"model {self.model_name} version {self.model_version} is not ready", status="StatusCode.UNAVAILABLE")

        self._call("readiness check", ready, retries=0)
        meta = self._call("model metadata", lambda: self.client.get_model_metadata(self.model_name, self.model_version, **self._timeout_kwargs()), retries=0)
        shapes = {o["name"]: o["shape"] for o in meta["outputs"]} if isinstance(meta, dict) else {o.name: list(o.shape) for o in meta.outputs}
        missing = set(self._output_names) - set(shapes)
        if missing:
            raise TransientError(f"triton model {self.model_name}/{self.model_version} lacks outputs {sorted(missing)}")
        served_codes = int(shapes[OUTPUT_PROBS][-1]) if OUTPUT_PROBS in shapes else -1
        if self.n_codes is not None and served_codes not in (-1, self.n_codes):
            # not an outage: every note would fail aggregation, so refuse to start instead of dead-lettering the stream
            raise ValueError(f"triton model {self.model_name}/{self.model_version} returns {served_codes} codes but the model "
                             f"repository's metadata has {self.n_codes}: ICDCODER_TRITON_* and ICDCODER_MODEL_* name different models")

    def outputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        m = self._mod
        inputs = []
        for name, array in ((INPUT_IDS, input_ids), (ATTENTION_MASK, attention_mask)):
            tensor = m.InferInput(name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.int64))
            inputs.append(tensor)
        requested = [m.InferRequestedOutput(n) for n in names]

        def request() -> Any:
            return self.client.infer(self.model_name, inputs, model_version=self.model_version, outputs=requested, **self._timeout_kwargs())

        result = self._call("inference", request)
        return [result.as_numpy(n) for n in names]

    def infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> InferenceResult:
        out = self.outputs(input_ids, attention_mask, self._output_names)
        probs = out[0].astype(np.float32, copy=False)
        if not self.evidence:
            return InferenceResult(probs)
        return InferenceResult(probs, out[1].astype(np.int64, copy=False), out[2].astype(np.float32, copy=False))

    def infer_many(self, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[InferenceResult]:
        if self._pool is None or len(batches) < 2:
            return super().infer_many(batches)
        return list(self._pool.map(lambda b: self.infer(*b), batches))

    def outputs_many(self, batches: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str]) -> list[list[np.ndarray]]:
        if self._pool is None or len(batches) < 2:
            return super().outputs_many(batches, names)
        return list(self._pool.map(lambda b: self.outputs(*b, names), batches))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.client.close()

"""Stage 4: inference backends (in-process onnxruntime, the real tritonserver) and request planning; and the
engine's promise never to import torch."""

from __future__ import annotations

import pkgutil
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.infra.model import load_runtime
from engine.pipeline.infer.base import plan_requests, run_segments
from engine.pipeline.infer.factory import make_backend
from engine.pipeline.infer.local import LocalOnnxBackend
from engine.pipeline.infer.triton import TritonBackend
from engine.pipeline.segment import segment_texts
from schemas.errors import TransientError
from schemas.model_repo import version_dir
from schemas.settings import EngineSettings, TritonSettings
from tests.fixtures.engine_model import build_model_repository

TEXTS = [
    "The patient has a history of hypertension and asthma. Denies chest pain.",
    "Cough and fever for a week, likely pneumonia. " * 12,  # several segments
    "No complaints today.",
    "Diabetes on metformin 500 mg daily, migraine controlled.",
]


@pytest.fixture(scope="module")
def keyword_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("keyword_repo")
    build_model_repository(repo)
    return repo


@pytest.fixture(scope="module")
def keyword_runtime(keyword_repo):
    return load_runtime(keyword_repo, "bert_xml")


def test_load_runtime_picks_the_newest_version_and_checks_its_metadata(keyword_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(keyword_repo, repo)
    shutil.copytree(version_dir(repo, "bert_xml", 1), version_dir(repo, "bert_xml", 2))  # metadata still says 1
    with pytest.raises(ValueError, match="describes 'bert_xml' version 1"):
        load_runtime(repo, "bert_xml")  # the newest, 2
    assert load_runtime(repo, "bert_xml", 1).directory == version_dir(repo, "bert_xml", 1)
    with pytest.raises(FileNotFoundError, match="no versions"):
        load_runtime(tmp_path / "empty", "bert_xml")


def test_make_backend_serves_the_runtime_version(keyword_runtime):
    local = make_backend(EngineSettings(triton=TritonSettings(max_segments_per_request=7)), keyword_runtime)
    assert isinstance(local, LocalOnnxBackend) and local.max_segments_per_request == 7
    triton = make_backend(EngineSettings(triton=TritonSettings(url="127.0.0.1:9")), keyword_runtime)
    try:  # no request is made: the client connects on the first call
        assert isinstance(triton, TritonBackend) and triton.model_version == "1" and triton.n_codes == len(keyword_runtime.metadata.labels)
    finally:
        triton.close()


# Imports every module given on the command line with torch made unimportable, recording who tried.
_NO_TORCH = """
import importlib, sys
from importlib.abc import MetaPathFinder

class NoTorch(MetaPathFinder):
    attempts = set()
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            f = sys._getframe(1)
            while f and f.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
                f = f.f_back
            self.attempts.add(f.f_globals.get("__name__", "?") if f else "?")
            raise ModuleNotFoundError("torch is blocked", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
for m in sys.argv[1:]:
    importlib.import_module(m)
assert "torch" not in sys.modules
print("\\n".join(sorted(NoTorch.attempts)))
"""


def test_engine_never_imports_torch():
    """Every engine module imports and works where torch cannot be imported (the engine image has no
    torch), and no engine/schemas module even tries. Third-party optional probes (spaCy's thinc,
    Presidio's device detection) try ``import torch`` inside try/except; they are allowed."""
    modules = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    assert "engine.pipeline.processor" in modules and "engine.cli.code" in modules
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, *modules], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"an engine module needs torch:\n{proc.stderr[-3000:]}"
    ours = [m for m in proc.stdout.split() if m.split(".")[0] in ("engine", "schemas", "__main__")]
    assert ours == [], f"engine code imports torch: {ours}"


def test_local_backend_outputs_and_keyword_attention(keyword_runtime):
    backend = LocalOnnxBackend(keyword_runtime.onnx_path)
    segments = segment_texts(TEXTS, keyword_runtime)
    result = run_segments(backend, segments, keyword_runtime.pad_id, keyword_runtime.max_length)
    n_codes = len(keyword_runtime.metadata.labels)
    assert result.probs.shape == (len(segments), n_codes) and result.probs.dtype == np.float32
    assert result.evidence_positions.shape == (len(segments), n_codes, keyword_runtime.metadata.evidence_top_k)
    codes = keyword_runtime.metadata.labels.codes
    first = result.probs[0]
    assert first[codes.index("I10")] > 0.9 and first[codes.index("J45.909")] > 0.9 and first[codes.index("J18.9")] < 0.5


def test_results_do_not_depend_on_request_plan(keyword_runtime):
    """Splitting, sorting and padding requests differently gives the same scores per segment, in order."""
    segments = segment_texts(TEXTS, keyword_runtime)
    one_big = run_segments(LocalOnnxBackend(keyword_runtime.onnx_path, max_segments_per_request=64), segments, keyword_runtime.pad_id)
    singles = run_segments(LocalOnnxBackend(keyword_runtime.onnx_path, max_segments_per_request=1), segments, keyword_runtime.pad_id)
    np.testing.assert_allclose(one_big.probs, singles.probs, atol=1e-6)
    np.testing.assert_array_equal(one_big.evidence_positions[:, :, :1], singles.evidence_positions[:, :, :1])
    alone = run_segments(LocalOnnxBackend(keyword_runtime.onnx_path), segment_texts(TEXTS[2:3], keyword_runtime), keyword_runtime.pad_id)
    row = next(i for i, s in enumerate(segments) if s.note_index == 2)
    np.testing.assert_allclose(alone.probs[0], one_big.probs[row], atol=1e-6)


def test_plan_requests_groups_by_length():
    from schemas.text import Segment

    segs = [Segment(0, [1] * n, [(0, 0)] * n) for n in (30, 5, 500, 6, 31)]
    plan = plan_requests(segs, 2)
    assert plan == [[1, 3], [0, 4], [2]]
    assert sorted(i for rows in plan for i in rows) == list(range(5))


def test_local_backend_refuses_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        LocalOnnxBackend(tmp_path / "model.onnx")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_triton_unreachable_retries_with_backoff_then_transient(protocol):
    delays: list[float] = []
    settings = TritonSettings(url=f"127.0.0.1:{_closed_port()}", protocol=protocol, max_retries=4, backoff_initial_s=0.1, backoff_max_s=0.5, timeout_s=2)
    backend = TritonBackend(settings, model_version=1, evidence=True, sleep=delays.append)
    ids = np.ones((1, 8), dtype=np.int64)
    with pytest.raises(TransientError, match="unavailable after 5 attempts"):
        backend.infer(ids, ids)
    assert len(delays) == 4
    caps = [min(0.1 * 2**i, 0.5) for i in range(4)]
    assert all(cap * 0.5 <= d <= cap for d, cap in zip(delays, caps))  # exponential, capped, jittered
    with pytest.raises(TransientError):
        backend.check()
    assert len(delays) == 4  # a readiness probe answers at once, without retrying
    backend.close()


# ---- against the real tritonserver serving the exported model ------------------------------------------


@pytest.fixture(scope="module")
def exported_runtime(exported_model_repo):
    return load_runtime(exported_model_repo, "bert_xml")


@pytest.mark.servers
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_triton_and_local_backends_agree(triton_server, exported_model_repo, exported_runtime, parity_texts, protocol):
    if getattr(triton_server, "model_repository", None) not in (None, exported_model_repo) or triton_server.pid is None:
        pytest.skip("an external Triton serves its own repository")
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    settings = TritonSettings(url=url, protocol=protocol, max_segments_per_request=4, max_retries=2)
    segments = segment_texts(parity_texts, exported_runtime)
    evidence = exported_runtime.metadata.evidence_top_k > 0
    with TritonBackend(settings, exported_runtime.metadata.version, evidence=evidence) as triton, LocalOnnxBackend(exported_runtime.onnx_path) as local:
        triton.check()
        remote = run_segments(triton, segments, exported_runtime.pad_id, exported_runtime.max_length)
        here = run_segments(local, segments, exported_runtime.pad_id, exported_runtime.max_length)
    assert remote.probs.shape == (len(segments), len(exported_runtime.metadata.labels))
    np.testing.assert_allclose(remote.probs, here.probs, atol=1e-5)
    if evidence:
        np.testing.assert_allclose(remote.evidence_weights, here.evidence_weights, atol=1e-5)
        clear = np.abs(np.diff(here.evidence_weights[..., :2], axis=-1))[..., 0] > 1e-4  # no near-tie for the top position
        assert clear.mean() > 0.5
        np.testing.assert_array_equal(remote.evidence_positions[..., 0][clear], here.evidence_positions[..., 0][clear])


@pytest.mark.servers
def test_triton_unknown_model_version_is_transient_without_retrying(triton_server):
    delays: list[float] = []
    settings = TritonSettings(url=triton_server.grpc_url, model_version="999", max_retries=3)
    with TritonBackend(settings, model_version=999, evidence=False, sleep=delays.append) as backend:
        with pytest.raises(TransientError, match="999"):
            backend.infer(np.ones((1, 8), np.int64), np.ones((1, 8), np.int64))
        with pytest.raises(TransientError, match="not ready"):
            backend.check()
    assert delays == []  # not an outage: no point retrying at once; the service backs off

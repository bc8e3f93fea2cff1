"""The exported model served by the real tritonserver (nvidia-pytriton's binary, Python backend running
model.onnx with onnxruntime): gRPC and HTTP inference equal PyTorch, dynamic batching of requests with
different lengths, clear errors, a second version served beside the first, stop and restart in place."""

from __future__ import annotations

import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from schemas.model_repo import ATTENTION_MASK, INPUT_IDS, OUTPUT_EVIDENCE_POSITIONS, OUTPUT_EVIDENCE_WEIGHTS, OUTPUT_PROBS
from tests.fixtures.model_repo import MODEL_NAME

OUTPUTS = [OUTPUT_PROBS, OUTPUT_EVIDENCE_POSITIONS, OUTPUT_EVIDENCE_WEIGHTS]
pytestmark = pytest.mark.servers


def infer(client_module, client, input_ids: np.ndarray, attention_mask: np.ndarray, version: str = "") -> list[np.ndarray]:
    inputs = []
    for name, array in ((INPUT_IDS, input_ids), (ATTENTION_MASK, attention_mask)):
        tensor = client_module.InferInput(name, list(array.shape), "INT64")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    outputs = [client_module.InferRequestedOutput(name) for name in OUTPUTS]
    result = client.infer(MODEL_NAME, inputs, model_version=version, outputs=outputs)
    return [result.as_numpy(name) for name in OUTPUTS]


@pytest.fixture(scope="module")
def local_triton(triton_server, exported_model_repo):
    if triton_server.model_repository is None or triton_server.model_repository.resolve() != exported_model_repo.resolve():
        pytest.skip("the external Triton (ICDCODER_TEST_TRITON_URL) serves its own repository, not this session's model")
    return triton_server


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_inference_matches_pytorch(local_triton, parity_batches, served_reference, protocol):
    from trainer.export.onnx_graph import compare, torch_outputs

    module = grpcclient if protocol == "grpc" else httpclient
    client = module.InferenceServerClient(local_triton.grpc_url if protocol == "grpc" else local_triton.http_url)
    assert client.is_model_ready(MODEL_NAME, "1")
    for input_ids, attention_mask in parity_batches:
        served = infer(module, client, input_ids, attention_mask)
        assert served[0].shape == (len(input_ids), len(served_reference.coder.labels)) and served[0].dtype == np.float32
        assert served[1].shape == served[2].shape == served[0].shape + (8,) and served[1].dtype == np.int64
        parity = compare(torch_outputs(served_reference, input_ids, attention_mask), served)
        assert parity.max_abs_probs < 1e-4 and parity.max_abs_weights < 1e-4 and parity.positions_agree == 1.0, str(parity)


def test_concurrent_requests_of_different_lengths(local_triton, parity_batches, served_reference):
    """Dynamic batching hands model.py requests of different lengths together; each answer is still its own."""
    from trainer.export.onnx_graph import compare, torch_outputs

    client = grpcclient.InferenceServerClient(local_triton.grpc_url)
    requests = []
    for input_ids, attention_mask in parity_batches:
        for rows, width in ((1, 24), (2, input_ids.shape[1])):
            requests.append((np.ascontiguousarray(input_ids[:rows, :width]), np.ascontiguousarray(attention_mask[:rows, :width])))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda r: infer(grpcclient, client, *r), requests))
    for (input_ids, attention_mask), served in zip(requests, answers):
        parity = compare(torch_outputs(served_reference, input_ids, attention_mask), served)
        assert parity.max_abs_probs < 1e-4 and parity.positions_agree == 1.0, str(parity)
    stats = client.get_inference_statistics(MODEL_NAME, "1", as_json=True)["model_stats"][0]
    assert int(stats["inference_count"]) >= len(requests)


def test_bad_request_gets_a_clear_error(local_triton):
    client = httpclient.InferenceServerClient(local_triton.http_url)
    ids = np.ones((2, 10), dtype=np.int64)
    with pytest.raises(InferenceServerException, match="different shapes"):
        infer(httpclient, client, ids, np.ones((2, 12), dtype=np.int64))
    with pytest.raises(InferenceServerException, match="onnxruntime failed"):
        infer(httpclient, client, ids * 10**9, np.ones_like(ids))  # token ids outside the vocabulary
    assert client.is_server_ready()  # one bad request does not take the model down


def test_second_version_served_and_server_restarts_in_place(exported_model_repo, tiny_xml_run_dir, tmp_path, parity_batches):
    """Export version 2 while Triton polls the repository: both versions are addressable; then stop and
    restart on the same ports (what the engine's fault drills do)."""
    from bench.devservers.triton import start_triton
    from trainer.export.repository import ExportOptions, export_model

    repo = tmp_path / "repo"
    shutil.copytree(exported_model_repo, repo)
    input_ids, attention_mask = parity_batches[0]
    with start_triton(repo, tmp_path / "triton") as server:
        assert server.is_model_ready(MODEL_NAME, 1) and not server.is_model_ready(MODEL_NAME, 2)
        export_model(tiny_xml_run_dir, repo, ExportOptions(name=MODEL_NAME, variants=("cpu-python",)))
        server.wait_model_ready(MODEL_NAME, 2, timeout_s=60)
        client = grpcclient.InferenceServerClient(server.grpc_url)
        assert sorted(client.get_model_metadata(MODEL_NAME).versions) == ["1", "2"]
        v1 = infer(grpcclient, client, input_ids, attention_mask, "1")
        v2 = infer(grpcclient, client, input_ids, attention_mask, "2")
        newest = infer(grpcclient, client, input_ids, attention_mask)
        assert np.abs(v1[0] - v2[0]).max() < 1e-6 and np.abs(newest[0] - v2[0]).max() < 1e-6  # same weights
        with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
            assert b"nv_inference_request_success" in response.read()
        ports, old_pid = (server.http_port, server.grpc_port, server.metrics_port), server.pid
        server.stop()
        assert not server.is_running()
        with pytest.raises(InferenceServerException):
            grpcclient.InferenceServerClient(server.grpc_url).is_server_ready()
    with start_triton(repo, tmp_path / "triton", *ports) as restarted:
        assert restarted.pid != old_pid and restarted.grpc_port == ports[1]
        again = infer(grpcclient, grpcclient.InferenceServerClient(restarted.grpc_url), input_ids, attention_mask, "2")
        assert np.abs(again[0] - v2[0]).max() < 1e-6

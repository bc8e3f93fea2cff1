"""Triton Python-backend model: runs the exported ``model.onnx`` with onnxruntime on CPU.

The CPU stand-in for the production ``onnxruntime_onnx`` platform (the tritonserver in the nvidia-pytriton
wheel has only the Python backend). ``trainer export --variant cpu-python`` copies this file next to
``model.onnx`` in every version directory; the config's inputs/outputs are the same as production.

Dynamic batching hands one ``execute()`` several requests, possibly of different sequence lengths: they
are padded to the longest (attention_mask 0, so the model ignores the padding), run as ONE onnxruntime
call, and split back per request. A bad request gets its own error; the others are still served.

The stub ignores PYTHONPATH, so the site-packages holding numpy (<2, the stub's ABI) and onnxruntime
come from the config parameter ``site_packages`` (or the env var ``ICD_TRITON_SITE_PACKAGES``,
which wins) and are put on sys.path before importing them.
"""

import json
import os
import sys


def _add_site_packages(model_config: dict) -> None:
    configured = model_config.get("parameters", {}).get("site_packages", {}).get("string_value", "")
    for path in reversed((os.environ.get("ICD_TRITON_SITE_PACKAGES") or configured).split(os.pathsep)):
        if path and path not in sys.path:
            sys.path.insert(0, path)


class TritonPythonModel:
    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        _add_site_packages(model_config)
        global np, ort, pb_utils
        import numpy as np
        import onnxruntime as ort
        import triton_python_backend_utils as pb_utils

        params = model_config.get("parameters", {})
        threads = int(params.get("intra_op_threads", {}).get("string_value", "1") or 1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.session = ort.InferenceSession(os.path.join(version_dir, "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.pad_id = int(params.get("pad_token_id", {}).get("string_value", "0") or 0)

    def _read(self, request):
        """The request's 2-D int64 inputs, or a message saying what is wrong (no values echoed)."""
        arrays = {}
        for name in self.input_names:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                return None, f"missing input {name!r}"
            array = tensor.as_numpy()
            if array.ndim != 2:
                return None, f"input {name!r} must be [batch, tokens], got shape {list(array.shape)}"
            arrays[name] = array.astype(np.int64, copy=False)
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1:
            return None, f"inputs have different shapes: { {n: list(a.shape) for n, a in arrays.items()} }"
        return arrays, None

    def execute(self, requests):
        responses = [None] * len(requests)
        good = []
        for i, request in enumerate(requests):
            arrays, error = self._read(request)
            if error:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(error))
            else:
                good.append((i, arrays))
        if good:
            try:
                self._run(good, responses)
            except Exception:
                # One bad request (e.g. token ids outside the vocabulary) must not fail the others merged
                # with it: run them one by one so only the culprit gets the error.
                for item in good:
                    try:
                        self._run([item], responses)
                    except Exception as err:  # onnxruntime names the node and shapes, never the values
                        responses[item[0]] = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"onnxruntime failed: {err}"))
        return responses

    def _run(self, good, responses):
        """One onnxruntime call for all ``good`` requests (padded to the longest), split back per request."""
        rows = [a[self.input_names[0]].shape[0] for _, a in good]
        width = max(a[self.input_names[0]].shape[1] for _, a in good)
        feed = {}
        for name in self.input_names:
            pad = self.pad_id if name == "input_ids" else 0
            feed[name] = np.concatenate(
                [np.pad(a[name], ((0, 0), (0, width - a[name].shape[1])), constant_values=pad) for _, a in good])
        outputs = self.session.run(self.output_names, feed)
        start = 0
        for (i, _), n in zip(good, rows):
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(out[start:start + n]))
                       for name, out in zip(self.output_names, outputs)]
            responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
            start += n

    def finalize(self):
        self.session = None

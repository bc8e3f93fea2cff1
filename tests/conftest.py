"""Shared fixtures live in tests/fixtures/, one module per area, registered here."""

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

"""A command that prints many lines (tests/schemas/test_cli_pipe.py)."""


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    for i in range(200_000):
        print(f"line {i}")
    return 0

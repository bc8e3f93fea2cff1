"""The trainer's commands, one module per ``python -m trainer COMMAND`` (table: ``trainer/__main__.py``).
Each module has ``add_arguments(parser)`` and ``run(args) -> int`` and calls the step's package."""

"""The engine's commands, one module per ``python -m engine COMMAND`` (table: ``engine/__main__.py``).
Each module has ``add_arguments(parser)`` and ``run(args) -> int``; the wiring they share is ``engine.app``."""

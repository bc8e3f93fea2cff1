"""The developer commands, one module per ``python -m bench COMMAND`` (table: ``bench/__main__.py``)."""

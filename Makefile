# One-command entry points. Every target works on a fresh machine: it sets up .venv/ first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# The CPU torch wheel lies in /opt/wheels on these machines; elsewhere pip's own config applies.
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)
DATA_DIR ?= $(abspath ../shared/data)
export ICDCODER_DATA_DIR ?= $(DATA_DIR)

.PHONY: setup demo test bench bench-quick clean help
help:
	@echo "make setup  - create .venv and install everything (idempotent)"
	@echo "make demo   - the whole loop end to end on the embedded default"
	@echo "make test   - start what the tests need and run pytest"
	@echo "make bench  - benchmarks (bench/results); make bench-quick for minutes"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==23.2.1
	# torch first, from the local CPU wheel, so nothing pulls the CUDA build
	$(PY) -m pip install -q $(FIND_LINKS) torch==2.13.0
	$(PY) -m pip install -q $(FIND_LINKS) -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(PY) -m trainer demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m trainer bench --data-dir "$(ICDCODER_DATA_DIR)" --out bench/results

bench-quick: setup
	$(PY) -m trainer bench --quick --data-dir "$(ICDCODER_DATA_DIR)" --out bench/results

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# One-command entry points. Every target works on a fresh machine: it sets up .venv/ first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# The CPU torch wheel lies in /opt/wheels on these machines; elsewhere PyTorch's CPU index (never the
# default index, whose Linux build pulls several GB of CUDA packages).
WHEELS := $(wildcard /opt/wheels)
TORCH_SOURCE := $(if $(WHEELS),--find-links $(WHEELS),--index-url https://download.pytorch.org/whl/cpu)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)
DATA_DIR ?= $(abspath ../shared/data)
export ICDCODER_DATA_DIR ?= $(DATA_DIR)

.PHONY: setup servers redis browser tools demo workbench-demo test bench bench-quick gpu-check gpu-wheels clean help
help:
	@echo "make setup  - create .venv and install everything (idempotent)"
	@echo "make demo   - the whole loop end to end on the embedded default"
	@echo "make workbench-demo - the demo again (trained model reused), then its worklist in the coders' workbench"
	@echo "make test   - start what the tests need and run pytest"
	@echo "make bench  - benchmarks (bench/results); make bench-quick for minutes"
	@echo "make gpu-check - the GPU check (bench/README.md); on a CPU its reduced rehearsal"

setup: $(STAMP)

# The tests and the demo start a private redis-server (Kafka and Triton come from pip wheels); the workbench's
# browser tests drive Debian's chromium with chromium-driver (Selenium): the tests need both, the demo only redis.
servers: redis browser
redis:
	@command -v redis-server >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; } || \
		{ echo "redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server)" >&2; exit 1; }
browser:
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		{ echo "chromium/chromedriver not found: install them (Debian: apt-get install chromium chromium-driver)" >&2; exit 1; }

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==23.2.1
	# torch first, from the local CPU wheel, so nothing pulls the CUDA build
	$(PY) -m pip install -q $(TORCH_SOURCE) torch==2.13.0
	$(PY) -m pip install -q $(FIND_LINKS) -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# s3rver (npm, pinned in bench/devservers/s3rver/package-lock.json): S3 storage for a Tansu broker whose data
# survive restarts (durable-broker tests, chaos benchmark). Skipped with a note where npm is missing.
S3RVER := bench/devservers/s3rver/node_modules/.bin/s3rver
tools: $(S3RVER)
$(S3RVER): bench/devservers/s3rver/package.json bench/devservers/s3rver/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix bench/devservers/s3rver --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the durable-broker tests and chaos faults are skipped (install nodejs and npm)" >&2; fi

demo: setup redis
	$(PY) -m bench demo

workbench-demo: setup redis
	$(PY) -m bench demo --workbench

test: setup servers tools
	$(PY) -m pytest $(PYTEST_ARGS)

# torch/onnxruntime threads of the full run (bench-quick keeps 1: per-core figures)
BENCH_THREADS ?= $(shell nproc)

bench: setup servers tools
	$(PY) -m bench run --data-dir "$(ICDCODER_DATA_DIR)" --out bench/results --threads $(BENCH_THREADS)

bench-quick: setup servers tools
	$(PY) -m bench run --quick --data-dir "$(ICDCODER_DATA_DIR)" --out bench/results

# The GPU check: on a GPU machine the full check, here its CPU rehearsal. On the lent GPU machine (no make
# setup there) run the one line in bench/README.md, "The day a GPU is lent", after `make gpu-wheels` here.
gpu-check: setup
	$(PY) -m bench run --only gpu --out bench/results

# Wheels of bench/gpu-requirements.txt for the lent GPU machine's Python (3.12, manylinux x86_64), carried there
gpu-wheels: setup
	$(PY) -m pip download -q --only-binary=:all: --no-deps --implementation cp --python-version 3.12 \
		--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d bench/gpu-wheels -r bench/gpu-requirements.txt

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

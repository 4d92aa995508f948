# histcalc: the two set-up commands (`make demo`, `make test`) and a few helpers.
# Every target installs what it needs itself, so each works on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test test-docker test-fast lint typecheck build deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package and its plot extra: enough to run the job. Installing compiles the C counting kernels
# (hatch_build.py); without a C compiler histcalc counts with numba (if installed) or numpy: the demo still runs.
NATIVE := $(wildcard src/histcalc/_native*.c src/histcalc/_native.h) hatch_build.py
$(VENV)/.installed-run: pyproject.toml $(NATIVE) | $(BIN)/python
	bash scripts/ci/install-compiler.sh || echo "no C compiler: histcalc will count with numba or numpy (slower)" >&2
	$(BIN)/pip install --quiet -e '.[plot]'
	touch $@

# Plus the test tools and the integration-test servers' Python packages. The tests need the C kernels.
$(VENV)/.installed-test: pyproject.toml $(NATIVE) tests/requirements.txt tests/servers/requirements.txt | $(BIN)/python
	bash scripts/ci/install-compiler.sh
	$(BIN)/pip install --quiet -e '.[dev,plot]' -r tests/requirements.txt
	touch $@

## Debian packages (Java for Spark, servers and Docker for the integration tests).
deps:
	@for script in scripts/ci/install-*.sh; do bash "$$script" || exit 1; done

## Generate the demo dataset (first run only) and run the seed's query on it with Spark local mode.
demo: $(VENV)/.installed-run
	bash scripts/ci/install-java.sh
	$(BIN)/histcalc demo $(DEMO_ARGS)

## The default suite: unit tests, Spark local mode, a standalone cluster, real HTTP/S3/STAC servers.
test: $(VENV)/.installed-test deps
	$(BIN)/pytest -m "not docker" $(PYTEST_ARGS)

## Docker image builds and runs on a private dockerd (several minutes; CI runs it after `make test`).
test-docker: $(VENV)/.installed-test deps
	$(BIN)/pytest -m docker $(PYTEST_ARGS)

## Unit and Spark-local tests only (no servers, no Docker, no cluster).
test-fast: $(VENV)/.installed-test
	bash scripts/ci/install-java.sh
	$(BIN)/pytest -m "not servers and not docker and not cluster" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks hatch_build.py
	$(BIN)/ruff format --check src benchmarks hatch_build.py

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

build: $(VENV)/.installed-test
	$(BIN)/python -m build

clean:
	rm -rf $(VENV) dist build demo-data .pytest_cache src/histcalc/histcalc-kernels.*

# histcalc: the two set-up commands (`make demo`, `make test`) and a few helpers.
# Every target installs what it needs itself, so each works on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint typecheck build deps clean

$(BIN)/histcalc: pyproject.toml tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,plot]' -r tests/requirements.txt
	touch $@

## Debian packages (Java for Spark, servers and Docker for the integration tests).
deps:
	@for script in scripts/ci/install-*.sh; do bash "$$script" || exit 1; done

## Generate the demo dataset (first run only) and run the seed's query on it with Spark local mode.
demo: $(BIN)/histcalc
	bash scripts/ci/install-java.sh
	$(BIN)/histcalc demo $(DEMO_ARGS)

## The whole test suite, with the real servers, Spark and Docker engine it starts itself.
test: $(BIN)/histcalc deps
	$(BIN)/pytest $(PYTEST_ARGS)

## Unit and Spark-local tests only (no servers, no Docker, no cluster).
test-fast: $(BIN)/histcalc
	bash scripts/ci/install-java.sh
	$(BIN)/pytest -m "not servers and not docker and not cluster" $(PYTEST_ARGS)

lint: $(BIN)/histcalc
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src

typecheck: $(BIN)/histcalc
	$(BIN)/mypy

build: $(BIN)/histcalc
	$(BIN)/python -m build

clean:
	rm -rf $(VENV) dist build demo-data .pytest_cache

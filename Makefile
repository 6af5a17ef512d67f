# OTPHub: `make demo` serves a demo on SQLite, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit serve bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/otphub demo

serve: install
	$(BIN)/otphub serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict src tests bench

unit: install
	$(BIN)/pytest

test: lint typecheck unit

# Benchmark (bench/README.md): SQLite then PostgreSQL on 127.0.0.1:5432. SCALE=10 for 10x data;
# BENCH_ARGS for more options, e.g. BENCH_ARGS="--db sqlite --duration 5".
SCALE ?= 1
BENCH_ARGS ?=
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py --scale $(SCALE) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# OTPHub: `make demo` serves a demo on SQLite, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install install-runtime lock lock-upgrade demo test lint typecheck unit serve bench bench-console chromium \
	screenshots clean

# Installs come from the hashed lock files in requirements/, so a fresh clone runs exactly the
# versions that were tested. The venv is rebuilt from scratch (--clear) whenever a lock or
# pyproject.toml changes: it then holds the locked packages and nothing left from older ones.
# `pip check` stops with a clear message when pyproject.toml wants something the lock lacks.
install: $(STAMP)

$(STAMP): pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || (echo "requirements/dev.lock is out of date with pyproject.toml: run make lock" >&2; exit 1)
	touch $(STAMP)

# Only what `otphub serve` needs, no test tools: make install-runtime RUNTIME_VENV=/opt/otphub
RUNTIME_VENV ?= .venv-serve
install-runtime:
	$(PYTHON) -m venv --clear $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/runtime.lock
	$(RUNTIME_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation .
	$(RUNTIME_VENV)/bin/python -m pip check

# Regenerates requirements/*.lock from pyproject.toml (and requirements/build.in) after a
# dependency changes; pins that still fit are kept. `make lock-upgrade` moves every package to
# its newest allowed version. The runtime lock is resolved within the dev lock's pins, so the
# server runs the very versions the tests ran.
UV := $(BIN)/uv
LOCK = $(UV) pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	--custom-compile-command "make lock" $(LOCK_ARGS) pyproject.toml requirements/build.in
lock: $(UV)
	$(LOCK) --extra dev -o requirements/dev.lock
	$(LOCK) -c requirements/dev.lock -o requirements/runtime.lock

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

# uv alone, hash-checked from the dev lock, so `make lock` runs even when the rest of the lock
# no longer matches pyproject.toml.
$(UV):
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	awk '/^uv==/ {found = 1} found {print} found && !/\\$$/ {exit}' requirements/dev.lock > $(VENV)/uv.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/uv.txt

demo: install
	$(BIN)/otphub demo

serve: install
	$(BIN)/otphub serve

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict src tests bench tools

# The browser tests (tests/browser) and `make screenshots` drive Debian's Chromium at
# /usr/bin/chromium through Playwright (never a downloaded browser): installed when missing,
# as root, as `make bench` installs wrk.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Two workers, each taking whole test files (a file's fixtures and its server processes stay
# on one worker): the suite takes about 8 minutes on 2 cores instead of about 13.
# PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
unit: install chromium
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck unit

# Benchmark (bench/README.md): SQLite then PostgreSQL on 127.0.0.1:5432. SCALE=10 for 10x data;
# BENCH_ARGS for more options, e.g. BENCH_ARGS="--db sqlite --duration 5".
SCALE ?= 1
BENCH_ARGS ?=
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py --scale $(SCALE) $(BENCH_ARGS)

# Every web-console page timed on the benchmark's data (bench/console_pages.py): p50, p95 and
# max per page on SQLite and PostgreSQL; exits 1 when a page's p95 is over 100 ms.
bench-console: install
	$(BIN)/python bench/console_pages.py --scale $(SCALE)

# PNGs of the console's main pages for the README (docs/screenshots/): `otphub demo` on a
# temporary SQLite file, driven through Chromium with the logins it prints.
screenshots: install chromium
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) var .pytest_cache .mypy_cache .ruff_cache

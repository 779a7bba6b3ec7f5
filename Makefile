# Developer shortcuts: the same commands CI runs (.ci/run), from the project's virtual environment.
# PY=/path/to/python make test   to use another interpreter.
PY ?= .venv/bin/python
BIN := $(dir $(PY))

.PHONY: check lint type imports test test-fast bench

check: lint type imports test  ## everything CI runs

lint:  ## ruff (rules in pyproject.toml)
	$(BIN)ruff check .

type:  ## mypy (strict on solvers/ and model/)
	$(PY) -m mypy

imports:  ## import-linter: the layers and no-cycle contracts in pyproject.toml
	$(BIN)lint-imports

test:  ## the whole suite (slow, ray and triton tests included where their extras are installed)
	$(PY) -m pytest -q

test-fast:  ## the suite without the tests marked slow
	$(PY) -m pytest -q -m "not slow"

bench:  ## the speed tables the tests do not assert (exact at 32 and 64 workloads; time limits)
	$(PY) benchmarks/bench_limits.py
	$(PY) benchmarks/bench_exact.py --sizes 32,64

# bncli developer targets. `make install` creates .venv; everything else uses it.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
export OPENBLAS_NUM_THREADS ?= 1
# pytest-xdist processes for `make test` (TEST_WORKERS=1 runs it in one process)
TEST_WORKERS ?= 2

.PHONY: install test test-slow check-bottleneck faults demo bench clean

$(BIN)/bncli: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/bncli  ## virtual environment with bncli and its test extras

test: install  ## fast test suite (CI)
	$(BIN)/pytest -x -q -n $(TEST_WORKERS)

test-slow: install  ## the slow tests left out of `make test`
	$(BIN)/pytest -q -m slow

check-bottleneck: install  ## default `bncli train` shows the rank-2 bottleneck (about a minute)
	$(BIN)/pytest -q -m slow tests/test_bottleneck.py

faults: install  ## long kill/restart campaign
	$(BIN)/pytest -q -m slow tests/test_faults.py -s

demo: install  ## small depth sweep on the built-in example, then its report
	$(BIN)/bncli sweep +experiment=demo --name demo
	$(BIN)/bncli report runs/demo

bench: install  ## benchmarks -> BENCHMARKS.md
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python bench/run.py --out BENCHMARKS.md

clean:
	rm -rf runs .pytest_cache

# Vigie: one command to set up, one to run the demo, one to test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The main job: a benign demo bank, demo pictures, and a scan of them against the bank.
demo: setup
	$(BIN)/vigie demo run --data-dir demo-data

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python bench/hash_bench.py --quick
	$(BIN)/python bench/match_bench.py --size 1000000

clean:
	rm -rf $(VENV) demo-data .pytest_cache .ruff_cache

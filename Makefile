# Vigie: one command to set up, one to run the demo, one to test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: browser tests will be skipped"

# The main job: a benign demo bank, demo pictures, and a scan of them against the bank.
demo: setup
	$(BIN)/vigie demo run --data-dir demo-data

lint: setup
	$(BIN)/ruff check .

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python bench/hash_bench.py --quick
	$(BIN)/python bench/match_bench.py --size 1000000

clean:
	rm -rf $(VENV) demo-data .pytest_cache .ruff_cache

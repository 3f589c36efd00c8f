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

# System tools some tests use, from Debian's packages: Chromium for the browser tests (never a downloaded
# browser), e2fsprogs and ntfs-3g to build disk images. Installed when missing and running as root.
DEBS := chromium e2fsprogs ntfs-3g
browser:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v mke2fs >/dev/null 2>&1 || [ -x /usr/sbin/mke2fs ] || missing="$$missing e2fsprogs"; \
	  command -v mkntfs >/dev/null 2>&1 || [ -x /usr/sbin/mkntfs ] || [ -x /sbin/mkntfs ] || missing="$$missing ntfs-3g"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	    else echo "not root: install$$missing for the browser and disk-image tests"; fi; fi

# The main job: the analysts' web app on the embedded SQLite store, with a benign demo bank and a demo scan
# whose unknown pictures wait in the review queue (http://127.0.0.1:8000; accounts printed on first start).
demo: setup
	$(BIN)/vigie demo serve --data-dir demo-data

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

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
# browser), e2fsprogs, ntfs-3g, dosfstools, mtools, exfatprogs, exfat-fuse and xorriso (HFS+) to build disk
# images, ewf-tools (ewfacquire) and qemu-utils to build E01 and virtual-disk evidence, and FFmpeg's headers with
# cmake so the vPDQ parity test can build Meta's vpdq in its own venv. Each one is installed when missing and running as root; elsewhere the tests that need
# it say why they are skipped.
DEBS := chromium libarchive13 e2fsprogs ntfs-3g dosfstools mtools ewf-tools qemu-utils exfatprogs exfat-fuse xorriso cmake pkg-config \
	libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libavfilter-dev libswresample-dev
# axe-core for the accessibility test (tests/test_a11y_axe.py), from npm into .cache/axe/ (ignored by git).
AXE := 4.14.1
browser:
	@missing=""; for d in $(DEBS); do dpkg -s $$d >/dev/null 2>&1 || missing="$$missing $$d"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	    else echo "not root: install$$missing for the browser and disk-image tests"; fi; fi
	@test -s .cache/axe/axe.min.js || { mkdir -p .cache/axe && cd .cache/axe && npm pack --silent axe-core@$(AXE) >/dev/null \
	  && tar -xzf axe-core-$(AXE).tgz --strip-components=1 package/axe.min.js package/LICENSE && rm -f axe-core-$(AXE).tgz; } \
	  || echo "could not fetch axe-core from npm: the accessibility test will be skipped"

# The main job: the analysts' web app on the embedded SQLite store, with a benign demo bank and a demo scan
# whose unknown pictures wait in the review queue (http://127.0.0.1:8000; accounts printed on first start).
demo: setup
	$(BIN)/vigie demo serve --data-dir demo-data

lint: setup
	$(BIN)/ruff check .

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q --durations=25

bench: setup
	$(BIN)/python bench/hash_bench.py --quick
	$(BIN)/python bench/match_bench.py --size 1000000

clean:
	rm -rf $(VENV) demo-data .pytest_cache .ruff_cache

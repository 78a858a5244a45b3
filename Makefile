# Every target creates and uses its own virtual environment (.venv); nothing
# else needs installing first. `make demo` and `make test` work on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

CHROMIUM ?= /usr/bin/chromium

.PHONY: install chromium netns-tools demo test check lint types layers bench clean

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory chromium
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium (Playwright cannot download its own browsers everywhere):
# the HTML report's test and the browser checks drive it.
chromium:
	@if [ -x $(CHROMIUM) ]; then \
		echo "chromium: $(CHROMIUM)"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "hostwatch needs Chromium at $(CHROMIUM) and cannot install it here:" >&2; \
		echo "  install your system's chromium package (Debian: apt-get install chromium)." >&2; \
		exit 1; \
	fi

# unshare and ip (util-linux, iproute2): tests aimed at addresses outside
# loopback run in a network namespace with only loopback (tests/netns.py).
netns-tools:
	@if command -v unshare >/dev/null && { command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ]; }; then \
		:; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux; \
	else \
		echo "the tests need unshare and ip: install util-linux and iproute2" >&2; \
		exit 1; \
	fi

demo: $(STAMP)
	$(BIN)/hostwatch demo

test: $(STAMP) netns-tools
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

# The import graph: every import goes down the layers (docs/architecture.md).
layers: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_layers.py

check: lint types layers netns-tools
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered

bench: $(STAMP)
	$(BIN)/python benchmarks/crawl_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage hostwatch-demo

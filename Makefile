# ltrr: `make demo` runs the search service on the demo catalog; `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-slow system-deps lint bench clean

install: $(VENV)/.installed

# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

system-deps:
	@command -v redis-server >/dev/null 2>&1 || { $(APT) update -qq && $(APT) install -y -qq redis-server; }
	@command -v chromium >/dev/null 2>&1 || { $(APT) update -qq && $(APT) install -y -qq chromium; }

demo: install
	$(VENV)/bin/ltrr serve --build-if-missing --with-ingest

test: install system-deps lint
	$(PY) -m pytest -q

# The long runs behind the `slow` marker (many model reloads across processes).
test-slow: install system-deps
	$(PY) -m pytest -q -m slow

# Lint: import-linter contracts (the arrows between packages), ruff (pyflakes, import order, bugbear), mypy.
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/bench_service.py --out results/bench_service.json
	$(PY) benchmarks/bench_latency.py --size 100000 --queries 1000 --out results/bench_latency.json
	$(PY) benchmarks/bench_ingest.py --impressions 20000 --repeats 3 --out results/bench_ingest.json

clean:
	rm -rf data results

# Everything a fresh machine needs is installed by these targets: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLS := .tools
PYTEST_ARGS ?=

.PHONY: help install redis-server chromium tools demo test lint typecheck unit slow crds bench soak e2e screenshots clean

help:
	@echo "make demo   - run the order workflow on the embedded MemoryStore (DURABLE_REDIS_URL switches to Redis)"
	@echo "make test   - install everything, lint, type-check, run all tests on a throw-away redis-server"
	@echo "make bench  - run the five standard workloads (SCALE=0.1 for a quick run)"
	@echo "make soak   - crash soak: kills, stops, a Redis restart and pause (SOAK_EXECUTIONS, SOAK_SECONDS, SOAK_SEED)"
	@echo "make crds   - regenerate crds/ and the chart's CRDs from the pydantic models"

$(VENV)/.stamp-install: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.stamp-install

# Tests start their own redis-server on a free port; install the binary if the machine lacks it.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server from the system packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# The dashboard's browser tests drive the Debian package's headless Chromium through Playwright
# (no browser download); install it if the machine lacks it.
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium from the system packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

tools: install
	@$(PY) scripts/fetch_tools.py $(TOOLS)

demo: install
	$(PY) -m durable.demo

lint: install
	$(VENV)/bin/ruff check worker operator tests bench scripts
	$(VENV)/bin/ruff format --check worker operator tests bench scripts
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

test: install redis-server chromium tools lint typecheck
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The README's dashboard screenshots, from the browser test that visits the main pages.
screenshots: install redis-server chromium
	DURABLE_SCREENSHOTS="$(CURDIR)/docs/screenshots" $(VENV)/bin/pytest -q -p no:cacheprovider \
	  tests/dashboard/test_browser.py -k screenshots

# The fast tests without the helm/kubectl binaries (tests/<part>/ folders are markers too: -m stores).
unit: install redis-server
	$(VENV)/bin/pytest -q -p no:cacheprovider -m "not slow and not cluster_tools" $(PYTEST_ARGS)

crds: install
	$(PY) -m durable_operator.crdgen crds charts/durable-workflows

bench: install redis-server
	$(PY) bench/run.py

# Longer than the slow test's soak: SOAK_EXECUTIONS (1000), SOAK_SECONDS (180), SOAK_SEED (random, printed).
soak: install redis-server
	$(PY) tests/soak.py

e2e: install
	bash scripts/e2e-kind.sh

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache

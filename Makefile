# pynector: every target installs what it needs (uv, the workspace) by itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PyPI when it is not on PATH; installed into a project-local venv that
# is put on PATH, so the tests (which install test packages with uv) find it too.
export PATH := $(CURDIR)/.tools/bin:$(PATH)
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen --all-packages

# The whole suite runs on the default Python (3.11); the core, HTTP, CLI, SDK and otel
# suites also on each of these, each in its own environment (.venv-3.12, ...).
# pyenv's interpreter is used when pyenv has the version (its shims only answer
# for the global one); otherwise uv finds or installs it.
OTHER_PYTHONS := 3.12 3.13
OTHER_SUITES := tests/core tests/http tests/cli tests/sdk tests/otel tests/redis

.PHONY: help uv sync redis-server demo test lint docs bench dist soak

help:
	@echo "make demo   run the main job against an embedded loopback server"
	@echo "make test   lint, type-check, build the docs strictly, run the whole test suite"
	@echo "           (Python 3.11) and every distribution's suite on 3.12 and 3.13"
	@echo "make lint   ruff (lint + format check), strict mypy and the import contracts"
	@echo "make docs   build the documentation site into site/ (open site/index.html from"
	@echo "           disk, search included, or serve it: python3 -m http.server -d site)"
	@echo "make bench  run the benchmarks and print ratios against baselines"
	@echo "make dist   build the wheels and sdists of the six distributions into dist/"
	@echo "make soak   100,000 requests with random faults and cancellations, asyncio and trio"

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

uv: $(UV)

# The Redis store's tests start their own redis-server processes on free ports.
# The Debian package starts a service on 6379, which the tests never use: stopped.
redis-server:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "redis-server is missing: install it (apt-get install redis-server) or run make as root"; \
	    exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
	    && { service redis-server stop >/dev/null 2>&1 || true; }; \
	}

sync: uv
	$(UV) sync --locked --all-packages --quiet

demo: sync
	$(RUN) python -m pynector demo

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) mypy examples/*.py docs/_ext/*.py
	$(RUN) lint-imports --no-cache

# The documentation site (mkdocs-material); --strict turns every warning (a broken
# link, a page missing from the nav, a docstring mkdocstrings cannot render) into an error.
# NO_MKDOCS_2_WARNING silences mkdocs-material's banner about its successor.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs

docs: sync
	$(MKDOCS) build --strict
	@echo "Documentation built: open site/index.html, or serve it with python3 -m http.server -d site"

test: lint docs redis-server
	$(RUN) pytest
	@# The other Pythons' suites run side by side (one a core), each into its own log.
	pids=""; for version in $(OTHER_PYTHONS); do \
	  ( python=$$version; \
	    if prefix=$$(pyenv prefix $$version 2>/dev/null); then python=$$prefix/bin/python$$version; fi; \
	    export UV_PROJECT_ENVIRONMENT=.venv-$$version; \
	    $(UV) sync --locked --all-packages --quiet --python $$python && \
	    $(UV) run --frozen --all-packages --python $$python pytest -q -p no:cacheprovider \
	      $(OTHER_SUITES) ) > .test-$$version.log 2>&1 & \
	  pids="$$pids $$!"; \
	done; \
	status=0; for pid in $$pids; do wait $$pid || status=1; done; \
	for version in $(OTHER_PYTHONS); do echo "== Python $$version"; cat .test-$$version.log; done; \
	exit $$status

bench: sync
	$(RUN) python benchmarks/run.py

DISTRIBUTIONS := pynector pynector-core pynector-http pynector-sdk pynector-otel pynector-redis

dist: uv
	rm -rf dist
	for package in $(DISTRIBUTIONS); do $(UV) build --quiet --package $$package --out-dir dist || exit 1; done
	@ls dist

soak: sync
	$(RUN) python benchmarks/soak.py --backend asyncio
	$(RUN) python benchmarks/soak.py --backend trio

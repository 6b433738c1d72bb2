# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone:
# they create .venv, install the project and what it needs, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sitewatch-installed
DEV_STAMP := $(VENV)/.sitewatch-dev-installed
DEMO_WORKSPACE ?= demo/workspace

.PHONY: venv system-deps demo test lint typecheck unit serve clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sitewatch needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

# Tests and training need more (pytest, ruff, mypy, playwright, torch): only `make test` installs them.
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(DEV_STAMP)

venv: $(STAMP)

# Debian packages the tests need (rasterio's wheel bundles GDAL): Chromium for the browser tests, and
# PostgreSQL 15 with PostGIS 3, which the store tests start in a temporary folder as an unprivileged user.
SYSTEM_PACKAGES := chromium fonts-dejavu-core postgresql-15-postgis-3

system-deps:
	@bash scripts/system-deps.sh $(SYSTEM_PACKAGES)

demo: $(STAMP)
	$(BIN)/sitewatch demo --workspace $(DEMO_WORKSPACE)

# The dashboard over the demo workspace (make demo prints the analyst's credentials).
serve: $(STAMP)
	$(BIN)/sitewatch serve --workspace $(DEMO_WORKSPACE)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/pytest -q

test: system-deps $(DEV_STAMP) lint typecheck unit

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache

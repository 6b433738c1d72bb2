# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone:
# they create .venv, install the project and what it needs, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sitewatch-installed
DEMO_WORKSPACE ?= demo/workspace

.PHONY: venv system-deps demo test lint typecheck unit bench serve clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sitewatch needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests need. rasterio's wheel bundles GDAL, so for now nothing else is required.
system-deps:
	@bash scripts/system-deps.sh

demo: $(STAMP)
	$(BIN)/sitewatch demo --workspace $(DEMO_WORKSPACE)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: system-deps $(STAMP) lint typecheck unit

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache

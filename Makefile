# myshift — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the pinned dependencies

services: ## Make sure MariaDB and PostgreSQL are reachable (start them if installed)
	@scripts/services.sh

demo: venv services ## Seed a sample table and sync it three times through the local state machine
	$(PY) scripts/demo.py

test: venv services ## Run the whole test suite (unit, integration, infra, e2e)
	$(PY) -m pytest tests/unit tests/integration tests/infra -q
	$(PY) -m pytest tests/e2e -q

lint: venv ## ruff
	$(VENV)/bin/ruff check .

synth: venv ## Synthesize the CDK app into cdk.out/ (no AWS account, no Docker)
	$(PY) scripts/build_layer.py
	$(PY) app.py

bench: venv services ## Benchmarks (print figures)
	@ls bench/*.py >/dev/null 2>&1 && for b in bench/*.py; do $(PY) $$b; done || echo "no benchmarks yet"

clean: ## Remove build outputs (keeps .venv)
	rm -rf cdk.out build .pytest_cache

.PHONY: help venv services demo test lint synth bench clean

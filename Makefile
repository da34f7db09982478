# myshift — run `make help` for the targets.
SHELL := /bin/bash
# The newest of Python 3.12 (the Lambda runtime, see cdk.json) or any python3 >= 3.11:
# on PATH, or installed by pyenv but not selected.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml setup.py functions/myshift_packets.c tools/package-lock.json
	@test -n "$(PYTHON)" || { echo "error: need Python >= 3.11 (3.12 preferred): apt-get install python3 python3-venv" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "error: need Node.js and npm (for the CDK and asl-validator): apt-get install nodejs npm" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the pinned dependencies (and tools/: asl-validator)

services: ## Make sure MariaDB and PostgreSQL are reachable (start them if installed)
	@scripts/services.sh

demo: venv services ## Seed a sample table and sync it three times through the local state machine
	$(PY) scripts/demo.py

PYTEST := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(PY) -m pytest -q -p no:logging

test: venv services ## Run the test suite: unit, integration, infra, e2e (all but the slow proofs)
	$(PYTEST) -m "not slow" tests/unit tests/integration tests/infra
	$(PYTEST) -m "not slow" tests/e2e

test-slow: venv services ## The slow proofs (10,000-chunk limits, fault matrix, races); CI runs them too
	$(PYTEST) -m slow tests/unit tests/integration tests/infra tests/e2e

lint: venv ## ruff (lint and format) and mypy (config in pyproject.toml); CI runs it
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

asl: venv ## Rewrite statemachines/*.asl.json (sync, doctor, reconcile) from infra/definition.py and validate them
	$(PY) -m infra.definition
	for f in statemachines/*.asl.json; do tools/node_modules/.bin/asl-validator --json-path $$f || exit 1; done

synth: venv ## Synthesize the CDK app into cdk.out/ (no AWS account, no Docker); prints sizes and cdk-nag
	$(PY) scripts/build_layer.py --python-version $$($(PY) -c 'import json; print(json.load(open("cdk.json"))["context"]["lambda_python_version"])')
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(PY) app.py $(CONTEXT)

BENCH_LOG := .myshift/bench.log

bench: venv services ## Benchmarks: figures only (every log line goes to .myshift/bench.log)
	@mkdir -p $(dir $(BENCH_LOG)) && : > $(BENCH_LOG)
	@for b in bench/*.py; do \
	  $(PY) $$b 2>>$(BENCH_LOG) | tee -a $(BENCH_LOG) | grep -v '^{'; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || { echo "bench: $$b failed; see $(BENCH_LOG)" >&2; exit 1; }; \
	done

clean: ## Remove build outputs (keeps .venv)
	rm -rf cdk.out build .pytest_cache

.PHONY: help venv services demo test test-slow lint asl synth bench clean

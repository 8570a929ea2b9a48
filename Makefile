# Quire: `make run` starts everything, `make test` tests everything.
# Only Python 3.11+ is needed; the virtualenv lives in .venv.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Re-install only when the project's dependencies change.
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-browser bench lint format check-compose ci manage clean

help:
	@echo "make run           install, migrate, load demo content, start web + worker + beat"
	@echo "                   (QUIRE_PORT=8150 make run: another port; links in emails follow)"
	@echo "make test          the whole test suite on the embedded default"
	@echo "make test-browser  the browser tests (needs /usr/bin/chromium, and Java for vnu)"
	@echo "make bench         the benchmarks (tests/bench)"
	@echo "make lint          ruff check and ruff format --check"

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Quire needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]' 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	@$(PY) manage.py ensure_admin
	$(PY) manage.py runall

test: install
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

test-browser: install
	@test -x /usr/bin/chromium || $(PY) -m playwright install chromium
	$(PY) -m pytest -m browser tests/browser $(PYTEST_ARGS)

bench: install
	$(PY) -m tests.bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-compose: install
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

ci:
	bash .ci/run

manage: install
	$(PY) manage.py $(ARGS)

clean:
	rm -rf var/test var/broker

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
.PHONY: help install run test test-services test-browser test-scale bench lighthouse lint \
	format check-compose ci manage clean

help:
	@echo "make install        create .venv and install Quire with its dev tools (again"
	@echo "                    only when pyproject.toml changes)"
	@echo "make run            install, migrate, load demo content, start web + worker + beat"
	@echo "                    (QUIRE_PORT=8150 make run: another port; links in emails follow)"
	@echo "make test           the whole test suite on the embedded default"
	@echo "make test-services  the suite on PostgreSQL + Redis, as CI runs it (a throwaway"
	@echo "                    database; SERVICES_BROKER_DB=11 SERVICES_CACHE_DB=12 for other"
	@echo "                    Redis databases than CI's 15 and 14)"
	@echo "make test-browser   the browser tests (needs /usr/bin/chromium, and Java for vnu)"
	@echo "                    (PYTEST_ARGS=... passes options to pytest in the three above)"
	@echo "make test-scale     as root: one send across hosts made of network namespaces"
	@echo "                    (PostgreSQL, Redis, an SMTP sink, three workers; one host is"
	@echo "                    cut off mid-send; about 2.5 minutes; docs/scaling.md)"
	@echo "make bench          the benchmarks (tests/bench; BENCH_ARGS=... for options)"
	@echo "make lighthouse     Lighthouse's four scores on every reader page, DEBUG off;"
	@echo "                    fails below 100 (needs Node.js and /usr/bin/chromium;"
	@echo "                    LIGHTHOUSE=path to use an installed copy, PAGES=\"home tag\")"
	@echo "make lint           ruff check, ruff format --check, mypy and lint-imports"
	@echo "make format         ruff check --fix and ruff format"
	@echo "make check-compose  docker-compose.yml against the Compose specification"
	@echo "make ci             what CI runs (.ci/run): every leg, the schema and lint"
	@echo "make manage ARGS=…  manage.py with ARGS, e.g. make manage ARGS=createsuperuser"
	@echo "make clean          remove what the tests and the broker leave under var/"
	@echo "make help           this list"

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
	$(PY) -m pytest -m "not browser and not scale" $(PYTEST_ARGS)

test-services: install
	bash .ci/test-services $(PYTEST_ARGS)

test-browser: install
	@test -x /usr/bin/chromium || $(PY) -m playwright install chromium
	$(PY) -m pytest -m browser tests/browser $(PYTEST_ARGS)

test-scale: install
	QUIRE_VAR_DIR=var/test-scale $(PY) -m pytest -m scale tests/scale -p no:cacheprovider \
		$(PYTEST_ARGS)

bench: install
	$(PY) -m tests.bench $(BENCH_ARGS)

lighthouse: install
	@test -x "$${CHROME_PATH:-/usr/bin/chromium}" || \
		{ echo "make lighthouse needs Chromium: apt-get install chromium"; exit 1; }
	@command -v npx >/dev/null || \
		{ echo "make lighthouse needs Node.js (npx): apt-get install nodejs npm"; exit 1; }
	$(PY) -m tests.browser.lighthouse $(PAGES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

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
	rm -rf var/test var/test-services var/test-scale var/broker

# Kameng — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
STACK_DIR ?= var/stack

.PHONY: run test venv dev-venv migrate lint format typecheck check stack stack-stop messages clean

# --- embedded shop: SQLite, eager Celery, periodic jobs in-process, sandbox payments, e-mail outbox --
# Links in e-mails and payment pages follow HOST and PORT: the address is handed to the settings as
# the default of SITE_URL (a SITE_URL in the environment or in .env still wins).
SERVE := KAMENG_SERVE_ADDRESS=$(HOST):$(PORT)
run: venv
	$(PY) -m kameng.envfile
	$(PY) manage.py migrate --no-input
	$(SERVE) $(PY) manage.py seed_demo
	$(SERVE) $(PY) manage.py runserver $(HOST):$(PORT)

# --- whole test suite on a throwaway PostgreSQL + Redis (started by the tests themselves) --------
# One pytest-xdist worker per CPU (TEST_WORKERS=0 runs in one process, e.g. to use a debugger).
TEST_WORKERS ?= auto
test: dev-venv
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: Kameng needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.installed $@

migrate: venv
	$(PY) manage.py migrate --no-input

# --- code quality ------------------------------------------------------------------------------
lint: dev-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: dev-venv
	$(VENV)/bin/mypy

format: dev-venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: dev-venv
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

messages: dev-venv
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=staticfiles --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv

# --- the full stack as local processes: PostgreSQL, Redis, gunicorn, Celery worker and beat -----
stack: venv
	$(PY) -m kameng.stack --dir $(STACK_DIR) --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) staticfiles var .pytest_cache .ruff_cache test-artifacts

# One entry point for set-up, tests and the local Azure. Every target installs what it needs
# into the repo (.venv, .tools/) so a fresh clone needs nothing by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AZURITE_STAMP := .tools/azurite/.installed
# checkov has its own environment: it pins old dependencies that conflict with pytest.
CHECKOV_VENV := .tools/checkov/venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: all install browser test lint typecheck infra-check pytest demo demo-finetune dev simulator azurite bench lock clean

all: test

# Both checks before either install, so a missing Node.js is reported before minutes of pip.
# The project itself goes in editable (its code stays here) for the `hosting` console script;
# --no-deps since requirements*.txt just installed the pinned dependencies.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) scripts/check_prereqs.py python node
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	@touch $@

$(AZURITE_STAMP): .tools/azurite/package.json .tools/azurite/package-lock.json
	@$(PYTHON) scripts/check_prereqs.py node
	cd .tools/azurite && npm ci --silent --no-audit --no-fund --ignore-scripts
	@touch $@

$(CHECKOV_STAMP): .tools/checkov/requirements.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r .tools/checkov/requirements.txt
	@touch $@

install: $(STAMP) $(AZURITE_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The portal's browser tests drive Debian's Chromium: installed here when missing (apt-get, as
# root, as CI runs), else one line says why not and those tests skip (CI=true fails them).
browser:
	@$(PYTHON) -m scripts.chromium

# One worker process per core: most tests wait on the local Azure, so two run in the time of
# one (see BENCHMARKS.md). Whole files go to one worker (--dist loadfile): a module's host or
# browser is started once. PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= auto
pytest: install browser
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile

# checkov over infra/ (offline): fails on any failed check, unparsed file, or empty run.
infra-check: $(STAMP) $(CHECKOV_STAMP)
	$(PY) -m scripts.infra_check infra

test: lint typecheck infra-check pytest

demo: install
	$(PY) -m scripts.demo

# Check a dataset, fine-tune, evaluate against the base, promote, serve a document (local Azure).
demo-finetune: install
	$(PY) -m scripts.demo_finetune

# Serves the app on http://localhost:7071/api/... against a fresh local Azure, and writes the
# app settings that reach it to .local/dev.settings.json while it runs, for
# `.venv/bin/hosting --settings .local/dev.settings.json status` in another terminal. To run
# it against your own settings instead: cp local.settings.sample.json local.settings.json,
# edit it, then `.venv/bin/python -m scripts.functions_host`.
# DEV_PORT: the HTTP port (`make dev DEV_PORT=7072` when 7071 is taken).
DEV_PORT ?= 7071
dev: install
	@$(PY) -m scripts.functions_host --local-azure --port $(DEV_PORT) --settings-out .local/dev.settings.json

simulator: install
	$(PY) -m simulator

azurite: install
	$(PY) -m scripts.local_azure azurite

bench: install
	$(PY) -m bench

# Re-pin requirements*.txt from the .in files (needs network to the package index).
lock:
	$(PYTHON) -m venv /tmp/lock-venv && /tmp/lock-venv/bin/pip install --quiet uv
	/tmp/lock-venv/bin/uv pip compile --python-version 3.11 --no-header requirements.in -o requirements.txt
	/tmp/lock-venv/bin/uv pip compile --python-version 3.11 --no-header requirements-dev.in -o requirements-dev.txt
	/tmp/lock-venv/bin/uv pip compile --python-version 3.11 --no-header .tools/checkov/requirements.in -o .tools/checkov/requirements.txt

clean:
	rm -rf $(VENV) .tools/azurite/node_modules $(AZURITE_STAMP) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache

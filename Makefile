# Teller — the two README commands are `make run` and `make test`; both call `make setup`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3.11
VENV ?= .venv
LOCK := requirements.lock
STAMP := $(VENV)/.teller-lock-hash
# Local wheel cache of this image (the CPU torch build lives there); harmless when absent.
PIP_FLAGS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,) --disable-pip-version-check -q
TELLER_DATA_DIR ?= $(CURDIR)/.teller-data
HOST ?= 127.0.0.1
PORT ?= 8000

# The venv depends on the lock and on pyproject's [project] table (deps, entry points),
# not on tool settings, so editing lint config does not rebuild it.
export LOCK_HASH := import hashlib, json, tomllib; \
  project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
  print(hashlib.sha256((open("$(LOCK)").read() + json.dumps(project, sort_keys=True)).encode()).hexdigest())

.PHONY: setup run test lint typecheck pytest lock bench-retrieval bench-scale clean

setup: ## Create .venv from requirements.lock (skipped when the lock hash is unchanged)
	@want="$$($(PYTHON) -c "$$LOCK_HASH")"
	if [[ -x $(VENV)/bin/python && -f $(STAMP) && "$$(cat $(STAMP))" == "$$want" ]]; then
	  exit 0
	fi
	echo "setup: creating $(VENV) from $(LOCK)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -r $(LOCK)
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	echo "$$want" > $(STAMP)

lock: ## Re-resolve pyproject.toml into requirements.lock (needs the registries)
	rm -rf /tmp/teller-lock-venv
	$(PYTHON) -m venv /tmp/teller-lock-venv
	/tmp/teller-lock-venv/bin/pip install $(PIP_FLAGS) torch==2.13.0
	/tmp/teller-lock-venv/bin/pip install $(PIP_FLAGS) '.[dev]'
	/tmp/teller-lock-venv/bin/pip freeze --exclude teller > $(LOCK)

run: setup ## Start Teller (API with the demo knowledge base) on http://$(HOST):$(PORT)
	export TELLER_DATA_DIR=$(TELLER_DATA_DIR)
	$(VENV)/bin/teller migrate
	$(VENV)/bin/teller demo load
	exec $(VENV)/bin/teller serve --host $(HOST) --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check bot retrieval feedback db tests
	$(VENV)/bin/ruff format --check bot retrieval feedback db tests

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest ## Lint, type-check and run the whole test suite

bench-retrieval: setup
	$(VENV)/bin/teller bench retrieval --dataset ../shared/datasets/bankfaqs --split dev --json

bench-scale: setup
	$(VENV)/bin/teller bench scale --chunks 100000 --json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

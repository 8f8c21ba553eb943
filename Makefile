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
CHROMIUM ?= /usr/bin/chromium
HOST ?= 127.0.0.1
PORT ?= 8000
# Rasa 3.6 needs Python 3.10: its own virtualenv, from its own lock.
# The first python3.10 that runs (an inactive pyenv shim on PATH does not).
ifndef RASA_PYTHON
RASA_PYTHON := $(shell for c in $$(command -v python3.10) $$(ls -d $$HOME/.pyenv/versions/3.10.*/bin/python3.10 2>/dev/null | sort -rV) /usr/bin/python3.10 /usr/local/bin/python3.10; do \
  if "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then echo "$$c"; break; fi; done)
endif
RASA_VENV ?= .venv-rasa
RASA_LOCK := requirements-rasa.lock
RASA_STAMP := $(RASA_VENV)/.teller-lock-hash
RASA_PROJECT := bot/rasa

# The venv depends on the lock and on pyproject's [project] table (deps, entry points),
# not on tool settings, so editing lint config does not rebuild it.
export LOCK_HASH := import hashlib, json, tomllib; \
  project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
  print(hashlib.sha256((open("$(LOCK)").read() + json.dumps(project, sort_keys=True)).encode()).hexdigest())

.PHONY: setup run test lint typecheck pytest lock bench-retrieval bench-scale clean \
  rasa-setup rasa-lock rasa-train rasa-test browser-setup screenshots

setup: rasa-setup ## Create .venv from requirements.lock (skipped when the lock hash is unchanged)
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

run: setup ## Start Teller (API + Rasa + demo knowledge base) on http://$(HOST):$(PORT)
	export TELLER_DATA_DIR=$(TELLER_DATA_DIR)
	$(VENV)/bin/teller migrate
	$(VENV)/bin/teller demo load
	exec $(VENV)/bin/teller serve --host $(HOST) --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check bot retrieval feedback db tests
	$(VENV)/bin/ruff format --check bot retrieval feedback db tests

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup browser-setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

browser-setup: ## Debian's Chromium for browser tests and screenshots (apt-get only when missing)
	@if [[ ! -x $(CHROMIUM) ]]; then
	  SUDO="$$( [[ $$(id -u) -eq 0 ]] || echo sudo )"
	  $$SUDO apt-get update -qq
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium
	fi

screenshots: setup browser-setup ## PNG screenshots of the widget and agent console for the README
	$(VENV)/bin/teller screenshots docs/screenshots

test: lint typecheck rasa-test pytest ## Lint, type-check and run the whole test suite

rasa-setup: ## Create .venv-rasa (Python 3.10, Rasa 3.6) from requirements-rasa.lock (cached by its hash)
	@want="$$(sha256sum $(RASA_LOCK) | cut -d' ' -f1)"
	if [[ -x $(RASA_VENV)/bin/rasa && -f $(RASA_STAMP) && "$$(cat $(RASA_STAMP))" == "$$want" ]]; then
	  exit 0
	fi
	if [[ -z "$(RASA_PYTHON)" ]]; then
	  echo "rasa-setup: Python 3.10 not found; install it or set RASA_PYTHON=/path/to/python3.10" >&2
	  exit 1
	fi
	echo "rasa-setup: creating $(RASA_VENV) from $(RASA_LOCK) with $(RASA_PYTHON)"
	rm -rf $(RASA_VENV)
	$(RASA_PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(RASA_VENV)/bin/pip install $(PIP_FLAGS) -r $(RASA_LOCK)
	echo "$$want" > $(RASA_STAMP)

# onnxruntime and tokenizers run the NLU's sentence encoder (bot/rasa/teller_nlu).
RASA_REQUIREMENTS := rasa==3.6.21 onnxruntime==1.23.2 tokenizers==0.23.2

rasa-lock: ## Re-resolve Rasa and the NLU encoder's runtime into requirements-rasa.lock (needs the registries)
	rm -rf /tmp/teller-rasa-lock-venv
	$(RASA_PYTHON) -m venv /tmp/teller-rasa-lock-venv
	/tmp/teller-rasa-lock-venv/bin/pip install $(PIP_FLAGS) $(RASA_REQUIREMENTS)
	{ echo "# Rasa's virtualenv (.venv-rasa, Python 3.10): $(RASA_REQUIREMENTS)"
	  echo "# and everything they pull in, frozen by \`make rasa-lock\`. \`make rasa-setup\` installs exactly this."
	  /tmp/teller-rasa-lock-venv/bin/pip freeze --all --exclude pip; } > $(RASA_LOCK)

rasa-train: setup ## Train the Rasa model if domain, config or data changed (cached by their hash)
	export TELLER_DATA_DIR=$(TELLER_DATA_DIR)
	$(VENV)/bin/python -m bot.rasa_process train

rasa-test: setup ## Validate the Rasa project and run its test stories (bot/rasa/tests)
	export TELLER_DATA_DIR=$(TELLER_DATA_DIR) RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2
	model="$$($(VENV)/bin/python -m bot.rasa_process train)"
	cd $(RASA_PROJECT)
	$(CURDIR)/$(RASA_VENV)/bin/rasa data validate --fail-on-warnings --quiet
	$(CURDIR)/$(RASA_VENV)/bin/rasa test core --e2e --stories tests --model "$$model" \
	  --out $(TELLER_DATA_DIR)/rasa/test-results --fail-on-prediction-errors --quiet

bench-retrieval: setup
	$(VENV)/bin/teller bench retrieval --dataset ../shared/datasets/bankfaqs --split dev --json

bench-scale: setup
	$(VENV)/bin/teller bench scale --chunks 100000 --json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

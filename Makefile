# Entry points (see README): `make run` serves the app, `make test` lints and runs
# the tests, `make notebook` opens the notebooks in JupyterLab, `make lint` lints.
# Each creates .venv and installs the pinned requirements on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
HOST ?= 127.0.0.1
SHARED_DATA ?= $(abspath ../shared/data)
# The shared data sets where they are; without them tests, notebooks and training
# fall back (README, "Without ../shared/data").
ifneq ($(wildcard $(SHARED_DATA)/mnist.npz),)
export MNIST_PATH ?= $(SHARED_DATA)/mnist.npz
endif
ifneq ($(wildcard $(SHARED_DATA)/pen_digits_dev.jsonl.gz),)
export PEN_DIGITS_PATH ?= $(SHARED_DATA)/pen_digits_dev.jsonl.gz
endif
ifneq ($(wildcard $(SHARED_DATA)/pen_chars_dev.jsonl.gz),)
export PEN_CHARS_PATH ?= $(SHARED_DATA)/pen_chars_dev.jsonl.gz
endif
# Serving installs only what serving needs.
SERVE_REQUIREMENTS := $(firstword $(wildcard requirements-serve.txt) requirements.txt)

.PHONY: install install-serve run test lint notebook

$(PYTHON):
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --upgrade pip

$(VENV)/.serve-installed: $(SERVE_REQUIREMENTS) | $(PYTHON)
	$(PYTHON) -m pip install -r $(SERVE_REQUIREMENTS)
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(PYTHON)
	$(PYTHON) -m pip install -r requirements-dev.txt
	touch $@

install-serve: $(VENV)/.serve-installed
install: $(VENV)/.dev-installed

# The Dockerfile's CMD with `--bind :$PORT` (all interfaces, as Cloud Run needs)
# bound to $(HOST) instead: this machine only, unless HOST=0.0.0.0.
run: install-serve
	cmd="$$(sed -n 's/^CMD //p' Dockerfile | sed 's/--bind :/--bind $$HOST:/')"; \
	case "$$cmd" in *'--bind $$HOST:'*) ;; *) echo "make run: no --bind :PORT in the Dockerfile's CMD" >&2; exit 1;; esac; \
	HOST=$(HOST) PORT=$${PORT:-8080} PATH="$(abspath $(VENV))/bin:$$PATH" exec sh -c "$$cmd"

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(PYTHON) -m pytest

# JUPYTER_ARGS passes options through, e.g. "--no-browser --port 8889".
notebook: install
	$(VENV)/bin/jupyter lab $(JUPYTER_ARGS)

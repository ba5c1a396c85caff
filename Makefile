# Two entry points (see README): `make run` serves the app, `make test` runs the tests.
# Both create .venv and install the pinned requirements on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SHARED_DATA ?= $(abspath ../shared/data)
export MNIST_PATH ?= $(SHARED_DATA)/mnist.npz
export PEN_DIGITS_PATH ?= $(SHARED_DATA)/pen_digits_dev.jsonl.gz
export PEN_CHARS_PATH ?= $(SHARED_DATA)/pen_chars_dev.jsonl.gz

.PHONY: install run test lint

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	PORT=$${PORT:-8080} PATH="$(abspath $(VENV))/bin:$$PATH" sh -c "$$(sed -n 's/^CMD //p' Dockerfile)"

test: install
	$(PYTHON) -m pytest

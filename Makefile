# tasker-gtk developer entry points.  `make help` lists them.
#
# Everything runs from the project virtualenv in $(VENV) through explicit
# .venv/bin paths; nothing needs an activated venv.  `make setup` installs
# missing Debian packages (as root), rebuilds a broken venv (scripts/setup-venv.sh
# says why in one line) and (re)installs the project into it only when
# pyproject.toml is newer than the install stamp, so repeated runs are fast
# no-ops.  Without PYTHON=..., scripts/find-python.sh picks the interpreter:
# python3 when it is >= 3.11, else the newest python3.1x on PATH.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= $(shell scripts/find-python.sh)
VENV        ?= .venv
EXTRAS      ?= gtk,qt,dev,bench,dask
PYTEST_ARGS ?=
SOAK_TIMEOUT ?= 3600

PY         := $(VENV)/bin/python
# benchmarks/ may not exist yet; lint only the directories that do.
CODE_DIRS  := $(wildcard src tests benchmarks)
# xvfb-run's default screen is 8 bit deep, too poor for GTK 4 screenshots.
XVFB_RUN   := xvfb-run -a -s '-screen 0 1280x1024x24'

export PYTHON

.PHONY: help setup system-deps repo-check fresh-check lint format typecheck pytest test demo bench soak clean

help:
	@echo "make test       set up, then lint, typecheck and run the test suite (what CI runs)"
	@echo "make demo       set up, then run the demo (under Xvfb when there is no display)"
	@echo "make bench      set up, then run the benchmarks (python -m benchmarks)"
	@echo "make soak       set up, then run the long soak tests (TASKER_SOAK=1)"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make format     ruff format + ruff check --fix (rewrites files)"
	@echo "make typecheck  mypy --strict src"
	@echo "make pytest     only the test suite (no lint/typecheck)"
	@echo "make setup      system packages + $(VENV) with the project installed editable"
	@echo "make fresh-check  clone HEAD to a temporary folder and run make test + make demo there"
	@echo "make clean      remove $(VENV), caches and build artefacts"
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) PYTEST_ARGS='...' SKIP_SYSTEM_DEPS=1"

# --- set-up -----------------------------------------------------------------

setup: system-deps
	@echo "make: using $(PYTHON) ($$($(PYTHON) -V 2>&1))"
	@PYTHON='$(PYTHON)' VENV='$(VENV)' EXTRAS='$(EXTRAS)' scripts/setup-venv.sh

system-deps:
	@scripts/system-deps.sh

# Fails when git tracks a path that .gitignore ignores (0.1 shipped a .venv).
repo-check:
	@git rev-parse --git-dir >/dev/null 2>&1 || exit 0; \
	tracked=$$(git ls-files -ci --exclude-standard); \
	if [ -n "$$tracked" ]; then \
	    echo "error: git tracks ignored paths (build or run output):" >&2; \
	    echo "$$tracked" | head -20 >&2; exit 1; fi

# --- checks -----------------------------------------------------------------

lint: setup
	$(VENV)/bin/ruff check $(CODE_DIRS)
	$(VENV)/bin/ruff format --check $(CODE_DIRS)

format: setup
	$(VENV)/bin/ruff format $(CODE_DIRS)
	$(VENV)/bin/ruff check --fix $(CODE_DIRS)

typecheck: setup
	$(VENV)/bin/mypy --strict src

# Tests start their own Xvfb where they need a display.  Soak tests only run
# under `make soak`.
pytest: setup
	$(PY) -m pytest -m "not soak" $(PYTEST_ARGS)

test: repo-check lint typecheck pytest

# --- running ----------------------------------------------------------------

demo: setup
	@if [ -z "$${DISPLAY:-}" ] && [ -z "$${WAYLAND_DISPLAY:-}" ]; then \
	    echo "No display: running the demo's scripted tour under Xvfb"; \
	    echo "$(XVFB_RUN) $(PY) -m tasker.demo --tour"; \
	    GTK_A11Y=none $(XVFB_RUN) $(PY) -m tasker.demo --tour; \
	else \
	    echo "$(PY) -m tasker.demo"; \
	    $(PY) -m tasker.demo; \
	fi

# Benchmarks use the GLib main loop only, no display.
bench: setup
	$(PY) -m benchmarks

soak: setup
	TASKER_SOAK=1 $(PY) -m pytest -m soak --timeout=$(SOAK_TIMEOUT) tests/ $(PYTEST_ARGS)

# What CI does, on a clean clone of HEAD with the distribution's python3.
fresh-check:
	scripts/fresh-clone-check.sh

# --- cleaning ---------------------------------------------------------------

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	rm -rf *.egg-info src/*.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# Self-attention, step by step. Two commands on a fresh machine:
#   make lab    set up .venv and open the course in JupyterLab
#   make test   set up .venv and run the whole suite (unit tests, strict nbval over every notebook)
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := self-attention-course
PORT ?= 8888
NB ?=
# Pins the CPU build of torch here and Triton's interpreter; on a CUDA machine pip takes torch's CUDA build.
CONSTRAINTS := .ci/constraints.txt

# What keeps stored notebook outputs identical from run to run (tools/nb.py checks the same values).
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 300

.PHONY: help setup lab test test-slow test-compat execute sync lint clean images chromium

help:
	@echo "make lab        set up .venv and open the course in JupyterLab"
	@echo "make test       set up .venv and run every test and every notebook (strict nbval)"
	@echo "make test-slow  multi-seed checks of the lessons' trained claims (not in CI)"
	@echo "make test-compat  the oldest and newest supported environments, every notebook and unit test (not in CI)"
	@echo "make execute    re-run lessons and store their outputs (NB=path for one)"
	@echo "make sync       regenerate Colab badges and bootstrap cells from pyproject.toml"
	@echo "make images     redraw the diagrams in images/ (course_utils.diagrams)"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[test,gpu,lab]'
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Self-attention course (.venv)" >/dev/null
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp tools/jupyterlab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	MPLBACKEND=Agg $(PY) -c "import matplotlib.pyplot"  # builds matplotlib's font cache once, before any lesson
	touch $(STAMP)

setup: $(STAMP)

# As root (a container, a cloud VM) JupyterLab needs --allow-root.
lab: setup
	$(VENV)/bin/jupyter lab --port $(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

test: setup chromium
	$(PY) -m ruff check course_utils tests tools notebooks
	$(PY) -m mypy course_utils
	$(PY) tools/nb.py check
	$(PY) -m pytest -n 2 --dist loadfile --durations 30 tests notebooks $(NBVAL)
	$(PY) -m pytest -m browser --durations 5 tests/test_browser.py

# Debian's Chromium for the browser test (tests/test_browser.py), installed once, as root. Without it the
# browser test skips with the reason (and fails under CI=true).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get)"; fi; \
	fi

test-slow: setup
	$(PY) -m pytest -m slow tests

# The oldest and the newest environments pyproject.toml allows, in .compat/ (about 12 GB, 1 hour; README).
test-compat:
	tools/test_compat.sh $(ENVS)

execute: setup
	$(PY) tools/nb.py execute $(NB)

sync: setup
	$(PY) tools/nb.py sync

images: setup
	MPLBACKEND=Agg $(PY) -m course_utils.diagrams images

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis  # .compat/ (make test-compat) stays: rm -rf .compat

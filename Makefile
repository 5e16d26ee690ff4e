# Set-up and everyday commands. `make demo` and `make test` do all the set-up on a fresh
# Debian/Ubuntu machine: system packages (via apt-get), a .venv, the package and its extras.

VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python

.PHONY: demo test bench lint screenshots sysdeps clean

demo: sysdeps $(VENV)/.installed
	$(VENV)/bin/chairside demo

test: sysdeps $(VENV)/.installed
	$(PY) -m pytest

bench: sysdeps $(VENV)/.installed
	$(PY) -m bench.ingest
	$(PY) -m bench.dashboard
	$(PY) -m bench.export
	$(PY) -m bench.hl7
	$(PY) -m bench.mqtt

# The pictures in docs/screenshots, taken in headless Chromium by the tests marked
# `screenshots` (a plain test run takes them too, into a temporary folder).
screenshots: sysdeps $(VENV)/.installed
	CHAIRSIDE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -m pytest -q -m screenshots

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

sysdeps:
	@bash deploy/system-deps.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis

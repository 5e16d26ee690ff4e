# Set-up and everyday commands. `make demo` and `make test` do all the set-up on a fresh
# Debian/Ubuntu machine: system packages (via apt-get), a .venv, the package and its extras.
# Python packages come only from the lock files, each file checked against its sha256 there
# (docs/security.md, "Supply chain"), the installer uv included (requirements-uv.lock);
# `make lock` and `make lock-uv` write them, `make audit-deps` checks them.

VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

# runtime + test extras, hashed: what `make demo` and `make test` install and the tests prove
LOCK         := requirements.lock
# runtime only, the same versions: what a site installs (pip install --require-hashes -r ...)
RUNTIME_LOCK := requirements-runtime.lock
# pip-tools and pip-audit, in a venv of their own, from their own hashed lock
TOOLS        ?= .venv-tools
TOOLS_LOCK   := requirements-tools.lock
# uv alone, in a folder of its own, from its own hashed lock: the installer when none is on PATH
UV_TOOL      ?= .uv-tool
UV_LOCK      := requirements-uv.lock
# extra pip-compile options: `make lock LOCK_ARGS="--upgrade-package dash"`
LOCK_ARGS    ?=
# where pip-audit reads advisories: pypi (default) or osv; AUDIT_ARGS="--osv-url URL" for a mirror
AUDIT_SERVICE ?= pypi
AUDIT_ARGS    ?=
COMPILE = $(TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

.PHONY: demo test test-fast bench lint screenshots sysdeps clean lock lock-upgrade lock-tools lock-uv \
	audit-deps install-locked

# The demo runs as the terminal's foreground job (deploy/foreground.py): Ctrl-C reaches the
# demo alone, which stops in order and exits 0, and make with it (not "Interrupt", 130).
# DEMO_ARGS: chairside demo's options, e.g. `make demo DEMO_ARGS="--chairs 24 --port 8060"`.
DEMO_ARGS ?=
demo: sysdeps $(VENV)/.installed
	@$(PY) deploy/foreground.py $(VENV)/bin/chairside demo $(DEMO_ARGS)

test: sysdeps $(VENV)/.installed
	$(PY) -m pytest

# The fast tier: unit and component tests, no browser, broker or subprocess (about a minute)
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"

bench: sysdeps $(VENV)/.installed
	$(PY) -m bench.ingest
	$(PY) -m bench.dashboard
	$(PY) -m bench.export
	$(PY) -m bench.hl7
	$(PY) -m bench.mqtt
	$(PY) -m bench.retention
	$(PY) -m bench.takeover
	$(PY) -m bench.chaos

# The pictures in docs/screenshots, taken in headless Chromium by the tests marked
# `screenshots` (a plain test run takes them too, into a temporary folder).
screenshots: sysdeps $(VENV)/.installed
	CHAIRSIDE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -m pytest -q -m screenshots

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

sysdeps:
	@bash deploy/system-deps.sh

# Every dependency (and setuptools, the build backend) from the lock with its hashes; then
# Chairside itself, with nothing fetched for it (no deps, no isolated build environment).
# `pip check` fails when pyproject.toml asks for something the lock lacks: run `make lock`.
# The installer is uv (the same lock, its hashes checked the same way, in seconds): the one on
# PATH, or else one bootstrapped into $(UV_TOOL) from $(UV_LOCK). When that bootstrap fails
# (PyPI out of reach, no uv wheel for this platform) it goes on with pip, a minute or so.
# UV=/path/to/uv picks one, UV= forces pip (and no bootstrap). Neither compiles the
# packages' .pyc files up front (pip took as long for that as for the install): Python
# compiles what it imports, once, on first use (PIP_ARGS= puts pip's up-front compile back).
PIP_ARGS ?= --no-compile
ifeq ($(origin UV),undefined)
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV_BOOTSTRAP := yes
endif
endif
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
ifdef UV_BOOTSTRAP
	-@$(MAKE) --no-print-directory $(UV_TOOL)/.installed
	@[ -f $(UV_TOOL)/.installed ] || echo "No uv from $(UV_LOCK) (above): installing with pip instead"
	@$(MAKE) --no-print-directory install-locked UV="$$([ -f $(UV_TOOL)/.installed ] && echo $(UV_TOOL)/bin/uv)"
else
	@$(MAKE) --no-print-directory install-locked UV="$(UV)"
endif
	touch $@

# The installs themselves, into an existing $(VENV) (run by the rule above, UV given).
install-locked:
ifneq ($(UV),)
	@echo "Installing the locked dependencies into $(VENV) with uv ($(UV))"
	$(UV) pip install --python $(PY) --require-hashes -r $(LOCK)
	$(UV) pip install --python $(PY) --quiet --no-deps --no-build-isolation -e .
	$(UV) pip check --python $(PY) || { echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'" >&2; exit 1; }
else
	@echo "Installing the locked dependencies into $(VENV) with pip (a minute or so; with uv, about a third of that)"
	$(PIP) install $(PIP_ARGS) --require-hashes -r $(LOCK)
	$(PIP) install --quiet $(PIP_ARGS) --no-deps --no-build-isolation -e .
	$(PIP) check || { echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'" >&2; exit 1; }
endif

# uv from its hashed lock (every file of the pinned release on PyPI, by sha256), by the venv's
# own pip, wheels only: a platform without a wheel fails here rather than building uv from
# source. The folder is emptied first, so a failed or outdated bootstrap leaves no uv behind;
# `uv --version`: the binary runs on this machine.
$(UV_TOOL)/.installed: $(UV_LOCK) | $(PY)
	@echo "No uv on PATH: installing uv from $(UV_LOCK) (hashes checked) into $(UV_TOOL)"
	rm -rf $(UV_TOOL)
	$(PIP) install --no-compile --require-hashes --only-binary :all: --target $(UV_TOOL) \
		-r $(UV_LOCK)
	$(UV_TOOL)/bin/uv --version
	touch $@

$(PY):
	$(PYTHON) -m venv $(VENV)

$(TOOLS)/.installed: $(TOOLS_LOCK)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --disable-pip-version-check --require-hashes -r $(TOOLS_LOCK)
	touch $@

# Re-resolve the locks after a change to pyproject.toml, keeping every pin that still fits.
# The runtime lock starts from the full one, so that both name the same versions.
lock: $(TOOLS)/.installed
	CUSTOM_COMPILE_COMMAND="make lock" $(COMPILE) --build-deps-for editable --extra test \
		$(LOCK_ARGS) --output-file $(LOCK) pyproject.toml
	cp $(LOCK) $(RUNTIME_LOCK)
	CUSTOM_COMPILE_COMMAND="make lock" $(COMPILE) --build-deps-for editable \
		--output-file $(RUNTIME_LOCK) pyproject.toml

# Every dependency to its newest release within pyproject.toml's bounds (the update routine
# in docs/security.md: then `make audit-deps`, `make test`, read the diff, commit).
lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade
	$(MAKE) lock-uv LOCK_ARGS=--upgrade

lock-tools: $(TOOLS)/.installed
	CUSTOM_COMPILE_COMMAND="make lock-tools" $(COMPILE) $(LOCK_ARGS) \
		--output-file $(TOOLS_LOCK) requirements-tools.in

# The uv that `make demo` and `make test` bootstrap when none is on PATH (all the files of
# the pinned release, so every platform's wheel is checked against its own hash).
lock-uv: $(TOOLS)/.installed
	CUSTOM_COMPILE_COMMAND="make lock-uv" $(COMPILE) $(LOCK_ARGS) \
		--output-file $(UV_LOCK) requirements-uv.in

# Known vulnerabilities in the locked versions (the runtime lock is a subset of $(LOCK)), and
# in the uv that installs them.
# Needs the advisory service: PyPI's JSON API per release (default) or OSV. --strict: a
# package that could not be looked up fails the target instead of passing unaudited.
audit-deps: $(TOOLS)/.installed
	@echo "pip-audit of $(LOCK) and $(UV_LOCK) against $(AUDIT_SERVICE) $(AUDIT_ARGS)"
	@$(TOOLS)/bin/pip-audit --strict --require-hashes --disable-pip --progress-spinner off \
		--vulnerability-service $(AUDIT_SERVICE) $(AUDIT_ARGS) --requirement $(LOCK) \
		--requirement $(UV_LOCK) || { \
	echo "audit-deps failed. 'Dependency not found on PyPI' or a connection error: the advisory" >&2; \
	echo "data is out of reach from here; run it where it is (AUDIT_SERVICE=osv, or" >&2; \
	echo "AUDIT_ARGS='--osv-url URL' for a mirror). A vulnerability listed: raise that pin with" >&2; \
	echo "make lock LOCK_ARGS='--upgrade-package NAME', then make test and commit." >&2; exit 1; }

clean:
	rm -rf $(VENV) $(TOOLS) $(UV_TOOL) build *.egg-info .pytest_cache .ruff_cache .hypothesis

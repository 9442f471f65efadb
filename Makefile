# The two commands of the README: `make run` and `make test`. Everything they need is installed
# here, Debian packages included (run as root, or with sudo available).

VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
# Debian packages: the venv module, SIPp (phone lab and SIP tests), curl (the lab's printed
# commands), Kamailio (proxy tests), baresip (a real softphone as a SIP leg), PostgreSQL (store
# tests start their own server).
RUN_DEBS  := python3-venv sip-tester curl
TEST_DEBS := $(RUN_DEBS) kamailio baresip postgresql

.PHONY: install install-prod run test test-quick lint typecheck bench docs clean distclean system-run system-test

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
		|| $(MAKE) --no-print-directory system-run
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# A production install: the package and its runtime dependencies only (no pytest, mypy, ...) in a
# venv of its own, by default /opt/webcallback; docs/deployment.md goes on from here.
PREFIX ?= /opt/webcallback
install-prod:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
		|| $(MAKE) --no-print-directory system-run
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/python -m pip install --quiet --no-cache-dir .
	@echo "installed $(PREFIX)/bin/webcallback"

# Installs Debian packages only when one is missing, so repeated runs stay fast and offline.
system-run:
	@missing=$$(for p in $(RUN_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; fi

system-test:
	@missing=$$(for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; fi

# `db upgrade` first: `webcallback run` refuses a database whose schema is behind (docs/deployment.md).
run: system-run install
	$(VENV)/bin/webcallback db upgrade
	$(VENV)/bin/webcallback run

test: system-test install
	$(PY) -m pytest -q -n 2 --dist loadgroup
	$(VENV)/bin/ruff check src tests $(wildcard bench)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# The edit loop: no SIP, no PostgreSQL, no child processes, no long fuzzing runs (the `slow` marker,
# set in tests/conftest.py). `make test` stays the whole suite.
test-quick: install
	$(PY) -m pytest -q -n 2 -m "not slow"

lint:
	$(VENV)/bin/ruff check src tests $(wildcard bench)
	$(VENV)/bin/lint-imports

typecheck:
	$(VENV)/bin/mypy

# The load generator (wrk) and the packet capture the SIP benchmark uses (tcpdump); see BENCHMARKS.md.
bench: system-test install
	@missing=$$(for p in wrk tcpdump; do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; fi
	PYTHONPATH=src $(PY) bench/api_throughput.py

# The venv and build output only: `var/` holds the database and the password key.
clean:
	rm -rf $(VENV) build dist *.egg-info

# Also the state of `make run`: the SQLite database, the password key, the node id, lab logs.
# Nothing else can read the passwords without that key, so this asks first.
distclean: clean
	@if [ -d var ]; then \
		printf 'delete var/ (database and password key)? [y/N] '; read answer; \
		[ "$$answer" = y ] && rm -rf var || echo 'kept var/'; \
	fi

# The two commands: `make run` serves the API, `make test` runs the checks. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format nginx bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m taskapi.serve

test: $(VENV)/.installed lint nginx
	$(PY) -m pytest

# The nginx tests run Debian's nginx in front of gunicorn: install it when missing and we are root (as in CI).
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
	  { test "$$(id -u)" = 0 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; } || \
	  echo "nginx is not installed and cannot be here: its tests will be skipped (in CI they fail)"

# Load on taskapi alone (gunicorn, embedded PostgreSQL), with wrk from Debian: installed when missing, as root.
bench: $(VENV)/.installed
	@command -v wrk >/dev/null 2>&1 || { test "$$(id -u)" = 0 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	$(PY) bench/run.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

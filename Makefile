# The two commands: `make run` serves the API, `make test` runs the checks. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format nginx pgbouncer chromium prometheus bench psql

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m taskapi.serve

# psql on the development database (the embedded one of `make run`; with DATABASE_URL set, use psql "$$DATABASE_URL").
psql: $(VENV)/.installed
	$(PY) -m taskapi.embedded

# The tests that reach the database through PgBouncer (transaction pooling) on the second pass: every endpoint.
PGBOUNCER_TESTS := tests/test_users.py tests/test_tasks.py tests/test_pagination.py tests/test_isolation.py \
	tests/test_versions.py tests/test_idempotency.py tests/test_cursors.py tests/test_changes.py tests/test_quota.py \
	tests/test_health.py tests/test_gunicorn.py tests/test_task_fields.py tests/test_filters.py tests/test_bounds.py \
	tests/test_lists.py tests/test_tree.py tests/test_batch.py

test: $(VENV)/.installed lint nginx pgbouncer chromium prometheus
	$(PY) -m pytest
	TASKAPI_TEST_PGBOUNCER=1 $(PY) -m pytest -q $(PGBOUNCER_TESTS)

# The nginx tests run Debian's nginx in front of gunicorn: install it when missing and we are root (as in CI).
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
	  { test "$$(id -u)" = 0 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; } || \
	  echo "nginx is not installed and cannot be here: its tests will be skipped (in CI they fail)"

# The second test pass runs through Debian's PgBouncer: install it when missing and we are root (as in CI).
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || \
	  { test "$$(id -u)" = 0 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; } || \
	  echo "pgbouncer is not installed and cannot be here: the PgBouncer pass will fail"

# The /docs browser test drives Debian's chromium through Playwright (Playwright's own browser download is not
# reachable from every machine): install it when missing and we are root (as in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  { test "$$(id -u)" = 0 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "chromium is not installed and cannot be here: the browser test will be skipped (in CI it fails)"

# The metrics test has Debian's Prometheus scrape the service: install it when missing and we are root (as in CI).
prometheus:
	@command -v prometheus >/dev/null 2>&1 || test -x /usr/bin/prometheus || \
	  { test "$$(id -u)" = 0 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || \
	  echo "prometheus is not installed and cannot be here: its test will be skipped (in CI it fails)"

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

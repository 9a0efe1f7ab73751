"""Start-up: production without DATABASE_URL refuses with one clear line; bad settings fail at start."""

import os
import socket
import subprocess
import sys

import pytest
from helpers import ROOT

from taskapi import config
from taskapi.serve import GUNICORN

REFUSAL = "DATABASE_URL is not set"


def start(*args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    return subprocess.run(args, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command",
    [
        tuple(GUNICORN),
        (sys.executable, "-m", "taskapi.serve"),
    ],
)
def test_production_without_database_url_refuses_to_start(command, tmp_path):
    result = start(*command, TASKAPI_ENV="production")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and REFUSAL in lines[0] and "production" in lines[0], lines


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_POOL_MAX_SIZE", "many"),
        ("DB_POOL_TIMEOUT", "-1"),
        ("TRUSTED_PROXY_COUNT", "-2"),
        ("DB_POOL_MAX_SIZE", "0"),
        ("TASKAPI_METRICS", "maybe"),
    ],
)
def test_bad_settings_are_named(name, value):
    with pytest.raises(config.ConfigError, match=name):
        config.from_env({"DATABASE_URL": "postgresql://x/y", name: value})


def test_prepare_threshold_none_disables_prepared_statements():
    assert (
        config.from_env({"DATABASE_URL": "postgresql://x/y", "DB_PREPARE_THRESHOLD": "none"})["DB_PREPARE_THRESHOLD"]
        is None
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:secret@db1:5432,db2:5432/taskapi?target_session_attrs=read-write&connect_timeout=3",
        "host=db1,db2 port=5432,5433 dbname=taskapi user=app target_session_attrs=read-write connect_timeout=3",
        "postgresql://app@%2Fvar%2Frun%2Fpostgresql/taskapi",
    ],
)
def test_multi_host_urls_are_accepted_in_both_forms(url):
    assert config.from_env({"DATABASE_URL": url})["DATABASE_URL"] == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://app:secret@db1:5432,db2:5432/taskapi", "names 2 hosts but not target_session_attrs=read-write"),
        ("host=db1,db2 dbname=taskapi target_session_attrs=any", "names 2 hosts but not target_session_attrs"),
        ("postgresql://app:secret@db1/taskapi?nonsense=secret", "not a PostgreSQL URL"),
    ],
)
def test_database_urls_that_cannot_work_are_refused_without_repeating_them(url, message):
    with pytest.raises(config.ConfigError, match=message) as refused:
        config.from_env({"DATABASE_URL": url})
    assert "secret" not in str(refused.value)


def test_make_run_says_clearly_when_its_port_is_taken(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = start(
            sys.executable, "-m", "taskapi.serve", DATABASE_URL=database_url, TASKAPI_BIND=f"127.0.0.1:{port}"
        )
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "already in use" in lines[0] and "serving" not in result.stdout, lines

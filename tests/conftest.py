"""Fixtures: a real PostgreSQL (embedded, or the server TEST_DATABASE_URL / DATABASE_URL names), a database of the
tests' own on it, the app and its client, and a real gunicorn serving that database."""

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import ROOT, SECRET, free_port, http

from taskapi import create_app, embedded, migrate
from taskapi.db import close_pool
from taskapi.serve import GUNICORN

TEST_DATABASE = "taskapi_test"


@pytest.fixture(scope="session")
def server_url():
    """A URL on the PostgreSQL server the tests use; they never touch the database it names."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    # The embedded server of `make run`, shared; the tests keep to databases of their own on it.
    return embedded.start(ROOT / "instance" / "pgdata").get_uri("postgres")


@pytest.fixture(scope="session")
def new_database(server_url):
    """Make a fresh, empty database on the test server: new_database("name") -> its URL."""
    return lambda name: embedded.ensure_database(server_url, name, fresh=True)


@pytest.fixture(scope="session")
def database_url(new_database):
    url = new_database(TEST_DATABASE)
    migrate.apply(url)
    return url


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app({"DATABASE_URL": database_url, "TASKAPI_ENV": "testing"})
    yield app
    close_pool(app)


@pytest.fixture(scope="session")
def jwt_app(database_url):
    """The same database served under AUTH_MODE=jwt with an HMAC secret (tokens from helpers.token)."""
    app = create_app({"DATABASE_URL": database_url, "TASKAPI_ENV": "testing", "AUTH_MODE": "jwt", "JWT_SECRET": SECRET})
    yield app
    close_pool(app)


@pytest.fixture
def jwt_client(jwt_app):
    return jwt_app.test_client()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def user_id(client):
    """A fresh user of this test alone, so tests never see each other's rows."""
    return client.post("/users", json={}).get_json()["id"]


@pytest.fixture
def make_task(client, user_id):
    def make(title="A task", owner=None, **fields):
        response = client.post(f"/users/{owner or user_id}/tasks", json={"title": title, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def wait_until_up(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if http("GET", url + "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not up after {timeout}s")


@contextmanager
def running_gunicorn(database_url, log, **env):
    """The real gunicorn (gunicorn.conf.py, 2 workers) on a free loopback port, its output in `log`."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "2",
        "TASKAPI_BIND": f"127.0.0.1:{port}",
        "TASKAPI_ENV": "production",
        # Round 1's tests talk to an unauthenticated service; those of authentication pass AUTH_MODE=jwt.
        "AUTH_MODE": "none",
        **env,
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            GUNICORN,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc)
        yield {"url": base, "port": port, "log": Path(log), "proc": proc}
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def gunicorn_server(database_url, tmp_path_factory):
    with running_gunicorn(database_url, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as server:
        yield server

"""Fixtures: a real PostgreSQL (embedded, or the server TEST_DATABASE_URL / DATABASE_URL names), a database of the
tests' own on it, the app and its client, and a real gunicorn serving that database."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import ROOT, SECRET, free_port, http
from hypothesis import settings
from psycopg.conninfo import conninfo_to_dict

from taskapi import create_app, embedded, migrate
from taskapi.db import close_pool
from taskapi.serve import GUNICORN

TEST_DATABASE = "taskapi_test"

# No per-example deadline: the property tests check results, and a stall of a busy machine is not a failure.
settings.register_profile("taskapi", deadline=None)
settings.load_profile("taskapi")


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
    """Make a fresh, empty database on the test server: new_database("name") -> its URL. TASKAPI_TEST_DB_SUFFIX
    (appended to every name) lets several runs share one server without dropping each other's databases."""
    suffix = os.environ.get("TASKAPI_TEST_DB_SUFFIX", "")
    return lambda name: embedded.ensure_database(server_url, name + suffix, fresh=True)


@pytest.fixture(scope="session")
def database_url(new_database):
    """The tests' database, migrated. With TASKAPI_TEST_PGBOUNCER=1 (the second pass of `make test`), the URL leads
    through a real PgBouncer in transaction mode, and the service runs with DB_PREPARE_THRESHOLD=none."""
    url = new_database(TEST_DATABASE)
    migrate.apply(url)
    if not os.environ.get("TASKAPI_TEST_PGBOUNCER"):
        yield url
        return
    os.environ["DB_PREPARE_THRESHOLD"] = "none"  # read by create_app and by every gunicorn the tests start
    # pytest's own temporary folders are private to root; pgbouncer runs as another user and must read its files.
    tmp = Path(tempfile.mkdtemp(prefix="taskapi-pgbouncer-"))
    try:
        with pgbouncer_in_front(url, tmp) as bounced:
            yield bounced
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def pgbouncer_in_front(url, tmp):
    """Debian's pgbouncer, transaction pooling, on a free loopback port in front of the database `url` names."""
    pgbouncer = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    target = conninfo_to_dict(url)
    port = free_port()
    socket_dir = target.get("host", "")
    (tmp / "users.txt").write_text(f'"{target.get("user", "postgres")}" ""\n')
    (tmp / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{target['dbname']} = host={socket_dir or '127.0.0.1'} port={target.get('port', 5432)}"
        f" user={target.get('user', 'postgres')}"
        + (f" password={target['password']}" if target.get("password") else "")
        + "\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {tmp}/users.txt\npool_mode = transaction\n"
        f"max_client_conn = 500\ndefault_pool_size = 20\nlogfile = {tmp}/pgbouncer.log\npidfile = {tmp}/pgbouncer.pid\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    command = [pgbouncer, str(tmp / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses root: run as the owner of PostgreSQL's socket directory
        owner = pwd.getpwuid(os.stat(socket_dir).st_uid).pw_name if socket_dir.startswith("/") else "nobody"
        command[1:1] = ["-u", owner]
        tmp.chmod(0o777)
    with open(tmp / "pgbouncer.out", "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    bounced = f"postgresql://{target.get('user', 'postgres')}@127.0.0.1:{port}/{target['dbname']}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(bounced, prepare_threshold=None) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("pgbouncer did not start: " + (tmp / "pgbouncer.out").read_text()) from None
                time.sleep(0.1)
        yield bounced
    finally:
        proc.terminate()
        proc.wait(10)


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
    port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "2",
        "TASKAPI_BIND": f"127.0.0.1:{port}",
        "TASKAPI_HEALTH_BIND": f"127.0.0.1:{health_port}",
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
        yield {"url": base, "port": port, "health_port": health_port, "log": Path(log), "proc": proc}
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def gunicorn_server(database_url, tmp_path_factory):
    with running_gunicorn(database_url, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as server:
        yield server

"""PostgreSQL goes away under the running gunicorn and comes back: 503 quickly while down, recovery by itself,
and every write acknowledged before the outage still there."""

import json
import os
import signal
import subprocess
import threading
import time

import psycopg
import pytest
from conftest import running_gunicorn
from helpers import http, wait_for_lock_waiters

from taskapi import embedded, migrate

POOL_TIMEOUT = 1.0  # seconds a request waits for a connection before its 503


@pytest.fixture
def own_postgres(tmp_path):
    """A PostgreSQL of this test alone, since the test stops it."""
    server = embedded.start(tmp_path / "pgdata")
    url = embedded.ensure_database(server.get_uri("postgres"), "outage")
    migrate.apply(url)
    yield server, url
    server.ensure_postgres_running()  # leave it running, so its owner's exit hook stops it cleanly


def timed(method, url, body=None):
    started = time.monotonic()
    status, headers, payload = http(method, url, body, timeout=30)
    return status, headers, payload, time.monotonic() - started


def test_outage_gives_fast_503s_then_recovers_without_losing_writes(own_postgres, tmp_path):
    server, url = own_postgres
    env = {"DB_POOL_TIMEOUT": str(POOL_TIMEOUT), "DB_CONNECT_TIMEOUT": "1"}
    with running_gunicorn(url, tmp_path / "gunicorn.log", **env) as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        acknowledged = []
        for n in range(20):
            status, _, task = http("POST", f"{base}/users/{user}/tasks", {"title": f"before outage {n}"})
            assert status == 201
            acknowledged.append(task["id"])

        down_at = time.monotonic()
        server.stop()
        first_503 = None
        during = []
        while time.monotonic() - down_at < 5:
            status, headers, body, took = timed("GET", f"{base}/users/{user}/tasks")
            during.append((status, took))
            if status == 503:
                first_503 = first_503 or time.monotonic() - down_at
                assert body["error"]["code"] == "SERVICE_UNAVAILABLE" and headers["Retry-After"]
                assert headers["Content-Type"] == "application/json"
        assert first_503 is not None, during
        assert {status for status, _ in during} <= {200, 503}
        # Quickly: no request waits much longer than the pool timeout (a hanging worker would).
        assert max(took for _, took in during) < POOL_TIMEOUT + 2, during
        assert http("GET", base + "/healthz")[0] == 200  # the process itself is fine
        assert http("GET", base + "/readyz")[0] == 503

        up_at = time.monotonic()
        server.ensure_postgres_running()
        first_success = full_recovery = None
        while time.monotonic() - up_at < 60 and full_recovery is None:
            if timed("POST", f"{base}/users/{user}/tasks", {"title": "after"})[0] == 201:
                first_success = first_success or time.monotonic() - up_at
                # Every worker is back when a whole burst (spread over both by the kernel) succeeds.
                if {http("GET", f"{base}/users/{user}/tasks?limit=100")[0] for _ in range(20)} == {200}:
                    full_recovery = time.monotonic() - up_at
            time.sleep(0.2)
        assert full_recovery is not None, "the service did not recover within 60 s of PostgreSQL's restart"
        page = http("GET", f"{base}/users/{user}/tasks?limit=100")[2]
        assert set(acknowledged) <= {task["id"] for task in page["items"]}
        assert http("GET", base + "/readyz")[0] == 200

    print(
        json.dumps(
            {
                "first_503_s": round(first_503, 2),
                "first_2xx_s": round(first_success, 2),
                "all_workers_2xx_s": round(full_recovery, 2),
            }
        )
    )


def hammer(base, user, stop, log, clients=8):
    """`clients` threads sending reads and writes until `stop`; each answer logged as (sent_at, status, took, body)."""

    def client(n):
        while not stop.is_set():
            sent = time.monotonic()
            method, path, body = (
                ("POST", f"/users/{user}/tasks", {"title": f"c{n}"})
                if n % 4 == 0
                else ("GET", f"/users/{user}/tasks", None)
            )
            try:
                status, headers, payload = http(method, base + path, body, timeout=30)
            except OSError as exc:
                status, headers, payload = repr(exc), {}, None
            log.append((sent, status, time.monotonic() - sent, headers, payload))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    return threads


def test_under_concurrency_an_outage_is_fast_503s_and_recovery_is_prompt(own_postgres, tmp_path):
    """8 clients, 2 workers, PostgreSQL stopped for 4 s: the breaker answers 503 in milliseconds once a worker
    knows the database is down, and a background probe brings each worker back within 2 s of PostgreSQL."""
    server, url = own_postgres
    connect_timeout = 1
    env = {"DB_POOL_TIMEOUT": "1", "DB_CONNECT_TIMEOUT": str(connect_timeout)}
    with running_gunicorn(url, tmp_path / "gunicorn.log", **env) as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        acknowledged = [http("POST", f"{base}/users/{user}/tasks", {"title": f"kept {n}"})[2]["id"] for n in range(10)]
        stop, log = threading.Event(), []
        threads = hammer(base, user, stop, log)
        time.sleep(1)
        down_at = time.monotonic()
        server.stop()
        stopped_at = time.monotonic()
        time.sleep(4)
        up_at = time.monotonic()
        server.ensure_postgres_running()
        started_at = time.monotonic()
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join()

    during = [entry for entry in log if stopped_at <= entry[0] and entry[0] + entry[2] <= up_at]
    fast = [
        e for e in during
        if e[1] == 503 and e[2] <= 0.25 and e[3].get("Retry-After") and e[4]["error"]["code"] == "SERVICE_UNAVAILABLE"
    ]  # fmt: skip
    worst = max(e[2] for e in during)
    after = [e for e in log if e[0] >= started_at]
    first_ok = min((e[0] + e[2] for e in after if e[1] in (200, 201)), default=None)
    # From then on, every answer is a success: both workers are back.
    last_error = max((e[0] + e[2] for e in after if e[1] not in (200, 201)), default=started_at)
    timeline = {
        "requests_while_down": len(during),
        "fast_503_share": round(len(fast) / len(during), 3),
        "worst_latency_while_down_s": round(worst, 3),
        "stop_took_s": round(stopped_at - down_at, 2),
        "first_2xx_after_restart_s": round(first_ok - started_at, 3) if first_ok else None,
        "last_error_after_restart_s": round(last_error - started_at, 3),
    }
    print(json.dumps(timeline))
    assert len(during) > 100 and len(fast) / len(during) >= 0.9, timeline
    assert worst <= connect_timeout + 1, timeline
    assert first_ok is not None and last_error - started_at <= 2, timeline
    with running_gunicorn(url, tmp_path / "after.log") as app:
        assert {http("GET", f"{app['url']}/users/{user}/tasks/{task}")[0] for task in acknowledged} == {200}


def postgres_pids(pgdata):
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True).stdout
    return [postmaster, *map(int, children.split())]


def test_a_frozen_postgres_gets_bounded_503s_and_the_service_recovers(own_postgres, tmp_path):
    """SIGSTOP on the postmaster and every backend: nothing answers, and psycopg would wait for ever. The watchdog
    cuts the connection past the statement timeout, the breaker answers 503, and after SIGCONT the service is back."""
    server, url = own_postgres
    env = {"DB_POOL_TIMEOUT": "1", "DB_CONNECT_TIMEOUT": "1", "DB_STATEMENT_TIMEOUT_MS": "1000"}
    with running_gunicorn(url, tmp_path / "gunicorn.log", **env) as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        pids = postgres_pids(tmp_path / "pgdata")
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            answers = [timed("GET", f"{base}/users/{user}/tasks") for _ in range(6)]
            health = timed("GET", base + "/healthz")
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        assert {a[0] for a in answers} == {503}, answers
        assert max(a[3] for a in answers) <= 1.0 + 1.0 + 0.5  # statement timeout + the watchdog's margin
        assert health[0] == 200
        deadline = time.monotonic() + 5
        while timed("GET", f"{base}/users/{user}/tasks")[0] != 200:
            assert time.monotonic() < deadline, "no recovery within 5 s of SIGCONT"
            time.sleep(0.1)


def test_a_lock_held_past_the_statement_timeout_is_503_then_the_service_goes_on(own_postgres, tmp_path):
    server, url = own_postgres
    with running_gunicorn(url, tmp_path / "gunicorn.log", DB_STATEMENT_TIMEOUT_MS="500") as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        with psycopg.connect(url) as locker:
            locker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            status, _, body, took = timed("GET", f"{base}/users/{user}/tasks")
            assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE" and took < 2
        assert timed("GET", f"{base}/users/{user}/tasks")[0] == 200  # not mistaken for an outage


def test_liveness_through_nginx_answers_while_every_worker_is_stuck_on_a_frozen_database(own_postgres, tmp_path):
    """Both sync workers wait on a frozen PostgreSQL; /healthz through nginx (answered by the gunicorn master)
    still answers within a second, while the workers' own answer would have to wait for the watchdog."""
    from test_nginx import NGINX, nginx_in_front

    if NGINX is None:
        pytest.skip("nginx not installed")
    server, url = own_postgres
    env = {"DB_STATEMENT_TIMEOUT_MS": "4000", "DB_POOL_TIMEOUT": "4"}
    with running_gunicorn(url, tmp_path / "gunicorn.log", **env) as app, nginx_in_front(app, tmp_path) as front:
        user = http("POST", front["url"] + "/users", {})[2]["id"]
        pids = postgres_pids(tmp_path / "pgdata")
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            stuck = [
                threading.Thread(target=lambda: timed("GET", f"{app['url']}/users/{user}/tasks")) for _ in range(4)
            ]
            for t in stuck:
                t.start()
            time.sleep(0.5)  # both workers are now inside a query that will not return
            answers = [timed("GET", front["url"] + "/healthz") for _ in range(5)]
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        for t in stuck:
            t.join()
    assert all(a[0] == 200 and a[2] == {"status": "ok"} and a[3] < 1.0 for a in answers), answers


def test_sigterm_under_load_finishes_the_requests_in_flight(own_postgres, tmp_path):
    """Requests held inside PostgreSQL (a table lock) when gunicorn gets SIGTERM still get their 200 once the lock
    goes, and gunicorn exits within its graceful_timeout (20 s)."""
    server, url = own_postgres
    with running_gunicorn(url, tmp_path / "gunicorn.log") as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        results = []
        with psycopg.connect(url) as locker:
            locker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            in_flight = [
                threading.Thread(target=lambda: results.append(timed("GET", f"{base}/users/{user}/tasks")))
                for _ in range(2)
            ]
            for t in in_flight:
                t.start()
            wait_for_lock_waiters(url, 2)
            app["proc"].send_signal(signal.SIGTERM)
            term_at = time.monotonic()
            time.sleep(1)
        for t in in_flight:
            t.join()
        app["proc"].wait(25)
        exited_after = time.monotonic() - term_at
    assert [r[0] for r in results] == [200, 200], results
    assert exited_after < 20


def test_a_connection_the_server_closed_while_idle_is_replaced_not_answered_503(database_url):
    """The pool's checkout check costs a poll() of the socket, not a round trip; a connection the server closed
    (a restart, an idle timeout, pg_terminate_backend) is readable, so it is checked, dropped and replaced."""
    from helpers import connect

    from taskapi import create_app
    from taskapi.db import close_pool

    named = database_url + ("&" if "?" in database_url else "?") + "application_name=stale-test"
    app = create_app({"DATABASE_URL": named})
    client = app.test_client()
    try:
        user = client.post("/users", json={}).get_json()["id"]
        assert client.get(f"/users/{user}").status_code == 200
        with connect(database_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'stale-test'"
            ).fetchone()[0]
        assert ended >= 1
        time.sleep(0.2)
        assert [client.get(f"/users/{user}").status_code for _ in range(5)] == [200] * 5
    finally:
        close_pool(app)

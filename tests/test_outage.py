"""PostgreSQL goes away under the running gunicorn and comes back: 503 quickly while down, recovery by itself,
and every write acknowledged before the outage still there."""

import json
import time

import pytest
from conftest import running_gunicorn
from helpers import http

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

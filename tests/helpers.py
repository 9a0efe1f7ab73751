"""Plain helpers the tests share: the error-envelope assertion and a tiny HTTP client for real servers."""

import json
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jwt
import psycopg

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-of-at-least-32-bytes-long"
# A task's keys, in the documented order (round 3 added due, priority, labels, completed_at, list_id, parent_id,
# position).
TASK_KEYS = [
    "id", "user_id", "title", "description", "is_completed", "due", "priority", "labels", "completed_at", "list_id",
    "parent_id", "position", "version", "created_at", "updated_at",
]  # fmt: skip
LIST_KEYS = ["id", "user_id", "name", "position", "version", "created_at", "updated_at"]


def clear_of_midnight(*zone_names, margin=120):
    """Wait past any of these zones' midnight that is under `margin` seconds away, so the dates a test computes from
    the real clock hold for its whole run (and an instant `margin` seconds before midnight is still to come)."""
    for zone_name in zone_names:
        now = datetime.now(UTC)
        next_midnight = datetime.combine(
            now.astimezone(ZoneInfo(zone_name)).date() + timedelta(days=1), datetime.min.time(), ZoneInfo(zone_name)
        )
        left = (next_midnight.astimezone(UTC) - now).total_seconds()  # in UTC: exact on a day the clocks change
        if left < margin:
            time.sleep(left + 1)


def token(subject=None, secret=SECRET, **claims):
    """A bearer header value for `subject` (a fresh UUID when None), HS256 with the tests' secret."""
    now = int(time.time())
    payload = {"sub": subject or str(uuid.uuid4()), "iat": now, "exp": now + 600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return "Bearer " + jwt.encode(payload, secret, algorithm="HS256")


def bearer(subject=None, **claims):
    return {"Authorization": token(subject, **claims)}


def assert_error(response, status, code):
    """The SPEC's envelope, exactly: status, JSON content type, code, a message and a details object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def connect(url, **kwargs):
    """A direct connection of the tests' own, without server-side prepared statements, which a PgBouncer in
    transaction mode (the second pass of `make test`) cannot keep."""
    return psycopg.connect(url, prepare_threshold=None, **kwargs)


def wait_for_lock_waiters(url, count=1, timeout=15):
    """Until `count` sessions of the database `url` names wait on a lock: the requests a test holds behind a lock of
    its own are then inside their statements (a fixed sleep would only guess so on a busy machine)."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    with connect(url, autocommit=True) as conn:
        while (waiting := conn.execute(query).fetchone()[0]) < count:
            assert time.monotonic() < deadline, f"{waiting} of {count} sessions reached the lock in {timeout} s"
            time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    """One request over a new connection: (status, headers, parsed JSON or None)."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), data, {**sent, **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@contextmanager
def chromium(*hosts):
    """Debian's chromium driven by Playwright (its own browser download is not used), with `hosts` mapped to
    127.0.0.1 inside the browser only, and the flags that keep it off the closed network."""
    assert CHROMIUM, "chromium is required in CI"
    from playwright.sync_api import sync_playwright

    rules = ",".join(f"MAP {host} 127.0.0.1" for host in hosts)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                f"--host-resolver-rules={rules}",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()

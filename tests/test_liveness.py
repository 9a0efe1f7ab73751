"""The gunicorn master's liveness listener (taskapi.liveness), run in this process on a free port: idle and trickling
clients are dropped, connections beyond the cap are closed without a thread, and the answers' headers. Then the
warnings gunicorn logs at start (taskapi.config.start_warnings), and one real gunicorn logging the JWKS one."""

import contextlib
import json
import selectors
import socket
import threading
import time

import pytest
from conftest import running_gunicorn
from helpers import free_port, http

from taskapi import config, liveness


@pytest.fixture
def listen():
    """listen(alive=..., **serve_options) -> the port of a liveness listener started in this process."""
    servers = []

    def start(alive=lambda: True, **options):
        port = free_port()
        servers.append(liveness.serve(f"127.0.0.1:{port}", alive, **options))
        return port

    yield start
    for server in servers:  # shutdown() waits for serve_forever's next poll (0.5 s): let that happen off the test
        threading.Thread(target=lambda s=server: (s.shutdown(), s.server_close()), daemon=True).start()


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def closed_within(sock, seconds):
    """Whether the server closes `sock` (EOF or reset, nothing answered) within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def healthz(port):
    return http("GET", f"http://127.0.0.1:{port}/healthz", timeout=5)


def test_an_idle_connection_is_closed_after_the_read_timeout(listen):
    port = listen(read_timeout=0.5)
    with connect(port) as idle:
        started = time.monotonic()
        assert closed_within(idle, 3)
        assert 0.4 < time.monotonic() - started < 2
    assert healthz(port)[0] == 200


def test_a_trickling_client_is_closed_at_the_deadline_not_kept_by_each_byte(listen):
    """A byte every 0.2 s would reset a per-read timeout of 0.5 s forever; the deadline is for the whole request."""
    port = listen(read_timeout=0.5)
    with connect(port) as trickler:
        started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.0\r\n" * 10:
            try:
                trickler.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if closed_within(trickler, 0.2):
                break
        assert 0.4 < time.monotonic() - started < 2


def test_connections_beyond_the_cap_are_closed_at_once_and_threads_stay_bounded(listen):
    cap = liveness.MAX_CONNECTIONS
    port = listen(read_timeout=4)  # the cap must still be held when the probe comes, on however busy a machine
    before = threading.active_count()
    peak, sockets = before, []
    try:
        for _ in range(200):
            sockets.append(connect(port))
            peak = max(peak, threading.active_count())
        # Every connection beyond the cap is closed unanswered, at once; the first `cap` wait for their requests.
        selector = selectors.DefaultSelector()
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        closed, deadline = set(), time.monotonic() + 0.8
        while len(closed) < 200 - cap and time.monotonic() < deadline:
            for key, _ in selector.select(0.05):
                assert closed_within(key.fileobj, 0)
                selector.unregister(key.fileobj)
                closed.add(key.fileobj)
        peak = max(peak, threading.active_count())
        assert len(closed) == 200 - cap
        assert not closed & set(sockets[:cap])  # the accepted order: the first ones hold the slots
        assert peak - before <= cap
        # While the cap is held, a probe is turned away at once (not queued behind the idle ones)...
        with connect(port) as probe:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed before it was even sent
                probe.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert closed_within(probe, 0.5)
        # ...and once the idle ones have timed out, the slots are back.
        assert all(closed_within(sock, 6) for sock in sockets[:cap])
        assert healthz(port)[0] == 200
    finally:
        for sock in sockets:
            sock.close()


def test_a_failing_handler_gives_its_slot_back(listen):
    """alive() raising (a bug) ends the connection unanswered; more such failures than the cap, then a 200: no
    slot was lost on the way."""
    failures = {"left": 5}

    def alive():
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("a bug in the check")
        return True

    port = listen(alive=alive, max_connections=2)
    for _ in range(5):
        with pytest.raises(OSError):  # http.client: the connection closed without an answer
            healthz(port)
    assert healthz(port)[0] == 200


def test_a_thread_that_cannot_start_gives_its_slot_back(listen, monkeypatch):
    refusals = {"left": 5}

    class Thread(threading.Thread):
        def start(self):
            if self.name == "liveness-connection" and refusals["left"]:
                refusals["left"] -= 1
                raise RuntimeError("can't start new thread")
            super().start()

    port = listen(max_connections=2)
    monkeypatch.setattr(liveness.threading, "Thread", Thread)
    for _ in range(5):
        with pytest.raises(OSError):
            healthz(port)
    assert healthz(port)[0] == 200


def raw(port, request):
    with connect(port) as sock:
        sock.sendall(request)
        answer = b""
        while part := sock.recv(65536):
            answer += part
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "alive", "status", "code"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", True, 200, None),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", False, 503, "SERVICE_UNAVAILABLE"),
        (b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", True, 200, None),
        (b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", True, 404, "NOT_FOUND"),
        (b"DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n", True, 405, "METHOD_NOT_ALLOWED"),
        # http.server's own refusals; each request ends where the server stops reading, so that no unread byte
        # turns the close into a reset before the answer is read.
        (b"NOT A REQUEST\r\n", True, 400, "VALIDATION_ERROR"),
        (b"GET /" + b"x" * (65_537 - 5), True, 414, "URI_TOO_LONG"),
        (b"GET /healthz HTTP/1.1\r\n" + b"X: y\r\n" * 101, True, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"),
    ],
)
def test_every_answer_is_uncached_unsniffed_json(listen, request_bytes, alive, status, code):
    port = listen(alive=lambda: alive)
    got, headers, body = raw(port, request_bytes)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    if request_bytes.startswith(b"HEAD"):
        assert body == b"" and headers["Content-Length"] == str(len(json.dumps({"status": "ok"})))
    elif code is None:
        assert json.loads(body) == {"status": "ok"}
    else:
        error = json.loads(body)["error"]
        assert error == {"code": code, "message": error["message"], "details": {}} and error["message"]


def test_a_route_given_to_serve_is_answered_with_its_own_type_and_the_same_headers(listen):
    """How gunicorn.conf.py adds /metrics: the route's status, type and body, with the listener's headers."""
    port = listen(routes={"/metrics": lambda: (200, "text/plain; version=0.0.4", b"up 1\n")})
    got, headers, body = raw(port, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (got, headers["Content-Type"], body) == (200, "text/plain; version=0.0.4", b"up 1\n")
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert raw(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")[0] == 200
    assert raw(port, b"GET /metrics/ HTTP/1.1\r\nHost: t\r\n\r\n")[0] == 404


# --- The warnings gunicorn logs at start --------------------------------------------------------------------------

JWKS = {"AUTH_MODE": "jwt", "JWT_JWKS_URL": "https://idp.example/jwks.json"}


def warnings_for(**environ):
    return config.start_warnings(config.from_env({"DATABASE_URL": "postgresql://x/y", **environ}))


def test_jwks_with_audience_and_issuer_warns_of_nothing():
    assert warnings_for(**JWKS, JWT_AUDIENCE="taskapi", JWT_ISSUER="https://idp.example/") == []


@pytest.mark.parametrize(
    ("environ", "unset"),
    [
        ({"JWT_ISSUER": "https://idp.example/"}, ["JWT_AUDIENCE"]),
        ({"JWT_AUDIENCE": "taskapi"}, ["JWT_ISSUER"]),
        ({}, ["JWT_AUDIENCE", "JWT_ISSUER"]),
        ({"JWT_AUDIENCE": "  ", "TASKAPI_ENV": "production"}, ["JWT_AUDIENCE", "JWT_ISSUER"]),
    ],
)
def test_jwks_without_audience_or_issuer_is_one_line_naming_what_to_set(environ, unset):
    [line] = warnings_for(**JWKS, **environ)
    assert line.startswith(f"AUTH_MODE=jwt with JWT_JWKS_URL but {' and '.join(unset)} unset: "), line
    assert ("other clients" in line) == ("JWT_AUDIENCE" in unset) and ("any issuer" in line) == ("JWT_ISSUER" in unset)
    for name in ("JWT_AUDIENCE", "JWT_ISSUER"):
        assert (f"{name} to " in line) == (name in unset), line


@pytest.mark.parametrize(
    "environ",
    [
        {"AUTH_MODE": "jwt", "JWT_SECRET": "s" * 32},  # HMAC: the key is this service's own
        {"AUTH_MODE": "jwt", "JWT_SECRET": "s" * 32, "TASKAPI_ENV": "production"},
        {"AUTH_MODE": "none"},  # outside production
    ],
)
def test_no_warning(environ):
    assert warnings_for(**environ) == []


def test_auth_mode_none_in_production_keeps_its_line():
    assert warnings_for(AUTH_MODE="none", TASKAPI_ENV="production") == [
        "AUTH_MODE=none in production: every client can act for every user."
    ]


def test_gunicorn_logs_the_jwks_warning_once_at_start(database_url, tmp_path):
    log = tmp_path / "gunicorn.log"
    env = {"AUTH_MODE": "jwt", "JWT_JWKS_URL": "http://127.0.0.1:1/jwks.json", "JWT_SECRET": ""}
    with running_gunicorn(database_url, log, **env, JWT_AUDIENCE="", JWT_ISSUER="") as server:
        assert http("GET", server["url"] + "/healthz")[0] == 200
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if "JWT_JWKS_URL" in line.get("message", "")]
    assert [line["level"] for line in warnings] == ["WARNING"], warnings
    assert "JWT_AUDIENCE and JWT_ISSUER unset" in warnings[0]["message"]

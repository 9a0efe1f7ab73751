"""The real gunicorn (2 workers, gunicorn.conf.py) serving the test database over HTTP."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from conftest import running_gunicorn
from helpers import http


def test_create_get_list_round_trip(gunicorn_server):
    base = gunicorn_server["url"]
    status, headers, user = http("POST", base + "/users", {})
    assert status == 201 and headers["Content-Type"] == "application/json"
    status, headers, task = http("POST", f"{base}/users/{user['id']}/tasks", {"title": " over http "})
    assert status == 201 and task["title"] == "over http"
    assert http("GET", base + headers["Location"])[2] == task
    status, _, page = http("GET", f"{base}/users/{user['id']}/tasks")
    assert status == 200 and page["items"] == [task] and page["total"] == 1


def test_both_workers_serve_concurrently(gunicorn_server):
    """Each worker opened its own pool after the fork: many concurrent requests all succeed."""
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]

    def create(n):
        return http("POST", f"{base}/users/{user}/tasks", {"title": f"t{n}"})[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(create, range(80))) == {201}
    assert http("GET", f"{base}/users/{user}/tasks")[2]["total"] == 80
    assert http("GET", base + "/readyz")[0] == 200


def send_chunked(base_url, path, body, chunk_size=8192):
    """POST `body` with Transfer-Encoding: chunked (no Content-Length); the raw answer's status line and body."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            for start in range(0, len(body), chunk_size):
                chunk = body[start : start + chunk_size]
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        answer = b""
        while part := sock.recv(65536):
            answer += part
    head, _, payload = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], payload


def padded(size):
    """A valid JSON task of exactly `size` bytes: trailing whitespace after the object is still JSON."""
    head = b'{"title": "chunked"}'
    return head + b" " * (size - len(head))


@pytest.mark.parametrize(("size", "status"), [(65_536, b"201"), (65_537, b"413"), (200_000, b"413")])
def test_chunked_body_limit(gunicorn_server, size, status):
    """No Content-Length: the 64 KiB limit still holds while the body streams in, to the byte."""
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    status_line, payload = send_chunked(base, f"/users/{user}/tasks", padded(size))
    assert status_line.split()[1] == status, status_line
    if status == b"413":
        assert b'"PAYLOAD_TOO_LARGE"' in payload


@pytest.mark.parametrize(
    ("request_head", "status", "code"),
    [
        (b"GET /users?" + b"x" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", b"414", "URI_TOO_LONG"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-Big: y\r\n" * 120 + b"\r\n",
            b"431",
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
        (b"NOT A REQUEST\r\n\r\n", b"400", "VALIDATION_ERROR"),
    ],
)
def test_requests_gunicorn_itself_refuses_get_the_envelope(gunicorn_server, request_head, status, code):
    import json

    parts = urlsplit(gunicorn_server["url"])
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request_head)
        answer = b""
        while part := sock.recv(65536):
            answer += part
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == status, head
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": {"code": code, "message": json.loads(body)["error"]["message"], "details": {}}}


def test_the_masters_liveness_port_answers_healthz_and_the_envelope_for_anything_else(gunicorn_server):
    base = f"http://127.0.0.1:{gunicorn_server['health_port']}"
    assert http("GET", base + "/healthz") == (200, http("GET", base + "/healthz")[1], {"status": "ok"})
    for method, path, status, code in (
        ("GET", "/nope", 404, "NOT_FOUND"),
        ("GET", "/healthz?x=1", 404, "NOT_FOUND"),
        ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/healthz", 405, "METHOD_NOT_ALLOWED"),
    ):
        got, headers, body = http(method, base + path, b"" if method == "POST" else None)
        assert got == status and headers["Content-Type"] == "application/json", (method, path)
        assert body == {"error": {"code": code, "message": body["error"]["message"], "details": {}}}
        assert "Server" not in headers or "Python" not in headers["Server"]


def read_to_eof(sock):
    answer = b""
    while part := sock.recv(65536):
        answer += part
    return answer


@pytest.fixture(scope="module")
def one_worker(database_url, tmp_path_factory):
    with running_gunicorn(database_url, tmp_path_factory.mktemp("one") / "gunicorn.log", WEB_CONCURRENCY="1") as server:
        yield server


def test_a_worker_is_free_once_its_answer_is_sent(one_worker):
    """A request read to its end, with nothing more from the client, is closed at once: the only worker serves the
    next client while the first one still holds its end open (gunicorn would wait up to 2 s for that end)."""
    with socket.create_connection(("127.0.0.1", one_worker["port"]), timeout=10) as first:
        first.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_to_eof(first).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert http("GET", one_worker["url"] + "/healthz")[0] == 200
        assert time.monotonic() - started < 1.0


def test_a_body_refused_unread_is_drained_not_reset(one_worker):
    """A 413 decided from Content-Length leaves the body unread: then the worker lingers as gunicorn does, reading
    what the client still sends, so that it meets no reset (which could destroy the 413 before it is read)."""
    user = http("POST", one_worker["url"] + "/users", {})[2]["id"]
    with socket.create_connection(("127.0.0.1", one_worker["port"]), timeout=10) as sock:
        sock.sendall(
            f"POST /users/{user}/tasks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Content-Length: 200000\r\n\r\n".encode()
        )
        time.sleep(0.3)  # the answer is sent before any of the body
        for _ in range(3):  # a closed socket would answer the first part with a reset, failing the next send
            sock.sendall(b"x" * 10_000)
            time.sleep(0.1)
        sock.shutdown(socket.SHUT_WR)
        answer = read_to_eof(sock)
    assert answer.startswith(b"HTTP/1.1 413 ") and b'"PAYLOAD_TOO_LARGE"' in answer

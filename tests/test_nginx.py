"""deploy/nginx.conf in front of the real gunicorn: round trip, forwarded client IP, nginx's own answers as JSON."""

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from unittest.mock import ANY

import pytest
from conftest import running_gunicorn
from helpers import ROOT, free_port, http, token

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(
    NGINX is None and not os.environ.get("CI"), reason="nginx not installed (`make test` installs it as root)"
)
ORIGIN, EVIL = "https://app.example", "https://evil.example"  # allowed by the app and nginx here; allowed by neither


def render(deploy_conf, upstream_port, listen_port, access_log, health_port=None):
    """The shipped server block with only its addresses and log path changed for the test."""
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "server 127.0.0.1:8001;": f"server 127.0.0.1:{health_port or free_port()};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "/var/log/nginx/taskapi.access.log": str(access_log),
        '"https://app.example"   $http_origin;': f'"{ORIGIN}"   $http_origin;',  # the CORS allow-list
    }
    for old, new in replacements.items():
        assert old in deploy_conf, f"deploy/nginx.conf no longer contains {old!r}"
        deploy_conf = deploy_conf.replace(old, new)
    return deploy_conf


@contextmanager
def nginx_in_front(app, tmp):
    """The real nginx with deploy/nginx.conf, in front of a running gunicorn (`app`, from running_gunicorn)."""
    assert NGINX, "nginx is required in CI"
    port = free_port()
    conf = render(
        (ROOT / "deploy" / "nginx.conf").read_text(), app["port"], port, tmp / "access.log", app["health_port"]
    )
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(
        f"{user}\ndaemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        f"events {{ worker_connections 1024; }}\n"
        # gzip for JSON in http {}, as an operator's global config may have it: the server block must win.
        f"http {{\n gzip on;\n gzip_types application/json;\n gzip_min_length 1;\n"
        f" client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n"
        f" fastcgi_temp_path {tmp}/fcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n"
        f"{conf}\n}}\n"
    )
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if http("GET", base + "/healthz")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield {"url": base, "port": port, "app_log": app["log"], "access_log": tmp / "access.log"}
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    with (
        running_gunicorn(database_url, tmp / "gunicorn.log", TRUSTED_PROXY_COUNT="1", CORS_ORIGINS=ORIGIN) as app,
        nginx_in_front(app, tmp) as front,
    ):
        yield {**front, "app": app}


def app_access_lines(log):
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("name") == "taskapi.access"]


def test_round_trip_through_nginx(stack):
    base = stack["url"]
    status, headers, user = http("POST", base + "/users", {})
    assert status == 201 and headers["Content-Type"] == "application/json"
    status, headers, task = http("POST", f"{base}/users/{user['id']}/tasks", {"title": "via nginx"})
    assert status == 201
    assert http("GET", base + headers["Location"])[2] == task


def test_app_logs_the_client_ip_nginx_forwarded_and_ignores_a_spoofed_one(stack):
    # The client (127.0.0.2) claims to be 203.0.113.9; nginx appends the address it really saw, and the app,
    # trusting one proxy, takes exactly that one.
    status, headers, _ = get(
        stack["port"], "/readyz", "127.0.0.2", X_Forwarded_For="203.0.113.9", X_Request_ID="nginx-test-1"
    )
    assert status == 200 and headers["x-request-id"] == "nginx-test-1"
    time.sleep(0.2)
    line = next(line for line in app_access_lines(stack["app_log"]) if line.get("request_id") == "nginx-test-1")
    assert line["remote_addr"] == "127.0.0.2"
    assert line["path"] == "/readyz" and line["status"] == 200 and line["duration_ms"] >= 0


def test_without_trusted_proxies_forwarded_headers_are_ignored(gunicorn_server):
    status, _, _ = get(
        gunicorn_server["port"], "/healthz", "127.0.0.2", X_Forwarded_For="203.0.113.9", X_Request_ID="direct-1"
    )
    assert status == 200
    time.sleep(0.2)
    line = next(line for line in app_access_lines(gunicorn_server["log"]) if line.get("request_id") == "direct-1")
    assert line["remote_addr"] == "127.0.0.2"


def test_metrics_are_not_served_through_nginx(stack):
    """The master's listener serves /metrics (below: it is there to be hidden); the public server never does,
    whatever the spelling."""
    status, headers, body = get(stack["app"]["health_port"], "/metrics")
    assert status == 200 and b"taskapi_http_requests_total" in body
    for path in ("/metrics", "/metrics?format=text", "/metrics/", "//metrics", "/Metrics", "/%6Detrics"):
        status, headers, body = get(stack["port"], path)
        assert status == 404, path
        assert json.loads(body)["error"]["code"] == "NOT_FOUND" and b"taskapi_" not in body, path


def assert_nginx_own_headers(headers, origin, retry_after=None):
    """An answer nginx wrote itself: CORS for the allowed origin only, Retry-After exposed, no sniffing, no caching."""
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers.get("access-control-allow-origin") == (origin if origin == ORIGIN else None)
    assert "Retry-After" in headers["access-control-expose-headers"] and headers["vary"] == "Origin"
    assert headers.get("retry-after") == retry_after
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    assert re.fullmatch(r"[A-Za-z0-9._:+/=-]{1,128}", headers["x-request-id"])  # the id nginx logged


@pytest.mark.parametrize("origin", [ORIGIN, EVIL])
def test_nginx_rejects_oversized_body_with_the_envelope(stack, origin):
    user = http("POST", stack["url"] + "/users", {})[2]["id"]
    head = b'{"title": "padded"'
    big = head + b" " * 70_000 + b"}"
    status, headers, body = http("POST", f"{stack['url']}/users/{user}/tasks", big, {"Origin": origin})
    assert status == 413 and headers["Content-Type"] == "application/json"
    assert body == {"error": {"code": "PAYLOAD_TOO_LARGE", "message": body["error"]["message"], "details": {}}}
    assert_nginx_own_headers(headers, origin)
    exact = head + b" " * (65_536 - len(head) - 1) + b"}"
    assert http("POST", f"{stack['url']}/users/{user}/tasks", exact)[0] == 201


@pytest.mark.parametrize("origin", [ORIGIN, EVIL])
def test_a_batch_may_carry_1_mib_through_nginx_and_no_more(stack, origin):
    user = http("POST", stack["url"] + "/users", {})[2]["id"]
    head = json.dumps(
        {"requests": [{"id": "a", "method": "POST", "path": f"/users/{user}/tasks", "body": {"title": "t"}}]}
    )
    exact = head.encode()[:-1] + b" " * (1_048_576 - len(head)) + b"}"
    status, _, answer = http("POST", f"{stack['url']}/users/{user}/batch", exact)
    assert status == 200 and answer["committed"] is True
    status, headers, body = http("POST", f"{stack['url']}/users/{user}/batch", exact + b" ", {"Origin": origin})
    assert status == 413 and headers["Content-Type"] == "application/json"
    assert body == {
        "error": {"code": "PAYLOAD_TOO_LARGE", "message": "Request body is larger than 1048576 bytes.", "details": {}}
    }
    assert_nginx_own_headers(headers, origin)


def test_nginx_answers_json_when_gunicorn_is_unreachable(tmp_path):
    """A 502 from nginx (upstream down) reaches clients as the SPEC's 503 envelope with Retry-After."""
    assert NGINX, "nginx is required in CI"
    port, dead = free_port(), free_port()
    server_block = render((ROOT / "deploy" / "nginx.conf").read_text(), dead, port, tmp_path / "access.log")
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}\ndaemon off;\npid {tmp_path}/nginx.pid;\nevents {{}}\n"
        f"http {{ client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n{server_block}\n}}\n"
    )
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"])
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        # The liveness and the app's upstream, and the batch's own location.
        for method, path in (("GET", "/healthz"), ("GET", "/readyz"), ("POST", f"/users/{uuid.uuid4()}/batch")):
            for origin in (ORIGIN, EVIL):
                url = f"http://127.0.0.1:{port}{path}"
                status, headers, body = http(method, url, {} if method == "POST" else None, {"Origin": origin})
                assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE", body
                assert_nginx_own_headers(headers, origin, retry_after="5")
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


def test_a_7_kib_bearer_token_passes_nginx(stack):
    """nginx's header buffers (8 KiB a line) let a token of up to 7 KiB through to the app."""
    header = token(pad="x" * 5300)
    assert len(header) > 7 * 1024
    assert http("POST", stack["url"] + "/users", {}, {"Authorization": header})[0] == 201  # AUTH_MODE=none here


def test_if_match_works_through_nginx_when_the_client_accepts_gzip(stack):
    """nginx must pass the strong ETag untouched: gzip would make it W/"1", which If-Match never matches."""
    base, gzip = stack["url"], {"Accept-Encoding": "gzip"}
    user = http("POST", base + "/users", {}, gzip)[2]["id"]
    status, headers, task = http("POST", f"{base}/users/{user}/tasks", {"title": "t" * 200}, gzip)
    assert status == 201 and headers["ETag"] == '"1"' and "Content-Encoding" not in headers
    path = f"{base}/users/{user}/tasks/{task['id']}"
    status, headers, _ = http("GET", path, headers=gzip)
    assert status == 200 and headers["ETag"] == '"1"'
    assert http("PATCH", path, {"is_completed": True}, {**gzip, "If-Match": headers["ETag"]})[0] == 200
    assert http("GET", path, headers={**gzip, "If-None-Match": '"2"'})[0] == 304


def raw_request(port, data, source="127.0.0.1", timeout=10):
    """Send bytes as they are; the answer's status, headers (lowercased names; a repeated one's values joined by
    ", ", so a duplicate shows) and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = [(k.lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    headers = {name: ", ".join(v for k, v in fields if k == name) for name, _ in fields}
    return int(lines[0].split()[1]), headers, body


def send(port, method, path, body="", source="127.0.0.1", **headers):
    """A request with the given headers (Host: x unless given) and JSON body, one connection, through raw_request."""
    headers = {
        "Host": "x",
        **headers,
        **({"Content-Type": "application/json", "Content-Length": len(body)} if body else {}),
    }
    lines = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return raw_request(port, f"{method} {path} HTTP/1.1\r\n{lines}Connection: close\r\n\r\n{body}".encode(), source)


def get(port, path, source="127.0.0.1", **headers):
    return send(port, "GET", path, source=source, **headers)


NGINX_OWN_ERRORS = [
    (b"GARBAGE\r\n\r\n", 400, "VALIDATION_ERROR"),
    (b"GET /__taskapi_error/400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "NOT_FOUND"),
    (b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "METHOD_NOT_ALLOWED"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"),
    (b"POST /users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "NOT_IMPLEMENTED"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"), NGINX_OWN_ERRORS, ids=[str(e[1]) for e in NGINX_OWN_ERRORS]
)
def test_every_answer_nginx_writes_itself_is_the_envelope_without_a_version(stack, request_bytes, status, code):
    got, headers, body = raw_request(stack["port"], request_bytes)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == {"code": code, "message": json.loads(body)["error"]["message"], "details": {}}
    assert headers.get("server", "") in ("", "nginx") and b"nginx" not in body
    assert_nginx_own_headers(headers, None)


def test_the_rate_limit_answers_429_in_the_envelope_with_retry_after(stack):
    # Past the burst (100) at 50 r/s, from an address of its own, from an allowed and another origin in turn, until
    # both have been refused: how many requests that takes depends on how fast this machine answers them.
    answers = []
    for origin in itertools.islice(itertools.cycle([ORIGIN, EVIL]), 4000):
        answers.append((origin, *get(stack["port"], f"/users/{uuid.uuid4()}", "127.0.0.5", Origin=origin)))
        if {a[0] for a in answers if a[1] == 429} == {ORIGIN, EVIL}:
            break
    assert {a[1] for a in answers} <= {404, 429}
    for origin in (ORIGIN, EVIL):
        _, _, headers, body = next(a for a in answers if a[0] == origin and a[1] == 429)
        assert json.loads(body)["error"]["code"] == "TOO_MANY_REQUESTS"
        assert_nginx_own_headers(headers, origin, retry_after="1")


@pytest.mark.parametrize("origin", [ORIGIN, EVIL])
@pytest.mark.parametrize(("method", "path", "body"), [("GET", "/readyz?next=//x", ""), ("POST", "/users", "{}")])
def test_nginx_adds_no_header_of_its_own_to_the_apps_answers(stack, method, path, body, origin):
    """The app sets CORS, Vary, nosniff and no-store itself: one copy each, a second ACAO would break browsers."""
    status, headers, _ = send(stack["port"], method, path, body, Origin=origin)
    assert status in (200, 201)
    assert headers.get("access-control-allow-origin") == (origin if origin == ORIGIN else None)
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    assert headers["vary"].count("Origin") == 1 and "retry-after" not in headers


@pytest.mark.parametrize(
    "path",
    [
        "//users/{user}/tasks",
        "/users/{user}//tasks",
        "/users//tasks",
        "//openapi.json",
        "//healthz",
        "/users/{user}%2Ftasks",
    ],
)
def test_double_and_encoded_slashes_are_404_never_a_redirect_to_the_requests_host(stack, path):
    path = path.format(user=http("POST", stack["url"] + "/users", {})[2]["id"])  # a user that exists
    for host in ("evil.example", "localhost"):
        status, headers, body = get(stack["port"], path, Host=host, X_Forwarded_Host="evil.example")
        assert status == 404 and json.loads(body) == {"error": {"code": "NOT_FOUND", "message": ANY, "details": {}}}
        assert "location" not in headers and b"evil" not in body


def test_nginx_and_the_app_log_the_same_request_id(stack):
    for given, kept in (("good-id.1", True), ("<script>alert(1)</script>", False), ("x" * 200, False)):
        status, headers, _ = get(stack["port"], f"/users/{uuid.uuid4()}", X_Request_ID=given)
        echoed = headers["x-request-id"]
        assert (echoed == given) == kept and re.fullmatch(r"[A-Za-z0-9._:+/=-]{1,128}", echoed)
        time.sleep(0.3)
        assert f"rid={echoed}" in stack["access_log"].read_text()
        assert any(line.get("request_id") == echoed for line in app_access_lines(stack["app_log"]))


def trickle(port, head, body=b"", hold=6.0):
    """A slow client: the request a byte at a time, for `hold` seconds, never finishing."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=hold + 5, source_address=("127.0.0.9", 0)) as sock:
            data = head + body
            deadline = time.monotonic() + hold
            for byte in data:
                if time.monotonic() > deadline:
                    break
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
    except OSError:
        pass  # nginx reset it: exactly what it should do


def normal_client_latencies(base, user, seconds=3.0):
    """A normal client: a list request every 50 ms (well within the rate limit), each one's latency."""
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        status = http("GET", f"{base}/users/{user}/tasks", timeout=40)[0]
        latencies.append(time.monotonic() - started)
        assert status == 200
        time.sleep(0.05)
    return sorted(latencies)


def test_slow_clients_do_not_slow_a_normal_client_through_nginx(stack):
    """50 connections trickling headers and 50 trickling a body, through nginx: a normal client's p50 stays under
    50 ms. (Straight at gunicorn, two trickling clients are enough to stall both sync workers.)"""
    user = http("POST", stack["url"] + "/users", {})[2]["id"]
    body_head = b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
    slow = [
        threading.Thread(target=trickle, args=(stack["port"], b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
        for _ in range(50)
    ]
    slow += [threading.Thread(target=trickle, args=(stack["port"], body_head, b"{" + b" " * 1998)) for _ in range(50)]
    for t in slow:
        t.start()
    time.sleep(1)
    through_nginx = normal_client_latencies(stack["url"], user)
    for t in slow:
        t.join()
    direct_app = stack["app"]
    stalls = [
        threading.Thread(
            target=trickle, args=(direct_app["port"], b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"", 3.0)
        )
        for _ in range(2)
    ]
    for t in stalls:
        t.start()
    time.sleep(0.5)
    direct = normal_client_latencies(direct_app["url"], user, seconds=1.0)
    for t in stalls:
        t.join()
    p50_nginx, p50_direct = through_nginx[len(through_nginx) // 2], direct[len(direct) // 2]
    print(
        json.dumps(
            {
                "normal_p50_ms_through_nginx": round(p50_nginx * 1000, 1),
                "normal_p50_ms_direct": round(p50_direct * 1000, 1),
            }
        )
    )
    assert p50_nginx < 0.05

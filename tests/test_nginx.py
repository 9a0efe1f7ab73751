"""deploy/nginx.conf in front of the real gunicorn: round trip, forwarded client IP, and nginx's 413 as JSON."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from http.client import HTTPConnection

import pytest
from conftest import running_gunicorn
from helpers import ROOT, free_port, http, token

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(
    NGINX is None and not os.environ.get("CI"), reason="nginx not installed (`make test` installs it as root)"
)


def render(deploy_conf, upstream_port, listen_port, access_log):
    """The shipped server block with only its addresses and log path changed for the test."""
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "/var/log/nginx/taskapi.access.log": str(access_log),
    }
    for old, new in replacements.items():
        assert old in deploy_conf, f"deploy/nginx.conf no longer contains {old!r}"
        deploy_conf = deploy_conf.replace(old, new)
    return deploy_conf


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    assert NGINX, "nginx is required in CI"
    tmp = tmp_path_factory.mktemp("nginx")
    with running_gunicorn(database_url, tmp / "gunicorn.log", TRUSTED_PROXY_COUNT="1") as app:
        port = free_port()
        server_block = render((ROOT / "deploy" / "nginx.conf").read_text(), app["port"], port, tmp / "access.log")
        user = "user root;" if os.geteuid() == 0 else ""
        (tmp / "nginx.conf").write_text(
            f"{user}\ndaemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
            f"events {{ worker_connections 64; }}\n"
            # gzip for JSON in http {}, as an operator's global config may have it: the server block must win.
            f"http {{\n gzip on;\n gzip_types application/json;\n gzip_min_length 1;\n"
            f" client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n"
            f" fastcgi_temp_path {tmp}/fcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n"
            f"{server_block}\n}}\n"
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
            yield {"url": base, "port": port, "app_log": app["log"]}
        finally:
            proc.send_signal(signal.SIGQUIT)
            proc.wait(10)


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


def request_from(address, port, path, headers):
    """A GET sent from a chosen loopback address, so the client IP differs from nginx's own."""
    conn = HTTPConnection("127.0.0.1", port, timeout=10, source_address=(address, 0))
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Request-ID")
    finally:
        conn.close()


def test_app_logs_the_client_ip_nginx_forwarded_and_ignores_a_spoofed_one(stack):
    # The client (127.0.0.2) claims to be 203.0.113.9; nginx appends the address it really saw, and the app,
    # trusting one proxy, takes exactly that one.
    status, request_id = request_from(
        "127.0.0.2", stack["port"], "/healthz", {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "nginx-test-1"}
    )
    assert status == 200 and request_id == "nginx-test-1"
    time.sleep(0.2)
    line = next(line for line in app_access_lines(stack["app_log"]) if line.get("request_id") == "nginx-test-1")
    assert line["remote_addr"] == "127.0.0.2"
    assert line["path"] == "/healthz" and line["status"] == 200 and line["duration_ms"] >= 0


def test_without_trusted_proxies_forwarded_headers_are_ignored(gunicorn_server):
    status, _ = request_from(
        "127.0.0.2",
        int(gunicorn_server["url"].rsplit(":", 1)[1]),
        "/healthz",
        {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "direct-1"},
    )
    assert status == 200
    time.sleep(0.2)
    line = next(line for line in app_access_lines(gunicorn_server["log"]) if line.get("request_id") == "direct-1")
    assert line["remote_addr"] == "127.0.0.2"


def test_nginx_rejects_oversized_body_with_the_envelope(stack):
    user = http("POST", stack["url"] + "/users", {})[2]["id"]
    head = b'{"title": "padded"'
    status, headers, body = http("POST", f"{stack['url']}/users/{user}/tasks", head + b" " * 70_000 + b"}")
    assert status == 413 and headers["Content-Type"] == "application/json"
    assert body == {"error": {"code": "PAYLOAD_TOO_LARGE", "message": body["error"]["message"], "details": {}}}
    exact = head + b" " * (65_536 - len(head) - 1) + b"}"
    assert http("POST", f"{stack['url']}/users/{user}/tasks", exact)[0] == 201


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
        status, headers, body = http("GET", f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and headers["Retry-After"] == "5"
        assert body["error"]["code"] == "SERVICE_UNAVAILABLE" and body["error"]["details"] == {}
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

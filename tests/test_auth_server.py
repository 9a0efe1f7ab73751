"""Authentication on the real gunicorn: start-up refusals and warning, the token command end to end, header limits,
and a repeated Authorization header as a real server delivers it."""

import subprocess
import sys
import uuid
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from conftest import running_gunicorn
from helpers import ROOT, SECRET, http, token
from test_config import start

from taskapi.serve import GUNICORN


@pytest.fixture(scope="module")
def jwt_server(database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("jwt") / "gunicorn.log"
    with running_gunicorn(database_url, log, AUTH_MODE="jwt", JWT_SECRET=SECRET) as server:
        yield server


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({}, "exactly one of JWT_SECRET"),
        ({"JWT_SECRET": SECRET, "JWT_JWKS_URL": "https://idp.example/jwks"}, "exactly one of JWT_SECRET"),
        ({"JWT_SECRET": "short"}, "at least 32 bytes"),
        ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "RS256"}, "JWT_ALGORITHMS RS256 not allowed"),
        ({"JWT_JWKS_URL": "file:///etc/passwd"}, "http(s) URL"),
        ({"AUTH_MODE": "basic"}, "AUTH_MODE must be one of"),
    ],
)
def test_bad_auth_settings_refuse_to_start_with_one_line(database_url, settings, says):
    result = start(*GUNICORN, TASKAPI_ENV="production", DATABASE_URL=database_url, **settings)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], lines


def test_production_with_auth_mode_none_logs_one_warning(gunicorn_server):
    warnings = [line for line in gunicorn_server["log"].read_text().splitlines() if "AUTH_MODE=none" in line]
    assert len(warnings) == 1 and '"level": "WARNING"' in warnings[0]


def test_token_command_end_to_end(jwt_server):
    """The README's example: mint a token, register, create and list tasks."""
    subject = "dev-alice"
    minted = subprocess.run(
        [sys.executable, "-m", "taskapi.token", subject, "--ttl", "60"],
        cwd=ROOT,
        env={"JWT_SECRET": SECRET, "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {minted}"}
    base = jwt_server["url"]
    status, _, user = http("POST", base + "/users", {}, headers)
    assert status in (201, 409)
    status, _, task = http("POST", base + "/users/me/tasks", {"title": "from a minted token"}, headers)
    assert status == 201
    status, _, page = http("GET", base + "/users/me/tasks", headers=headers)
    assert status == 200 and task in page["items"]
    assert uuid.UUID(task["user_id"]) == uuid.uuid5(uuid.NAMESPACE_URL, "#dev-alice")


def test_token_command_refuses_without_a_secret():
    result = subprocess.run(
        [sys.executable, "-m", "taskapi.token", "x"], cwd=ROOT, env={"PATH": ""}, capture_output=True, text=True
    )
    assert result.returncode != 0 and "JWT_SECRET" in result.stderr


def test_a_7_kib_token_passes_gunicorn_and_a_larger_one_is_refused_in_the_envelope(jwt_server):
    base = jwt_server["url"]
    big = token(pad="x" * 5300)  # base64url: about 7.2 KiB on the wire
    assert 7 * 1024 < len(big) < 8000
    status, _, _ = http("POST", base + "/users", {}, {"Authorization": big})
    assert status in (201, 409)
    status, headers, body = http("GET", base + "/users/me", headers={"Authorization": token(pad="x" * 9000)})
    assert status in (401, 431) and body["error"]["code"] in ("UNAUTHORIZED", "REQUEST_HEADER_FIELDS_TOO_LARGE")


def test_two_authorization_headers_over_http_are_400(jwt_server):
    parts = urlsplit(jwt_server["url"])
    conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", "/users/me")
        conn.putheader("Authorization", token())
        conn.putheader("Authorization", token())
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 400 and b"VALIDATION_ERROR" in response.read()
    finally:
        conn.close()

"""AUTH_MODE=jwt: every token check, the caller's user id, `me`, 403 on another user's path, registration, the
route walk that proves no protected rule forgets the check, and CORS."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from contextlib import contextmanager

import jwt
import pytest
from helpers import SECRET, assert_error, bearer, token

from taskapi import create_app
from taskapi.auth import PUBLIC_BLUEPRINTS
from taskapi.db import close_pool


def assert_unauthorized(response, invalid_token=True, sent=None):
    assert_error(response, 401, "UNAUTHORIZED")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="taskapi"')
    assert ('error="invalid_token"' in challenge) == invalid_token
    if sent:  # the token is never echoed, in the body or a header
        raw = sent.removeprefix("Bearer ")
        assert raw not in response.get_data(as_text=True) and raw not in str(response.headers)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims, alg="none"):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"Bearer {head}.{b64(json.dumps(claims).encode())}."


def hmac_signed(claims, key_bytes, **header):
    """An HS256 token signed with arbitrary bytes (PyJWT refuses to use a PEM public key as an HMAC secret)."""
    head = {"alg": "HS256", "typ": "JWT", **header}
    signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key_bytes, signing_input.encode(), hashlib.sha256).digest()
    return f"Bearer {signing_input}.{b64(signature)}"


# Taken when the module is collected, which may be minutes before a test runs: a token that must be valid, or must be
# in the future, is a day away from it (no run takes that long), and one that must have expired stays expired.
NOW = int(time.time())
LATER = NOW + 86_400
SUB = str(uuid.uuid4())
BAD_TOKENS = {
    "garbage": "Bearer not-a-jwt",
    "three garbage parts": "Bearer a.b.c",
    "bad signature": token(SUB, secret="another-secret-of-at-least-32-bytes!!"),
    "alg none": unsigned({"sub": SUB, "exp": LATER}),
    "expired beyond leeway": token(SUB, exp=NOW - 120),
    "nbf in the future": token(SUB, nbf=LATER),
    "iat in the future": token(SUB, iat=LATER),
    "exp missing": token(SUB, exp=None),
    "sub missing": "Bearer " + jwt.encode({"exp": LATER}, SECRET, algorithm="HS256"),
    "sub not a string": "Bearer " + jwt.encode({"sub": 42, "exp": LATER}, SECRET, algorithm="HS256"),
    "sub too long": token("s" * 256),
    "sub empty": "Bearer " + jwt.encode({"sub": "", "exp": LATER}, SECRET, algorithm="HS256"),
    "oversized": token(SUB, pad="x" * 9000),
    "HS512 key confusion with the wrong secret": "Bearer "
    + jwt.encode({"sub": SUB, "exp": LATER}, "x" * 64, algorithm="HS512"),
}


@pytest.mark.parametrize("header", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_token_that_fails_any_check_is_401_and_never_echoed(jwt_client, header):
    response = jwt_client.get("/users/me", headers={"Authorization": header})
    assert_unauthorized(response, sent=header)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc"])
def test_no_bearer_token_is_401_without_an_error_code(jwt_client, header):
    response = jwt_client.get("/users/me", headers={"Authorization": header} if header is not None else {})
    assert_unauthorized(response, invalid_token=False)


def test_a_token_inside_the_leeway_is_accepted(jwt_client):
    expired_a_little = bearer(exp=int(time.time()) - 10)  # 30 s leeway by default
    assert jwt_client.post("/users", json={}, headers=expired_a_little).status_code == 201
    assert jwt_client.get("/users/me", headers=bearer(nbf=int(time.time()) + 10)).status_code in (200, 404)


@contextmanager
def app_with(database_url, **settings):
    """An app under AUTH_MODE=jwt with the tests' HMAC secret and `settings` on top."""
    app = create_app({"DATABASE_URL": database_url, "AUTH_MODE": "jwt", "JWT_SECRET": SECRET, **settings})
    try:
        yield app
    finally:
        close_pool(app)


@pytest.fixture(scope="module")
def strict_app(database_url):
    with app_with(database_url, JWT_AUDIENCE="taskapi", JWT_ISSUER="https://idp.example/") as app:
        yield app


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"aud": "taskapi", "iss": "https://idp.example/"}, 201),
        ({"aud": ["other", "taskapi"], "iss": "https://idp.example/"}, 201),
        ({"aud": "other", "iss": "https://idp.example/"}, 401),
        ({"iss": "https://idp.example/"}, 401),
        ({"aud": "taskapi", "iss": "https://evil.example/"}, 401),
        ({"aud": "taskapi"}, 401),
    ],
)
def test_audience_and_issuer_are_checked_when_set(strict_app, claims, status):
    response = strict_app.test_client().post("/users", json={}, headers=bearer(**claims))
    assert response.status_code == status, response.get_json()


def test_audience_and_issuer_are_not_checked_when_unset(jwt_client):
    response = jwt_client.post("/users", json={}, headers=bearer(aud="anything", iss="https://any.example/"))
    assert response.status_code == 201


def test_a_uuid_subject_is_the_user_id_in_lowercase(jwt_client):
    subject = str(uuid.uuid4())
    response = jwt_client.post("/users", json={}, headers=bearer(subject.upper()))
    assert response.status_code == 201 and response.get_json()["id"] == subject
    assert response.headers["Location"] == f"/users/{subject}"


def test_any_other_subject_maps_to_uuid5_of_issuer_and_subject(jwt_client):
    expected = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://idp.example/#auth0|12345"))
    headers = bearer("auth0|12345", iss="https://idp.example/")
    jwt_client.delete("/users/me", headers=headers)
    assert jwt_client.post("/users", json={}, headers=headers).get_json()["id"] == expected
    no_issuer = str(uuid.uuid5(uuid.NAMESPACE_URL, "#auth0|12345"))
    assert jwt_client.post("/users", json={}, headers=bearer("auth0|12345")).get_json()["id"] == no_issuer


def test_registration_registers_the_caller_only(jwt_client):
    me = str(uuid.uuid4())
    headers = bearer(me)
    other = jwt_client.post("/users", json={"id": str(uuid.uuid4())}, headers=headers)
    assert_error(other, 403, "FORBIDDEN")
    assert_error(jwt_client.post("/users", json={"id": "not-a-uuid"}, headers=headers), 400, "VALIDATION_ERROR")
    assert jwt_client.post("/users", json={"id": me.upper()}, headers=headers).status_code == 201
    assert_error(jwt_client.post("/users", json={}, headers=headers), 409, "CONFLICT")


def test_me_and_the_callers_own_id_in_any_case_reach_the_callers_resources(jwt_client):
    me = str(uuid.uuid4())
    headers = bearer(me)
    assert_error(jwt_client.get("/users/me", headers=headers), 404, "USER_NOT_FOUND")  # not registered yet
    jwt_client.post("/users", json={}, headers=headers)
    task = jwt_client.post("/users/me/tasks", json={"title": "mine"}, headers=headers)
    assert task.status_code == 201 and task.headers["Location"].startswith(f"/users/{me}/tasks/")
    for user in ("me", me, me.upper()):
        assert jwt_client.get(f"/users/{user}", headers=headers).get_json()["id"] == me
        assert jwt_client.get(f"/users/{user}/tasks/{task.get_json()['id']}", headers=headers).status_code == 200
    assert jwt_client.delete("/users/me", headers=headers).status_code == 204


def test_me_under_auth_mode_none_is_not_a_user(client):
    assert_error(client.get("/users/me"), 404, "USER_NOT_FOUND")
    assert_error(client.get("/users/me/tasks"), 404, "USER_NOT_FOUND")


EVERY_USER_ROUTE = [
    ("get", "/users/{u}", None),
    ("delete", "/users/{u}", None),
    ("post", "/users/{u}/tasks", {"title": "stolen"}),
    ("get", "/users/{u}/tasks", None),
    ("get", "/users/{u}/tasks/{t}", None),
    ("put", "/users/{u}/tasks/{t}", {"title": "stolen"}),
    ("patch", "/users/{u}/tasks/{t}", {"title": "stolen"}),
    ("delete", "/users/{u}/tasks/{t}", None),
    ("get", "/users/{u}/changes", None),
]


@pytest.mark.parametrize(("method", "path", "body"), EVERY_USER_ROUTE)
def test_another_users_path_is_403_the_same_whether_that_user_exists_or_not(jwt_client, method, path, body):
    victim = str(uuid.uuid4())
    jwt_client.post("/users", json={}, headers=bearer(victim))
    task = jwt_client.post("/users/me/tasks", json={"title": "private"}, headers=bearer(victim)).get_json()
    attacker = bearer()
    same = {**attacker, "X-Request-ID": "auth"}
    send = getattr(jwt_client, method)
    existing = send(path.format(u=victim, t=task["id"]), json=body, headers=same)
    missing = send(path.format(u=uuid.uuid4(), t=uuid.uuid4()), json=body, headers=same)
    not_a_uuid = send(path.format(u="someone", t=task["id"]), json=body, headers=same)
    assert_error(existing, 403, "FORBIDDEN")
    assert existing.get_data() == missing.get_data() == not_a_uuid.get_data()
    assert dict(existing.headers) == dict(missing.headers) == dict(not_a_uuid.headers)
    # ...and the victim's task is untouched.
    assert jwt_client.get(f"/users/me/tasks/{task['id']}", headers=bearer(victim)).get_json() == task


def test_every_protected_route_answers_401_without_a_token(jwt_app):
    """Walk the app's routes: every rule outside the public blueprints, with every method, refuses a tokenless call."""
    client = jwt_app.test_client()
    checked = 0
    for rule in jwt_app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in PUBLIC_BLUEPRINTS or rule.endpoint == "static":
            continue
        path = rule.rule.replace("<user_id>", str(uuid.uuid4())).replace("<task_id>", str(uuid.uuid4()))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(path, method=method, json={} if method in ("POST", "PUT", "PATCH") else None)
            assert_unauthorized(response, invalid_token=False)
            checked += 1
    assert checked >= 9


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs", "/docs/swagger-ui.css"])
def test_health_and_docs_need_no_token(jwt_client, path):
    assert jwt_client.get(path).status_code == 200


def test_unknown_routes_and_methods_are_answered_before_authentication(jwt_client):
    assert_error(jwt_client.get("/nowhere"), 404, "NOT_FOUND")
    assert_error(jwt_client.put("/users"), 405, "METHOD_NOT_ALLOWED")


def test_two_authorization_headers_or_a_query_token_are_400(jwt_client):
    header = token()
    twice = jwt_client.get("/users/me", headers={"Authorization": f"{header}, {header}"})  # as WSGI joins them
    assert "Authorization" in assert_error(twice, 400, "VALIDATION_ERROR")["details"]
    in_query = jwt_client.get("/users/me?access_token=abc", headers={"Authorization": header})
    assert "access_token" in assert_error(in_query, 400, "VALIDATION_ERROR")["details"]


def test_documented_security_matches_the_mode(jwt_client, client):
    served = jwt_client.get("/openapi.json").get_json()
    assert served["security"] == [{"bearerAuth": []}]
    assert served["paths"]["/healthz"]["get"]["security"] == []
    assert {"401", "403"} <= set(served["paths"]["/users/{user_id}/tasks"]["get"]["responses"])
    assert "security" not in client.get("/openapi.json").get_json()


@pytest.fixture(scope="module")
def cors_app(database_url):
    with app_with(database_url, CORS_ORIGINS="https://app.example, https://admin.example") as app:
        yield app


def test_cors_preflight_from_an_allowed_origin_needs_no_token(cors_app):
    response = cors_app.test_client().options(
        f"/users/{uuid.uuid4()}/tasks/{uuid.uuid4()}",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, If-Match, Content-Type",
        },
    )
    assert 200 <= response.status_code < 300
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "if-match", "content-type"} <= allowed
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_headers_on_answers_to_allowed_origins_errors_included(cors_app):
    client = cors_app.test_client()
    denied = client.get("/users/me", headers={"Origin": "https://admin.example"})
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    exposed = {h.strip().lower() for h in denied.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "location", "retry-after", "x-request-id", "idempotent-replayed"} <= exposed
    other = client.get("/users/me", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/users/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_no_cors_headers_when_no_origin_is_configured(jwt_client):
    response = jwt_client.get("/users/me", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers

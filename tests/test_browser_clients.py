"""What a browser needs of every route: CORS preflights answered from the route alone (`me` included, no token,
nothing looked up), `//` anywhere a 404, and the caching, sniffing and framing headers on every answer."""

import uuid

import pytest
from helpers import assert_error, bearer, http
from test_auth import app_with

ALLOWED, OTHER = "https://app.example", "https://evil.example"
SUBJECT = str(uuid.uuid4())


@pytest.fixture(scope="module", params=["none", "jwt"])
def cors_app(request, database_url):
    settings = {"AUTH_MODE": request.param, "CORS_ORIGINS": f"{ALLOWED}, https://admin.example"}
    with app_with(database_url, **settings) as app:
        yield app


def concrete_paths(rule):
    """The rule's path with each variable filled: `me` and a UUID for the user (one path each)."""
    filled = rule.rule.replace("<task_id>", str(uuid.uuid4()))
    if "<any(" in filled:  # the docs assets: any one of them
        filled = filled[: filled.index("<any(")] + "swagger-ui.css"
    if "<user_id>" not in filled:
        return [filled]
    return [filled.replace("<user_id>", user) for user in ("me", str(uuid.uuid4()))]


def test_every_route_answers_a_preflight_from_an_allowed_origin_without_a_token(cors_app):
    """Walks app.url_map, so a route added later is covered too."""
    client, checked = cors_app.test_client(), 0
    for rule in cors_app.url_map.iter_rules():
        for path in concrete_paths(rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                asked = {"Access-Control-Request-Method": method}
                headers = {**asked, "Access-Control-Request-Headers": "authorization, content-type, if-match"}
                allowed = client.options(path, headers={"Origin": ALLOWED, **headers})
                assert allowed.status_code == 204, (method, path, allowed.get_data(as_text=True))
                assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED, (method, path)
                assert method in allowed.headers["Access-Control-Allow-Methods"], (method, path)
                assert "Origin" in allowed.headers.get("Vary", ""), (method, path)
                refused = client.options(path, headers={"Origin": OTHER, **headers})
                assert not any(h.startswith("Access-Control-") for h, _ in refused.headers), (method, path)
                assert "Origin" in refused.headers.get("Vary", ""), (method, path)
                checked += 1
    assert checked >= 20


def test_a_preflight_looks_nothing_up_even_with_the_database_unreachable(database_url):
    """`me` needs no token and no user lookup: the answer comes from the route table alone."""
    with app_with("postgresql://nobody@127.0.0.1:1/none", AUTH_MODE="jwt", CORS_ORIGINS=ALLOWED) as app:
        response = app.test_client().options(
            "/users/me/tasks", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
        )
    assert response.status_code == 204 and response.headers["Access-Control-Allow-Origin"] == ALLOWED


DOUBLE_SLASHES = [
    "//users/{u}/tasks",
    "/users/{u}//tasks",
    "/users//tasks",
    "//users/me",
    "//openapi.json",
    "//healthz",
]


@pytest.mark.parametrize("template", DOUBLE_SLASHES)
def test_a_double_slash_anywhere_is_404_under_both_modes(cors_app, template):
    client = cors_app.test_client()
    user = client.post("/users", json={}, headers=bearer(SUBJECT)).get_json()
    path = template.format(u=(user or {}).get("id", SUBJECT))
    for method in ("GET", "POST", "OPTIONS"):
        response = client.open(path, method=method, headers=bearer(SUBJECT))
        assert_error(response, 404, "NOT_FOUND")
        assert "Location" not in response.headers


@pytest.mark.parametrize("template", DOUBLE_SLASHES)
def test_a_double_slash_is_404_at_gunicorn_too(gunicorn_server, template):
    """Straight at gunicorn, which reads a leading `//` as the start of a host name unless told otherwise."""
    user = http("POST", gunicorn_server["url"] + "/users", {})[2]["id"]
    http("POST", f"{gunicorn_server['url']}/users/{user}/tasks", {"title": "private"})
    status, headers, body = http("GET", gunicorn_server["url"] + template.format(u=user))
    assert status == 404 and body["error"]["code"] == "NOT_FOUND" and "Location" not in headers


def test_api_answers_are_not_stored_or_sniffed(cors_app):
    client = cors_app.test_client()
    for response in (
        client.post("/users", json={}, headers=bearer()),
        client.get(f"/users/{uuid.uuid4()}/tasks"),
        client.get("/nowhere"),
        client.get("/openapi.json"),
        client.get("/healthz"),
    ):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Origin" in response.headers["Vary"]


def test_the_docs_page_allows_only_its_own_files_and_no_framing(cors_app):
    policy = cors_app.test_client().get("/docs").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in policy  # no other host
    asset = cors_app.test_client().get("/docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"

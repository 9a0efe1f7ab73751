"""The OpenAPI document: valid, complete against the app's routes, served with an offline /docs page, and
schemathesis run against the real gunicorn with every check."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import running_gunicorn
from helpers import ROOT, SECRET, http, token
from openapi_spec_validator import validate

from taskapi import apidoc, openapi

METHODS = {"get", "put", "post", "patch", "delete"}


def test_document_validates():
    validate(openapi.build("jwt"))
    validate(openapi.build("none"))


def test_every_route_and_method_records_its_operation_and_the_document_has_nothing_else(app):
    """Each method of each route of the real app (Flask answers HEAD and OPTIONS itself) carries its operation, and
    the document has exactly those; the docs blueprint (the document and its page) carries none."""
    routes = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint.startswith("docs."):
            assert not hasattr(view, "apidoc"), rule.endpoint
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert hasattr(view, "apidoc"), (rule.rule, method)
            path = re.sub(r"<(\w+)>", r"{\1}", rule.rule)
            routes.setdefault(path, {})[method.lower()] = view.apidoc["operationId"]
    documented = {
        path: {method: operation["operationId"] for method, operation in item.items() if method in METHODS}
        for path, item in openapi.build()["paths"].items()
    }
    assert documented == routes


def test_the_decorator_returns_the_view_itself():
    def view():
        pass

    assert apidoc.operation("x", tag="t", summary="s", description="d", success={})(view) is view
    assert view.apidoc["operationId"] == "x" and "500" in view.apidoc["responses"]


def test_every_error_code_of_the_spec_is_documented():
    codes = set(openapi.build()["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"])
    assert codes == {
        "VALIDATION_ERROR", "INVALID_JSON", "USER_NOT_FOUND", "TASK_NOT_FOUND", "NOT_FOUND", "METHOD_NOT_ALLOWED",
        "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE", "CONFLICT", "SERVICE_UNAVAILABLE", "INTERNAL_ERROR",
        "UNAUTHORIZED", "FORBIDDEN", "PRECONDITION_FAILED", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE",
        "QUOTA_EXCEEDED", "SYNC_TOKEN_EXPIRED", "LIST_NOT_FOUND", "FAILED_DEPENDENCY",
        "TOO_MANY_REQUESTS", "REQUEST_TIMEOUT", "NOT_IMPLEMENTED", "HTTP_VERSION_NOT_SUPPORTED",  # nginx's own
        "URI_TOO_LONG", "REQUEST_HEADER_FIELDS_TOO_LARGE",  # gunicorn's own answers, in the same envelope
    }  # fmt: skip


def test_served_document_is_the_generated_one_for_the_mode(client, jwt_client):
    for served, mode in ((client, "none"), (jwt_client, "jwt")):
        response = served.get("/openapi.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        assert response.get_json() == json.loads(json.dumps(openapi.build(mode)))


def test_docs_page_and_every_asset_it_references_are_served_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', html) if not a.startswith("data:")]
    assert len(assets) >= 4 and all(a.startswith("/docs/") for a in assets)  # nothing from a CDN
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 0
    init = client.get("/docs/taskapi-init.js").get_data(as_text=True)
    assert '"/openapi.json"' in init and "http" not in init


def test_unknown_docs_asset_is_the_envelope(client):
    response = client.get("/docs/nope.js")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "NOT_FOUND"


def test_export_command_writes_the_document(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "taskapi.openapi"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == json.loads(json.dumps(openapi.build()))


@pytest.fixture(scope="module")
def jwt_gunicorn(database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("schemathesis") / "gunicorn.log"
    with running_gunicorn(database_url, log, AUTH_MODE="jwt", JWT_SECRET=SECRET) as server:
        yield server


@pytest.mark.parametrize("mode", ["none", "jwt"])
def test_schemathesis_finds_nothing(mode, gunicorn_server, jwt_gunicorn, tmp_path):
    """Every check schemathesis has, against the real gunicorn and PostgreSQL, examples bounded for CI's sake. Under
    jwt it sends one user's valid token, and its auth checks (ignored_auth: the same call without it) must see 401."""
    server = jwt_gunicorn if mode == "jwt" else gunicorn_server
    assert http("GET", server["url"] + "/readyz")[0] == 200
    auth = ["--header", f"Authorization: {token()}"] if mode == "jwt" else []
    report = tmp_path / "junit.xml"
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "run",
            server["url"] + "/openapi.json",
            *auth,
            "--checks",
            "all",
            "--max-examples",
            os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
            "--seed",
            os.environ.get("SCHEMATHESIS_SEED", "20261125"),
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            "--no-color",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


def test_documented_title_pattern_means_what_the_server_does():
    """A one-character title matches the document's pattern exactly when the server accepts it (no NUL; not blank
    to str.strip()), for every BMP character, so a generator trusting the document never sends a refused title."""
    from taskapi.fields import NOT_BLANK

    pattern = re.compile(openapi.build()["components"]["schemas"]["Task"]["properties"]["title"]["pattern"])
    assert pattern.pattern == NOT_BLANK
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates are refused separately; JSON Schema cannot say so
        char = chr(code)
        assert bool(pattern.fullmatch(char)) == (char != "\x00" and bool(char.strip())), hex(code)


@pytest.mark.parametrize("mode", ["jwt", "none"])
def test_every_operation_has_an_id_a_tag_a_summary_a_description_and_its_500(mode):
    document = openapi.build(mode)
    assert {tag["name"] for tag in document["tags"]} == {"users", "tasks", "lists", "health"}
    ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                ids.append(operation["operationId"])
                assert operation["tags"][0] in {"users", "tasks", "lists", "health"}, (path, method)
                assert operation["summary"] and "`" not in operation["summary"], (path, method)
                assert operation["description"], (path, method)
                assert "500" in operation["responses"], (path, method)
    assert len(ids) == len(set(ids)) and all(ids)


def test_patch_schema_declares_no_defaults():
    """PATCH leaves absent fields unchanged: a default would make generated clients send it and overwrite data."""
    properties = openapi.build()["components"]["schemas"]["TaskPatch"]["properties"]
    assert not [name for name, field in properties.items() if "default" in field]


def test_request_examples_are_accepted_as_they_are(client, user_id, make_task):
    paths = openapi.build("none")["paths"]

    def example(path, method):
        return paths[path][method]["requestBody"]["content"]["application/json"]["example"]

    assert client.post("/users", json=example("/users", "post")).status_code == 201
    created = client.post(f"/users/{user_id}/tasks", json=example("/users/{user_id}/tasks", "post"))
    assert created.status_code == 201 and created.get_json()["title"] == "Buy milk"
    task = f"/users/{user_id}/tasks/{created.get_json()['id']}"
    assert client.put(task, json=example("/users/{user_id}/tasks/{task_id}", "put")).status_code == 200
    assert client.patch(task, json=example("/users/{user_id}/tasks/{task_id}", "patch")).status_code == 200


def test_docs_page_stays_offline_and_serves_only_its_own_files(client):
    init = client.get("/docs/taskapi-init.js").get_data(as_text=True)
    assert "validatorUrl: null" in init
    for stock in ("index.html", "oauth2-redirect.html", "swagger-ui.js.map", "swagger-initializer.js"):
        assert client.get(f"/docs/{stock}").status_code == 404, stock


@pytest.mark.parametrize("module", ["taskapi.openapi", "taskapi.migrate"])
def test_the_documented_commands_print_no_warning(module, database_url):
    args = ["status"] if module == "taskapi.migrate" else []
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr

"""The envelope everywhere: unknown routes, wrong methods, encoded slashes, and no internals in any answer."""

import json
import re
import uuid

import pytest
from helpers import assert_error

from taskapi import create_app


@pytest.mark.parametrize(
    "path",
    ["/", "/nope", "/users/", "/tasks", "/users/abc%2Fdef/tasks", f"/users/{uuid.uuid4()}/tasks/x/y", "/healthz/x"],
)
def test_unknown_route_is_not_found(client, path):
    assert_error(client.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/users", {"POST"}),
        ("put", "/users/{u}", {"GET", "PATCH", "DELETE"}),
        ("delete", "/users/{u}/tasks", {"GET", "POST"}),
        ("post", "/users/{u}/tasks/{t}", {"GET", "PUT", "PATCH", "DELETE"}),
        ("post", "/healthz", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    path = path.format(u=uuid.uuid4(), t=uuid.uuid4())
    response = getattr(client, method)(path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_every_error_is_json_and_hides_internals(client, user_id):
    responses = [
        client.post(f"/users/{user_id}/tasks", data=b'{"title": "\\ud800"}', content_type="application/json"),
        client.post(f"/users/{user_id}/tasks", data=b"\xff", content_type="application/json"),
        client.get(f"/users/{user_id}/tasks?offset=99999999999999999999"),
        client.get("/users/'; DROP TABLE tasks; --"),
    ]
    for response in responses:
        text = response.get_data(as_text=True)
        assert 400 <= response.status_code < 500
        for leak in ("Traceback", "psycopg", "SELECT", "INSERT", "tasks WHERE", 'File "'):
            assert leak not in text


def test_unexpected_failure_is_a_generic_500_and_its_trace_goes_to_the_log(database_url, capsys):
    app = create_app({"DATABASE_URL": database_url})

    @app.get("/_boom_for_test")
    def boom():
        raise RuntimeError("secret internals: SELECT * FROM tasks")

    response = app.test_client().get("/_boom_for_test", headers={"X-Request-ID": "boom-1"})
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.get_data(as_text=True) and error["details"] == {}
    assert response.headers["X-Request-ID"] == "boom-1"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    failure = next(line for line in logged if line["level"] == "ERROR")
    assert failure["request_id"] == "boom-1"
    assert "Traceback" in failure["exc_info"] and "secret internals" in failure["exc_info"]
    access = next(line for line in logged if line["name"] == "taskapi.access")
    assert access["status"] == 500 and access["path"] == "/_boom_for_test"


@pytest.mark.parametrize(
    ("given", "echoed"),
    [("abc-123", "abc-123"), ("0b7e7c6e-5d0a-4a35-9e39-2a3b8c1d2e3f", "0b7e7c6e-5d0a-4a35-9e39-2a3b8c1d2e3f")],
)
def test_well_formed_request_id_is_echoed(client, given, echoed):
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["X-Request-ID"] == echoed


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "semi;colon", 'quote"', "\u00e9t\u00e9"])
def test_malformed_request_id_is_replaced(client, given):
    echoed = client.get("/users/nope", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert echoed != given and re.fullmatch(r"[0-9a-f]{32}", echoed)


@pytest.mark.parametrize("path", ["/users//tasks", "/users/{u}//tasks", "/users/{u}%2Ftasks", "/users/{u}%2ftasks/x"])
def test_double_and_encoded_slashes_are_404_not_found_never_a_redirect(client, user_id, path):
    response = client.get(path.format(u=user_id), headers={"Host": "evil.example"})
    assert_error(response, 404, "NOT_FOUND")
    assert "Location" not in response.headers


def test_json_answers_are_utf8_without_escapes(client, user_id):
    response = client.post(f"/users/{user_id}/tasks", json={"title": "Café ☕"})
    assert "Café ☕".encode() in response.get_data() and b"\\u" not in response.get_data()
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [("?limit=-1", "limit", "Must be between 1 and 100."), ("?limit=101", "limit", "Must be between 1 and 100.")],
)
def test_range_errors_say_what_is_wrong(client, user_id, query, field, message):
    assert assert_error(client.get(f"/users/{user_id}/tasks{query}"), 400, "VALIDATION_ERROR")["details"] == {
        field: [message]
    }


def test_a_blank_title_is_called_blank(client, user_id):
    response = client.post(f"/users/{user_id}/tasks", json={"title": " \t\n "})
    assert assert_error(response, 400, "VALIDATION_ERROR")["details"] == {"title": ["Must not be blank."]}


def test_options_is_204_with_allow_and_no_body(client, user_id):
    response = client.options(f"/users/{user_id}/tasks")
    assert response.status_code == 204 and response.get_data() == b""
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST", "OPTIONS"}
    assert "Content-Type" not in response.headers

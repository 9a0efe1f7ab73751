"""The envelope everywhere: unknown routes, wrong methods, encoded slashes, and no internals in any answer."""

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
        ("patch", "/users/{u}", {"GET", "DELETE"}),
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


def test_unexpected_failure_is_a_generic_500(database_url):
    app = create_app({"DATABASE_URL": database_url})

    @app.get("/_boom_for_test")
    def boom():
        raise RuntimeError("secret internals: SELECT * FROM tasks")

    response = app.test_client().get("/_boom_for_test")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.get_data(as_text=True) and error["details"] == {}

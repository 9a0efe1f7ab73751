"""POST/GET/DELETE /users: every success and error row of the SPEC's table for users."""

import uuid

import pytest
from helpers import assert_error, connect


def test_create_user_with_server_id(client):
    response = client.post("/users", json={})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "created_at", "time_zone"} and body["time_zone"] == "UTC"  # round 3: time_zone
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert response.headers["Location"] == f"/users/{body['id']}"
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == len("2026-01-07T09:30:00.123456Z")


def test_create_user_with_given_id_is_stored_lowercase(client):
    given = str(uuid.uuid4()).upper()
    response = client.post("/users", json={"id": given})
    assert response.status_code == 201
    assert response.get_json()["id"] == given.lower()
    assert client.get(f"/users/{given.lower()}").status_code == 200


def test_taken_id_is_conflict(client, user_id):
    assert_error(client.post("/users", json={"id": user_id}), 409, "CONFLICT")
    assert_error(client.post("/users", json={"id": user_id.upper()}), 409, "CONFLICT")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": None}, "id"),
        ({"id": "not-a-uuid"}, "id"),
        ({"id": "12345678123456781234567812345678"}, "id"),  # hex without hyphens is not the documented form
        ({"id": 5}, "id"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
        ({"name": "x"}, "name"),
    ],
)
def test_create_user_rejects_bad_fields(client, body, field):
    error = assert_error(client.post("/users", json=body), 400, "VALIDATION_ERROR")
    assert field in error["details"]


@pytest.mark.parametrize("raw", ["[]", '"x"', "1", "null", "true"])
def test_create_user_rejects_non_object(client, raw):
    assert_error(client.post("/users", data=raw, content_type="application/json"), 400, "VALIDATION_ERROR")


def test_create_user_needs_json(client):
    assert_error(client.post("/users", data="{}", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.post("/users"), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_create_user_body_too_large(client):
    body = b'{"id": null, "pad": "' + b"x" * 70_000 + b'"}'
    assert_error(client.post("/users", data=body, content_type="application/json"), 413, "PAYLOAD_TOO_LARGE")


def test_get_user(client, user_id):
    response = client.get(f"/users/{user_id}")
    assert response.status_code == 200
    assert response.get_json()["id"] == user_id
    assert client.get(f"/users/{user_id.upper()}").get_json()["id"] == user_id


@pytest.mark.parametrize("path_id", [str(uuid.uuid4()), "nope", "1", "%20", "{" + str(uuid.uuid4()) + "}"])
def test_get_unknown_user(client, path_id):
    assert_error(client.get(f"/users/{path_id}"), 404, "USER_NOT_FOUND")


def test_delete_user_takes_tasks_along(client, user_id, make_task, database_url):

    task = make_task()
    response = client.delete(f"/users/{user_id}")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get(f"/users/{user_id}"), 404, "USER_NOT_FOUND")
    assert_error(client.get(f"/users/{user_id}/tasks/{task['id']}"), 404, "USER_NOT_FOUND")
    with connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user_id,)).fetchone()[0]
    assert left == 0
    assert_error(client.delete(f"/users/{user_id}"), 404, "USER_NOT_FOUND")

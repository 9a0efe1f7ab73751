"""The task endpoints: create, read, replace, patch and delete, with each error row of the SPEC's table."""

import json
import uuid

import pytest
from helpers import TASK_KEYS, assert_error

TASK_FIELDS = set(TASK_KEYS)


def test_create_task(client, user_id):
    response = client.post(f"/users/{user_id}/tasks", json={"title": "  Buy milk \n", "description": " 2 l "})
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    task = response.get_json()
    assert set(task) == TASK_FIELDS
    assert task["title"] == "Buy milk"
    assert task["description"] == " 2 l "  # stored as given, not trimmed
    assert task["is_completed"] is False
    assert task["user_id"] == user_id
    assert task["created_at"] == task["updated_at"]
    assert response.headers["Location"] == f"/users/{user_id}/tasks/{task['id']}"
    assert client.get(response.headers["Location"]).get_json() == task


def test_create_task_defaults_and_explicit_values(client, user_id):
    task = client.post(f"/users/{user_id}/tasks", json={"title": "t"}).get_json()
    assert task["description"] is None and task["is_completed"] is False
    task = client.post(
        f"/users/{user_id}/tasks", json={"title": "t", "description": "", "is_completed": True}
    ).get_json()
    assert task["description"] == "" and task["is_completed"] is True


def test_get_task_case_insensitive_ids(client, user_id, make_task):
    task = make_task()
    response = client.get(f"/users/{user_id.upper()}/tasks/{task['id'].upper()}")
    assert response.status_code == 200
    assert response.get_json() == task


def test_put_replaces_every_field(client, user_id, make_task):
    task = make_task("old", description="d", is_completed=True)
    response = client.put(f"/users/{user_id}/tasks/{task['id']}", json={"title": " new "})
    assert response.status_code == 200
    replaced = response.get_json()
    assert replaced["title"] == "new"
    assert replaced["description"] is None and replaced["is_completed"] is False
    assert replaced["created_at"] == task["created_at"]
    assert replaced["updated_at"] > task["updated_at"]
    assert client.get(f"/users/{user_id}/tasks/{task['id']}").get_json() == replaced


def test_put_with_same_values_still_moves_updated_at(client, user_id, make_task):
    task = make_task("same")
    again = client.put(f"/users/{user_id}/tasks/{task['id']}", json={"title": "same"}).get_json()
    assert again["updated_at"] > task["updated_at"]
    patched = client.patch(f"/users/{user_id}/tasks/{task['id']}", json={"title": "same"}).get_json()
    assert patched["updated_at"] > again["updated_at"]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"title": " T2 "}, {"title": "T2", "description": "d", "is_completed": False}),
        ({"description": None}, {"title": "T", "description": None, "is_completed": False}),
        ({"description": ""}, {"title": "T", "description": "", "is_completed": False}),
        ({"is_completed": True}, {"title": "T", "description": "d", "is_completed": True}),
    ],
)
def test_patch_changes_only_given_fields(client, user_id, make_task, patch, expected):
    task = make_task("T", description="d")
    response = client.patch(f"/users/{user_id}/tasks/{task['id']}", json=patch)
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in expected} == expected
    assert body["updated_at"] > task["updated_at"]


def test_patch_needs_a_field(client, user_id, make_task):
    task = make_task()
    assert_error(client.patch(f"/users/{user_id}/tasks/{task['id']}", json={}), 400, "VALIDATION_ERROR")


def test_delete_task(client, user_id, make_task):
    task = make_task()
    response = client.delete(f"/users/{user_id}/tasks/{task['id']}")
    assert response.status_code == 204 and response.get_data() == b""
    assert_error(client.get(f"/users/{user_id}/tasks/{task['id']}"), 404, "TASK_NOT_FOUND")
    assert_error(client.delete(f"/users/{user_id}/tasks/{task['id']}"), 404, "TASK_NOT_FOUND")


# Every task endpoint, for the "unknown user" and "unknown task" rows.
TASK_CALLS = [
    ("get", None),
    ("put", {"title": "x"}),
    ("patch", {"title": "x"}),
    ("delete", None),
]


@pytest.mark.parametrize(("method", "body"), [*TASK_CALLS, ("list", None), ("create", {"title": "x"})])
def test_unknown_user_is_user_not_found(client, method, body):
    missing = uuid.uuid4()
    if method == "list":
        response = client.get(f"/users/{missing}/tasks")
    elif method == "create":
        response = client.post(f"/users/{missing}/tasks", json=body)
    else:
        response = getattr(client, method)(f"/users/{missing}/tasks/{uuid.uuid4()}", json=body)
    assert_error(response, 404, "USER_NOT_FOUND")


@pytest.mark.parametrize(("method", "body"), TASK_CALLS)
@pytest.mark.parametrize("task_id", ["random", "not-a-uuid", "1234", "0" * 36])
def test_unknown_task_is_task_not_found(client, user_id, method, body, task_id):
    task_id = str(uuid.uuid4()) if task_id == "random" else task_id
    assert_error(getattr(client, method)(f"/users/{user_id}/tasks/{task_id}", json=body), 404, "TASK_NOT_FOUND")


@pytest.mark.parametrize("user_path", ["not-a-uuid", "123", str(uuid.uuid4())[:-1], str(uuid.uuid4()) + "0"])
def test_malformed_user_id_is_user_not_found(client, user_path):
    assert_error(client.get(f"/users/{user_path}/tasks"), 404, "USER_NOT_FOUND")
    assert_error(client.post(f"/users/{user_path}/tasks", json={"title": "x"}), 404, "USER_NOT_FOUND")


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_body_errors_on_every_writing_endpoint(client, user_id, make_task, method):
    task = make_task()
    path = f"/users/{user_id}/tasks" + ("" if method == "post" else f"/{task['id']}")
    send = getattr(client, method)
    assert_error(send(path, data='{"title": "x"}', content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(send(path, data="{nope", content_type="application/json"), 400, "INVALID_JSON")
    assert_error(send(path, json=["title"]), 400, "VALIDATION_ERROR")
    assert_error(send(path, json={"title": 5}), 400, "VALIDATION_ERROR")
    big = b'{"title": "' + b"x" * 65_536 + b'"}'
    assert_error(send(path, data=big, content_type="application/json"), 413, "PAYLOAD_TOO_LARGE")
    # Nothing above changed the task.
    assert client.get(f"/users/{user_id}/tasks/{task['id']}").get_json() == task


def test_the_json_postgresql_writes_is_exactly_what_the_schema_dumps(app, user_id, make_task):
    """Answers carry a task as PostgreSQL writes it (queries.TASK_JSON: speed); TaskSchema stays the contract it must
    match, for every field and shape: the stored columns, mapped as the API describes them, dump to the same JSON."""
    from taskapi import due, queries
    from taskapi.db import connection
    from taskapi.schemas import PRIORITIES, task_schema

    samples = [
        make_task("plain"),
        make_task(" x ", description="", is_completed=True, priority="urgent", labels=["Home", "été"]),
        make_task("d", description="é", due={"date": "2026-12-24"}),
        make_task("t", due={"date": "2026-03-29", "time": "03:30", "time_zone": "Europe/Berlin"}, priority="low"),
    ]
    columns = (
        "id, user_id, title, description, is_completed, priority, labels, completed_at, list_id, parent_id, position,"
        " version, created_at, updated_at, due_date, due_time, due_zone, due_at"
    )
    with app.app_context(), connection() as conn:
        for sample in samples:
            task_id = uuid.UUID(sample["id"])
            fetched = queries.fetch_task(conn, uuid.UUID(user_id), task_id)
            row = conn.execute(f"SELECT {columns} FROM tasks WHERE id = %s", (task_id,)).fetchone()
            stated = None
            if row["due_date"]:
                stated = {"date": row["due_date"].isoformat(), "time": None, "time_zone": None, "at": None}
            if row["due_time"]:
                at = due.format_instant(row["due_at"])
                stated |= {"time": row["due_time"].isoformat(), "time_zone": row["due_zone"], "at": at}
            row = {**row, "priority": PRIORITIES[row["priority"]], "due": stated}
            assert json.loads(fetched["task"]) == task_schema.dump(row) == sample

"""No user can see, list, change or delete another's task, and the answer reveals nothing."""

import uuid

import pytest


@pytest.fixture
def victim(client, make_task):
    other = client.post("/users", json={}).get_json()["id"]
    return other, make_task("private", owner=other, description="secret")


CALLS = [
    ("get", None),
    ("put", {"title": "stolen"}),
    ("patch", {"title": "stolen"}),
    ("patch", {"is_completed": True}),
    ("delete", None),
]


@pytest.mark.parametrize(("method", "body"), CALLS)
def test_another_users_task_answers_like_one_that_never_existed(client, user_id, victim, method, body):
    owner, task = victim
    send = getattr(client, method)
    same_id = {"X-Request-ID": "isolation"}  # else the per-request id would be the one header that differs
    foreign = send(f"/users/{user_id}/tasks/{task['id']}", json=body, headers=same_id)
    never = send(f"/users/{user_id}/tasks/{uuid.uuid4()}", json=body, headers=same_id)
    assert foreign.status_code == never.status_code == 404
    assert foreign.get_data() == never.get_data()
    assert dict(foreign.headers) == dict(never.headers)
    # ...and the task is exactly as its owner left it.
    assert client.get(f"/users/{owner}/tasks/{task['id']}").get_json() == task


def test_another_users_task_never_appears_in_a_list(client, user_id, victim, make_task):
    owner, task = victim
    mine = make_task("mine")
    page = client.get(f"/users/{user_id}/tasks?limit=100").get_json()
    assert [t["id"] for t in page["items"]] == [mine["id"]] and page["total"] == 1
    assert client.get(f"/users/{owner}/tasks").get_json()["total"] == 1


def test_bad_body_on_another_users_task_answers_like_on_a_missing_one(client, user_id, victim):
    _, task = victim
    foreign = client.patch(f"/users/{user_id}/tasks/{task['id']}", json={"title": ""})
    never = client.patch(f"/users/{user_id}/tasks/{uuid.uuid4()}", json={"title": ""})
    assert foreign.status_code == never.status_code
    assert foreign.get_data() == never.get_data()

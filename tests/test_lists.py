"""Lists: CRUD with versions and conditional requests, Idempotency-Key, manual order and moves, delete with the
list's tasks (each leaving a tombstone), LISTS_PER_USER_MAX exact under concurrency, isolation."""

import threading
import uuid

import pytest
from conftest import running_gunicorn
from helpers import LIST_KEYS, assert_error, http

from taskapi import create_app
from taskapi.db import close_pool


def make_list(client, user, name="Work", **headers):
    response = client.post(f"/users/{user}/lists", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def names(client, user):
    response = client.get(f"/users/{user}/lists")
    assert response.status_code == 200
    return [item["name"] for item in response.get_json()["items"]]


def test_create_read_rename_delete(client, user_id):
    response = client.post(f"/users/{user_id}/lists", json={"name": "  Work  "})
    assert response.status_code == 201
    created = response.get_json()
    assert list(created) == LIST_KEYS
    assert created["name"] == "Work" and created["version"] == 1 and created["user_id"] == user_id
    assert response.headers["Location"] == f"/users/{user_id}/lists/{created['id']}"
    assert response.headers["ETag"] == '"1"'
    path = f"/users/{user_id}/lists/{created['id']}"
    fetched = client.get(path)
    assert fetched.status_code == 200 and fetched.get_json() == created and fetched.headers["ETag"] == '"1"'
    renamed = client.patch(path, json={"name": "Office"})
    assert renamed.status_code == 200 and renamed.headers["ETag"] == '"2"'
    assert renamed.get_json()["name"] == "Office" and renamed.get_json()["updated_at"] >= created["updated_at"]
    assert client.get(f"/users/{user_id}/lists").get_json() == {"items": [renamed.get_json()]}
    assert client.delete(path).status_code == 204
    assert_error(client.get(path), 404, "LIST_NOT_FOUND")
    assert client.get(f"/users/{user_id}/lists").get_json() == {"items": []}


def test_conditional_requests(client, user_id):
    made = make_list(client, user_id)
    path = f"/users/{user_id}/lists/{made['id']}"
    assert client.get(path, headers={"If-None-Match": '"1"'}).status_code == 304
    stale = client.patch(path, json={"name": "x"}, headers={"If-Match": '"7"'})
    assert_error(stale, 412, "PRECONDITION_FAILED")
    assert stale.headers["ETag"] == '"1"'
    assert client.patch(path, json={"name": "x"}, headers={"If-Match": '"1"'}).status_code == 200
    assert_error(client.delete(path, headers={"If-Match": '"1"'}), 412, "PRECONDITION_FAILED")
    moved = client.post(path + "/move", json={}, headers={"If-Match": '"1"'})
    assert_error(moved, 412, "PRECONDITION_FAILED")
    assert client.delete(path, headers={"If-Match": '"2"'}).status_code == 204
    assert_error(client.delete(path, headers={"If-Match": '"2"'}), 404, "LIST_NOT_FOUND")


def test_idempotent_creation(client, user_id):
    first = client.post(f"/users/{user_id}/lists", json={"name": "Home"}, headers={"Idempotency-Key": "k1"})
    again = client.post(f"/users/{user_id}/lists", json={"name": "Home"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert names(client, user_id) == ["Home"]
    other = client.post(f"/users/{user_id}/lists", json={"name": "Else"}, headers={"Idempotency-Key": "k1"})
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")


def test_new_lists_go_last_and_moves_reorder(client, user_id):
    a, b, c = (make_list(client, user_id, name) for name in "abc")
    assert names(client, user_id) == ["a", "b", "c"]
    assert a["position"] < b["position"] < c["position"]

    def move(made, **body):
        response = client.post(f"/users/{user_id}/lists/{made['id']}/move", json=body)
        assert response.status_code == 200, response.get_json()
        assert response.headers["ETag"] == f'"{response.get_json()["version"]}"'
        return response.get_json()

    assert move(c, after_id=None)["version"] == 2
    assert names(client, user_id) == ["c", "a", "b"]
    move(c, after_id=a["id"])
    assert names(client, user_id) == ["a", "c", "b"]
    move(a)  # absent: last
    assert names(client, user_id) == ["c", "b", "a"]
    d = make_list(client, user_id, "d")
    move(d, after_id=c["id"])
    assert names(client, user_id) == ["c", "d", "b", "a"]


@pytest.mark.parametrize("after", ["itself", "made-up", "foreign", "not-a-uuid", 7])
def test_moving_after_what_is_not_another_list_of_yours_is_400(client, user_id, after):
    made, other = make_list(client, user_id, "a"), make_list(client, user_id, "b")
    stranger = client.post("/users", json={}).get_json()["id"]
    ids = {"itself": made["id"], "made-up": str(uuid.uuid4()), "foreign": make_list(client, stranger)["id"]}
    response = client.post(f"/users/{user_id}/lists/{made['id']}/move", json={"after_id": ids.get(after, after)})
    assert "after_id" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert names(client, user_id) == ["a", "b"] and other["version"] == 1


def test_another_users_id_and_a_made_up_one_get_the_same_answer(client, user_id):
    stranger = client.post("/users", json={}).get_json()["id"]
    foreign = make_list(client, stranger)["id"]
    for method, suffix, body in (("get", "", None), ("patch", "", {"name": "x"}), ("delete", "", None)):
        answers = [
            getattr(client, method)(f"/users/{user_id}/lists/{list_id}{suffix}", json=body)
            for list_id in (foreign, str(uuid.uuid4()))
        ]
        assert answers[0].status_code == answers[1].status_code == 404
        assert answers[0].data == answers[1].data
    moves = [client.post(f"/users/{user_id}/lists/{made}/move", json={}) for made in (foreign, str(uuid.uuid4()))]
    assert moves[0].data == moves[1].data and moves[0].status_code == 404
    task = [
        client.post(f"/users/{user_id}/tasks", json={"title": "t", "list_id": i}) for i in (foreign, str(uuid.uuid4()))
    ]
    assert task[0].data == task[1].data and task[0].status_code == 400
    # Nothing of the stranger's changed, and nothing of theirs shows.
    assert names(client, stranger) == ["Work"]
    assert client.get(f"/users/{user_id}/tasks?list_id={foreign}").get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "ok", "position": "a0"}, "position"),
        ({"name": "ok", "color": "red"}, "color"),
    ],
)
def test_invalid_list_bodies_are_400_naming_the_field(client, user_id, body, named):
    assert named in assert_error(client.post(f"/users/{user_id}/lists", json=body), 400, "VALIDATION_ERROR")["details"]
    made = make_list(client, user_id)
    path = f"/users/{user_id}/lists/{made['id']}"
    assert named in assert_error(client.patch(path, json=body), 400, "VALIDATION_ERROR")["details"]
    assert client.get(path).get_json() == made


def test_unknown_user_and_malformed_ids(client, user_id):
    nobody = str(uuid.uuid4())
    assert_error(client.get(f"/users/{nobody}/lists"), 404, "USER_NOT_FOUND")
    assert_error(client.post(f"/users/{nobody}/lists", json={"name": "x"}), 404, "USER_NOT_FOUND")
    assert_error(client.get(f"/users/{user_id}/lists/not-a-uuid"), 404, "LIST_NOT_FOUND")


def test_deleting_a_list_deletes_its_tasks_each_with_a_tombstone(client, user_id):
    kept_list, doomed = make_list(client, user_id, "keep"), make_list(client, user_id, "doomed")
    outside = client.post(f"/users/{user_id}/tasks", json={"title": "no list"}).get_json()
    kept = client.post(f"/users/{user_id}/tasks", json={"title": "kept", "list_id": kept_list["id"]}).get_json()
    inside = [
        client.post(f"/users/{user_id}/tasks", json={"title": f"in {n}", "list_id": doomed["id"]}).get_json()
        for n in range(3)
    ]
    child = client.post(f"/users/{user_id}/tasks", json={"title": "child", "parent_id": inside[0]["id"]}).get_json()
    assert child["list_id"] == doomed["id"]
    since = client.get(f"/users/{user_id}/changes").get_json()["next_since"]
    assert client.delete(f"/users/{user_id}/lists/{doomed['id']}").status_code == 204
    changes = client.get(f"/users/{user_id}/changes?since={since}").get_json()
    assert {t["id"] for t in changes["deleted"]} == {t["id"] for t in [*inside, child]}
    assert [d["id"] for d in changes["lists_deleted"]] == [doomed["id"]]
    assert changes["upserted"] == [] and changes["lists_upserted"] == []
    left = client.get(f"/users/{user_id}/tasks").get_json()
    assert {t["id"] for t in left["items"]} == {outside["id"], kept["id"]} and left["total"] == 2
    for task in [*inside, child]:
        assert_error(client.get(f"/users/{user_id}/tasks/{task['id']}"), 404, "TASK_NOT_FOUND")


def test_deleting_a_list_frees_the_task_quota(database_url):
    app = create_app({"DATABASE_URL": database_url, "TASKS_PER_USER_MAX": "3"})
    client = app.test_client()
    try:
        user = client.post("/users", json={}).get_json()["id"]
        made = make_list(client, user)
        for n in range(3):
            assert client.post(f"/users/{user}/tasks", json={"title": f"{n}", "list_id": made["id"]}).status_code == 201
        assert_error(client.post(f"/users/{user}/tasks", json={"title": "full"}), 409, "QUOTA_EXCEEDED")
        assert client.delete(f"/users/{user}/lists/{made['id']}").status_code == 204
        assert client.post(f"/users/{user}/tasks", json={"title": "room"}).status_code == 201
    finally:
        close_pool(app)


def test_lists_sync_through_the_change_feed(client, user_id):
    first = client.get(f"/users/{user_id}/changes").get_json()
    assert first["lists_upserted"] == [] and first["lists_deleted"] == []
    a, b = make_list(client, user_id, "a"), make_list(client, user_id, "b")
    answer = client.get(f"/users/{user_id}/changes?since={first['next_since']}").get_json()
    assert answer["lists_upserted"] == [a, b]
    renamed = client.patch(f"/users/{user_id}/lists/{a['id']}", json={"name": "A"}).get_json()
    client.delete(f"/users/{user_id}/lists/{b['id']}")
    answer = client.get(f"/users/{user_id}/changes?since={answer['next_since']}").get_json()
    assert answer["lists_upserted"] == [renamed]
    assert [d["id"] for d in answer["lists_deleted"]] == [b["id"]]
    # limit caps the four arrays together
    for n in range(3):
        make_list(client, user_id, f"n{n}")
        client.post(f"/users/{user_id}/tasks", json={"title": f"t{n}"})
    capped = client.get(f"/users/{user_id}/changes?since={answer['next_since']}&limit=4").get_json()
    assert len(capped["lists_upserted"]) + len(capped["upserted"]) == 4 and capped["has_more"] is True


def test_the_list_quota_is_exact_under_concurrent_creates(database_url, tmp_path):
    """20 parallel creates when 5 places are left, through two gunicorn workers: exactly 5 succeed."""
    with running_gunicorn(database_url, tmp_path / "gunicorn.log", LISTS_PER_USER_MAX="25") as server:
        base = server["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        for n in range(20):
            assert http("POST", f"{base}/users/{user}/lists", {"name": f"l{n}"})[0] == 201
        start, statuses = threading.Barrier(20), []

        def create(n):
            start.wait()
            statuses.append(http("POST", f"{base}/users/{user}/lists", {"name": f"race {n}"}))

        threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(status for status, _, _ in statuses) == [201] * 5 + [409] * 15
        refused = next(body for status, _, body in statuses if status == 409)
        assert refused["error"]["code"] == "QUOTA_EXCEEDED" and refused["error"]["details"] == {"limit": 25}
        listed = http("GET", f"{base}/users/{user}/lists")[2]["items"]
        assert len(listed) == 25
        assert len({item["position"] for item in listed}) == 25  # racing creates never share a position
        assert [item["position"] for item in listed] == sorted(item["position"] for item in listed)

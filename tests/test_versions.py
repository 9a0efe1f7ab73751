"""Task versions, ETags, If-Match on PUT / PATCH / DELETE and If-None-Match on GET."""

import threading
import uuid

import pytest
from helpers import assert_error, http

WRITES = [("put", {"title": "replaced"}), ("patch", {"is_completed": True}), ("delete", None)]


def test_a_new_task_has_version_1_and_its_etag(client, user_id):
    response = client.post(f"/users/{user_id}/tasks", json={"title": "v"})
    assert response.get_json()["version"] == 1 and response.headers["ETag"] == '"1"'
    got = client.get(response.headers["Location"])
    assert got.headers["ETag"] == '"1"' and got.get_json() == response.get_json()


def test_every_put_and_patch_moves_the_version_even_when_nothing_changes(client, user_id, make_task):
    task = make_task("same")
    path = f"/users/{user_id}/tasks/{task['id']}"
    versions = [client.patch(path, json={"title": "same"}), client.put(path, json={"title": "same"})]
    assert [(r.get_json()["version"], r.headers["ETag"]) for r in versions] == [(2, '"2"'), (3, '"3"')]


def test_version_is_read_only(client, user_id, make_task):
    task = make_task()
    response = client.patch(f"/users/{user_id}/tasks/{task['id']}", json={"title": "x", "version": 9})
    assert "version" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert "version" in assert_error(client.post(f"/users/{user_id}/tasks", json={"title": "x", "version": 1}), 400,
                                     "VALIDATION_ERROR")["details"]  # fmt: skip


@pytest.mark.parametrize("header", ['"1"', '"7", "1"', "*", '  "1"  ', "1", 'W/"9", "1"'])
@pytest.mark.parametrize(("method", "body"), WRITES)
def test_a_matching_if_match_lets_the_write_through(client, user_id, make_task, method, body, header):
    task = make_task()
    response = getattr(client, method)(f"/users/{user_id}/tasks/{task['id']}", json=body, headers={"If-Match": header})
    assert response.status_code in (200, 204), response.get_json()


@pytest.mark.parametrize("header", ['"2"', '"0", "3"', 'W/"1"', '"abc"'])
@pytest.mark.parametrize(("method", "body"), WRITES)
def test_a_stale_if_match_is_412_with_the_current_etag_and_changes_nothing(
    client, user_id, make_task, method, body, header
):
    task = make_task()
    path = f"/users/{user_id}/tasks/{task['id']}"
    response = getattr(client, method)(path, json=body, headers={"If-Match": header})
    assert_error(response, 412, "PRECONDITION_FAILED")
    assert response.headers["ETag"] == '"1"'
    assert client.get(path).get_json() == task


@pytest.mark.parametrize(("method", "body"), [*WRITES, ("get", None)])
def test_a_missing_or_foreign_task_is_404_whatever_the_conditions_say(client, user_id, make_task, method, body):
    other = client.post("/users", json={}).get_json()["id"]
    foreign = make_task(owner=other)
    header = "If-None-Match" if method == "get" else "If-Match"
    for task_id in (foreign["id"], uuid.uuid4()):
        for value in ('"1"', '"99"', "*"):
            response = getattr(client, method)(f"/users/{user_id}/tasks/{task_id}", json=body, headers={header: value})
            assert_error(response, 404, "TASK_NOT_FOUND")


@pytest.mark.parametrize("header", ['"1', "1 2", '"1" "2"', 'W/ "1"', '"a"b"', "", ",", '"1",', '*, "1"', '"é"'])
@pytest.mark.parametrize(("method", "name"), [("patch", "If-Match"), ("delete", "If-Match"), ("get", "If-None-Match")])
def test_a_malformed_condition_is_400_naming_the_header(client, user_id, make_task, method, name, header):
    task = make_task()
    body = {"title": "x"} if method == "patch" else None
    response = getattr(client, method)(f"/users/{user_id}/tasks/{task['id']}", json=body, headers={name: header})
    assert name in assert_error(response, 400, "VALIDATION_ERROR")["details"]


@pytest.mark.parametrize("header", ['"1"', 'W/"1"', '"5", "1"', "*", "1"])
def test_if_none_match_on_the_current_version_is_304_with_no_body(client, user_id, make_task, header):
    task = make_task()
    response = client.get(f"/users/{user_id}/tasks/{task['id']}", headers={"If-None-Match": header})
    assert response.status_code == 304 and response.get_data() == b""
    assert response.headers["ETag"] == '"1"' and "Content-Type" not in response.headers


def test_if_none_match_on_an_older_version_gets_the_task(client, user_id, make_task):
    task = make_task()
    path = f"/users/{user_id}/tasks/{task['id']}"
    client.patch(path, json={"title": "newer"})
    response = client.get(path, headers={"If-None-Match": '"1"'})
    assert response.status_code == 200 and response.get_json()["title"] == "newer"


def test_the_version_survives_in_lists(client, user_id, make_task):
    task = make_task()
    client.patch(f"/users/{user_id}/tasks/{task['id']}", json={"title": "v2"})
    assert client.get(f"/users/{user_id}/tasks").get_json()["items"][0]["version"] == 2


def test_of_two_writers_with_the_same_if_match_exactly_one_wins(gunicorn_server):
    """20 rounds of two PATCHes racing with one If-Match, each served by a gunicorn worker process."""
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    outcomes = []
    for n in range(20):
        _, headers, task = http("POST", f"{base}/users/{user}/tasks", {"title": f"race {n}"})
        start = threading.Barrier(2)
        results = []

        def patch(title, etag=headers["ETag"], task_id=task["id"], start=start, results=results):
            start.wait()
            path = f"{base}/users/{user}/tasks/{task_id}"
            results.append(http("PATCH", path, {"title": title}, {"If-Match": etag})[0])

        threads = [threading.Thread(target=patch, args=(t,)) for t in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes.append(sorted(results))
        assert http("GET", f"{base}/users/{user}/tasks/{task['id']}")[2]["version"] == 2
    assert outcomes == [[200, 412]] * 20


def test_a_204_has_no_content_type(client, user_id, make_task):
    response = client.delete(f"/users/{user_id}/tasks/{make_task()['id']}")
    assert response.status_code == 204 and "Content-Type" not in response.headers

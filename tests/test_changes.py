"""GET /users/{id}/changes: full and incremental sync, paging with has_more, deletions, 410, bad tokens, and the
race that proves no change is missed while writes commit concurrently."""

import threading
import time
import uuid
from datetime import datetime

import pytest
from helpers import assert_error, connect, http

from taskapi import queries, signing
from taskapi.schemas import incarnation


def changes(client, user_id, since=None, limit=None):
    query = "&".join(f"{k}={v}" for k, v in (("since", since), ("limit", limit)) if v is not None)
    response = client.get(f"/users/{user_id}/changes?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def sync(read, copy, since=None):
    """The client's algorithm: apply each answer of `read(since)`, follow next_since until has_more is false."""
    while True:
        answer = read(since)
        for task in answer["upserted"]:
            copy[task["id"]] = task
        for gone in answer["deleted"]:
            copy.pop(gone["id"], None)
        since = answer["next_since"]
        if not answer["has_more"]:
            return since


def listed(client, user_id):
    return {t["id"]: t for t in client.get(f"/users/{user_id}/tasks?limit=100").get_json()["items"]}


def test_a_full_sync_returns_every_task_and_a_token(client, user_id, make_task):
    tasks = [make_task(f"t{n}") for n in range(3)]
    answer = changes(client, user_id)
    assert sorted(t["id"] for t in answer["upserted"]) == sorted(t["id"] for t in tasks)
    assert answer["deleted"] == [] and answer["has_more"] is False and answer["next_since"]
    assert set(answer) == {"upserted", "deleted", "lists_upserted", "lists_deleted", "next_since", "has_more"}


def test_an_incremental_sync_returns_only_what_changed_deletions_included(client, user_id, make_task):
    kept, patched, deleted = make_task("kept"), make_task("patched"), make_task("deleted")
    since = changes(client, user_id)["next_since"]
    assert changes(client, user_id, since) == {**changes(client, user_id, since), "upserted": [], "deleted": []}
    client.patch(f"/users/{user_id}/tasks/{patched['id']}", json={"title": "patched twice"})
    client.patch(f"/users/{user_id}/tasks/{patched['id']}", json={"is_completed": True})
    client.delete(f"/users/{user_id}/tasks/{deleted['id']}")
    new = make_task("new")
    answer = changes(client, user_id, since)
    assert [t["id"] for t in answer["upserted"]] == [patched["id"], new["id"]]  # each once, latest state
    assert answer["upserted"][0]["version"] == 3 and answer["upserted"][0]["is_completed"] is True
    assert [d["id"] for d in answer["deleted"]] == [deleted["id"]]
    assert answer["deleted"][0]["deleted_at"].endswith("Z")
    assert kept["id"] not in [t["id"] for t in answer["upserted"]]


def test_paging_with_has_more(client, user_id, make_task):
    for n in range(5):
        make_task(f"t{n}")
    first = changes(client, user_id, limit=2)
    assert len(first["upserted"]) == 2 and first["has_more"] is True
    copy = {t["id"]: t for t in first["upserted"]}
    sync(lambda since: changes(client, user_id, since, limit=2), copy, first["next_since"])
    assert copy == listed(client, user_id)


def test_limit_caps_upserts_and_deletions_together(client, user_id, make_task):
    tasks = [make_task(f"t{n}") for n in range(4)]
    since = changes(client, user_id)["next_since"]
    for task in tasks[:3]:
        client.delete(f"/users/{user_id}/tasks/{task['id']}")
    client.patch(f"/users/{user_id}/tasks/{tasks[3]['id']}", json={"title": "x"})
    answer = changes(client, user_id, since, limit=3)
    assert len(answer["deleted"]) + len(answer["upserted"]) == 3 and answer["has_more"] is True


def test_a_task_created_and_deleted_in_the_window_is_never_upserted(client, user_id, make_task):
    since = changes(client, user_id)["next_since"]
    task = make_task("short-lived")
    client.delete(f"/users/{user_id}/tasks/{task['id']}")
    answer = changes(client, user_id, since)
    assert answer["upserted"] == [] and [d["id"] for d in answer["deleted"]] in ([task["id"]], [])


def token_for(app, user_id, seq=0, age_days=0):
    """A sync token as the service signs them, issued `age_days` ago for the user's current registration."""
    born = incarnation(datetime.fromisoformat(app.test_client().get(f"/users/{user_id}").get_json()["created_at"]))
    issued = int(time.time() - age_days * 86_400)
    with app.app_context():
        return signing.sign("since", {"u": str(user_id), "c": born, "n": seq, "t": issued})


def test_a_token_older_than_the_tombstones_is_410(app, client, user_id):
    response = client.get(f"/users/{user_id}/changes?since={token_for(app, user_id, age_days=31)}")
    assert_error(response, 410, "SYNC_TOKEN_EXPIRED")
    assert client.get(f"/users/{user_id}/changes?since={token_for(app, user_id, age_days=29)}").status_code == 200


@pytest.mark.parametrize("since", ["garbage", "a.b", "x" * 2000, "", "%00"])
def test_a_malformed_token_is_400(client, user_id, since):
    response = client.get(f"/users/{user_id}/changes?since={since}")
    assert "since" in assert_error(response, 400, "VALIDATION_ERROR")["details"]


def test_another_users_token_or_a_list_cursor_is_400(client, user_id, make_task):
    other = client.post("/users", json={}).get_json()["id"]
    foreign = changes(client, other)["next_since"]
    assert (
        "since"
        in assert_error(client.get(f"/users/{user_id}/changes?since={foreign}"), 400, "VALIDATION_ERROR")["details"]
    )
    make_task(), make_task()
    cursor = client.get(f"/users/{user_id}/tasks?limit=1").get_json()["next_cursor"]
    assert_error(client.get(f"/users/{user_id}/changes?since={cursor}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "colour=red", "limit=1&limit=2"])
def test_malformed_parameters_are_400(client, user_id, query):
    assert_error(client.get(f"/users/{user_id}/changes?{query}"), 400, "VALIDATION_ERROR")


def test_an_unknown_user_is_404(client):
    assert_error(client.get(f"/users/{uuid.uuid4()}/changes"), 404, "USER_NOT_FOUND")


def test_deleting_a_user_removes_their_tombstones(client, user_id, make_task, database_url):
    client.delete(f"/users/{user_id}/tasks/{make_task()['id']}")
    client.delete(f"/users/{user_id}")
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM tombstones WHERE user_id = %s", (user_id,)).fetchone() == (0,)


def test_old_tombstones_are_purged_in_bounded_batches(client, user_id, make_task, database_url):
    for _ in range(4):
        client.delete(f"/users/{user_id}/tasks/{make_task()['id']}")
    count = (
        "SELECT tombstone_count, (SELECT count(*) FROM tombstones WHERE user_id = %(u)s) FROM users WHERE id = %(u)s"
    )
    with connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE tombstones SET deleted_at = now() - interval '40 days' WHERE user_id = %s", (user_id,))
        assert queries.purge_tombstones(conn, 30, 3) == 3
        assert conn.execute(count, {"u": user_id}).fetchone() == (1, 1)  # the count on the user's row kept exact
        queries.purge_tombstones(conn, 30, 1_000_000)
        assert conn.execute(count, {"u": user_id}).fetchone() == (0, 0)


def test_a_syncing_reader_never_misses_a_concurrent_write(gunicorn_server):
    """Four writer threads create, patch and delete one user's tasks for several seconds through two gunicorn
    workers, while a reader syncs in a loop with small pages. After a final sync, the reader's copy is exactly the
    list: the same ids and the same versions."""
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    stop = threading.Event()
    errors, creates = [], []

    def writer(n):
        mine, made = [], 0
        while not stop.is_set():
            status, _, task = http("POST", f"{base}/users/{user}/tasks", {"title": f"w{n}"})
            if status != 201:
                errors.append(status)
                continue
            mine.append(task["id"])
            made += 1
            creates.append(1)
            statuses = []
            if made % 2 == 0:
                statuses.append(http("PATCH", f"{base}/users/{user}/tasks/{mine[-2]}", {"is_completed": True})[0])
            if made % 3 == 0:  # one task in three is deleted again: the list grows, with deletions throughout
                statuses.append(http("DELETE", f"{base}/users/{user}/tasks/{mine.pop(0)}")[0])
            errors.extend(s for s in statuses if s not in (200, 204))

    def read_changes(since):
        query = "limit=7" + (f"&since={since}" if since else "")
        status, _, answer = http("GET", f"{base}/users/{user}/changes?{query}")
        assert status == 200, answer
        return answer

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    copy, since, rounds = {}, None, 0
    # At least 4 s, and until the writers have made 160 tasks (about 107 remain), however slow this machine is.
    started = time.monotonic()
    while time.monotonic() < started + 4 or (len(creates) < 160 and time.monotonic() < started + 120):
        since = sync(read_changes, copy, since)
        rounds += 1
    stop.set()
    for w in writers:
        w.join()
    sync(read_changes, copy, since)
    status, _, page = http("GET", f"{base}/users/{user}/tasks?limit=100&count=exact")
    truth, cursor = {t["id"]: t["version"] for t in page["items"]}, page["next_cursor"]
    while cursor:
        page = http("GET", f"{base}/users/{user}/tasks?limit=100&cursor={cursor}")[2]
        truth.update({t["id"]: t["version"] for t in page["items"]})
        cursor = page["next_cursor"]
    print(f"{rounds} sync rounds; {len(truth)} tasks at the end")
    assert not errors and rounds > 3 and len(truth) > 100
    assert {task_id: task["version"] for task_id, task in copy.items()} == truth

"""Idempotency-Key on POST /users and POST /users/{id}/tasks: replay, reuse, scoping, expiry, and the races."""

import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import assert_error, bearer, connect, http, wait_for_lock_waiters

from taskapi import queries


def count_tasks(client, user_id):
    return client.get(f"/users/{user_id}/tasks").get_json()["total"]


def post_raw(client, path, raw, key, **headers):
    return client.post(path, data=raw, headers={"Content-Type": "application/json", "Idempotency-Key": key, **headers})


def test_a_retry_gets_the_first_answer_byte_for_byte_and_creates_nothing(client, user_id):
    path, key = f"/users/{user_id}/tasks", str(uuid.uuid4())
    first = post_raw(client, path, b'{"title": "once", "description": "d"}', key)
    again = post_raw(client, path, b'{"description":"d",   "title":"once"}', f'"{key}"')  # quoted, reformatted
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    for header in ("Location", "ETag", "Content-Type"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert count_tasks(client, user_id) == 1


def test_without_a_key_every_post_creates(client, user_id):
    for _ in range(2):
        assert client.post(f"/users/{user_id}/tasks", json={"title": "twice"}).status_code == 201
    assert count_tasks(client, user_id) == 2


def test_the_same_key_for_a_different_request_is_422(client, user_id):
    path, key = f"/users/{user_id}/tasks", "reused-key"
    assert post_raw(client, path, b'{"title": "one"}', key).status_code == 201
    assert_error(post_raw(client, path, b'{"title": "two"}', key), 422, "IDEMPOTENCY_KEY_REUSED")
    assert count_tasks(client, user_id) == 1


def test_keys_are_scoped_per_user(client, user_id):
    other = client.post("/users", json={}).get_json()["id"]
    for owner in (user_id, other):
        response = post_raw(client, f"/users/{owner}/tasks", b'{"title": "same key"}', "shared-key")
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
        assert count_tasks(client, owner) == 1


@pytest.mark.parametrize(
    ("body", "status"), [(b'{"title": ""}', 400), (b"{", 400), (b'{"title": "ok", "colour": 1}', 400)]
)
def test_an_error_is_not_stored_so_the_retry_is_processed_afresh(client, user_id, body, status):
    path, key = f"/users/{user_id}/tasks", str(uuid.uuid4())
    assert post_raw(client, path, body, key).status_code == status
    assert post_raw(client, path, b'{"title": "fixed"}', key).status_code == 201
    assert count_tasks(client, user_id) == 1


def test_a_404_is_not_stored(client):
    missing, key = str(uuid.uuid4()), str(uuid.uuid4())
    assert_error(post_raw(client, f"/users/{missing}/tasks", b'{"title": "t"}', key), 404, "USER_NOT_FOUND")
    client.post("/users", json={"id": missing})
    assert post_raw(client, f"/users/{missing}/tasks", b'{"title": "t"}', key).status_code == 201


@pytest.mark.parametrize("key", ["", " ", "x" * 256, '""', '"x', "caf\xe9", '"a"b"', "tab\there", '"a\\"b"'])
def test_a_malformed_key_is_400_naming_the_header(client, user_id, key):
    response = post_raw(client, f"/users/{user_id}/tasks", b'{"title": "t"}', key)
    assert "Idempotency-Key" in assert_error(response, 400, "VALIDATION_ERROR")["details"]


@pytest.mark.parametrize("key", ["a", "x" * 255, "with space inside", 'quote"inside', "~!@#$%^&*()", '"quoted"'])
def test_any_printable_ascii_key_of_1_to_255_characters_works(client, user_id, key):
    assert post_raw(client, f"/users/{user_id}/tasks", b'{"title": "t"}', key).status_code == 201


def test_post_users_replays_under_auth_mode_none(client):
    key = str(uuid.uuid4())
    first = post_raw(client, "/users", b"{}", key)
    again = post_raw(client, "/users", b"{ }", key)
    assert first.status_code == again.status_code == 201 and again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_deleted_user_is_not_revived_by_a_replay(client):
    key = str(uuid.uuid4())
    user = post_raw(client, "/users", b"{}", key).get_json()["id"]
    assert client.delete(f"/users/{user}").status_code == 204
    again = post_raw(client, "/users", b"{}", key)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] != user


def test_post_users_keys_are_the_callers_under_jwt(jwt_client):
    alice, bob = bearer(), bearer()
    for caller in (alice, bob):
        response = post_raw(jwt_client, "/users", b"{}", "register", **caller)
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    again = post_raw(jwt_client, "/users", b"{}", "register", **alice)
    assert again.headers["Idempotent-Replayed"] == "true"


def age_keys(database_url, scope, hours):
    with connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - make_interval(hours => %s) WHERE scope = %s",
            (hours, scope),
        )


def test_an_expired_key_is_processed_afresh(client, user_id, database_url):
    path, key = f"/users/{user_id}/tasks", str(uuid.uuid4())
    assert post_raw(client, path, b'{"title": "t"}', key).status_code == 201
    age_keys(database_url, user_id, 25)  # IDEMPOTENCY_TTL_HOURS is 24
    again = post_raw(client, path, b'{"title": "t"}', key)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert count_tasks(client, user_id) == 2
    assert post_raw(client, path, b'{"title": "t"}', key).headers["Idempotent-Replayed"] == "true"


def test_expired_keys_are_purged_in_bounded_batches(client, user_id, database_url):
    for key in [f"old-{n}" for n in range(5)] + ["fresh"]:
        post_raw(client, f"/users/{user_id}/tasks", b'{"title": "t"}', key)
    # Aged after the last request, so that no request's own sweep (every 50th, counted per process) purges them first.
    with connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '48 hours' WHERE scope = %s AND key <> 'fresh'",
            (user_id,),
        )
        assert queries.purge_expired_keys(conn, 24, 3) == 3  # never more than the batch
        queries.purge_expired_keys(conn, 24, 1_000_000)
        assert conn.execute("SELECT key FROM idempotency_keys WHERE scope = %s", (user_id,)).fetchall() == [("fresh",)]


def test_deleting_a_user_deletes_their_keys(client, user_id, database_url):
    post_raw(client, f"/users/{user_id}/tasks", b'{"title": "t"}', "k")
    client.delete(f"/users/{user_id}")
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM idempotency_keys WHERE scope = %s", (user_id,)).fetchone() == (0,)


def test_twenty_concurrent_posts_with_one_key_create_one_task(gunicorn_server):
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    start = threading.Barrier(20)

    def post(_):
        start.wait()
        return http("POST", f"{base}/users/{user}/tasks", {"title": "exactly once"}, {"Idempotency-Key": "race"})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(post, range(20)))
    created = [body for status, _, body in answers if status == 201]
    assert {status for status, _, _ in answers} <= {201, 409}
    assert created and all(body == created[0] for body in created)
    assert all(h["Retry-After"] for s, h, b in answers if s == 409)
    assert http("GET", f"{base}/users/{user}/tasks")[2]["total"] == 1


def worker_pids(master_pid):
    return [int(pid) for pid in open(f"/proc/{master_pid}/task/{master_pid}/children").read().split()]


def test_a_worker_killed_mid_request_leaves_nothing_and_the_retry_creates_once(gunicorn_server, database_url):
    """The keyed POST is held inside its transaction (the test locks the user row the insert's foreign key needs),
    every worker is SIGKILLed, and the retry, once the lock is gone, creates exactly one task."""
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    body, key = {"title": "survives a crash"}, {"Idempotency-Key": "crash"}
    outcome = []
    with connect(database_url) as lock:
        lock.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user,))
        attempt = threading.Thread(target=lambda: outcome.append(_try_post(f"{base}/users/{user}/tasks", body, key)))
        attempt.start()
        wait_for_lock_waiters(database_url)  # the request waits on the lock, key claimed, task not yet inserted
        for pid in worker_pids(gunicorn_server["proc"].pid):
            os.kill(pid, signal.SIGKILL)
        attempt.join(10)
    assert outcome and outcome[0] is None  # the connection died with the worker: no answer
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            status, _, task = http("POST", f"{base}/users/{user}/tasks", body, key)
            break
        except OSError:
            time.sleep(0.2)
    assert status == 201, task
    assert http("POST", f"{base}/users/{user}/tasks", body, key)[1]["Idempotent-Replayed"] == "true"
    assert http("GET", f"{base}/users/{user}/tasks")[2]["total"] == 1


def _try_post(url, body, headers):
    try:
        return http("POST", url, body, headers)
    except OSError:
        return None


def test_replayed_body_is_json_of_the_task(client, user_id):
    response = post_raw(client, f"/users/{user_id}/tasks", b'{"title": "t"}', "json")
    replay = post_raw(client, f"/users/{user_id}/tasks", b'{"title": "t"}', "json")
    assert replay.mimetype == "application/json" and json.loads(replay.get_data()) == response.get_json()

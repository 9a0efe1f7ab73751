"""POST /users/{id}/batch: references, atomic and not, every malformed-batch rule, idempotency, quota, auth, and two
atomic batches racing on the same tasks through a real gunicorn."""

import json
import threading
import uuid

import pytest
from conftest import running_gunicorn
from helpers import assert_error, bearer, connect, http
from test_gunicorn import send_chunked

from taskapi import create_app, housekeeping
from taskapi.batch_requests import resolve
from taskapi.db import Watchdog, close_pool


def send(client, user, *requests, atomic=None, headers=None, **top):
    body = {**({} if atomic is None else {"atomic": atomic}), "requests": list(requests), **top}
    return client.post(f"/users/{user}/batch", json=body, headers=headers or {})


def req(id, method, path, body=None, **headers):
    return {"id": id, "method": method, "path": path, **({} if body is None else {"body": body}), "headers": headers}


def answered(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def tasks_of(client, user):
    return client.get(f"/users/{user}/tasks?limit=100").get_json()["items"]


def test_create_then_patch_then_read_then_delete_by_reference(client, user_id):
    tasks = f"/users/{user_id}/tasks"
    answer = answered(
        send(
            client,
            user_id,
            req("new", "POST", tasks, {"title": "Buy milk"}),
            req("done", "PATCH", f"{tasks}/$new", {"is_completed": True}, **{"If-Match": '"1"'}),
            req("read", "GET", f"{tasks}/$new", **{"If-None-Match": '"1"'}),
            req("other", "POST", tasks, {"title": "Keep", "labels": ["$new"], "description": "$$new"}),
            req("gone", "DELETE", f"{tasks}/$new", **{"if-match": '"2"'}),
        )
    )
    assert answer["committed"] is True
    assert [r["id"] for r in answer["responses"]] == ["new", "done", "read", "other", "gone"]
    new, done, read, other, gone = answer["responses"]
    task_id = new["body"]["id"]
    assert new["status"] == 201 and new["headers"] == {"ETag": '"1"', "Location": f"{tasks}/{task_id}"}
    assert done["status"] == 200 and done["headers"] == {"ETag": '"2"'} and done["body"]["is_completed"] is True
    assert read["status"] == 200 and read["body"]["version"] == 2  # "1" no longer matches: the task, not a 304
    # A reference anywhere in a body, however nested; `$$new` is the text `$new`.
    assert other["body"]["labels"] == [task_id] and other["body"]["description"] == "$new"
    assert gone == {"id": "gone", "status": 204, "headers": {}, "body": None}
    assert [task["title"] for task in tasks_of(client, user_id)] == ["Keep"]


def test_an_answer_carries_what_the_request_alone_would(client, user_id, make_task):
    task = make_task("t")
    path = f"/users/{user_id}/tasks/{task['id']}"
    answer = answered(send(client, user_id, req("a", "GET", path, **{"If-None-Match": '"1"'})))
    assert answer["responses"] == [{"id": "a", "status": 304, "headers": {"ETag": '"1"'}, "body": None}]
    alone = client.get(f"/users/{user_id}/tasks?limit=1")
    answer = answered(send(client, user_id, req("a", "GET", f"/users/{user_id}/tasks?limit=1")))
    assert answer["responses"][0]["body"] == alone.get_json()


def test_a_failing_atomic_batch_applies_nothing(client, user_id, make_task, database_url):
    kept = make_task("kept")
    before = seq_and_count(database_url, user_id)
    tasks = f"/users/{user_id}/tasks"
    answer = answered(
        send(
            client,
            user_id,
            req("a", "POST", tasks, {"title": "a"}),
            req("b", "PATCH", f"{tasks}/{kept['id']}", {"title": "changed"}),
            req("c", "DELETE", f"{tasks}/{kept['id']}", **{"If-Match": '"1"'}),  # it is at version 2 now: 412
            req("d", "POST", tasks, {"title": "never reached"}),
        )
    )
    assert answer["committed"] is False
    [failed] = answer["responses"]
    assert failed["id"] == "c" and failed["status"] == 412 and failed["headers"] == {"ETag": '"2"'}
    assert failed["body"]["error"]["code"] == "PRECONDITION_FAILED"
    assert tasks_of(client, user_id) == [kept]
    assert seq_and_count(database_url, user_id) == before  # no change number used, no count moved
    changes = client.get(f"/users/{user_id}/changes").get_json()
    assert [task["id"] for task in changes["upserted"]] == [kept["id"]] and changes["deleted"] == []


def seq_and_count(database_url, user):
    with connect(database_url) as conn:
        return conn.execute("SELECT change_seq, task_count FROM users WHERE id = %s", (user,)).fetchone()


def test_not_atomic_each_commits_and_dependants_of_a_failure_are_424(client, user_id):
    tasks = f"/users/{user_id}/tasks"
    answer = answered(
        send(
            client,
            user_id,
            req("bad", "POST", tasks, {"title": ""}),
            req("child", "POST", tasks, {"title": "x", "description": "$bad"}),
            req("grandchild", "PATCH", f"{tasks}/$child", {"title": "y"}),
            req("good", "POST", tasks, {"title": "good"}),
            req("uses-good", "PATCH", f"{tasks}/$good", {"title": "better"}),
            atomic=False,
        )
    )
    assert answer["committed"] is True
    statuses = {r["id"]: r["status"] for r in answer["responses"]}
    assert statuses == {"bad": 400, "child": 424, "grandchild": 424, "good": 201, "uses-good": 200}
    refused = answer["responses"][1]["body"]["error"]
    assert refused["code"] == "FAILED_DEPENDENCY" and refused["details"] == {"refers_to": ["bad"]}
    assert [task["title"] for task in tasks_of(client, user_id)] == ["better"]


def test_a_batch_where_every_request_failed_committed_nothing(client, user_id):
    answer = answered(send(client, user_id, req("a", "POST", f"/users/{user_id}/tasks", {"title": ""}), atomic=False))
    assert answer["committed"] is False and [r["status"] for r in answer["responses"]] == [400]


@pytest.fixture(scope="module")
def slow_client(database_url):
    """Statements cancelled after 300 ms, to make a request fail in PostgreSQL itself."""
    app = create_app({"DATABASE_URL": database_url, "DB_STATEMENT_TIMEOUT_MS": "300"})
    yield app.test_client()
    close_pool(app)


@pytest.mark.parametrize("atomic", [True, False])
def test_a_statement_cancelled_inside_a_batch_is_503_and_rolls_its_transaction_back(slow_client, database_url, atomic):
    """A task row locked elsewhere: the batch's PATCH of it waits, PostgreSQL cancels it (the transaction is then
    aborted), and the request is answered 503 as alone; atomic, the create before it is undone too."""
    client = slow_client
    user = client.post("/users", json={}).get_json()["id"]
    locked = client.post(f"/users/{user}/tasks", json={"title": "locked"}).get_json()
    tasks = f"/users/{user}/tasks"
    with connect(database_url) as holder:
        holder.execute("SELECT 1 FROM tasks WHERE user_id = %s AND id = %s FOR UPDATE", (user, locked["id"]))
        answer = answered(
            send(
                client,
                user,
                req("a", "POST", tasks, {"title": "before"}),
                req("b", "PATCH", f"{tasks}/{locked['id']}", {"title": "waits"}),
                req("c", "POST", tasks, {"title": "after"}),
                atomic=atomic,
            )
        )
        holder.rollback()
    statuses = [(r["id"], r["status"]) for r in answer["responses"]]
    failed = next(r for r in answer["responses"] if r["id"] == "b")
    assert failed["body"]["error"]["code"] == "SERVICE_UNAVAILABLE" and "too long" in failed["body"]["error"]["message"]
    titles = sorted(task["title"] for task in tasks_of(client, user))
    if atomic:
        assert answer["committed"] is False and statuses == [("b", 503)]
        assert titles == ["locked"]
    else:
        assert answer["committed"] is True and statuses == [("a", 201), ("b", 503), ("c", 201)]
        assert titles == ["after", "before", "locked"]


# Every rule of a well-formed batch: 400 VALIDATION_ERROR naming the request (by index) and its field.
U = "{user}"
MALFORMED = [
    ({"requests": []}, "requests"),
    ({"requests": [{"id": str(n), "method": "GET", "path": f"/users/{U}/tasks"} for n in range(101)]}, "requests"),
    ({"requests": {"id": "a"}}, "requests"),
    ({}, "requests"),
    ({"requests": [{"method": "GET", "path": f"/users/{U}/tasks"}]}, "requests.0.id"),
    ({"requests": [{"id": 1, "method": "GET", "path": f"/users/{U}/tasks"}]}, "requests.0.id"),
    ({"requests": [{"id": "a b", "method": "GET", "path": f"/users/{U}/tasks"}]}, "requests.0.id"),
    ({"requests": [{"id": "x" * 65, "method": "GET", "path": f"/users/{U}/tasks"}]}, "requests.0.id"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks"}] * 2}, "requests.1.id"),
    ({"requests": [{"id": "a", "method": "FETCH", "path": f"/users/{U}/tasks"}]}, "requests.0.method"),
    ({"requests": [{"id": "a", "method": "get", "path": f"/users/{U}/tasks"}]}, "requests.0.method"),
    ({"requests": [{"id": "a", "method": "PUT", "path": f"/users/{U}/tasks", "body": {}}]}, "requests.0.method"),
    ({"requests": [{"id": "a", "method": "GET"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": "users/x/tasks"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{uuid.uuid4()}/tasks"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": "/users/not-a-uuid/tasks"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": "/users/me/tasks"}]}, "requests.0.path"),  # none: no `me`
    ({"requests": [{"id": "a", "method": "POST", "path": "/users", "body": {}}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/changes"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/labels"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "POST", "path": f"/users/{U}/batch", "body": {}}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": "/healthz"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}//tasks"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"//users/{U}/tasks"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks%2Fx"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks/"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks#top"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks/caf\u00e9"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks", "headers": {"Authorization": "x"}}]},
     "requests.0.headers"),
    ({"requests": [{"id": "a", "method": "POST", "path": f"/users/{U}/tasks", "body": {"title": "t"},
                    "headers": {"Idempotency-Key": "k"}}]}, "requests.0.headers"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks", "headers": {"Content-Type": "x"}}]},
     "requests.0.headers"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks",
                    "headers": {"If-None-Match": '"1"', "if-none-match": '"2"'}}]}, "requests.0.headers"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks", "headers": {"If-Match": 1}}]},
     "requests.0.headers.If-Match.value"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks", "headers": ["If-Match"]}]},
     "requests.0.headers"),
    ({"requests": [{"id": "a", "method": "POST", "path": f"/users/{U}/tasks"}]}, "requests.0.body"),
    ({"requests": [{"id": "a", "method": "POST", "path": f"/users/{U}/tasks", "body": ["t"]}]}, "requests.0.body"),
    ({"requests": [{"id": "a", "method": "PATCH", "path": f"/users/{U}/tasks/{uuid.uuid4()}", "body": "x"}]},
     "requests.0.body"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks", "body": {}}]}, "requests.0.body"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks/$b"},
                   {"id": "b", "method": "POST", "path": f"/users/{U}/tasks", "body": {"title": "t"}}]},
     "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks/$nobody"}]}, "requests.0.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks"},
                   {"id": "b", "method": "GET", "path": f"/users/{U}/tasks/$a"}]}, "requests.1.path"),
    ({"requests": [{"id": "a", "method": "POST", "path": f"/users/{U}/tasks", "body": {"title": "$a"}}]},
     "requests.0.body"),
    ({"requests": [{"id": "a", "method": "POST", "path": f"/users/{U}/tasks", "body": {"title": "t"}},
                   {"id": "b", "method": "POST", "path": "/users/$a/tasks", "body": {"title": "t"}}]},
     "requests.1.path"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks", "colour": 1}]}, "requests.0.colour"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks"}], "atomic": "true"}, "atomic"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks"}], "atomic": None}, "atomic"),
    ({"requests": [{"id": "a", "method": "GET", "path": f"/users/{U}/tasks"}], "colour": 1}, "colour"),
    ({"requests": ["GET /tasks"]}, "requests.0"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "named"), MALFORMED)
def test_a_malformed_batch_is_400_naming_the_request_and_runs_nothing(client, user_id, body, named):
    text = json.dumps(body).replace(U, user_id)
    response = client.post(f"/users/{user_id}/batch", data=text, content_type="application/json")
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert named in details, details
    assert tasks_of(client, user_id) == []


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"[]", 400, "VALIDATION_ERROR"),
        (b"{", 400, "INVALID_JSON"),
        (b'{"requests": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", 400, "VALIDATION_ERROR"),
    ],
)
def test_a_batch_body_must_be_a_json_object(client, user_id, raw, status, code):
    response = client.post(f"/users/{user_id}/batch", data=raw, content_type="application/json")
    assert_error(response, status, code)
    assert_error(
        client.post(f"/users/{user_id}/batch", data=b"{}", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"
    )


def padded_batch(user, size):
    head = json.dumps({"requests": [req("a", "POST", f"/users/{user}/tasks", {"title": "big"})]}).encode()
    return head[:-1] + b" " * (size - len(head)) + b"}"


def test_a_batch_body_may_be_1_mib_and_no_more(client, user_id):
    exact = padded_batch(user_id, 1_048_576)
    assert len(exact) == 1_048_576
    assert answered(client.post(f"/users/{user_id}/batch", data=exact, content_type="application/json"))["committed"]
    over = padded_batch(user_id, 1_048_577)
    response = client.post(f"/users/{user_id}/batch", data=over, content_type="application/json")
    assert "1048576 bytes" in assert_error(response, 413, "PAYLOAD_TOO_LARGE")["message"]
    # A request inside keeps the limit of a request alone.
    big = req("a", "POST", f"/users/{user_id}/tasks", {"title": "t", "description": "x" * 70_000})
    assert answered(send(client, user_id, big))["responses"][0]["status"] == 413
    assert len(tasks_of(client, user_id)) == 1


@pytest.mark.parametrize(("size", "status"), [(1_048_576, b"200"), (1_048_577, b"413")])
def test_a_chunked_batch_body_is_held_to_1_mib_too(gunicorn_server, size, status):
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    status_line, payload = send_chunked(base, f"/users/{user}/batch", padded_batch(user, size))
    assert status_line.split()[1] == status, status_line
    assert (b'"PAYLOAD_TOO_LARGE"' in payload) == (status == b"413")


def test_a_query_string_is_part_of_the_request(client, user_id, make_task):
    make_task("a")
    make_task("b")
    answer = answered(send(client, user_id, req("page", "GET", f"/users/{user_id}/tasks?limit=1&sort=title")))
    page = answer["responses"][0]["body"]
    assert [task["title"] for task in page["items"]] == ["a"] and page["next_cursor"]
    answer = answered(send(client, user_id, req("bad", "GET", f"/users/{user_id}/tasks?colour=red")))
    assert answer["responses"][0]["status"] == 400  # as alone: the handler's own answer


def test_a_missing_user_is_the_answer_of_its_requests(client):
    missing = str(uuid.uuid4())
    answer = answered(send(client, missing, req("a", "POST", f"/users/{missing}/tasks", {"title": "t"})))
    assert answer["committed"] is False and answer["responses"][0]["body"]["error"]["code"] == "USER_NOT_FOUND"
    assert_error(send(client, "not-a-uuid", req("a", "GET", "/users/not-a-uuid/tasks")), 404, "USER_NOT_FOUND")


def post_batch_raw(client, user, body, key):
    return client.post(f"/users/{user}/batch", data=json.dumps(body), headers={"Idempotency-Key": key},
                       content_type="application/json")  # fmt: skip


def test_a_committed_batch_replays_byte_for_byte_and_creates_nothing_more(client, user_id):
    body = {"requests": [req("a", "POST", f"/users/{user_id}/tasks", {"title": "once"})]}
    first = post_batch_raw(client, user_id, body, "batch-key")
    again = post_batch_raw(client, user_id, body, "batch-key")
    assert first.status_code == again.status_code == 200 and again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(tasks_of(client, user_id)) == 1
    other = {"requests": [req("a", "POST", f"/users/{user_id}/tasks", {"title": "twice"})]}
    assert_error(post_batch_raw(client, user_id, other, "batch-key"), 422, "IDEMPOTENCY_KEY_REUSED")
    # The key is the batch's: the same key on a single create is another request (another path).
    alone = client.post(f"/users/{user_id}/tasks", json={"title": "once"}, headers={"Idempotency-Key": "batch-key"})
    assert_error(alone, 422, "IDEMPOTENCY_KEY_REUSED")


def test_a_batch_that_did_not_commit_is_processed_afresh_on_retry(client):
    user = str(uuid.uuid4())
    body = {"requests": [req("a", "POST", f"/users/{user}/tasks", {"title": "t"})]}
    assert answered(post_batch_raw(client, user, body, "k"))["committed"] is False  # no such user yet
    assert client.post("/users", json={"id": user}).status_code == 201
    again = post_batch_raw(client, user, body, "k")
    assert answered(again)["committed"] is True and "Idempotent-Replayed" not in again.headers
    replayed = post_batch_raw(client, user, body, "k")
    assert replayed.headers["Idempotent-Replayed"] == "true" and len(tasks_of(client, user)) == 1


def test_a_non_atomic_batch_with_a_key_is_stored_only_when_something_committed(client, user_id):
    failing = {"atomic": False, "requests": [req("a", "POST", f"/users/{user_id}/tasks", {"title": ""})]}
    post_batch_raw(client, user_id, failing, "nothing")
    assert "Idempotent-Replayed" not in post_batch_raw(client, user_id, failing, "nothing").headers
    partly = {
        "atomic": False,
        "requests": [failing["requests"][0], req("b", "POST", f"/users/{user_id}/tasks", {"title": "t"})],
    }
    first = post_batch_raw(client, user_id, partly, "partly")
    again = post_batch_raw(client, user_id, partly, "partly")
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_data() == first.get_data()
    assert len(tasks_of(client, user_id)) == 1


@pytest.fixture(scope="module")
def quota_client(database_url):
    app = create_app({"DATABASE_URL": database_url, "TASKS_PER_USER_MAX": "3"})
    yield app.test_client()
    close_pool(app)


def test_the_quota_holds_inside_a_batch(quota_client):
    client = quota_client
    user = client.post("/users", json={}).get_json()["id"]
    tasks = f"/users/{user}/tasks"
    creates = [req(f"t{n}", "POST", tasks, {"title": f"t{n}"}) for n in range(4)]
    answer = answered(send(client, user, *creates))
    assert answer["committed"] is False and answer["responses"][0]["id"] == "t3"
    assert answer["responses"][0]["body"]["error"] == {
        "code": "QUOTA_EXCEEDED", "message": answer["responses"][0]["body"]["error"]["message"], "details": {"limit": 3}
    }  # fmt: skip
    assert tasks_of(client, user) == []
    answer = answered(send(client, user, *creates, atomic=False))
    assert [r["status"] for r in answer["responses"]] == [201, 201, 201, 409]
    # A delete frees its place for a create later in the same batch, as two requests alone would.
    first = answer["responses"][0]["body"]["id"]
    answer = answered(
        send(client, user, req("d", "DELETE", f"{tasks}/{first}"), req("c", "POST", tasks, {"title": "c"}))
    )
    assert answer["committed"] is True and len(tasks_of(client, user)) == 3


def test_a_batchs_writes_show_in_the_change_feed(client, user_id, make_task):
    gone, kept = make_task("gone"), make_task("kept")
    since = client.get(f"/users/{user_id}/changes").get_json()["next_since"]
    tasks = f"/users/{user_id}/tasks"
    answer = answered(
        send(
            client,
            user_id,
            req("new", "POST", tasks, {"title": "new"}),
            req("del", "DELETE", f"{tasks}/{gone['id']}"),
            req("put", "PUT", f"{tasks}/{kept['id']}", {"title": "replaced"}),
        )
    )
    feed = client.get(f"/users/{user_id}/changes?since={since}").get_json()
    assert {task["title"] for task in feed["upserted"]} == {"new", "replaced"}
    assert [item["id"] for item in feed["deleted"]] == [gone["id"]]
    assert answer["responses"][2]["body"]["version"] == 2


def test_me_and_the_batchs_token_apply_to_every_request(jwt_client):
    me = str(uuid.uuid4())
    caller = bearer(me)
    assert jwt_client.post("/users", json={}, headers=caller).status_code == 201
    requests = [
        req("a", "POST", "/users/me/tasks", {"title": "mine"}),
        req("b", "GET", f"/users/{me.upper()}/tasks/$a"),
        req("c", "PATCH", f"/users/{me}/tasks/$a", {"title": "still mine"}),
    ]
    answer = answered(send(jwt_client, "me", *requests, headers=caller))
    assert [r["status"] for r in answer["responses"]] == [201, 200, 200]
    assert answer["responses"][0]["headers"]["Location"].startswith(f"/users/{me}/tasks/")
    other = str(uuid.uuid4())
    refused = send(jwt_client, "me", req("x", "GET", f"/users/{other}/tasks"), headers=caller)
    assert "requests.0.path" in assert_error(refused, 400, "VALIDATION_ERROR")["details"]
    assert_error(send(jwt_client, other, req("x", "GET", f"/users/{other}/tasks"), headers=caller), 403, "FORBIDDEN")
    assert_error(send(jwt_client, "me", req("x", "GET", "/users/me/tasks")), 401, "UNAUTHORIZED")


def test_a_referenced_id_is_only_ever_the_batchs_own_creation(client, user_id):
    other = client.post("/users", json={}).get_json()["id"]
    theirs = client.post(f"/users/{other}/tasks", json={"title": "theirs"}).get_json()
    path = f"/users/{user_id}/tasks/{theirs['id']}"
    alone = client.patch(path, json={"title": "mine now"})
    answer = answered(send(client, user_id, req("a", "PATCH", path, {"title": "mine now"})))
    assert answer["responses"][0]["status"] == alone.status_code == 404
    assert answer["responses"][0]["body"] == alone.get_json()
    # `$a` of an earlier batch names nothing in this one.
    later = send(client, user_id, req("b", "GET", f"/users/{user_id}/tasks/$a"))
    assert "requests.0.path" in assert_error(later, 400, "VALIDATION_ERROR")["details"]
    assert client.get(f"/users/{other}/tasks/{theirs['id']}").get_json()["title"] == "theirs"


def test_references_and_their_escapes():
    created = {"a": "id-a"}
    assert resolve({"x": ["$a", {"y": "$$a"}], "z": "$$$a", "w": "$a b", "n": 1}, created) == {
        "x": ["id-a", {"y": "$a"}], "z": "$$a", "w": "$a b", "n": 1
    }  # fmt: skip
    with pytest.raises(KeyError):
        resolve("$b", created)


def test_sweeps_due_inside_a_batch_run_after_it(app, monkeypatch):
    ran = []
    monkeypatch.setattr(housekeeping, "EVERY", 1)
    with app.app_context():
        with housekeeping.deferred():
            housekeeping.sweep(None, "tombstones", lambda conn, *args: ran.append(conn) or 0)
            assert ran == []
        assert len(ran) == 1 and ran[0] is not None


def test_a_guard_inside_a_guard_of_the_same_connection_hands_the_watch_back():
    """A batch's connection stays watched between its requests: each request's guard ends without ending the
    batch's."""
    watchdog, conn = Watchdog(), object()
    with watchdog.guard(conn, 60):
        with watchdog.guard(conn, 5):
            assert watchdog._deadlines[id(conn)][2] == 5
        assert watchdog._deadlines[id(conn)][2] == 60
    assert id(conn) not in watchdog._deadlines


def test_two_atomic_batches_racing_on_the_same_tasks_never_mix(database_url, tmp_path):
    """Two clients through two gunicorn workers, round after round, each sending an atomic batch that renames the
    same five tasks If-Match the version they saw: one batch wins whole and the other fails whole (412 on its first
    write), or, without If-Match, both apply whole one after the other; never a task of one beside a task of the
    other."""
    with running_gunicorn(database_url, tmp_path / "gunicorn.log") as server:
        base = server["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        tasks = [http("POST", f"{base}/users/{user}/tasks", {"title": "start"})[2]["id"] for _ in range(5)]
        version = 1
        for round_ in range(30):
            conditional = round_ % 3 != 2
            start, results = threading.Barrier(2), {}

            def run(name, version=version, conditional=conditional, start=start, results=results, round_=round_):
                guard = {"If-Match": f'"{version}"'} if conditional else {}
                requests = [
                    req(f"t{n}", "PATCH", f"/users/{user}/tasks/{task}", {"title": f"{name}-{round_}"}, **guard)
                    for n, task in enumerate(tasks)
                ]
                start.wait()
                results[name] = http("POST", f"{base}/users/{user}/batch", {"requests": requests}, timeout=30)[2]

            threads = [threading.Thread(target=run, args=(name,)) for name in ("x", "y")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            state = http("GET", f"{base}/users/{user}/tasks?limit=100")[2]["items"]
            titles, versions = {t["title"] for t in state}, {t["version"] for t in state}
            assert len(titles) == 1 and len(versions) == 1, state  # all from one batch, never a mix
            won = sorted(name for name, answer in results.items() if answer["committed"])
            for answer in results.values():
                if answer["committed"]:
                    assert [r["status"] for r in answer["responses"]] == [200] * 5
                else:
                    assert [r["status"] for r in answer["responses"]] == [412]
            if conditional:
                assert len(won) == 1 and titles == {f"{won[0]}-{round_}"}
                version += 1
            else:
                assert won == ["x", "y"] and titles <= {f"x-{round_}", f"y-{round_}"}
                version += 2
            assert versions == {version}


# --- lists, subtasks, moves and cascades inside a batch -----------------------------------------------------------


def test_a_list_its_tasks_and_a_subtask_by_reference_then_a_move(client, user_id):
    """The offline client's queue: a list, tasks in it, a subtask of one, a move; the answers as alone."""
    base = f"/users/{user_id}"
    answer = answered(
        send(
            client,
            user_id,
            req("work", "POST", f"{base}/lists", {"name": "Work"}),
            req("report", "POST", f"{base}/tasks", {"title": "Report", "list_id": "$work"}),
            req("slides", "POST", f"{base}/tasks", {"title": "Slides", "list_id": "$work"}),
            req("draft", "POST", f"{base}/tasks", {"title": "Draft", "parent_id": "$report"}),
            req("first", "POST", f"{base}/tasks/$slides/move", {"after_id": None}),
            req("home", "POST", f"{base}/lists", {"name": "Home"}),
            req("away", "POST", f"{base}/tasks/$report/move", {"list_id": "$home"}, **{"If-Match": '"1"'}),
        )
    )
    assert answer["committed"] is True
    work, report, slides, draft, first, home, away = (r["body"] for r in answer["responses"])
    assert [r["status"] for r in answer["responses"]] == [201, 201, 201, 201, 200, 201, 200]
    assert answer["responses"][0]["headers"]["Location"] == f"{base}/lists/{work['id']}"
    assert report["list_id"] == work["id"] and draft["parent_id"] == report["id"] and draft["list_id"] == work["id"]
    assert first["id"] == slides["id"] and first["position"] < report["position"]
    assert away["list_id"] == home["id"] and away["parent_id"] is None
    # The subtask followed its parent to the other list, as a move alone takes the subtree along.
    moved_draft = client.get(f"{base}/tasks/{draft['id']}").get_json()
    assert moved_draft["list_id"] == home["id"] and moved_draft["parent_id"] == report["id"]
    assert [t["title"] for t in client.get(f"{base}/tasks?list_id={work['id']}&sort=position").get_json()["items"]] == [
        "Slides"
    ]


def test_a_failing_move_rolls_back_the_list_and_tasks_created_before_it(client, user_id):
    base = f"/users/{user_id}"
    answer = answered(
        send(
            client,
            user_id,
            req("work", "POST", f"{base}/lists", {"name": "Work"}),
            req("task", "POST", f"{base}/tasks", {"title": "T", "list_id": "$work"}),
            req("cycle", "POST", f"{base}/tasks/$task/move", {"parent_id": "$task"}),
        )
    )
    assert answer["committed"] is False and len(answer["responses"]) == 1
    [failed] = answer["responses"]
    assert failed["id"] == "cycle" and failed["status"] == 400 and "parent_id" in failed["body"]["error"]["details"]
    assert client.get(f"{base}/lists").get_json() == {"items": []} and tasks_of(client, user_id) == []


def test_a_subtree_delete_in_a_batch_cascades_with_tombstones_and_frees_the_quota(quota_client):
    client = quota_client
    user = client.post("/users", json={}).get_json()["id"]
    base = f"/users/{user}"
    since = client.get(f"{base}/changes").get_json()["next_since"]
    answer = answered(
        send(
            client,
            user,
            req("root", "POST", f"{base}/tasks", {"title": "root"}),
            req("kid", "POST", f"{base}/tasks", {"title": "kid", "parent_id": "$root"}),
            req("grandkid", "POST", f"{base}/tasks", {"title": "grandkid", "parent_id": "$kid"}),
            req("done", "PATCH", f"{base}/tasks/$root", {"is_completed": True}),
            req("gone", "DELETE", f"{base}/tasks/$root"),
            req("room", "POST", f"{base}/tasks", {"title": "room again"}),
        )
    )
    assert [r["status"] for r in answer["responses"]] == [201, 201, 201, 200, 204, 201]
    ids = [r["body"]["id"] for r in answer["responses"][:3]]
    changes = client.get(f"{base}/changes?since={since}").get_json()
    assert {t["id"] for t in changes["deleted"]} == set(ids)
    assert [t["title"] for t in changes["upserted"]] == ["room again"]

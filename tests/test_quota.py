"""TASKS_PER_USER_MAX: one task more is 409 QUOTA_EXCEEDED and creates nothing, exactly, under concurrent creates."""

import threading

import pytest
from conftest import running_gunicorn
from helpers import assert_error, http

from taskapi import create_app
from taskapi.db import close_pool


@pytest.fixture(scope="module")
def small_quota_client(database_url):
    app = create_app({"DATABASE_URL": database_url, "TASKS_PER_USER_MAX": "3"})
    yield app.test_client()
    close_pool(app)


def test_one_task_over_the_quota_is_409_with_the_limit(small_quota_client):
    client = small_quota_client
    user = client.post("/users", json={}).get_json()["id"]
    tasks = [client.post(f"/users/{user}/tasks", json={"title": f"t{n}"}).get_json() for n in range(3)]
    refused = client.post(f"/users/{user}/tasks", json={"title": "one too many"})
    assert assert_error(refused, 409, "QUOTA_EXCEEDED")["details"] == {"limit": 3}
    assert client.get(f"/users/{user}/tasks").get_json()["total"] == 3
    client.delete(f"/users/{user}/tasks/{tasks[0]['id']}")
    assert client.post(f"/users/{user}/tasks", json={"title": "room again"}).status_code == 201


def test_a_missing_user_is_404_not_quota(small_quota_client):
    import uuid

    assert_error(small_quota_client.post(f"/users/{uuid.uuid4()}/tasks", json={"title": "t"}), 404, "USER_NOT_FOUND")


def test_the_quota_is_exact_under_concurrent_creates(database_url, tmp_path):
    """20 parallel creates when 5 places are left, through two gunicorn workers: exactly 5 succeed."""
    with running_gunicorn(database_url, tmp_path / "gunicorn.log", TASKS_PER_USER_MAX="25") as server:
        base = server["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        for n in range(20):
            assert http("POST", f"{base}/users/{user}/tasks", {"title": f"t{n}"})[0] == 201
        start, statuses = threading.Barrier(20), []

        def create(n):
            start.wait()
            statuses.append(http("POST", f"{base}/users/{user}/tasks", {"title": f"race {n}"})[0])

        threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201] * 5 + [409] * 15
        assert http("GET", f"{base}/users/{user}/tasks")[2]["total"] == 25

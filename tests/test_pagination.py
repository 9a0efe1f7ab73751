"""GET /users/{id}/tasks: limit, offset, the is_completed filter, total, order, and walking every page."""

import json

import pytest
from helpers import TASK_KEYS, assert_error

from taskapi.bounds import OFFSET_MAX


@pytest.fixture
def tasks(make_task):
    """25 tasks, every third completed, created oldest first."""
    return [make_task(f"task {n}", is_completed=n % 3 == 0) for n in range(25)]


def list_tasks(client, user_id, query=""):
    response = client.get(f"/users/{user_id}/tasks{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_defaults_and_order(client, user_id, tasks):
    page = list_tasks(client, user_id)
    assert set(page) == {"items", "total", "limit", "offset", "next_cursor"}  # round 2 added next_cursor
    assert (page["total"], page["limit"], page["offset"]) == (25, 20, 0)
    assert [t["id"] for t in page["items"]] == [t["id"] for t in reversed(tasks)][:20]


def test_limit_and_offset(client, user_id, tasks):
    page = list_tasks(client, user_id, "?limit=5&offset=3")
    assert (page["total"], page["limit"], page["offset"]) == (25, 5, 3)
    assert [t["id"] for t in page["items"]] == [t["id"] for t in reversed(tasks)][3:8]


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_accepted(client, user_id, tasks, limit):
    assert len(list_tasks(client, user_id, f"?limit={limit}")["items"]) == min(limit, 25)


def test_offset_past_the_end_is_an_empty_page(client, user_id, tasks):
    for offset in (25, 1000, OFFSET_MAX):
        page = list_tasks(client, user_id, f"?offset={offset}")
        assert page["items"] == [] and page["total"] == 25 and page["offset"] == offset


@pytest.mark.parametrize("offset", [OFFSET_MAX + 1, 2**63 - 1])
def test_an_offset_past_its_maximum_is_400_pointing_to_the_cursor(client, user_id, offset):
    """Round 3 caps the offset (SPEC, Bounds): deep pages are a keyset seek, never an offset scan."""
    details = assert_error(client.get(f"/users/{user_id}/tasks?offset={offset}"), 400, "VALIDATION_ERROR")["details"]
    assert "next_cursor" in details["offset"][0] and str(OFFSET_MAX) in details["offset"][0]


@pytest.mark.parametrize(("flag", "expected"), [("true", 9), ("false", 16)])
def test_is_completed_filter(client, user_id, tasks, flag, expected):
    page = list_tasks(client, user_id, f"?is_completed={flag}&limit=100")
    assert page["total"] == expected == len(page["items"])
    assert all(t["is_completed"] is (flag == "true") for t in page["items"])


def test_walking_every_page_returns_each_task_once(client, user_id, make_task):
    # Same-timestamp ties are broken by id, so build tasks fast and walk with an odd page size.
    created = {make_task(f"t{n}")["id"] for n in range(47)}
    seen = []
    for offset in range(0, 60, 7):
        seen += [t["id"] for t in list_tasks(client, user_id, f"?limit=7&offset={offset}")["items"]]
    assert len(seen) == len(created) == len(set(seen))
    assert set(seen) == created


def test_empty_list_for_a_user_without_tasks(client, user_id):
    assert list_tasks(client, user_id) == {"items": [], "total": 0, "limit": 20, "offset": 0, "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=", "limit"),
        ("?limit=1.5", "limit"),
        ("?limit=+5", "limit"),
        ("?limit=%205", "limit"),
        ("?limit=1_0", "limit"),
        ("?limit=%D9%A5", "limit"),  # an Arabic-Indic five: int() would take it
        ("?offset=-1", "offset"),
        ("?offset=9223372036854775808", "offset"),  # 2**63: does not fit in 64 bits
        ("?offset=" + "9" * 5000, "offset"),
        ("?is_completed=True", "is_completed"),
        ("?is_completed=1", "is_completed"),
        ("?is_completed=", "is_completed"),
        ("?is_completed=yes", "is_completed"),
        ("?sort=colour", "sort"),  # round 2 made `sort` a parameter; an unknown order is still 400
        ("?order=title", "order"),
        ("?limit=5&limit=6", "limit"),
    ],
)
def test_malformed_query_is_400(client, user_id, query, field):
    error = assert_error(client.get(f"/users/{user_id}/tasks{query}"), 400, "VALIDATION_ERROR")
    assert field in error["details"]


TRICKY = [
    ("Café ☕ 日本語", None),
    ('quote " backslash \\ slash /', ""),
    ("tab\tnewline\nreturn\r bell\x07 del\x7f", "line\u2028separator \U0001f600"),
    ("x" * 255, "d" * 10_000),
]


def test_list_items_are_exactly_the_tasks_a_get_answers(client, user_id):
    """A list's, a task's and the change feed's JSON of a task are made by one expression (queries.TASK_JSON) but
    reach clients by three paths: they must agree on every key, value and escape, for every kind of text."""
    for title, description in TRICKY:
        created = client.post(f"/users/{user_id}/tasks", json={"title": title, "description": description})
        assert created.status_code == 201, created.get_json()
        client.patch(created.headers["Location"], json={"is_completed": True})
    listed = client.get(f"/users/{user_id}/tasks?limit=100")
    assert listed.mimetype == "application/json"
    items = json.loads(listed.get_data())["items"]
    assert len(items) == len(TRICKY)
    synced = {task["id"]: task for task in client.get(f"/users/{user_id}/changes").get_json()["upserted"]}
    for item in items:
        assert item == client.get(f"/users/{user_id}/tasks/{item['id']}").get_json() == synced[item["id"]]
        assert list(item) == TASK_KEYS

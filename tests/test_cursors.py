"""Lists at any size: sorts with a total order, cursor walks that return each task exactly once (also while other
tasks change), cursor misuse, count=none, and keyset seeks checked with EXPLAIN."""

import json
import re
import threading
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from helpers import assert_error, connect, http

from taskapi import migrate, signing
from taskapi.queries import SORTS
from taskapi.queries.pages import page_statement

TITLES = "abcabcdeff"  # repeated titles: ties broken by id


@pytest.fixture
def seeded(client, user_id, make_task, database_url):
    """30 tasks with repeated titles, and created_at / updated_at values shared by several tasks."""
    tasks = [make_task(TITLES[n % len(TITLES)]) for n in range(30)]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with connect(database_url, autocommit=True) as conn:
        for n, task in enumerate(tasks):
            stamp = base + timedelta(minutes=n // 3)  # three tasks per timestamp
            conn.execute(
                "UPDATE tasks SET created_at = %s, updated_at = %s WHERE user_id = %s AND id = %s",
                (stamp, stamp + timedelta(minutes=(7 * n) % 11), user_id, task["id"]),
            )
    return client.get(f"/users/{user_id}/tasks?limit=100").get_json()["items"]


# The sorts of round 2, whose keys are fields of the task (round 3's are tested in test_filters.py).
ROUND_2_SORTS = ["-created_at", "created_at", "-updated_at", "updated_at", "title", "-title"]


def expected_order(tasks, sort):
    column, direction, _ = SORTS[sort]
    return [t["id"] for t in sorted(tasks, key=lambda t: (t[column], t["id"]), reverse=direction == "DESC")]


def walk(client, user_id, query, limit=7):
    ids, cursor, pages = [], None, 0
    while True:
        url = f"/users/{user_id}/tasks?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).get_json()
        assert page["offset"] is None if cursor else page["offset"] == 0
        ids += [t["id"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages


@pytest.mark.parametrize("sort", ROUND_2_SORTS)
def test_every_sort_is_a_total_order_and_a_cursor_walk_returns_each_task_once(client, user_id, seeded, sort):
    first = client.get(f"/users/{user_id}/tasks?limit=100&sort={sort}").get_json()
    assert [t["id"] for t in first["items"]] == expected_order(seeded, sort)
    ids, pages = walk(client, user_id, f"sort={sort}&count=none")
    assert ids == expected_order(seeded, sort) and pages == 5


def test_the_default_sort_is_newest_first(client, user_id, seeded):
    page = client.get(f"/users/{user_id}/tasks?limit=100").get_json()
    assert [t["id"] for t in page["items"]] == expected_order(seeded, "-created_at")


def test_a_walk_keeps_its_filter(client, user_id, seeded):
    for task in seeded[::2]:
        client.patch(f"/users/{user_id}/tasks/{task['id']}", json={"is_completed": True})
    ids, _ = walk(client, user_id, "is_completed=true&sort=title", limit=4)
    assert sorted(ids) == sorted(t["id"] for t in seeded[::2]) and len(ids) == len(set(ids))


def test_count_none_and_the_page_fields(client, user_id, make_task):
    for n in range(3):
        make_task(f"t{n}")
    page = client.get(f"/users/{user_id}/tasks?limit=2&count=none").get_json()
    assert page["total"] is None and page["offset"] == 0 and page["next_cursor"]
    last = client.get(f"/users/{user_id}/tasks?limit=2&cursor={page['next_cursor']}").get_json()
    assert last["total"] == 3 and last["offset"] is None and last["next_cursor"] is None and len(last["items"]) == 1


def test_round_one_answers_gain_only_next_cursor(client, user_id, make_task):
    make_task()
    page = client.get(f"/users/{user_id}/tasks").get_json()
    assert set(page) == {"items", "total", "limit", "offset", "next_cursor"}
    assert page["total"] == 1 and page["offset"] == 0 and page["next_cursor"] is None


def cursor_of(client, user_id, query="limit=1"):
    return client.get(f"/users/{user_id}/tasks?{query}").get_json()["next_cursor"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("&sort=title", "sort"),
        ("&is_completed=true", "is_completed"),
        ("&offset=0", "offset"),
        ("&offset=5", "offset"),
    ],
)
def test_a_cursor_with_a_different_sort_filter_or_an_offset_is_400(client, user_id, make_task, extra, named):
    make_task(), make_task()
    cursor = cursor_of(client, user_id, "limit=1&sort=-created_at")
    response = client.get(f"/users/{user_id}/tasks?cursor={cursor}{extra}")
    assert named in assert_error(response, 400, "VALIDATION_ERROR")["details"]


def test_repeating_the_cursors_own_sort_and_filter_is_fine(client, user_id, make_task):
    make_task(), make_task()
    cursor = cursor_of(client, user_id, "limit=1&sort=title&is_completed=false")
    assert client.get(f"/users/{user_id}/tasks?cursor={cursor}&sort=title&is_completed=false").status_code == 200


def edited(cursor):
    """The same cursor with another task id in it, under the original signature."""
    body, signature = cursor.split(".")
    data = signing._unb64(body)
    payload = json.loads(zlib.decompress(data[1:]) if data[:1] == signing.ZLIB else data[1:])
    payload["k"][1] = str(uuid.uuid4())
    return f"{signing._b64(signing.RAW + json.dumps(payload).encode())}.{signature}"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-3],
        lambda c: c[: len(c) // 2],
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),
        edited,
        lambda c: "garbage",
        lambda c: "a.b",
        lambda c: "%00",
        lambda c: "." * 3,
        lambda c: "x" * 2000,
        lambda c: c + "." + c,
    ],
)
def test_a_cursor_the_service_did_not_issue_is_400(client, user_id, make_task, mangle):
    make_task(), make_task()
    response = client.get(f"/users/{user_id}/tasks?cursor={mangle(cursor_of(client, user_id))}")
    assert "cursor" in assert_error(response, 400, "VALIDATION_ERROR")["details"]


def test_another_users_cursor_is_400(client, user_id, make_task):
    other = client.post("/users", json={}).get_json()["id"]
    make_task(owner=other), make_task(owner=other)
    response = client.get(f"/users/{user_id}/tasks?cursor={cursor_of(client, other)}")
    assert "cursor" in assert_error(response, 400, "VALIDATION_ERROR")["details"]


@pytest.mark.parametrize("query", ["sort=created", "sort=-id", "count=all", "count=", "sort=title&sort=-title"])
def test_malformed_list_parameters_are_400(client, user_id, query):
    assert_error(client.get(f"/users/{user_id}/tasks?{query}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("sort", ROUND_2_SORTS)
def test_a_walk_returns_every_untouched_task_once_while_others_change(gunicorn_server, sort):
    """A reader walks pages of 10 while a writer creates, patches and deletes other tasks of the same user."""
    base = gunicorn_server["url"]
    user = http("POST", base + "/users", {})[2]["id"]
    stable = [http("POST", f"{base}/users/{user}/tasks", {"title": f"s{n:03}"})[2]["id"] for n in range(150)]
    volatile = [http("POST", f"{base}/users/{user}/tasks", {"title": f"v{n:03}"})[2]["id"] for n in range(40)]
    stop = threading.Event()

    def write():
        n = 0
        while not stop.is_set() and n < len(volatile):
            http("POST", f"{base}/users/{user}/tasks", {"title": f"new{n:03}"})
            http("PATCH", f"{base}/users/{user}/tasks/{volatile[n]}", {"title": f"moved{n:03}"})
            if n % 2:
                http("DELETE", f"{base}/users/{user}/tasks/{volatile[n - 1]}")
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    seen, cursor = [], None
    try:
        while True:
            url = f"{base}/users/{user}/tasks?limit=10&count=none&sort={sort}" + (f"&cursor={cursor}" if cursor else "")
            status, _, page = http("GET", url)
            assert status == 200
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        writer.join()
    assert sorted(i for i in seen if i in set(stable)) == sorted(stable)
    duplicates = {i for i in seen if seen.count(i) > 1}
    assert not duplicates - set(volatile)  # only a task whose sort value changed may come twice


@pytest.fixture(scope="module")
def big_user(new_database):
    """A user with 5,000 tasks among neighbours with 1,500 each, analysed, so the planner chooses as it would on a real
    list; in a database of its own, so that what the rest of the suite leaves in the shared one (thousands of users
    of a few tasks each) does not decide the plans: (database URL, user)."""
    url = new_database("taskapi_test_plans")
    migrate.apply(url)
    with connect(url, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
        neighbours = [uuid.uuid4() for _ in range(4)]
        conn.execute("INSERT INTO users (id) SELECT unnest(%s::uuid[])", (neighbours,))
        for owner, count in ((user, 5000), *((neighbour, 1500) for neighbour in neighbours)):
            conn.execute(
                "INSERT INTO tasks (user_id, title, priority, created_at, updated_at) SELECT %s, 'task ' || n, n %% 5,"
                " now() - n * interval '1 second', now() - n * interval '1 second' FROM generate_series(1, %s) n",
                (owner, count),
            )
        conn.execute("ANALYZE tasks")
    return url, user


def plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_seeks_on_an_index_leading_with_user_id(big_user, sort):
    database_url, big_user = big_user
    column, _, kind = SORTS[sort]
    value = {"timestamp": datetime.now(UTC) - timedelta(seconds=2500), "text": "task 2500", "integer": 2}[kind]
    params = {
        "user_id": big_user,
        "limit": 21,
        "is_completed": None,
        "count": False,
        "after_value": value,
        "after_id": uuid.uuid4(),
        "budget": 1_000_000,
    }
    with connect(database_url) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")  # what a prepared statement may end up with
        [[plan]] = conn.execute("EXPLAIN (FORMAT JSON) " + page_statement(sort, "after", ()), params).fetchone()
    nodes = list(plan_nodes(plan["Plan"]))
    scans = [n for n in nodes if n.get("Relation Name") == "tasks"]
    assert scans and all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in scans), nodes
    seek = scans[0]
    assert seek["Index Name"].startswith("tasks_user_") and "user_id" in seek["Index Cond"]
    if sort in ROUND_2_SORTS:
        assert re.search(rf"ROW\(\(?{column}\)?(::text)?, id\) [<>] ROW\(", seek["Index Cond"]), seek["Index Cond"]
    else:
        assert re.search(r"ROW\(.*, id\) [<>] ROW\(", seek["Index Cond"]), seek["Index Cond"]
    assert not any("Offset" in json.dumps(n) for n in nodes)

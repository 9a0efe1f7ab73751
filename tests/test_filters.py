"""Round 3's list filters, sorts and search, and the labels endpoint, checked against a reference in Python.

One user's varied tasks (priorities, labels in several spellings, all-day and timed dues in several zones, completed
and open, words with accents and LIKE's special characters) are built once through the API; every filter alone and
combined, with `is_completed` and every sort, must answer exactly what the SPEC's rule (`matches`, `ordered` below)
picks from them, in that order, with that `total`. Then: cursor walks that keep their filters while other tasks
change, cursor misuse, validation, search with non-ASCII text, due dates at the edges of days on both sides of the
date line, overdue against the real clock, `/labels`, isolation between users, and the plans of the filtered page
statement on a user with 5,000 tasks (EXPLAIN: no sequential scan, an index keyed by the user or the lookup keys).
"""

import unicodedata
import uuid
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

import pytest
from helpers import assert_error, clear_of_midnight, connect

from taskapi import db, filters
from taskapi.columns import task_columns
from taskapi.queries.pages import list_tasks, page_statement
from taskapi.queries.tasks import _WRITTEN  # the columns INSERT_TASK writes
from taskapi.schemas import task_list_query_schema, task_schema

PRIORITIES = ["none", "low", "medium", "high", "urgent"]
SORTS = [
    "-created_at", "created_at", "-updated_at", "updated_at", "title", "-title", "due", "-due", "priority", "-priority",
]  # fmt: skip
ZONE = "America/New_York"  # the main user's zone: a timed due's date there is not always the date it was given with


# --- the reference: the SPEC's rules, in Python, over tasks as the API answers them --------------------------------


def fold(text):
    """Unicode case folding (what "ignoring case" means in the SPEC)."""
    return unicodedata.normalize("NFC", text).casefold()


def instant(text):
    return datetime.fromisoformat(text)


def local_due_date(task, zone):
    """The date a due counts on in the user's zone: a timed due's `at` there, an all-day due's own date."""
    due = task["due"]
    if due is None:
        return None
    if due["at"] is None:
        return date.fromisoformat(due["date"])
    return instant(due["at"]).astimezone(ZoneInfo(zone)).date()


def due_instant(task, zone):
    """What sort=due orders by and overdue compares: `at`, or the end of an all-day due's date in the user's zone."""
    due = task["due"]
    if due is None:
        return None
    if due["at"] is not None:
        return instant(due["at"])
    day_after = date.fromisoformat(due["date"]) + timedelta(days=1)
    return datetime.combine(day_after, time(0), ZoneInfo(zone)).astimezone(UTC)


def is_overdue(task, zone, now):
    moment = due_instant(task, zone)
    return not task["is_completed"] and moment is not None and moment < now


def matches(task, query, zone, now):
    """Whether `task` matches every filter of the query string `query`, by the SPEC's rules."""
    for name, value in parse_qsl(query):
        if name == "is_completed":
            ok = task["is_completed"] == (value == "true")
        elif name == "priority":
            ok = task["priority"] in value.split(",")
        elif name == "label":
            ok = {fold(label) for label in value.split(",")} <= {fold(label) for label in task["labels"]}
        elif name in ("due_from", "due_to"):
            day, bound = local_due_date(task, zone), date.fromisoformat(value)
            ok = day is not None and (day >= bound if name == "due_from" else day <= bound)
        elif name == "has_due":
            ok = (task["due"] is not None) == (value == "true")
        elif name == "overdue":
            ok = is_overdue(task, zone, now) == (value == "true")
        elif name == "q":
            title, description = fold(task["title"]), fold(task["description"] or "")
            ok = all(term in title or term in description for term in fold(value).split())
        else:
            continue  # sort, limit, count: not filters
        if not ok:
            return False
    return True


def ordered(tasks, sort, zone):
    """Ids in `sort` order, ties by id in the same direction; for due and -due, tasks without a due last."""
    descending, name = sort.startswith("-"), sort.lstrip("-")
    if name == "due":
        dated = sorted(
            (t for t in tasks if t["due"]), key=lambda t: (due_instant(t, zone), t["id"]), reverse=descending
        )
        undated = sorted((t for t in tasks if not t["due"]), key=lambda t: t["id"], reverse=descending)
        return [t["id"] for t in dated + undated]
    key = (lambda t: PRIORITIES.index(t["priority"])) if name == "priority" else (lambda t: t[name])
    return [t["id"] for t in sorted(tasks, key=lambda t: (key(t), t["id"]), reverse=descending)]


def expected(tasks, query, sort, zone=ZONE, now=None):
    now = now or datetime.now(UTC)
    return ordered([t for t in tasks if matches(t, query, zone, now)], sort, zone)


# --- building users and tasks through the API ----------------------------------------------------------------------

WORDS = ["milk", "Café", "report", "STRASSE", "garden", "Ünal"]
DESCRIPTIONS = [None, "", "buy MILK and eggs", "Große Straße, quarterly REPORT"]
LABELS = [
    ["Errands"],
    ["errands", "Work"],
    ["WORK"],
    [],
    ["Home", "work", "ERRANDS"],
    ["café"],
    ["CAFÉ", "home", "wORK"],
]
DUES = [
    None,
    {"date": "2020-06-01"},
    {"date": "2020-06-02", "time": "09:00"},  # the user's zone
    {"date": "2099-06-01"},
    {"date": "2099-06-02", "time": "23:30", "time_zone": "Asia/Tokyo"},  # 14:30Z: 10:30 on the 2nd in New York
    {"date": "2099-06-03", "time": "01:00", "time_zone": "UTC"},  # 21:00 on the 2nd in New York
    {"date": "2099-06-03"},
    {"date": "2099-06-02", "time": "23:59:59"},
    None,
    {"date": "2099-06-02"},  # ends at 04:00Z on the 3rd, in New York...
    {"date": "2099-06-03", "time": "00:00"},  # ...the very instant of this one: a tie, broken by id
]


def varied_tasks(count=40):
    """Task bodies whose fields cycle with coprime periods, so every filter has matches and misses in every mix;
    each title comes twice (ties broken by id) and starts with a fixed-width prefix (the same order in any
    collation)."""
    bodies = []
    for n in range(count):
        slot = (n * 7) % 20
        bodies.append(
            {
                "title": f"t{slot:02d} {WORDS[slot % len(WORDS)]}",
                "description": DESCRIPTIONS[n % len(DESCRIPTIONS)],
                "is_completed": n % 3 == 1,
                "due": DUES[n % len(DUES)],
                "priority": PRIORITIES[n % len(PRIORITIES)],
                "labels": LABELS[n % len(LABELS)],
            }
        )
    return bodies


def new_user(api, time_zone=None):
    response = api.post("/users", json={} if time_zone is None else {"time_zone": time_zone})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def create(api, user, body):
    response = api.post(f"/users/{user}/tasks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def all_tasks(api, user):
    page = get(api, user, "limit=100")
    assert page["next_cursor"] is None
    return page["items"]


def get(api, user, query, status=200):
    response = api.get(f"/users/{user}/tasks?{query}")
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def encode(query):
    """A query string with its values percent-encoded (non-ASCII, `%`, spaces)."""
    return "&".join(f"{name}={quote(value, safe=',')}" for name, value in parse_qsl(query, keep_blank_values=True))


@pytest.fixture(scope="module")
def api(app):
    return app.test_client()


@pytest.fixture(scope="module")
def world(api):
    """The main user (in New York) with 40 varied tasks, and another user with tasks just like the first 25."""
    main, other = new_user(api, ZONE), new_user(api, ZONE)
    bodies = varied_tasks()
    for body in bodies:
        create(api, main, body)
    for body in bodies[:25]:
        create(api, other, body)
    return {"user": main, "tasks": all_tasks(api, main), "other": other, "other_tasks": all_tasks(api, other)}


def walk(api, user, query, limit, between=None):
    """Follow next_cursor from the first page; `between(page_number, ids_so_far)` runs after each page."""
    ids, cursor, number = [], None, 0
    while True:
        page = get(api, user, f"limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["items"]) <= limit
        ids += [t["id"] for t in page["items"]]
        cursor, number = page["next_cursor"], number + 1
        if cursor is None:
            return ids
        if between:
            between(number, ids)


# --- 1 and 3: each filter alone and combined, with is_completed and every sort, and their totals --------------------

COMBINATIONS = [
    "priority=high",
    "priority=urgent,high",
    "priority=none,low,none",
    "label=errands",
    "label=ERRANDS,work",
    "label=Café",
    "label=home,café,Work",
    "label=nowhere",
    "due_from=2099-06-01",
    "due_to=2020-06-02",
    "due_from=2099-06-02&due_to=2099-06-02",
    "due_from=2099-06-03&due_to=2099-06-01",
    "has_due=true",
    "has_due=false",
    "overdue=true",
    "overdue=false",
    "q=milk",
    "q=MILK t0",
    "q=straße",
    "q=café",
    "q=ünal",
    "q=report straße",
    # pairs
    "priority=high,urgent&label=work",
    "label=errands&has_due=true",
    "q=milk&priority=low,medium",
    "due_from=2020-01-01&overdue=true",
    "overdue=false&label=home",
    "has_due=false&q=report",
    "q=t1&due_to=2099-06-02",
    # triples
    "priority=medium,high,urgent&label=work&due_from=2099-01-01",
    "q=t&label=errands&has_due=true",
    "overdue=false&has_due=true&priority=none,urgent",
]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("query", COMBINATIONS)
def test_filters_answer_exactly_the_matching_tasks_in_order(api, world, query, sort):
    for completed in ("", "&is_completed=true", "&is_completed=false"):
        full = query + completed
        page = get(api, world["user"], f"limit=100&sort={sort}&{encode(full)}")
        want = expected(world["tasks"], full, sort)
        assert [t["id"] for t in page["items"]] == want, full
        assert page["total"] == len(want) and page["next_cursor"] is None
        assert {t["user_id"] for t in page["items"]} <= {world["user"]}


def test_the_reference_is_not_trivial(world):
    """Every combination above matches some tasks and misses others (with is_completed, most of them)."""
    now = datetime.now(UTC)
    for query in COMBINATIONS:
        hits = sum(matches(t, query, ZONE, now) for t in world["tasks"])
        if query not in ("label=nowhere", "due_from=2099-06-03&due_to=2099-06-01"):
            assert 0 < hits < len(world["tasks"]), query


@pytest.mark.parametrize(
    "query", ["label=errands", "priority=high,urgent&has_due=true", "q=milk&is_completed=false", "overdue=true"]
)
def test_count_exact_totals_on_offset_and_cursor_pages(api, world, query):
    want = expected(world["tasks"], query, "due")
    first = get(api, world["user"], f"limit=2&sort=due&{query}")
    assert first["total"] == len(want) and [t["id"] for t in first["items"]] == want[:2]
    later = get(api, world["user"], f"limit=2&offset=2&sort=due&{query}")
    assert later["total"] == len(want) and [t["id"] for t in later["items"]] == want[2:4]
    following = get(api, world["user"], f"limit=2&cursor={first['next_cursor']}")
    assert following["total"] == len(want) and [t["id"] for t in following["items"]] == want[2:4]
    assert get(api, world["user"], f"limit=2&sort=due&count=none&{query}")["total"] is None


# --- 2: cursor walks keep their filters, also while other tasks change ---------------------------------------------

WALKS = [
    # (filters, sort, limit, a PATCH that touches neither a filter nor the sort)
    ("label=errands", "due", 2, {"description": "edited"}),
    ("priority=high,urgent&has_due=true", "-due", 3, {"labels": ["edited"]}),
    ("q=milk", "-priority", 2, {"labels": ["edited"]}),
    ("overdue=false&is_completed=false", "title", 3, {"description": "edited"}),
    ("due_from=2099-06-01&due_to=2099-06-03", "priority", 2, {"description": "edited"}),
    ("label=work&q=t", "-created_at", 2, {"priority": "urgent"}),
    ("has_due=false&priority=none,low,medium,high", "created_at", 2, {"title": "t99 edited"}),
    ("label=work", "-due", 2, {"description": "edited"}),
]


@pytest.mark.parametrize(("query", "sort", "limit", "harmless"), WALKS)
def test_a_filtered_walk_returns_each_match_once(api, world, query, sort, limit, harmless):
    ids = walk(api, world["user"], f"sort={sort}&count=none&{query}", limit)
    assert ids == expected(world["tasks"], query, sort)


@pytest.mark.parametrize(("query", "sort", "limit", "harmless"), WALKS)
def test_a_filtered_walk_while_other_tasks_are_created_changed_and_deleted(api, query, sort, limit, harmless):
    user = new_user(api, ZONE)
    for body in varied_tasks():
        create(api, user, body)
    tasks = all_tasks(api, user)
    now = datetime.now(UTC)
    matching = [t for t in tasks if matches(t, query, ZONE, now)]
    others = [t for t in tasks if not matches(t, query, ZONE, now)]
    assert len(matching) >= 2 * limit and len(others) > 10
    order = ordered(matching, sort, ZONE)
    sort_key = sort.lstrip("-")
    created, deleted_unseen = [], set()
    spares = iter(varied_tasks(40)[::-1])

    def change(number, seen):
        # Create two tasks (whether they match is judged below), change a task that does not match and one that
        # does (in fields outside the filters and the sort), delete one that does not match and one that does.
        created.extend(create(api, user, next(spares))["id"] for _ in range(2))
        miss = others[number % len(others)]
        changed = api.patch(f"/users/{user}/tasks/{miss['id']}", json={"description": f"edited {number}"})
        assert changed.status_code == 200 and not matches(changed.get_json(), query, ZONE, now)
        unseen = [i for i in order if i not in seen and i not in deleted_unseen]
        if unseen:
            hit = next(t for t in matching if t["id"] == unseen[-1])
            changed = api.patch(f"/users/{user}/tasks/{hit['id']}", json=harmless).get_json()
            assert matches(changed, query, ZONE, now) and (sort_key == "due" or changed[sort_key] == hit[sort_key])
        if number % 2 and len(unseen) > 2:
            assert api.delete(f"/users/{user}/tasks/{unseen[-2]}").status_code == 204
            deleted_unseen.add(unseen[-2])
        gone = others.pop((number + 1) % len(others))
        assert api.delete(f"/users/{user}/tasks/{gone['id']}").status_code == 204

    assert sort_key != "updated_at"  # a harmless PATCH still moves a task in sort=updated_at
    seen = walk(api, user, f"sort={sort}&count=none&{query}", limit, change)
    final = {t["id"]: t for t in all_tasks(api, user)}
    stable = [i for i in order if i not in deleted_unseen]
    assert [i for i in seen if i in stable] == stable  # every match that stayed, once, in order
    assert not set(seen) & deleted_unseen
    assert len(seen) == len(set(seen))
    for task_id in set(seen) - set(stable):  # only tasks created during the walk, and only matching ones
        assert task_id in created and matches(final[task_id], query, ZONE, now)
    assert deleted_unseen  # the walk did delete matches it had not reached


def first_cursor(api, user, query):
    cursor = get(api, user, f"limit=2&{query}")["next_cursor"]
    assert cursor
    return cursor


CURSOR_QUERY = "sort=due&label=errands&priority=high,none,urgent&due_from=2020-01-01&q=t"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("label=work", "label"),
        ("label=errands,work", "label"),
        ("priority=high,urgent", "priority"),
        ("due_from=2020-01-02", "due_from"),
        ("q=t0", "q"),
        ("q=t milk", "q"),
        ("due_to=2099-01-01", "due_to"),
        ("has_due=true", "has_due"),
        ("overdue=false", "overdue"),
        ("is_completed=false", "is_completed"),
        ("sort=-due", "sort"),
        ("offset=0", "offset"),
        ("offset=2", "offset"),
    ],
)
def test_a_cursor_with_another_filter_or_an_offset_is_400_naming_it(api, world, extra, named):
    cursor = first_cursor(api, world["user"], CURSOR_QUERY)
    error = assert_error(api.get(f"/users/{world['user']}/tasks?cursor={cursor}&{extra}"), 400, "VALIDATION_ERROR")
    assert named in error["details"], error


@pytest.mark.parametrize(
    "repeated",
    [
        CURSOR_QUERY,
        "label=errands",
        "due_from=2020-01-01&q=t",
        # the same filters spelled otherwise: the same canonical values
        "label=ERRANDS&priority=urgent,none,high&q=T",
        "priority=high,none,urgent,high",
    ],
)
def test_repeating_the_cursors_filters_is_fine(api, world, repeated):
    cursor = first_cursor(api, world["user"], CURSOR_QUERY)
    want = expected(world["tasks"], CURSOR_QUERY, "due")
    page = get(api, world["user"], f"limit=2&cursor={cursor}&{repeated}")
    assert [t["id"] for t in page["items"]] == want[2:4]


# --- 4: validation ---------------------------------------------------------------------------------------------------

LABELS_21 = ",".join(f"l{n}" for n in range(21))


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("priority=HIGH", "priority"),
        ("priority=high,,low", "priority"),
        ("priority=", "priority"),
        ("priority=high,", "priority"),
        ("priority=critical", "priority"),
        ("priority=high&priority=low", "priority"),
        ("label=,", "label"),
        ("label=,,,", "label"),
        ("label=", "label"),
        ("label=" + "x" * 51, "label"),
        ("label=" + LABELS_21, "label"),
        ("label=a%01b", "label"),
        ("due_from=2026-2-3", "due_from"),
        ("due_from=2026-02-30", "due_from"),
        ("due_from=", "due_from"),
        ("due_to=20260203", "due_to"),
        ("due_to=2026-02-30", "due_to"),
        ("has_due=TRUE", "has_due"),
        ("has_due=1", "has_due"),
        ("overdue=1", "overdue"),
        ("overdue=True", "overdue"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=%09%0A", "q"),
        ("q=" + "a" * 201, "q"),
        ("q=" + "é" * 201, "q"),
        ("q=milk%00", "q"),
        ("sort=due_at", "sort"),
    ],
)
def test_bad_filter_values_are_400_naming_the_parameter(api, world, query, named):
    error = assert_error(api.get(f"/users/{world['user']}/tasks?{query}"), 400, "VALIDATION_ERROR")
    assert named in error["details"], error


@pytest.mark.parametrize(
    "query",
    [
        "q=" + "a" * 200,
        "q=" + quote("é" * 200),
        "q=" + quote("ß" * 200),  # 400 characters once folded: the limit is on what the client sent
        "label=" + "x" * 50,
        "label=" + LABELS_21[: LABELS_21.rindex(",")],
        "due_from=0001-01-01&due_to=0001-01-01",
        "due_from=9999-12-31&due_to=9999-12-31",
    ],
)
def test_values_at_the_limits_are_accepted(api, world, query):
    assert get(api, world["user"], query)["items"] == []


# --- 5: search with non-ASCII text and LIKE's special characters --------------------------------------------------

SEARCHED = {
    "cafe": ("CAFÉ au lait", None),
    "strasse": ("STRASSE fegen", None),
    "strasse2": ("Straße kehren", None),
    "unal": ("ÜNAL anrufen", None),
    "report": ("Quarterly report", "send it to Ünal by Friday"),
    "percent": ("50% off", None),
    "hundreds": ("500 pieces", None),
    "underscore": ("a_b test", "x"),
    "axb": ("axb test", None),
    "backslash": ("path a\\b", None),
    "ab": ("ab", "plain"),
}


@pytest.fixture(scope="module")
def searched(api):
    user = new_user(api)
    made = {name: create(api, user, {"title": title, "description": text}) for name, (title, text) in SEARCHED.items()}
    return user, made


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("café", {"cafe"}),
        ("CAFÉ", {"cafe"}),
        ("Café AU", {"cafe"}),
        ("straße", {"strasse", "strasse2"}),
        ("STRASSE", {"strasse", "strasse2"}),
        ("ünal", {"unal", "report"}),
        ("ÜNAL", {"unal", "report"}),
        ("report ünal", {"report"}),  # one term in the title, the other in the description
        ("  friday\tQUARTERLY  ", {"report"}),
        ("report fegen", set()),
        ("50%", {"percent"}),
        ("%", {"percent"}),
        ("a_b", {"underscore"}),
        ("_", {"underscore"}),
        ("a\\b", {"backslash"}),
        ("x", {"underscore", "axb"}),  # a 1-letter term: the description "x" counts too
        ("ab", {"ab"}),  # a 2-letter term ("a_b", "axb" and "a\\b" hold no "ab")
        ("x test", {"underscore", "axb"}),  # a term with keys beside one too short for them
        ("ab plain", {"ab"}),
        ("ü", {"unal", "report"}),
        ("ss", {"strasse", "strasse2"}),
        ("ff", {"percent"}),
    ],
)
def test_q_folds_case_and_takes_like_characters_literally(api, searched, q, found):
    user, made = searched
    page = get(api, user, f"limit=100&q={quote(q)}")
    names = {name for name, task in made.items() if task["id"] in {t["id"] for t in page["items"]}}
    reference = {name for name, task in made.items() if matches(task, f"q={quote(q)}", "UTC", datetime.now(UTC))}
    assert names == found
    assert reference == found  # the reference agrees with the table


def ids(api, user, query):
    return {t["id"] for t in get(api, user, f"limit=100&{query}")["items"]}


@pytest.mark.parametrize(
    ("change", "word"),
    [
        (None, "parsnips"),
        (None, "groceries"),
        ({"title": "old shopping"}, "parsnips"),
        ({"title": "old shopping"}, "shopping"),
        ({"description": "buy turnips"}, "groceries"),
        ({"labels": ["Veg"]}, "parsnips"),
        ({"priority": "high"}, "parsnips"),
    ],
)
def test_a_task_from_before_the_search_columns_is_found_by_its_words(api, database_url, change, word):
    """A task written before migration 0006 (no folded text, no lookup keys), as it is, and after a write that gives
    it the columns of some of its fields only: `q` finds it by the words of its title and of its description."""
    user = new_user(api)
    with connect(database_url, autocommit=True) as conn:
        [task_id] = conn.execute(
            "INSERT INTO tasks (user_id, title, description) VALUES (%s, 'old groceries', 'buy parsnips') RETURNING id",
            (user,),
        ).fetchone()
    if change:
        assert api.patch(f"/users/{user}/tasks/{task_id}", json=change).status_code == 200
    assert ids(api, user, f"q={word}") == {str(task_id)}


# --- 6: due dates at the edges of days on both sides of the date line, and overdue --------------------------------

D = date(2026, 3, 10)
EDGES = {
    # user zone -> [(due as given, the date it counts on in the user's zone)]
    "Pacific/Kiritimati": [  # UTC+14
        ({"date": "2026-03-10", "time": "23:59"}, D),
        ({"date": "2026-03-11", "time": "00:00"}, D + timedelta(1)),
        ({"date": "2026-03-10", "time": "09:59", "time_zone": "UTC"}, D),  # 23:59 on the 10th there
        ({"date": "2026-03-10", "time": "10:00", "time_zone": "UTC"}, D + timedelta(1)),  # 00:00 on the 11th there
        ({"date": "2026-03-11", "time": "23:59", "time_zone": "Pacific/Pago_Pago"}, D + timedelta(3)),
        ({"date": "2026-03-10", "time": "23:59", "time_zone": "Pacific/Kiritimati"}, D),
        ({"date": "2026-03-09"}, D - timedelta(1)),
        ({"date": "2026-03-10"}, D),
        ({"date": "2026-03-11"}, D + timedelta(1)),
        (None, None),
    ],
    "Pacific/Pago_Pago": [  # UTC-11
        ({"date": "2026-03-10", "time": "23:59"}, D),
        ({"date": "2026-03-11", "time": "00:00"}, D + timedelta(1)),
        ({"date": "2026-03-11", "time": "10:59", "time_zone": "UTC"}, D),  # 23:59 on the 10th there
        ({"date": "2026-03-11", "time": "11:00", "time_zone": "UTC"}, D + timedelta(1)),  # 00:00 on the 11th there
        ({"date": "2026-03-11", "time": "00:30", "time_zone": "Pacific/Kiritimati"}, D - timedelta(1)),
        ({"date": "2026-03-11", "time": "00:00", "time_zone": "Pacific/Pago_Pago"}, D + timedelta(1)),
        ({"date": "2026-03-09"}, D - timedelta(1)),
        ({"date": "2026-03-10"}, D),
        ({"date": "2026-03-11"}, D + timedelta(1)),
        (None, None),
    ],
}


@pytest.fixture(scope="module")
def edge_users(api):
    out = {}
    for zone, table in EDGES.items():
        user = new_user(api, zone)
        out[zone] = (
            user,
            [(create(api, user, {"title": f"edge {n}", "due": due}), day) for n, (due, day) in enumerate(table)],
        )
    return out


def day(offset):
    return (D + timedelta(offset)).isoformat()


@pytest.mark.parametrize("zone", EDGES)
@pytest.mark.parametrize(
    ("bounds", "low", "high"),
    [
        (f"due_from={day(0)}&due_to={day(0)}", 0, 0),
        (f"due_from={day(1)}&due_to={day(1)}", 1, 1),
        (f"due_from={day(-1)}&due_to={day(-1)}", -1, -1),
        (f"due_from={day(0)}", 0, None),
        (f"due_to={day(0)}", None, 0),
        (f"due_from={day(1)}&due_to={day(3)}", 1, 3),
        (f"due_from={day(2)}&due_to={day(2)}", 2, 2),
        (f"due_from={day(-1)}&due_to={day(1)}", -1, 1),
    ],
)
def test_due_from_and_due_to_follow_the_date_in_the_users_zone(api, edge_users, zone, bounds, low, high):
    user, made = edge_users[zone]
    for task, counted in made:
        assert local_due_date(task, zone) == counted, task["due"]  # the table's dates are the SPEC's
    want = {
        task["id"]
        for task, counted in made
        if counted is not None
        and (low is None or counted >= D + timedelta(low))
        and (high is None or counted <= D + timedelta(high))
    }
    page = get(api, user, f"limit=100&sort=due&{bounds}")
    assert {t["id"] for t in page["items"]} == want
    assert [t["id"] for t in page["items"]] == expected([t for t, _ in made], bounds, "due", zone)


@pytest.mark.parametrize("zone", EDGES)
@pytest.mark.parametrize("sort", ["due", "-due"])
def test_sort_due_at_the_date_line(api, edge_users, zone, sort):
    user, made = edge_users[zone]
    assert [t["id"] for t in get(api, user, f"limit=100&sort={sort}")["items"]] == ordered(
        [t for t, _ in made], sort, zone
    )


def timed_at(moment):
    """A timed due at the UTC instant `moment` (whole seconds)."""
    return {"date": moment.date().isoformat(), "time": moment.strftime("%H:%M:%S"), "time_zone": "UTC"}


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
def test_overdue_against_the_real_clock(api, zone):
    clear_of_midnight(zone)
    user = new_user(api, zone)
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(ZoneInfo(zone)).date()
    cases = {
        "an hour ago": ({"due": timed_at(now - timedelta(hours=1))}, True),
        "in an hour": ({"due": timed_at(now + timedelta(hours=1))}, False),
        "an hour ago, done": ({"due": timed_at(now - timedelta(hours=1)), "is_completed": True}, False),
        "yesterday there": ({"due": {"date": (today - timedelta(1)).isoformat()}}, True),
        "today there": ({"due": {"date": today.isoformat()}}, False),
        "yesterday there, done": ({"due": {"date": (today - timedelta(1)).isoformat()}, "is_completed": True}, False),
        "tomorrow there": ({"due": {"date": (today + timedelta(1)).isoformat()}}, False),
        "no due": ({}, False),
    }
    made = {name: create(api, user, {"title": name, **body}) for name, (body, _) in cases.items()}
    overdue = {made[name]["id"] for name, (_, late) in cases.items() if late}
    assert {t["id"] for t in get(api, user, "limit=100&overdue=true")["items"]} == overdue
    assert {t["id"] for t in get(api, user, "limit=100&overdue=false")["items"]} == {
        t["id"] for t in made.values()
    } - overdue
    # Completing an overdue task takes it off the list; reopening it puts it back.
    late = made["an hour ago"]["id"]
    assert api.patch(f"/users/{user}/tasks/{late}", json={"is_completed": True}).status_code == 200
    assert {t["id"] for t in get(api, user, "limit=100&overdue=true")["items"]} == overdue - {late}
    assert api.patch(f"/users/{user}/tasks/{late}", json={"is_completed": False}).status_code == 200
    assert {t["id"] for t in get(api, user, "limit=100&overdue=true")["items"]} == overdue


def test_changing_the_users_zone_moves_dates_overdue_and_order(api):
    pago_pago = ZoneInfo("Pacific/Pago_Pago")
    clear_of_midnight("Pacific/Pago_Pago")
    user = new_user(api, "Pacific/Pago_Pago")
    today = datetime.now(UTC).astimezone(pago_pago).date()
    all_day = create(api, user, {"title": "all day", "due": {"date": today.isoformat()}})
    # 23:30 on 2099-03-10 in Pago Pago (stored with the due) is 10:30Z on the 11th: 00:30 on the 12th in Kiritimati.
    timed = create(api, user, {"title": "timed", "due": {"date": "2099-03-10", "time": "23:30"}})
    # A minute before today ends in Pago Pago (UTC-11): still to come (clear_of_midnight left two), and after today
    # ended in Kiritimati (UTC+14, 25 hours earlier).
    end_of_today = datetime.combine(today + timedelta(1), time(0), pago_pago).astimezone(UTC)
    soon = create(api, user, {"title": "soon", "due": timed_at(end_of_today - timedelta(minutes=1))})
    by_id = {t["id"]: t for t in (all_day, timed, soon)}

    def check(overdue, on_10th, on_12th, order):
        assert ids(api, user, "overdue=true") == overdue
        assert ids(api, user, "due_from=2099-03-10&due_to=2099-03-10") == on_10th
        assert ids(api, user, "due_from=2099-03-12&due_to=2099-03-12") == on_12th
        page = get(api, user, "sort=due")["items"]
        assert [t["id"] for t in page] == [t["id"] for t in order]
        assert {t["id"]: t for t in page} == by_id  # the tasks themselves do not change

    check(set(), {timed["id"]}, set(), [soon, all_day, timed])
    assert api.patch(f"/users/{user}", json={"time_zone": "Pacific/Kiritimati"}).status_code == 200
    # Today in Pago Pago has ended in Kiritimati, and the timed due falls on the 12th there.
    check({all_day["id"]}, set(), {timed["id"]}, [all_day, soon, timed])
    assert api.patch(f"/users/{user}", json={"time_zone": "Pacific/Pago_Pago"}).status_code == 200
    check(set(), {timed["id"]}, set(), [soon, all_day, timed])


@pytest.mark.parametrize(
    ("zone", "due", "counted", "queries"),
    [
        # 23:00 on the last due date in Pago Pago is 9000-01-01T10:00Z: 00:00 on 9000-01-02 in Kiritimati.
        (
            "Pacific/Kiritimati",
            {"date": "8999-12-31", "time": "23:00", "time_zone": "Pacific/Pago_Pago"},
            date(9000, 1, 2),
            ["due_from=8999-12-31", "due_from=9000-01-02", "due_from=9000-01-02&due_to=9000-01-02", "has_due=true"],
        ),
        # 00:00 on the first due date at UTC+14 is 0999-12-31T10:00Z: 22:00 on 0999-12-30 at UTC-12 (fixed zones: in
        # the year 1000 the date-line zones keep their local mean time, on the other side of the line).
        (
            "Etc/GMT+12",
            {"date": "1000-01-01", "time": "00:00", "time_zone": "Etc/GMT-14"},
            date(999, 12, 30),
            ["due_to=1000-01-01", "due_to=0999-12-30", "due_from=0999-12-30&due_to=0999-12-30", "has_due=true"],
        ),
    ],
)
def test_a_timed_due_counted_on_a_date_beyond_the_due_date_range(api, zone, due, counted, queries):
    """A due's stated date is within 1000-01-01..8999-12-31, but the date its instant falls on in the user's zone
    may be a day or two outside: due_from / due_to must still judge it by that date."""
    user = new_user(api, zone)
    task = create(api, user, {"title": "edge of time", "due": due})
    assert local_due_date(task, zone) == counted
    assert {query: ids(api, user, query) == {task["id"]} for query in queries} == dict.fromkeys(queries, True)


# --- 7: the labels endpoint --------------------------------------------------------------------------------------


def labels_of(api, user):
    response = api.get(f"/users/{user}/labels")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"items", "truncated"} and body["truncated"] is False
    return [(item["name"], item["count"]) for item in body["items"]]


def test_labels_once_each_in_the_latest_spelling_with_counts_sorted_ignoring_case(api):
    user = new_user(api)
    first = create(api, user, {"title": "a", "labels": ["Errands", "work", "zeta"]})
    create(api, user, {"title": "b", "labels": ["ERRANDS", "Alpha"]})
    create(api, user, {"title": "c", "labels": ["errands", "Work", "  home  "]})
    create(api, user, {"title": "d", "labels": ["Straße"]})
    create(api, user, {"title": "e", "labels": ["STRASSE", "beta"]})  # folds to "strasse" too
    create(api, user, {"title": "f"})
    assert labels_of(api, user) == [
        ("Alpha", 1), ("beta", 1), ("errands", 3), ("home", 1), ("STRASSE", 2), ("Work", 2), ("zeta", 1),
    ]  # fmt: skip
    # The task changed last decides the spelling.
    assert api.patch(f"/users/{user}/tasks/{first['id']}", json={"labels": ["ErRaNdS", "WORK"]}).status_code == 200
    assert labels_of(api, user) == [("Alpha", 1), ("beta", 1), ("ErRaNdS", 3), ("home", 1), ("STRASSE", 2), ("WORK", 2)]
    # Removing a label from its last task removes it; deleting a task lowers the counts.
    assert api.patch(f"/users/{user}/tasks/{first['id']}", json={"description": "touched"}).status_code == 200
    assert labels_of(api, user)[2] == ("ErRaNdS", 3)  # a change of another field keeps the spelling on that task
    assert api.delete(f"/users/{user}/tasks/{first['id']}").status_code == 204
    assert labels_of(api, user) == [("Alpha", 1), ("beta", 1), ("errands", 2), ("home", 1), ("STRASSE", 2), ("Work", 1)]


def test_labels_sorted_by_folded_name(api, world):
    items = labels_of(api, world["user"])
    names = [name for name, _ in items]
    assert names == sorted(names, key=fold) and len({fold(n) for n in names}) == len(names)
    counts = {}
    for task in world["tasks"]:
        for label in task["labels"]:
            counts[fold(label)] = counts.get(fold(label), 0) + 1
    assert {fold(name): count for name, count in items} == counts


def test_a_user_without_labels_and_an_unknown_user(api):
    user = new_user(api)
    create(api, user, {"title": "plain"})
    assert api.get(f"/users/{user}/labels").get_json() == {"items": [], "truncated": False}
    assert api.get(f"/users/{new_user(api)}/labels").get_json() == {"items": [], "truncated": False}
    assert_error(api.get(f"/users/{uuid.uuid4()}/labels"), 404, "USER_NOT_FOUND")
    assert_error(api.get(f"/users/{uuid.uuid4()}/tasks?label=x&q=y&due_from=2026-01-01"), 404, "USER_NOT_FOUND")


# --- 8: isolation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", COMBINATIONS[::3] + ["sort=due", "sort=-priority&label=work&q=milk"])
def test_no_filter_or_search_shows_another_users_task(api, world, query):
    for user, tasks in ((world["user"], world["tasks"]), (world["other"], world["other_tasks"])):
        page = get(api, user, f"limit=100&{encode(query)}")
        assert {t["user_id"] for t in page["items"]} <= {user}
        sort = dict(parse_qsl(query)).get("sort", "-created_at")
        assert [t["id"] for t in page["items"]] == expected(tasks, query, sort)
        assert walk(api, user, f"count=none&{encode(query)}", 3) == expected(tasks, query, sort)
        # The path's id in capitals names the same user: the same lookup keys, the same answer.
        assert get(api, user.upper(), f"limit=100&{encode(query)}")["items"] == page["items"]


def test_labels_and_cursors_stay_with_their_user(api, world):
    mine = dict(labels_of(api, world["user"]))
    theirs = dict(labels_of(api, world["other"]))
    assert set(map(fold, mine)) >= set(map(fold, theirs)) and mine != theirs  # overlapping, counted apart
    assert sum(theirs.values()) == sum(len(t["labels"]) for t in world["other_tasks"])
    cursor = first_cursor(api, world["other"], "label=errands")
    error = assert_error(api.get(f"/users/{world['user']}/tasks?cursor={cursor}"), 400, "VALIDATION_ERROR")
    assert "cursor" in error["details"]
    error = assert_error(
        api.get(f"/users/{world['user']}/tasks?cursor={cursor}&label=errands"), 400, "VALIDATION_ERROR"
    )
    assert "cursor" in error["details"]


# --- 9: every filter is served by an index ---------------------------------------------------------------------

BIG, NEIGHBOURS, NEIGHBOUR_TASKS = 5000, 4, 1500
# A fifth of the big user's tasks are in this list (ids the filters name; the list itself need not exist for a plan).
IN_LIST, SOME_PARENT = "0b7e4a8c-1f2d-4e3a-9b5c-6d7e8f9a0b1c", "1c8f5b9d-2a3e-4f4b-8c6d-7e8f9a0b1c2d"


def insert_tasks(conn, user, count):
    """`count` varied tasks of `user`, written straight into the table (the API is too slow for thousands), with the
    columns the service stores for them (taskapi.columns: the folded text, lookup keys and label keys included)."""
    rows = []
    for n in range(count):
        due = None
        if n % 3 == 1:
            due = {"date": (date(2026, 1, 1) + timedelta(n % 400)).isoformat()}
        elif n % 3 == 2:
            due = {"date": (date(2026, 1, 1) + timedelta(n % 400)).isoformat(), "time": "12:00", "time_zone": "UTC"}
        body = {
            "title": f"task {n}" + (" milk" if n % 100 == 7 else " bread"),  # milk: 1%, bread: 99%
            "description": "weekly errand" if n % 2 else None,
            "is_completed": n % 4 == 0,
            "due": due,
            "priority": PRIORITIES[n % 5],
            "labels": ["common"] + (["rare"] if n % 500 == 3 else []),  # rare: 0.2%
        }
        columns = task_columns(user, task_schema.load(body), "UTC")
        stamp = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
        rows.append({**columns, "user_id": user, "stamp": stamp, "done_at": stamp if n % 4 == 0 else None})
        rows[-1] |= {"list_id": IN_LIST if n % 5 == 0 else None, "position": f"a{n % 62}"}
    names = ", ".join([*_WRITTEN, "list_id", "position"])
    values = ", ".join([*(f"%({column})s::{kind}" for column, kind in _WRITTEN.items()), "%(list_id)s", "%(position)s"])
    conn.execute("INSERT INTO users (id) VALUES (%s)", (user,))
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO tasks (user_id, created_at, updated_at, completed_at, {names})"
            f" VALUES (%(user_id)s, %(stamp)s, %(stamp)s, %(done_at)s, {values})",
            rows,
        )


@pytest.fixture(scope="module")
def big_user(database_url):
    """A user with 5,000 tasks, among neighbours with 1,500 plain tasks each (so that this user is not the whole
    table, as on any real server), analysed as autovacuum leaves a table."""
    user = uuid.uuid4()
    with connect(database_url, autocommit=True) as conn:
        insert_tasks(conn, user, BIG)
        neighbours = [uuid.uuid4() for _ in range(NEIGHBOURS)]
        conn.execute("INSERT INTO users (id) SELECT unnest(%s::uuid[])", (neighbours,))
        conn.execute(
            "INSERT INTO tasks (user_id, title, search_title, title_keys, description_keys)"
            " SELECT u, 'chore ' || n, 'chore ' || n, ARRAY[mod(n, 977), mod(n, 983)], '{}'"
            " FROM unnest(%s::uuid[]) AS u, generate_series(1, %s) AS n",
            (neighbours, NEIGHBOUR_TASKS),
        )
    analyze(database_url)
    return user


@pytest.fixture(scope="module")
def vacuumed_big_user(database_url, big_user):
    """The same, analysed once more (as autovacuum would after the writes of the tests before)."""
    analyze(database_url)
    return big_user


def analyze(database_url):
    """ANALYZE in a transaction with no timeout of its own: through PgBouncer (the second pass of `make test`) a
    server connection may still carry the statement timeout a test app set on it. With a sample larger than the
    table, so that the statistics (and the plans the tests check) do not depend on which rows a sample drew."""
    with connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SET LOCAL default_statistics_target = 10000")
        conn.execute("ANALYZE tasks")


def plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


# The "now" of `overdue` in the plans: inside the span of the big user's dues, whatever the date the tests run on.
PLANNED_AT = datetime(2026, 7, 1, tzinfo=UTC)


def explain(database_url, user, query, sort="-created_at", start="first"):
    """The plan of the page statement (count=none) a request with `query` runs, with the parameters it binds, planned
    for its values as the service plans a filtered page (prepare=False)."""
    canonical = filters.canonical(task_list_query_schema.load(dict(parse_qsl(query))))
    conditions = filters.conditions(user, canonical, "UTC", PLANNED_AT)
    params = {"user_id": user, "limit": 21, "count": False, "budget": 1_000_000}
    for values in conditions.values():
        params |= values
    if start == "after":  # a keyset seek from the middle of the list, with a value of the sort's kind
        kind = {"due": datetime(2026, 6, 1, tzinfo=UTC), "priority": 2, "title": "task 2500", "position": "a5"}
        value = kind.get(sort.lstrip("-"), datetime(2026, 1, 1, 1, tzinfo=UTC))
        params |= {"after_value": value, "after_id": uuid.uuid4()}
    statement = page_statement(sort, start, tuple(sorted(conditions)))
    with connect(database_url) as conn:
        [[plan]] = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params, prepare=False).fetchone()
    return plan["Plan"]


def task_scans(plan):
    """Each scan of tasks: its type, and the (index, condition) of each index it reads."""
    out = []
    for node in plan_nodes(plan):
        if node.get("Relation Name") != "tasks":
            continue
        if node["Node Type"] == "Bitmap Heap Scan":
            used = [n for n in plan_nodes(node) if n["Node Type"] == "Bitmap Index Scan"]
        else:
            used = [node]
        out.append((node["Node Type"], [(n.get("Index Name"), n.get("Index Cond", "")) for n in used]))
    return out


INDEXED = [
    "is_completed=true",
    "priority=urgent",
    "priority=none,low,medium",
    "label=common",
    "label=rare",
    "due_from=2026-02-01&due_to=2026-02-07",
    "due_from=2026-12-01",
    "due_to=2026-01-03",
    "has_due=true",
    "has_due=false",
    "overdue=true",
    "overdue=false",
    "q=milk",
    "q=bread",
    "q=errand milk",
    "q=mi",  # no term long enough for a key: the user's tasks, in the page's order
    "q=mi errand",
    f"list_id={IN_LIST}",
    "list_id=none",
    f"parent_id={SOME_PARENT}",
    "parent_id=none",
    f"list_id={IN_LIST}&parent_id=none",
]


@pytest.mark.parametrize("sort", ["-created_at", "due", "-priority"])
@pytest.mark.parametrize("start", ["first", "after"])
@pytest.mark.parametrize("query", INDEXED)
def test_every_filter_is_served_by_an_index(database_url, big_user, query, start, sort):
    scans = task_scans(explain(database_url, big_user, query, sort, start))
    assert scans
    for node_type, indexes in scans:
        assert node_type in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), scans
        for name, condition in indexes:
            assert name == "tasks_lookup_keys_idx" or (name and "user_id" in condition), scans


@pytest.mark.parametrize("start", ["first", "after"])
@pytest.mark.parametrize("query", [f"list_id={IN_LIST}&parent_id=none", "list_id=none&parent_id=none"])
def test_a_sibling_group_is_read_in_manual_order_from_its_index(database_url, big_user, query, start):
    """sort=position within one sibling group: the group's index gives the order, so a page costs the same at any
    size of the group (no sort of the group's tasks)."""
    plan = explain(database_url, big_user, query, "position", start)
    # (The statement's last step orders the page's own rows, at most limit + 1 of them: that sort is not this one.)
    [limit] = [node for node in plan_nodes(plan) if node["Node Type"] == "Limit"]
    assert not [node for node in plan_nodes(limit) if node["Node Type"] in ("Sort", "Incremental Sort")], plan
    # The group's own index, or the list's (in position order too; with parent_id as a filter on it).
    used = {name for _, indexes in task_scans(plan) for name, _ in indexes}
    assert used in ({"tasks_user_group_idx"}, {"tasks_user_list_idx"}), task_scans(plan)


@pytest.mark.parametrize("query", ["label=rare", "q=milk", "q=milk errand", "label=rare&q=task"])
def test_rare_labels_and_words_are_found_by_the_lookup_index(database_url, vacuumed_big_user, query):
    scans = task_scans(explain(database_url, vacuumed_big_user, query))
    assert "tasks_lookup_keys_idx" in {name for _, indexes in scans for name, _ in indexes}, scans


def test_a_filtered_page_is_planned_for_its_values_on_the_services_connections(app, vacuumed_big_user):
    """The service's connections force generic plans (db.configure), which PostgreSQL applies to any statement with
    parameters, prepared or not: planned without its values, a page of a label every task carries read all 5,000
    through the lookup keys' index and sorted them (40 ms on 100,000 tasks) instead of walking the sort's index. So
    a filtered page is sent with its values in its text. Counted on the pooled connection the page ran on, in one
    transaction (so that PgBouncer keeps it on one server connection): the scans of each index."""
    canonical = filters.canonical(task_list_query_schema.load({"label": "common"}))
    conditions = filters.conditions(vacuumed_big_user, canonical, "UTC", datetime.now(UTC))
    after = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=BIG // 2), uuid.uuid4())
    count = (
        "SELECT array[pg_stat_get_xact_numscans('tasks_lookup_keys_idx'::regclass),"
        " pg_stat_get_xact_numscans('tasks_user_created_idx'::regclass)] AS scans"
    )  # this backend's counts not yet reported, which the transaction's own scans add to
    with app.app_context(), db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # what configure sets, here surely this one's
        scans_before = conn.execute(count).fetchone()["scans"]
        page = list_tasks(conn, vacuumed_big_user, "-created_at", 20, conditions, after=after, count=False)
        scans_after = conn.execute(count).fetchone()["scans"]
    assert len(page.items) == 20
    assert [b - a for a, b in zip(scans_before, scans_after, strict=True)] == [0, 1]

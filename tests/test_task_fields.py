"""Round 3's task model through the API: a user's `time_zone` (POST, PATCH /users/{id}), and a task's `due`,
`priority`, `labels` and `completed_at`: every input rule, the answered shapes, PUT/PATCH semantics, the round-2
guarantees (versions, If-Match, one JSON for GET / list / changes, idempotent replays) carrying the new fields, the
compact UTF-8 style of every answer, and how the user's zone decides when an all-day due is overdue and where it
sorts (the dates are computed from the real clock, kept clear of midnight in the zones used)."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from helpers import assert_error, bearer, clear_of_midnight

from taskapi import due

KIRITIMATI, PAGO_PAGO = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14 and UTC-11, no daylight saving


def make_user(client, **fields):
    response = client.post("/users", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def set_zone(client, user_id, zone_name):
    response = client.patch(f"/users/{user_id}", json={"time_zone": zone_name})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def task_path(user_id, task):
    return f"/users/{user_id}/tasks/{task['id']}"


def now():
    return datetime.now(UTC)


TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def titles(client, user_id, query):
    response = client.get(f"/users/{user_id}/tasks?{query}")
    assert response.status_code == 200, response.get_json()
    return [task["title"] for task in response.get_json()["items"]]


def assert_compact(body):
    """The body is JSON with no spaces between tokens and non-ASCII text written as UTF-8, not `\\u` escapes."""
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture(params=["post", "put", "patch"])
def write(request, client, user_id, make_task):
    """Write task fields one way: create (POST), replace (PUT) or change (PATCH) a task of `user_id` (or `owner`)."""

    def send(fields, owner=None):
        owner = owner or user_id
        if request.param == "post":
            return client.post(f"/users/{owner}/tasks", json={"title": "t", **fields})
        target = task_path(owner, make_task(owner=owner))
        if request.param == "put":
            return client.put(target, json={"title": "t", **fields})
        return client.patch(target, json=fields)

    return send


def written(response):
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


# --- Users: time_zone ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "zone_name"), [({}, "UTC"), ({"time_zone": "Europe/Berlin"}, "Europe/Berlin")])
def test_create_user_with_and_without_time_zone(client, fields, zone_name):
    user = make_user(client, **fields)
    assert list(user) == ["id", "created_at", "time_zone"] and user["time_zone"] == zone_name
    assert client.get(f"/users/{user['id']}").get_json() == user


BAD_ZONES = ["Mars/Olympus_Mons", "europe/berlin", "Europe/Berlin ", "", 5, None, True, ["UTC"], {"name": "UTC"}]


@pytest.mark.parametrize("zone_name", BAD_ZONES)
def test_create_user_with_a_bad_time_zone(client, zone_name):
    error = assert_error(client.post("/users", json={"time_zone": zone_name}), 400, "VALIDATION_ERROR")
    assert "time_zone" in error["details"]


def test_patch_user_time_zone(client, user_id):
    created = client.get(f"/users/{user_id}").get_json()
    response = client.patch(f"/users/{user_id.upper()}", json={"time_zone": "America/New_York"})
    assert response.status_code == 200
    assert response.get_json() == {**created, "time_zone": "America/New_York"}
    assert client.get(f"/users/{user_id}").get_json() == response.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "time_zone"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"time_zone": "UTC", "id": str(uuid.uuid4())}, "id"),
        ({"created_at": "2026-01-01T00:00:00.000000Z"}, "created_at"),
        ({"colour": "red"}, "colour"),
        *[({"time_zone": zone_name}, "time_zone") for zone_name in BAD_ZONES],
    ],
)
def test_patch_user_rejects_bad_bodies(client, user_id, body, field):
    error = assert_error(client.patch(f"/users/{user_id}", json=body), 400, "VALIDATION_ERROR")
    assert field in error["details"]
    assert client.get(f"/users/{user_id}").get_json()["time_zone"] == "UTC"


@pytest.mark.parametrize("path_id", [str(uuid.uuid4()), "not-a-uuid", "me"])
def test_patch_missing_user(client, path_id):
    assert_error(client.patch(f"/users/{path_id}", json={"time_zone": "UTC"}), 404, "USER_NOT_FOUND")


def test_patch_user_check_order(client, user_id):
    missing = f"/users/{uuid.uuid4()}"
    assert_error(client.patch(missing, json={"time_zone": "Nowhere"}), 400, "VALIDATION_ERROR")  # fields first
    assert_error(client.patch(missing, data="{x", content_type="application/json"), 400, "INVALID_JSON")
    response = client.patch(f"/users/{user_id}", data='{"time_zone": "UTC"}', content_type="text/plain")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.patch(f"/users/{user_id}", json=["time_zone"]), 400, "VALIDATION_ERROR")


def test_patch_user_under_jwt(jwt_client):
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert jwt_client.post("/users", json={}, headers=bearer(me)).status_code == 201
    assert jwt_client.post("/users", json={}, headers=bearer(other)).status_code == 201
    response = jwt_client.patch("/users/me", json={"time_zone": "Asia/Tokyo"}, headers=bearer(me))
    assert response.status_code == 200 and response.get_json()["time_zone"] == "Asia/Tokyo"
    assert jwt_client.get(f"/users/{me}", headers=bearer(me)).get_json()["time_zone"] == "Asia/Tokyo"
    for body in ({"time_zone": "Asia/Tokyo"}, {"time_zone": "Nowhere"}):  # 403 before the body is read
        assert_error(jwt_client.patch(f"/users/{other}", json=body, headers=bearer(me)), 403, "FORBIDDEN")
    assert_error(jwt_client.patch("/users/me", json={"time_zone": "UTC"}), 401, "UNAUTHORIZED")
    assert jwt_client.get("/users/me", headers=bearer(other)).get_json()["time_zone"] == "UTC"


# --- due -------------------------------------------------------------------------------------------------------------


BAD_DUES = {
    "string": "2026-12-24",
    "list": ["2026-12-24"],
    "number": 20261224,
    "boolean": True,
    "empty object": {},
    "unknown key": {"date": "2026-12-24", "when": "soon"},
    "at given": {"date": "2026-12-24", "time": "17:30", "at": "2026-12-24T16:30:00Z"},
    "missing date": {"time": "17:30", "time_zone": "UTC"},
    "null date": {"date": None},
    "date not a string": {"date": 20261224},
    "date that does not exist": {"date": "2026-02-30"},
    "date without zero padding": {"date": "2026-2-3"},
    "date without hyphens": {"date": "20261224"},
    "date with a time in it": {"date": "2026-12-24T17:30"},
    "date in other digits": {"date": "２０２６-12-24"},
    "five-digit year": {"date": "10000-01-01"},
    "time 24:00": {"date": "2026-12-24", "time": "24:00"},
    "time 23:60": {"date": "2026-12-24", "time": "23:60"},
    "time 23:59:60": {"date": "2026-12-24", "time": "23:59:60"},
    "time without zero padding": {"date": "2026-12-24", "time": "7:30"},
    "time with a fraction": {"date": "2026-12-24", "time": "17:30:00.5"},
    "time with an offset": {"date": "2026-12-24", "time": "17:30Z"},
    "time not a string": {"date": "2026-12-24", "time": 1730},
    "time in other digits": {"date": "2026-12-24", "time": "１７:30"},
    "time_zone without time": {"date": "2026-12-24", "time_zone": "Europe/Berlin"},
    "unknown zone": {"date": "2026-12-24", "time": "17:30", "time_zone": "Europe/Atlantis"},
    "zone in the wrong case": {"date": "2026-12-24", "time": "17:30", "time_zone": "europe/berlin"},
    "zone not a string": {"date": "2026-12-24", "time": "17:30", "time_zone": 1},
    "DST gap, Berlin": {"date": "2026-03-29", "time": "02:30", "time_zone": "Europe/Berlin"},
    "DST gap, New York": {"date": "2026-03-08", "time": "02:30", "time_zone": "America/New_York"},
    "before the first date": {"date": "0999-12-31"},
    "after the last date": {"date": "9000-01-01"},
    "year 0": {"date": "0000-01-01"},
    "year 9999, timed": {"date": "9999-12-31", "time": "23:00", "time_zone": "Pacific/Kiritimati"},
}


@pytest.mark.parametrize("value", BAD_DUES.values(), ids=BAD_DUES.keys())
def test_bad_due_is_400_naming_due(client, user_id, write, value):
    error = assert_error(write({"due": value}), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["due"]


@pytest.mark.parametrize(
    ("zone_name", "value"),
    [
        ("America/New_York", {"date": "2026-03-08", "time": "02:30"}),
        ("Europe/Berlin", {"date": "2026-03-29", "time": "02:00:00"}),
    ],
)
def test_dst_gap_in_the_users_zone_is_400(client, write, zone_name, value):
    owner = make_user(client, time_zone=zone_name)["id"]
    error = assert_error(write({"due": value}, owner=owner), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["due"]
    assert client.get(f"/users/{owner}/tasks?has_due=true").get_json()["total"] == 0


def test_a_rejected_create_creates_nothing(client, user_id):
    assert_error(client.post(f"/users/{user_id}/tasks", json={"title": "t", "due": {}}), 400, "VALIDATION_ERROR")
    assert client.get(f"/users/{user_id}/tasks").get_json()["total"] == 0


GOOD_DUES = [
    ({"date": "2026-12-24"}, {"date": "2026-12-24", "time": None, "time_zone": None, "at": None}),
    ({"date": "1000-01-01"}, {"date": "1000-01-01", "time": None, "time_zone": None, "at": None}),
    ({"date": "8999-12-31"}, {"date": "8999-12-31", "time": None, "time_zone": None, "at": None}),
]
# (date, time, zone) -> (answered time, at): east and west of UTC, on both sides of and inside DST changes.
TIMED = [
    ("2026-12-24", "17:30", "Europe/Berlin", "17:30:00", "2026-12-24T16:30:00Z"),
    ("2026-07-01", "17:30", "Europe/Berlin", "17:30:00", "2026-07-01T15:30:00Z"),
    ("2026-03-29", "01:59:59", "Europe/Berlin", "01:59:59", "2026-03-29T00:59:59Z"),
    ("2026-03-29", "03:00", "Europe/Berlin", "03:00:00", "2026-03-29T01:00:00Z"),
    ("2026-10-25", "02:30", "Europe/Berlin", "02:30:00", "2026-10-25T00:30:00Z"),  # repeated hour: the first one
    ("2026-10-25", "03:00", "Europe/Berlin", "03:00:00", "2026-10-25T02:00:00Z"),
    ("2026-03-08", "03:00", "America/New_York", "03:00:00", "2026-03-08T07:00:00Z"),
    ("2026-11-01", "01:30", "America/New_York", "01:30:00", "2026-11-01T05:30:00Z"),  # repeated hour: the first one
    ("2026-11-01", "02:00", "America/New_York", "02:00:00", "2026-11-01T07:00:00Z"),
    ("2026-06-16", "00:00", KIRITIMATI, "00:00:00", "2026-06-15T10:00:00Z"),
    ("2026-06-14", "23:00", PAGO_PAGO, "23:00:00", "2026-06-15T10:00:00Z"),
    ("2026-12-24", "23:59:59", "UTC", "23:59:59", "2026-12-24T23:59:59Z"),
    ("2026-12-24", "09:05:07", "Asia/Kathmandu", "09:05:07", "2026-12-24T03:20:07Z"),
    ("1000-01-01", "00:00", "UTC", "00:00:00", "1000-01-01T00:00:00Z"),
    ("8999-12-31", "23:59:59", KIRITIMATI, "23:59:59", "8999-12-31T09:59:59Z"),
]
GOOD_DUES += [
    (
        {"date": day, "time": at, "time_zone": zone_name},
        {"date": day, "time": answered, "time_zone": zone_name, "at": utc},
    )
    for day, at, zone_name, answered, utc in TIMED
]


@pytest.mark.parametrize(("value", "expected"), GOOD_DUES)
def test_good_due_is_answered_whole(client, user_id, write, value, expected):
    task = written(write({"due": value}))
    assert task["due"] == expected
    assert list(task["due"]) == ["date", "time", "time_zone", "at"]
    assert client.get(task_path(user_id, task)).get_json()["due"] == expected


@pytest.mark.parametrize(
    ("zone_name", "day", "at", "utc"),
    [
        ("America/New_York", "2026-11-01", "01:30", "2026-11-01T05:30:00Z"),  # repeated hour: the first one
        ("America/New_York", "2026-07-04", "12:00", "2026-07-04T16:00:00Z"),
        ("Europe/Berlin", "2026-10-25", "02:30", "2026-10-25T00:30:00Z"),  # repeated hour: the first one
        (KIRITIMATI, "2026-06-16", "00:00", "2026-06-15T10:00:00Z"),
    ],
)
def test_timed_due_without_zone_is_read_in_the_users_zone(client, write, zone_name, day, at, utc):
    owner = make_user(client, time_zone=zone_name)["id"]
    task = written(write({"due": {"date": day, "time": at}}, owner=owner))
    assert task["due"] == {"date": day, "time": at + ":00", "time_zone": zone_name, "at": utc}


def test_timed_due_takes_the_users_zone_at_the_write(client):
    owner = make_user(client, time_zone="America/New_York")["id"]
    stated = {"date": "2026-12-24", "time": "17:30"}
    task = written(client.post(f"/users/{owner}/tasks", json={"title": "t", "due": stated}))
    in_new_york = {**stated, "time": "17:30:00", "time_zone": "America/New_York", "at": "2026-12-24T22:30:00Z"}
    assert task["due"] == in_new_york
    set_zone(client, owner, "Europe/Berlin")
    assert client.get(task_path(owner, task)).get_json() == task  # the stored zone stays
    patched = written(client.patch(task_path(owner, task), json={"title": "other"}))
    assert patched["due"] == in_new_york
    rewritten = written(client.patch(task_path(owner, task), json={"due": stated}))  # a new write: the new zone
    assert rewritten["due"] == {**in_new_york, "time_zone": "Europe/Berlin", "at": "2026-12-24T16:30:00Z"}


def test_all_day_due_answer_does_not_follow_the_users_zone(client):
    owner = make_user(client, time_zone=KIRITIMATI)["id"]
    task = written(client.post(f"/users/{owner}/tasks", json={"title": "t", "due": {"date": "2026-12-24"}}))
    set_zone(client, owner, PAGO_PAGO)
    assert client.get(task_path(owner, task)).get_json() == task


def test_put_without_due_resets_it_and_patch_clears_or_keeps_it(client, user_id, make_task):
    stated = {"date": "2026-12-24", "time": "17:30", "time_zone": "Europe/Berlin"}
    task = make_task(due=stated)
    kept = written(client.patch(task_path(user_id, task), json={"title": "renamed", "labels": ["x"]}))
    assert kept["due"] == task["due"]
    assert written(client.put(task_path(user_id, task), json={"title": "t"}))["due"] is None
    written(client.patch(task_path(user_id, task), json={"due": stated}))
    assert written(client.patch(task_path(user_id, task), json={"due": None}))["due"] is None
    assert client.get(task_path(user_id, task)).get_json()["due"] is None
    assert make_task(due=None)["due"] is None and make_task()["due"] is None


# --- priority ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", ["none", "low", "medium", "high", "urgent"])
def test_each_priority(client, user_id, write, priority):
    task = written(write({"priority": priority}))
    assert task["priority"] == priority
    assert client.get(task_path(user_id, task)).get_json()["priority"] == priority


@pytest.mark.parametrize("priority", ["HIGH", "High", " high", "", "critical", 1, 0, None, True, ["high"]])
def test_bad_priority(write, priority):
    error = assert_error(write({"priority": priority}), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["priority"]


def test_priority_default_put_resets_patch_keeps(client, user_id, make_task):
    assert make_task()["priority"] == "none"
    task = make_task(priority="urgent")
    assert written(client.patch(task_path(user_id, task), json={"title": "x"}))["priority"] == "urgent"
    assert written(client.put(task_path(user_id, task), json={"title": "x"}))["priority"] == "none"


# --- labels --------------------------------------------------------------------------------------------------------

GOOD_LABELS = [
    ([], []),
    ([" a ", "\tb\n", "\u3000c\u00a0"], ["a", "b", "c"]),
    (["Zeta", "alpha", "Mid", "two words"], ["Zeta", "alpha", "Mid", "two words"]),
    ([f"l{i}" for i in range(20)], [f"l{i}" for i in range(20)]),
    (["x" * 50, " " + "y" * 50 + " "], ["x" * 50, "y" * 50]),
    (["🏷", "𝔘𝔫𝔦" * 16 + "🏷🏷", "Café", "Straße"], ["🏷", "𝔘𝔫𝔦" * 16 + "🏷🏷", "Café", "Straße"]),  # 50 astral
]


@pytest.mark.parametrize(("labels", "expected"), GOOD_LABELS)
def test_good_labels(client, user_id, write, labels, expected):
    task = written(write({"labels": labels}))
    assert task["labels"] == expected
    assert client.get(task_path(user_id, task)).get_json()["labels"] == expected


BAD_LABELS = {
    "21 labels": [f"l{i}" for i in range(21)],
    "51 characters": ["x" * 51],
    "51 astral characters": ["🏷" * 51],
    "empty": [""],
    "blank": ["   "],
    "comma": ["a,b"],
    "comma alone": [","],
    "tab inside": ["a\tb"],
    "newline inside": ["a\nb"],
    "DEL": ["a\x7fb"],
    "C1 control": ["a\x85b"],
    "NUL": ["a\x00b"],
    "number": [1],
    "null": [None],
    "boolean": [True],
    "list": [["a"]],
    "object": [{"name": "a"}],
    "not a list": "a",
    "null labels": None,
    "object labels": {"a": 1},
    "same but case": ["Home", "HOME"],
    "same under case folding": ["Straße", "STRASSE"],
    "same once trimmed": [" a", "a "],
    "same, later in the list": ["a", "b", "c", "B"],
}


@pytest.mark.parametrize("labels", BAD_LABELS.values(), ids=BAD_LABELS.keys())
def test_bad_labels(write, labels):
    error = assert_error(write({"labels": labels}), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["labels"]


def test_labels_default_put_resets_patch_keeps(client, user_id, make_task):
    assert make_task()["labels"] == []
    task = make_task(labels=["b", "A"])
    assert written(client.patch(task_path(user_id, task), json={"priority": "low"}))["labels"] == ["b", "A"]
    assert written(client.put(task_path(user_id, task), json={"title": "x"}))["labels"] == []


# --- completed_at --------------------------------------------------------------------------------------------------


def timed_write(send, *args, **kwargs):
    """A write's task, and the interval it ran in."""
    start = now()
    task = written(send(*args, **kwargs))
    return task, start, now()


def test_completed_at_follows_is_completed(client, user_id, make_task):
    task = make_task()
    assert task["completed_at"] is None
    path = task_path(user_id, task)
    done, start, end = timed_write(client.patch, path, json={"is_completed": True})
    assert start <= instant(done["completed_at"]) <= end and done["completed_at"] == done["updated_at"]
    assert TIMESTAMP.fullmatch(done["completed_at"])
    for body in ({"title": "renamed"}, {"is_completed": True}, {"labels": ["x"]}):  # writes leaving it true
        assert written(client.patch(path, json=body))["completed_at"] == done["completed_at"]
    kept = written(client.put(path, json={"title": "t", "is_completed": True}))
    assert kept["completed_at"] == done["completed_at"]
    assert client.get(path).get_json()["completed_at"] == done["completed_at"]
    assert written(client.patch(path, json={"is_completed": False}))["completed_at"] is None
    assert written(client.patch(path, json={"title": "open"}))["completed_at"] is None
    again, start, end = timed_write(client.patch, path, json={"is_completed": True})
    assert start <= instant(again["completed_at"]) <= end and again["completed_at"] > done["completed_at"]
    assert written(client.put(path, json={"title": "t"}))["completed_at"] is None  # PUT resets is_completed


def test_completed_at_set_by_create_and_put(client, user_id, make_task):
    task, start, end = timed_write(client.post, f"/users/{user_id}/tasks", json={"title": "t", "is_completed": True})
    assert start <= instant(task["completed_at"]) <= end and task["completed_at"] == task["created_at"]
    path = task_path(user_id, make_task())
    task, start, end = timed_write(client.put, path, json={"title": "t", "is_completed": True})
    assert start <= instant(task["completed_at"]) <= end and task["completed_at"] == task["updated_at"]


@pytest.mark.parametrize("value", [None, "2026-01-07T09:30:00.123456Z"])
def test_completed_at_is_read_only(write, value):
    error = assert_error(write({"is_completed": True, "completed_at": value}), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["completed_at"]


# --- strict types and unknown fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"is_completed": "true", "priority": "high"}, ["is_completed"]),
        ({"is_completed": 1, "labels": ["ok"]}, ["is_completed"]),
        ({"priority": 3, "labels": "a,b", "due": "2026-12-24"}, ["priority", "labels", "due"]),
        ({"due": {"date": "2026-12-24"}, "tags": ["a"]}, ["tags"]),
        ({"labels": ["a"], "list_name": "x", "colour": "red"}, ["list_name", "colour"]),
    ],
)
def test_strict_types_and_unknown_fields(write, fields, named):
    error = assert_error(write(fields), 400, "VALIDATION_ERROR")
    assert sorted(error["details"]) == sorted(named)


# --- round 2's guarantees with the new fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"labels": ["new"]},
        {"due": {"date": "2027-01-01"}},
        {"due": {"date": "2027-01-01", "time": "09:00", "time_zone": "Asia/Tokyo"}},
        {"due": None},
        {"priority": "low"},
    ],
)
def test_version_and_if_match_with_the_new_fields(client, user_id, make_task, change):
    task = make_task(labels=["old"], due={"date": "2026-12-24"}, priority="high")
    path = task_path(user_id, task)
    since = client.get(f"/users/{user_id}/changes").get_json()["next_since"]
    assert client.get(path).headers["ETag"] == f'"{task["version"]}"'
    stale = {"If-Match": f'"{task["version"] + 1}"'}
    response = client.patch(path, json=change, headers=stale)
    assert_error(response, 412, "PRECONDITION_FAILED")
    assert response.headers["ETag"] == f'"{task["version"]}"'
    assert client.get(path).get_json() == task
    response = client.patch(path, json=change, headers={"If-Match": f'"{task["version"]}"'})
    assert response.status_code == 200
    changed = response.get_json()
    assert changed["version"] != task["version"] and response.headers["ETag"] == f'"{changed["version"]}"'
    assert {key: changed[key] for key in change} != {key: task[key] for key in change}
    assert client.get(path).get_json() == changed
    assert client.get(f"/users/{user_id}/changes?since={since}").get_json()["upserted"] == [changed]


def test_one_task_one_json_in_get_list_and_changes(client, user_id, make_task):
    fields = {
        "description": "Grüße ☕",
        "due": {"date": "2026-12-24", "time": "17:30", "time_zone": "Europe/Berlin"},
        "priority": "urgent",
        "labels": ["Straße", "🏷"],
        "is_completed": True,
    }
    task = make_task("Café", **fields)
    make_task("other", due={"date": "2026-12-25"})
    raw = client.get(task_path(user_id, task)).get_data()
    assert json.loads(raw) == task
    listed = client.get(f"/users/{user_id}/tasks").get_data()
    changed = client.get(f"/users/{user_id}/changes").get_data()
    assert [item for item in json.loads(listed)["items"] if item["id"] == task["id"]] == [task]
    assert [item for item in json.loads(changed)["upserted"] if item["id"] == task["id"]] == [task]
    assert raw in listed and raw in changed  # byte for byte


def test_idempotent_replay_with_the_new_fields(client):
    owner = make_user(client, time_zone="America/New_York")["id"]
    body = {"title": "t", "due": {"date": "2026-12-24", "time": "17:30"}, "labels": ["Ünï", "🏷"], "priority": "low"}
    headers = {"Idempotency-Key": "fields-1"}
    first = client.post(f"/users/{owner}/tasks", json=body, headers=headers)
    assert first.status_code == 201 and first.get_json()["due"]["time_zone"] == "America/New_York"
    set_zone(client, owner, "Europe/Berlin")
    again = client.post(f"/users/{owner}/tasks", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert client.get(f"/users/{owner}/tasks").get_json()["total"] == 1


def test_rejected_due_is_not_stored_under_its_idempotency_key(client):
    owner = make_user(client, time_zone="America/New_York")["id"]
    body, headers = {"title": "t", "due": {"date": "2026-03-08", "time": "02:30"}}, {"Idempotency-Key": "gap"}
    assert_error(client.post(f"/users/{owner}/tasks", json=body, headers=headers), 400, "VALIDATION_ERROR")
    set_zone(client, owner, "Europe/Berlin")  # 02:30 exists there on that day
    response = client.post(f"/users/{owner}/tasks", json=body, headers=headers)
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert response.get_json()["due"]["at"] == "2026-03-08T01:30:00Z"


# --- one JSON style -----------------------------------------------------------------------------------------------


RICH = {"description": "Grüße ☕ 𝔘", "due": {"date": "2026-12-24", "time": "17:30"}, "labels": ["Straße", "🏷"]}
# Each kind of answer: (method, path, body), for a user holding a rich task ({task}) and an all-day one.
ANSWERS = {
    "POST task": ("post", "/users/{user}/tasks", {"title": "Ü", **RICH}),
    "GET task": ("get", "/users/{user}/tasks/{task}", None),
    "list page": ("get", "/users/{user}/tasks", None),
    "changes": ("get", "/users/{user}/changes", None),
    "error": ("patch", "/users/{user}/tasks/{task}", {"labels": ["Straße", "STRASSE"]}),
    "POST user": ("post", "/users", {"time_zone": "Europe/Berlin"}),
    "GET user": ("get", "/users/{user}", None),
    "PATCH user": ("patch", "/users/{user}", {"time_zone": "Asia/Tokyo"}),
    "labels": ("get", "/users/{user}/labels", None),
}


@pytest.mark.parametrize("kind", ANSWERS)
def test_every_answer_is_compact_utf8(client, user_id, make_task, kind):
    task = make_task("Café", **RICH)
    make_task("All day", due={"date": "2026-12-25"}, labels=["Été"])
    method, path, body = ANSWERS[kind]
    response = getattr(client, method)(path.format(user=user_id, task=task["id"]), json=body)
    assert response.status_code < 500 and response.mimetype == "application/json"
    raw = response.get_data()
    if kind not in ("POST user", "GET user", "PATCH user"):
        assert "Straße".encode() in raw  # non-ASCII text is there, to be written as UTF-8
    assert_compact(raw)


# --- the user's zone decides all-day dues -------------------------------------------------------------------------


def test_all_day_due_is_overdue_once_its_date_ended_in_the_users_zone(client):
    """Dues around today in Kiritimati and in Pago Pago (a day or two behind): which have ended flips with the zone."""
    clear_of_midnight(KIRITIMATI, PAGO_PAGO)
    owner = make_user(client, time_zone=KIRITIMATI)["id"]
    today_k, today_p = due.today(KIRITIMATI, now()), due.today(PAGO_PAGO, now())
    assert today_k - today_p in (timedelta(days=1), timedelta(days=2))  # 25 hours apart
    days = sorted({today_k + timedelta(days=n) for n in (-1, 0, 1)} | {today_p + timedelta(days=n) for n in (-1, 0)})
    for day in days:
        written(client.post(f"/users/{owner}/tasks", json={"title": day.isoformat(), "due": {"date": str(day)}}))
    done = {"title": "done", "due": {"date": str(today_p - timedelta(days=5))}, "is_completed": True}
    written(client.post(f"/users/{owner}/tasks", json=done))
    written(client.post(f"/users/{owner}/tasks", json={"title": "no due"}))
    past = (now() - timedelta(minutes=5)).astimezone(UTC)
    timed = {"date": past.date().isoformat(), "time": past.strftime("%H:%M:%S"), "time_zone": "UTC"}
    written(client.post(f"/users/{owner}/tasks", json={"title": "timed, passed", "due": timed}))

    def overdue(today):
        ended = {str(day) for day in days if day < today} | {"timed, passed"}
        return ended, {str(day) for day in days} - ended | {"done", "no due"}

    for zone_name, today in ((KIRITIMATI, today_k), (PAGO_PAGO, today_p), (KIRITIMATI, today_k)):
        set_zone(client, owner, zone_name)
        ended, not_yet = overdue(today)
        assert set(titles(client, owner, "overdue=true")) == ended, zone_name
        assert set(titles(client, owner, "overdue=false")) == not_yet, zone_name
        yesterday_in_kiritimati = str(today_k - timedelta(days=1))
        assert (yesterday_in_kiritimati in ended) == (zone_name == KIRITIMATI)  # the flip
        assert str(today_k) not in ended and str(today_k + timedelta(days=1)) not in ended


def test_all_day_due_sorts_at_the_end_of_its_date_in_the_users_zone(client):
    owner = make_user(client)["id"]
    tasks = {
        "all day": {"date": "2026-06-15"},
        "timed": {"date": "2026-06-15", "time": "20:00", "time_zone": "UTC"},  # 2026-06-15T20:00Z in every zone
        "later": {"date": "2026-06-17", "time": "00:00", "time_zone": "UTC"},
        "no due": None,
    }
    for title, value in tasks.items():
        written(client.post(f"/users/{owner}/tasks", json={"title": title, "due": value}))
    # The all-day due ends at 2026-06-16T00:00Z in UTC, 2026-06-15T10:00Z in Kiritimati, 2026-06-16T11:00Z in Pago Pago.
    for zone_name, order in [
        ("UTC", ["timed", "all day", "later"]),
        (KIRITIMATI, ["all day", "timed", "later"]),
        (PAGO_PAGO, ["timed", "all day", "later"]),
        (KIRITIMATI, ["all day", "timed", "later"]),
    ]:
        set_zone(client, owner, zone_name)
        assert titles(client, owner, "sort=due") == [*order, "no due"], zone_name
        assert titles(client, owner, "sort=-due") == [*reversed(order), "no due"], zone_name


def test_all_day_due_written_after_a_zone_change_sorts_in_the_new_zone(client):
    owner = make_user(client, time_zone=KIRITIMATI)["id"]
    set_zone(client, owner, PAGO_PAGO)
    written(client.post(f"/users/{owner}/tasks", json={"title": "all day", "due": {"date": "2026-06-15"}}))
    # Between the ends of 2026-06-15 in Kiritimati (2026-06-15T10:00Z) and in Pago Pago (2026-06-16T11:00Z).
    stated = {"date": "2026-06-16", "time": "10:30", "time_zone": "UTC"}
    written(client.post(f"/users/{owner}/tasks", json={"title": "timed", "due": stated}))
    assert titles(client, owner, "sort=due") == ["timed", "all day"]
    set_zone(client, owner, KIRITIMATI)
    assert titles(client, owner, "sort=due") == ["all day", "timed"]

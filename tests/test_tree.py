"""Subtasks, manual order and moves (issue 21): where a new task goes, what a move may do and takes along, the
sibling filters and sort=position, the cascades of deletion and completion, renumbering, tasks from before
positions, isolation between users, and concurrent moves and creates through real gunicorn workers."""

import json
import multiprocessing
import random
import string
import time
import uuid
from collections import Counter
from urllib.parse import quote

import pytest
from conftest import running_gunicorn
from helpers import assert_error, connect, http

from taskapi import columns, create_app, positions, queries
from taskapi.db import close_pool, connection
from taskapi.schemas import task_schema


def create(client, user_id, title="A task", **fields):
    response = client.post(f"/users/{user_id}/tasks", json={"title": title, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_list(client, user_id, name="A list"):
    response = client.post(f"/users/{user_id}/lists", json={"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def move(client, user_id, task_id, headers=None, **body):
    return client.post(f"/users/{user_id}/tasks/{task_id}/move", json=body, headers=headers or {})


def moved(client, user_id, task_id, **body):
    response = move(client, user_id, task_id, **body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def fetch(client, user_id, task_id):
    response = client.get(f"/users/{user_id}/tasks/{task_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def walk(client, user_id, query, limit=100):
    """Every task a cursor walk of `query` returns, in its order."""
    items, url = [], f"/users/{user_id}/tasks?{query}&limit={limit}"
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        url = f"/users/{user_id}/tasks?limit={limit}&cursor={quote(page['next_cursor'])}"


def group(client, user_id, list_id=None, parent_id=None, limit=100):
    """A sibling group in manual order, as a client reads it."""
    query = f"list_id={list_id or 'none'}&parent_id={parent_id or 'none'}&sort=position"
    return walk(client, user_id, query, limit)


def ids(tasks):
    return [task["id"] for task in tasks]


def assert_strictly_ordered(tasks):
    """Positions distinct and increasing as bytes: the group's manual order needs no tie-break."""
    keys = [task["position"].encode() for task in tasks]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), keys


def changes(client, user_id, since=None, limit=1000):
    query = f"limit={limit}" + (f"&since={quote(since)}" if since else "")
    response = client.get(f"/users/{user_id}/changes?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def now(client, user_id):
    """A sync token for the user's state as it is."""
    since = None
    while True:
        answer = changes(client, user_id, since)
        since = answer["next_since"]
        if not answer["has_more"]:
            return since


def changed(client, user_id, since):
    """What /changes says happened after `since`: {id: task} upserted, and the set of deleted ids."""
    answer = changes(client, user_id, since)
    assert answer["has_more"] is False
    return {task["id"]: task for task in answer["upserted"]}, {gone["id"] for gone in answer["deleted"]}


def nest(client, user_id, levels, **fields):
    """A chain of `levels` tasks, each the child of the one before; the first is top level."""
    chain = [create(client, user_id, "level 1", **fields)]
    for level in range(2, levels + 1):
        chain.append(create(client, user_id, f"level {level}", parent_id=chain[-1]["id"]))
    return chain


def other_user(client):
    return client.post("/users", json={}).get_json()["id"]


# --- Creating in a place -----------------------------------------------------------------------------------------


def test_new_tasks_go_last_among_their_siblings(client, user_id):
    work = make_list(client, user_id)
    top = [create(client, user_id, f"top {n}", list_id=work["id"]) for n in range(4)]
    assert_strictly_ordered(top)
    assert all(task["list_id"] == work["id"] and task["parent_id"] is None for task in top)
    children = [create(client, user_id, f"child {n}", parent_id=top[1]["id"]) for n in range(3)]
    assert_strictly_ordered(children)
    # A subtask given no list_id is in its parent's list.
    assert all(child["list_id"] == work["id"] and child["parent_id"] == top[1]["id"] for child in children)
    loose = [create(client, user_id, f"loose {n}") for n in range(3)]
    assert_strictly_ordered(loose)
    assert all(task["list_id"] is None for task in loose)
    assert ids(group(client, user_id, work["id"])) == ids(top)
    assert ids(group(client, user_id, work["id"], top[1]["id"])) == ids(children)
    assert ids(group(client, user_id)) == ids(loose)
    # Giving the parent's own list explicitly is the same as giving none.
    same = create(client, user_id, "explicit", list_id=work["id"], parent_id=top[1]["id"])
    assert ids(group(client, user_id, work["id"], top[1]["id"])) == ids(children) + [same["id"]]


@pytest.mark.parametrize("elsewhere", ["another list", "no list"])
def test_a_subtask_given_another_list_than_its_parents_is_400_parent_id(client, user_id, elsewhere):
    home, other = make_list(client, user_id, "home"), make_list(client, user_id, "other")
    parent = create(client, user_id, list_id=home["id"])
    given = other["id"] if elsewhere == "another list" else None
    body = {"title": "child", "list_id": given, "parent_id": parent["id"]}
    error = assert_error(client.post(f"/users/{user_id}/tasks", json=body), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"parent_id"}
    assert group(client, user_id, home["id"], parent["id"]) == []


def test_five_levels_nest_and_a_sixth_is_400_parent_id(client, user_id):
    chain = nest(client, user_id, 5)
    assert [task["parent_id"] for task in chain[1:]] == ids(chain[:-1])
    response = client.post(f"/users/{user_id}/tasks", json={"title": "level 6", "parent_id": chain[-1]["id"]})
    assert set(assert_error(response, 400, "VALIDATION_ERROR")["details"]) == {"parent_id"}
    assert group(client, user_id, None, chain[-1]["id"]) == []


def add_children(app, user_id, parent_id, count):
    """`count` subtasks of `parent_id`, made in-process by the create handler's own steps (place_new_task, then
    insert_task) in one transaction: through the API, 1,000 creates took 30 s on the tests' loaded 2-core machine."""
    user = uuid.UUID(user_id)
    with app.app_context(), connection() as conn, conn.transaction():
        zone = queries.lock_user_zone(conn, user)
        for n in range(count):
            fields = task_schema.load({"title": f"child {n}", "parent_id": parent_id})
            place = queries.place_new_task(conn, user, fields)
            assert queries.insert_task(conn, user, columns.task_columns(user, fields, zone), place).task is not None


def test_a_task_holds_a_thousand_children_and_the_next_is_400_parent_id(app, client, user_id):
    parent = create(client, user_id, "parent")
    add_children(app, user_id, parent["id"], 999)
    create(client, user_id, "the 1,000th", parent_id=parent["id"])
    response = client.post(f"/users/{user_id}/tasks", json={"title": "one too many", "parent_id": parent["id"]})
    assert set(assert_error(response, 400, "VALIDATION_ERROR")["details"]) == {"parent_id"}
    children = group(client, user_id, None, parent["id"])
    assert len(children) == 1000
    assert_strictly_ordered(children)
    # Nor can a move bring a 1,001st child; after one leaves, one may come.
    stranger = create(client, user_id, "stranger")
    refused = move(client, user_id, stranger["id"], parent_id=parent["id"])
    assert set(assert_error(refused, 400, "VALIDATION_ERROR")["details"]) == {"parent_id"}
    moved(client, user_id, children[0]["id"], parent_id=None)
    assert moved(client, user_id, stranger["id"], parent_id=parent["id"])["parent_id"] == parent["id"]


@pytest.mark.parametrize("field", ["list_id", "parent_id"])
def test_a_create_naming_nothing_of_the_users_is_400_the_same_for_anothers_id(client, user_id, field):
    stranger = other_user(client)
    theirs = make_list(client, stranger)["id"] if field == "list_id" else create(client, stranger)["id"]
    answers = []
    for given in (theirs, str(uuid.uuid4())):
        response = client.post(f"/users/{user_id}/tasks", json={"title": "t", field: given})
        assert set(assert_error(response, 400, "VALIDATION_ERROR")["details"]) == {field}
        answers.append(response.data)
    assert answers[0] == answers[1]
    assert walk(client, user_id, "sort=position") == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("field", ["list_id", "parent_id"])
@pytest.mark.parametrize("value", ["own", None])
def test_put_and_patch_naming_the_place_are_400_pointing_to_move(client, user_id, method, field, value):
    work = make_list(client, user_id)
    task = create(client, user_id, list_id=work["id"])
    if value == "own":
        value = work["id"] if field == "list_id" else create(client, user_id, list_id=work["id"])["id"]
    response = client.open(f"/users/{user_id}/tasks/{task['id']}", method=method, json={"title": "t", field: value})
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [field] and "move" in " ".join(error["details"][field])
    assert fetch(client, user_id, task["id"]) == task


# --- Moving ------------------------------------------------------------------------------------------------------


def test_move_first_after_a_sibling_and_last_within_a_group(client, user_id):
    work = make_list(client, user_id)
    a, b, c, d = (create(client, user_id, name, list_id=work["id"]) for name in "abcd")
    answer = move(client, user_id, d["id"], after_id=None)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["version"] == d["version"] + 1 and answer.headers["ETag"] == f'"{body["version"]}"'
    assert (body["list_id"], body["parent_id"]) == (work["id"], None)
    assert body == fetch(client, user_id, d["id"])
    assert ids(group(client, user_id, work["id"])) == ids([d, a, b, c])
    moved(client, user_id, a["id"], after_id=b["id"])
    assert ids(group(client, user_id, work["id"])) == ids([d, b, a, c])
    moved(client, user_id, d["id"])  # after_id absent: last
    assert ids(group(client, user_id, work["id"])) == ids([b, a, c, d])
    moved(client, user_id, c["id"], after_id=d["id"])
    moved(client, user_id, b["id"], after_id=c["id"])
    ordered = group(client, user_id, work["id"])
    assert ids(ordered) == ids([a, d, c, b])
    assert_strictly_ordered(ordered)


def test_a_move_to_another_list_takes_the_subtree_along(client, user_id):
    home, away = make_list(client, user_id, "home"), make_list(client, user_id, "away")
    root = create(client, user_id, "root", list_id=home["id"])
    kids = [create(client, user_id, f"kid {n}", parent_id=root["id"]) for n in range(3)]
    grandkids = [create(client, user_id, f"grandkid {n}", parent_id=kids[1]["id"]) for n in range(2)]
    great = create(client, user_id, "great", parent_id=grandkids[0]["id"])
    middle = kids[1]  # the grandchildren's parent
    moved(client, user_id, kids[2]["id"], after_id=None)  # the children's order is not their creation order
    kids = [kids[2], kids[0], kids[1]]
    bystander = create(client, user_id, "bystander", list_id=home["id"])
    already = create(client, user_id, "already there", list_id=away["id"])
    subtree = [root, *kids, *grandkids, great]
    before = {task["id"]: fetch(client, user_id, task["id"]) for task in subtree}
    since = now(client, user_id)

    body = moved(client, user_id, root["id"], list_id=away["id"])
    assert (body["list_id"], body["parent_id"]) == (away["id"], None)
    assert ids(group(client, user_id, away["id"])) == [already["id"], root["id"]]
    assert ids(group(client, user_id, home["id"])) == [bystander["id"]]
    assert ids(group(client, user_id, away["id"], root["id"])) == ids(kids)
    assert ids(group(client, user_id, away["id"], middle["id"])) == ids(grandkids)
    assert ids(group(client, user_id, away["id"], grandkids[0]["id"])) == [great["id"]]
    for task in subtree:
        after = fetch(client, user_id, task["id"])
        old = before[task["id"]]
        assert after["list_id"] == away["id"]
        assert after["parent_id"] == old["parent_id"] or task is root
        assert after["version"] > old["version"]
    assert walk(client, user_id, f"list_id={home['id']}") == [fetch(client, user_id, bystander["id"])]
    upserted, deleted = changed(client, user_id, since)
    assert set(upserted) == {task["id"] for task in subtree} and deleted == set()
    assert all(upserted[task["id"]] == fetch(client, user_id, task["id"]) for task in subtree)


def test_a_move_that_changes_only_the_list_goes_to_the_top_level(client, user_id):
    home, away = make_list(client, user_id, "home"), make_list(client, user_id, "away")
    parent = create(client, user_id, "parent", list_id=home["id"])
    child = create(client, user_id, "child", parent_id=parent["id"])
    grandchild = create(client, user_id, "grandchild", parent_id=child["id"])
    first = create(client, user_id, "first", list_id=away["id"])
    body = moved(client, user_id, child["id"], list_id=away["id"])
    assert (body["list_id"], body["parent_id"]) == (away["id"], None)
    assert ids(group(client, user_id, away["id"])) == [first["id"], child["id"]]
    assert group(client, user_id, home["id"], parent["id"]) == []
    assert fetch(client, user_id, grandchild["id"])["list_id"] == away["id"]
    # To no list at all, the same.
    body = moved(client, user_id, child["id"], list_id=None)
    assert (body["list_id"], body["parent_id"]) == (None, None)
    assert fetch(client, user_id, grandchild["id"])["list_id"] is None
    assert ids(group(client, user_id, None, child["id"])) == [grandchild["id"]]


def test_a_move_giving_only_the_parent_keeps_the_list(client, user_id):
    home, away = make_list(client, user_id, "home"), make_list(client, user_id, "away")
    a, b = create(client, user_id, "a", list_id=home["id"]), create(client, user_id, "b", list_id=home["id"])
    elsewhere = create(client, user_id, "elsewhere", list_id=away["id"])
    body = moved(client, user_id, b["id"], parent_id=a["id"])
    assert (body["list_id"], body["parent_id"]) == (home["id"], a["id"])
    assert ids(group(client, user_id, home["id"], a["id"])) == [b["id"]]
    # A parent in another list than the one the task stays in.
    refused = move(client, user_id, b["id"], parent_id=elsewhere["id"])
    assert set(assert_error(refused, 400, "VALIDATION_ERROR")["details"]) == {"parent_id"}
    body = moved(client, user_id, b["id"], parent_id=None, after_id=None)
    assert (body["list_id"], body["parent_id"]) == (home["id"], None)
    assert ids(group(client, user_id, home["id"])) == [b["id"], a["id"]]
    # Both given: a parent in the destination list.
    body = moved(client, user_id, a["id"], list_id=away["id"], parent_id=elsewhere["id"])
    assert (body["list_id"], body["parent_id"]) == (away["id"], elsewhere["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"after_id": "not-a-uuid"}, "after_id"),
        ({"list_id": 1}, "list_id"),
        ({"parent_id": True}, "parent_id"),
        ({"position": "a0"}, "position"),
        ({"after_id": None, "title": "x"}, "title"),
    ],
)
def test_a_malformed_move_is_400_naming_the_field(client, user_id, body, field):
    task = create(client, user_id)
    response = move(client, user_id, task["id"], **body)
    assert field in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert fetch(client, user_id, task["id"]) == task


def test_a_move_body_must_be_a_json_object(client, user_id):
    task = create(client, user_id)
    url = f"/users/{user_id}/tasks/{task['id']}/move"
    assert_error(client.post(url, json=[]), 400, "VALIDATION_ERROR")
    assert_error(client.post(url, data="{}", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.post(url, data="{", content_type="application/json"), 400, "INVALID_JSON")


@pytest.mark.parametrize("under", ["itself", "its child", "its grandchild"])
def test_a_task_cannot_move_under_itself_or_its_descendants(client, user_id, under):
    chain = nest(client, user_id, 3)
    target = {"itself": chain[0], "its child": chain[1], "its grandchild": chain[2]}[under]
    before = [fetch(client, user_id, task["id"]) for task in chain]
    refused = move(client, user_id, chain[0]["id"], parent_id=target["id"])
    assert set(assert_error(refused, 400, "VALIDATION_ERROR")["details"]) == {"parent_id"}
    assert [fetch(client, user_id, task["id"]) for task in chain] == before


def test_a_move_deeper_than_five_levels_is_400_parent_id(client, user_id):
    deep = nest(client, user_id, 4)
    subtree = nest(client, user_id, 2)  # two levels high
    refused = move(client, user_id, subtree[0]["id"], parent_id=deep[3]["id"])  # would reach level 6
    assert set(assert_error(refused, 400, "VALIDATION_ERROR")["details"]) == {"parent_id"}
    assert fetch(client, user_id, subtree[0]["id"])["parent_id"] is None
    body = moved(client, user_id, subtree[0]["id"], parent_id=deep[2]["id"])  # levels 4 and 5
    assert body["parent_id"] == deep[2]["id"]
    assert ids(group(client, user_id, None, subtree[0]["id"])) == [subtree[1]["id"]]


@pytest.mark.parametrize("after", ["in another group", "the task itself", "another user's", "made up"])
def test_an_after_id_that_is_no_sibling_at_the_destination_is_400(client, user_id, after):
    work = make_list(client, user_id)
    a, b = create(client, user_id, "a", list_id=work["id"]), create(client, user_id, "b", list_id=work["id"])
    child = create(client, user_id, "child", parent_id=a["id"])
    loose = create(client, user_id, "loose")
    stranger = other_user(client)
    after_id = {
        "in another group": child["id"],
        "the task itself": b["id"],
        "another user's": create(client, stranger, list_id=make_list(client, stranger)["id"])["id"],
        "made up": str(uuid.uuid4()),
    }[after]
    refused = move(client, user_id, b["id"], after_id=after_id)
    assert set(assert_error(refused, 400, "VALIDATION_ERROR")["details"]) == {"after_id"}
    # At a destination too: the loose task's siblings are the top-level tasks of the list it goes to.
    refused = move(
        client,
        user_id,
        loose["id"],
        list_id=work["id"],
        after_id=after_id if after != "the task itself" else loose["id"],
    )
    assert set(assert_error(refused, 400, "VALIDATION_ERROR")["details"]) == {"after_id"}
    assert ids(group(client, user_id, work["id"])) == [a["id"], b["id"]]
    assert fetch(client, user_id, loose["id"])["list_id"] is None


@pytest.mark.parametrize("field", ["list_id", "parent_id", "after_id"])
def test_a_move_naming_anothers_id_answers_as_for_a_made_up_one(client, user_id, field):
    task = create(client, user_id)
    stranger = other_user(client)
    theirs = {
        "list_id": make_list(client, stranger)["id"],
        "parent_id": create(client, stranger)["id"],
        "after_id": create(client, stranger)["id"],
    }[field]
    answers = []
    for given in (theirs, str(uuid.uuid4())):
        response = move(client, user_id, task["id"], **{field: given})
        assert set(assert_error(response, 400, "VALIDATION_ERROR")["details"]) == {field}
        answers.append(response.data)
    assert answers[0] == answers[1]
    assert fetch(client, user_id, task["id"]) == task


def test_if_match_applies_to_the_moved_task(client, user_id):
    a, b = create(client, user_id, "a"), create(client, user_id, "b")
    stale = f'"{b["version"]}"'
    current = moved(client, user_id, b["id"], after_id=None)
    refused = move(client, user_id, b["id"], headers={"If-Match": stale})
    assert_error(refused, 412, "PRECONDITION_FAILED")
    assert refused.headers["ETag"] == f'"{current["version"]}"'
    assert ids(group(client, user_id)) == [b["id"], a["id"]]
    answer = move(client, user_id, b["id"], headers={"If-Match": f'"{current["version"]}"'})
    assert answer.status_code == 200 and answer.headers["ETag"] == f'"{current["version"] + 1}"'
    assert ids(group(client, user_id)) == [a["id"], b["id"]]


def test_a_move_of_a_missing_or_anothers_task_is_404(client, user_id):
    stranger = other_user(client)
    theirs = create(client, stranger)
    answers = []
    for task_id in (theirs["id"], str(uuid.uuid4())):
        response = move(client, user_id, task_id, after_id=None)
        assert_error(response, 404, "TASK_NOT_FOUND")
        answers.append(response.data)
    assert answers[0] == answers[1]
    assert_error(move(client, str(uuid.uuid4()), theirs["id"]), 404, "USER_NOT_FOUND")
    assert fetch(client, stranger, theirs["id"]) == theirs


# --- Listing -----------------------------------------------------------------------------------------------------


def test_listing_a_group_by_position_is_its_manual_order(client, user_id):
    work = make_list(client, user_id)
    tasks = [create(client, user_id, f"t{n}", list_id=work["id"]) for n in range(8)]
    model = ids(tasks)
    rng = random.Random(21)
    for _ in range(40):
        mover = rng.choice(model)
        rest = [task_id for task_id in model if task_id != mover]
        where = rng.choice(["first", "last", "after"])
        if where == "first":
            moved(client, user_id, mover, after_id=None)
            model = [mover, *rest]
        elif where == "last":
            moved(client, user_id, mover)
            model = [*rest, mover]
        else:
            anchor = rng.choice(rest)
            moved(client, user_id, mover, after_id=anchor)
            model = rest[: rest.index(anchor) + 1] + [mover] + rest[rest.index(anchor) + 1 :]
        assert ids(group(client, user_id, work["id"])) == model
    ordered = group(client, user_id, work["id"])
    assert_strictly_ordered(ordered)
    # A walk of small pages gives each task once, in the same order.
    assert ids(group(client, user_id, work["id"], limit=3)) == model
    # parent_id: a task's children; list_id alone: the list's tasks at every level; list_id=none: the others.
    kids = [create(client, user_id, f"kid {n}", parent_id=model[0]) for n in range(3)]
    loose = create(client, user_id, "loose")
    assert ids(walk(client, user_id, f"parent_id={model[0]}&sort=position")) == ids(kids)
    listed = walk(client, user_id, f"list_id={work['id']}", limit=5)
    assert sorted(ids(listed)) == sorted(model + ids(kids))
    assert ids(walk(client, user_id, "list_id=none")) == [loose["id"]]
    assert ids(walk(client, user_id, "parent_id=none&list_id=none&sort=position")) == [loose["id"]]


# --- Cascades ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_quota_client(database_url):
    app = create_app({"DATABASE_URL": database_url, "TASKAPI_ENV": "testing", "TASKS_PER_USER_MAX": "8"})
    yield app.test_client()
    close_pool(app)


def test_deleting_a_task_deletes_its_subtree_and_frees_its_quota(small_quota_client):
    client = small_quota_client
    user_id = other_user(client)
    root = create(client, user_id, "root")
    kids = [create(client, user_id, f"kid {n}", parent_id=root["id"]) for n in range(2)]
    grandkid = create(client, user_id, "grandkid", parent_id=kids[0]["id"])
    kept = [create(client, user_id, f"kept {n}") for n in range(4)]
    assert_error(client.post(f"/users/{user_id}/tasks", json={"title": "ninth"}), 409, "QUOTA_EXCEEDED")
    subtree = [root, *kids, grandkid]
    since = now(client, user_id)
    assert client.delete(f"/users/{user_id}/tasks/{root['id']}").status_code == 204
    for task in subtree:
        assert_error(client.get(f"/users/{user_id}/tasks/{task['id']}"), 404, "TASK_NOT_FOUND")
    upserted, deleted = changed(client, user_id, since)
    assert upserted == {} and deleted == {task["id"] for task in subtree}
    assert sorted(ids(walk(client, user_id, "sort=position"))) == sorted(ids(kept))
    for n in range(len(subtree)):
        create(client, user_id, f"room {n}")
    assert_error(client.post(f"/users/{user_id}/tasks", json={"title": "ninth"}), 409, "QUOTA_EXCEEDED")


def test_deleting_a_subtask_deletes_only_its_own_subtree(client, user_id):
    root = create(client, user_id, "root")
    kids = [create(client, user_id, f"kid {n}", parent_id=root["id"]) for n in range(2)]
    grandkid = create(client, user_id, "grandkid", parent_id=kids[0]["id"])
    assert client.delete(f"/users/{user_id}/tasks/{kids[0]['id']}").status_code == 204
    assert_error(client.get(f"/users/{user_id}/tasks/{grandkid['id']}"), 404, "TASK_NOT_FOUND")
    assert ids(group(client, user_id, None, root["id"])) == [kids[1]["id"]]
    # The parent counts one child less: it may go on to have children, and be deleted alone once it has none.
    assert client.delete(f"/users/{user_id}/tasks/{kids[1]['id']}").status_code == 204
    assert client.delete(f"/users/{user_id}/tasks/{root['id']}").status_code == 204
    assert walk(client, user_id, "sort=position") == []


def test_if_match_on_delete_applies_to_the_named_task(client, user_id):
    root = create(client, user_id, "root")
    kid = create(client, user_id, "kid", parent_id=root["id"])
    refused = client.delete(f"/users/{user_id}/tasks/{root['id']}", headers={"If-Match": f'"{root["version"] + 1}"'})
    assert_error(refused, 412, "PRECONDITION_FAILED")
    assert refused.headers["ETag"] == f'"{root["version"]}"'
    assert fetch(client, user_id, kid["id"]) == kid
    # The child's version is not the one If-Match is compared with.
    response = client.delete(f"/users/{user_id}/tasks/{root['id']}", headers={"If-Match": f'"{root["version"]}"'})
    assert response.status_code == 204
    assert_error(client.get(f"/users/{user_id}/tasks/{kid['id']}"), 404, "TASK_NOT_FOUND")


def family(client, user_id):
    """root → (a → (a1, a2), b); b completed beforehand."""
    root = create(client, user_id, "root")
    a = create(client, user_id, "a", parent_id=root["id"])
    b = create(client, user_id, "b", parent_id=root["id"], is_completed=True)
    a1, a2 = (create(client, user_id, name, parent_id=a["id"]) for name in ("a1", "a2"))
    return {"root": root, "a": a, "b": b, "a1": a1, "a2": a2}


def test_completing_a_task_completes_its_open_descendants(client, user_id):
    tree = family(client, user_id)
    before = {name: fetch(client, user_id, task["id"]) for name, task in tree.items()}
    since = now(client, user_id)
    response = client.patch(f"/users/{user_id}/tasks/{tree['root']['id']}", json={"is_completed": True})
    assert response.status_code == 200
    root = response.get_json()
    after = {name: fetch(client, user_id, task["id"]) for name, task in tree.items()}
    for name in ("a", "a1", "a2"):
        assert after[name]["is_completed"] is True
        assert after[name]["completed_at"] == root["completed_at"]
        assert after[name]["version"] > before[name]["version"]
    assert after["b"] == before["b"]  # already completed: keeps its completed_at
    upserted, _ = changed(client, user_id, since)
    assert set(upserted) == {tree[name]["id"] for name in ("root", "a", "a1", "a2")}
    assert all(upserted[tree[name]["id"]] == after[name] for name in ("root", "a", "a1", "a2"))
    # A PUT that completes an open task cascades too (one that leaves it completed does not: see below).
    parent = create(client, user_id, "open parent")
    child = create(client, user_id, "its child", parent_id=parent["id"])
    response = client.put(f"/users/{user_id}/tasks/{parent['id']}", json={"title": "parent", "is_completed": True})
    assert response.status_code == 200
    assert fetch(client, user_id, child["id"])["completed_at"] == response.get_json()["completed_at"]


def test_reopening_a_subtask_reopens_its_completed_ancestors_only(client, user_id):
    tree = family(client, user_id)
    client.patch(f"/users/{user_id}/tasks/{tree['root']['id']}", json={"is_completed": True})
    before = {name: fetch(client, user_id, task["id"]) for name, task in tree.items()}
    since = now(client, user_id)
    response = client.patch(f"/users/{user_id}/tasks/{tree['a1']['id']}", json={"is_completed": False})
    assert response.status_code == 200
    after = {name: fetch(client, user_id, task["id"]) for name, task in tree.items()}
    for name in ("a1", "a", "root"):
        assert (after[name]["is_completed"], after[name]["completed_at"]) == (False, None)
        assert after[name]["version"] > before[name]["version"]
    assert after["a2"] == before["a2"] and after["b"] == before["b"]  # siblings, not ancestors
    upserted, _ = changed(client, user_id, since)
    assert set(upserted) == {tree[name]["id"] for name in ("a1", "a", "root")}
    assert all(upserted[tree[name]["id"]] == after[name] for name in ("a1", "a", "root"))


def test_a_write_that_leaves_is_completed_as_it_was_cascades_nowhere(client, user_id):
    """The cascades follow a write that makes is_completed true or false (as completed_at is set by the write that
    makes it true and kept by those that leave it true): a subtask added under a completed task and then renamed by
    PUT (which sends is_completed false, as it was) does not reopen its parent, and completing the parent again does
    not complete the newcomer."""
    parent = create(client, user_id, "parent", is_completed=True)
    newcomer = create(client, user_id, "newcomer", parent_id=parent["id"])
    response = client.put(f"/users/{user_id}/tasks/{newcomer['id']}", json={"title": "renamed"})
    assert response.status_code == 200 and response.get_json()["is_completed"] is False
    assert fetch(client, user_id, parent["id"]) == parent
    response = client.patch(
        f"/users/{user_id}/tasks/{parent['id']}", json={"title": "still done", "is_completed": True}
    )
    assert response.status_code == 200 and response.get_json()["completed_at"] == parent["completed_at"]
    assert fetch(client, user_id, newcomer["id"])["is_completed"] is False


# --- Renumbering -------------------------------------------------------------------------------------------------


def group_rows(database_url, user_id):
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id::text, position, version FROM tasks WHERE user_id = %s ORDER BY position, id", [user_id]
        ).fetchall()
    return [{"id": row[0], "position": row[1], "version": row[2]} for row in rows]


def test_ten_thousand_moves_into_one_gap_keep_positions_short_and_the_order_exact(app, client, user_id, database_url):
    """Two movers take turns right after the first task, so the gap halves every move and keys keep growing. The
    10,000 moves run in-process (queries.move_task on a connection of the app's pool) for speed; the last, which
    renumbers, goes through the API."""
    first, x, y, last = (create(client, user_id, name) for name in ("first", "x", "y", "last"))
    user, anchor = uuid.UUID(user_id), uuid.UUID(first["id"])
    movers = [x["id"], y["id"]]
    renumbered, longest, n = 0, 0, 0
    rows = group_rows(database_url, user_id)
    with app.app_context(), connection() as conn:
        while True:
            mover, other = movers[n % 2], movers[(n + 1) % 2]
            keys = {row["id"]: row["position"] for row in rows}
            would_renumber = len(positions.between(keys[first["id"]], keys[other])) > positions.MAX_LENGTH
            if n >= 10_000 and would_renumber:
                break
            key = json.loads(queries.move_task(conn, user, uuid.UUID(mover), {"after_id": anchor})["task"])["position"]
            assert len(key) <= positions.MAX_LENGTH
            longest = max(longest, len(key))
            n += 1
            if would_renumber or n % 1000 == 0:
                renumbered += would_renumber
                rows = group_rows(database_url, user_id)
                assert [row["id"] for row in rows] == [first["id"], mover, other, last["id"]]
                assert all(len(row["position"]) <= positions.MAX_LENGTH for row in rows)
                assert len({row["position"] for row in rows}) == 4
            else:
                rows = [row if row["id"] != mover else {**row, "position": key} for row in rows]
    assert renumbered >= 10 and longest > 50

    before = {row["id"]: row for row in group_rows(database_url, user_id)}
    since = now(client, user_id)
    mover, other = movers[n % 2], movers[(n + 1) % 2]
    body = moved(client, user_id, mover, after_id=first["id"])
    listed = group(client, user_id)
    assert ids(listed) == [first["id"], mover, other, last["id"]]
    assert_strictly_ordered(listed)
    assert all(len(task["position"]) <= positions.MAX_LENGTH for task in listed)
    upserted, _ = changed(client, user_id, since)
    renumbered_ids = {t["id"] for t in listed if t["id"] != mover and t["position"] != before[t["id"]]["position"]}
    assert renumbered_ids, "the last move did not renumber"
    assert set(upserted) == renumbered_ids | {body["id"]}
    for task in listed:
        if task["id"] in upserted:
            assert upserted[task["id"]] == task and task["version"] == before[task["id"]]["version"] + 1
        else:
            assert (task["position"], task["version"]) == (
                before[task["id"]]["position"],
                before[task["id"]]["version"],
            )


def assert_renumbering_in_the_feed(client, user_id, since, before, written):
    """Each task whose position a write changed (beyond the `written` ones) shows in /changes after `since` with a
    new version; the others do not."""
    upserted, _ = changed(client, user_id, since)
    listed = {task["id"]: task for task in walk(client, user_id, "sort=position")}
    renumbered = {task_id for task_id, row in before.items() if listed[task_id]["position"] != row["position"]}
    assert set(upserted) == renumbered | set(written)
    for task_id in renumbered - set(written):
        assert upserted[task_id] == listed[task_id] and listed[task_id]["version"] == before[task_id]["version"] + 1


def test_tasks_from_before_positions_keep_their_order_through_creates_and_moves(client, user_id, database_url):
    """Migration 0012 gave every existing task position '' (ties broken by id): a create after them and a move
    among them (which needs a key between two of them: a renumbering) keep that order."""
    old = [create(client, user_id, f"old {n}") for n in range(5)]
    with connect(database_url) as conn:
        conn.execute("UPDATE tasks SET position = '' WHERE user_id = %s", [user_id])
    by_id = sorted(ids(old))
    assert ids(group(client, user_id)) == by_id
    assert ids(group(client, user_id, limit=2)) == by_id  # cursors over tied positions
    before, since = {row["id"]: row for row in group_rows(database_url, user_id)}, now(client, user_id)
    new = create(client, user_id, "new")
    assert ids(group(client, user_id)) == by_id + [new["id"]]
    assert_renumbering_in_the_feed(client, user_id, since, before, [new["id"]])

    with connect(database_url) as conn:
        conn.execute("UPDATE tasks SET position = '' WHERE user_id = %s", [user_id])
    by_id = sorted([*by_id, new["id"]])
    before, since = {row["id"]: row for row in group_rows(database_url, user_id)}, now(client, user_id)
    moved(client, user_id, by_id[0], after_id=by_id[3])
    listed = group(client, user_id)
    assert ids(listed) == [*by_id[1:4], by_id[0], *by_id[4:]]
    assert_strictly_ordered(listed)
    assert all(positions.valid(task["position"]) for task in listed)
    assert_renumbering_in_the_feed(client, user_id, since, before, [by_id[0]])
    moved(client, user_id, by_id[5], after_id=None)
    assert ids(group(client, user_id)) == [by_id[5], *by_id[1:4], by_id[0], by_id[4]]

    # A move to the front of a group that is all '' but one renumbers too.
    with connect(database_url) as conn:
        conn.execute("UPDATE tasks SET position = '' WHERE user_id = %s AND id <> %s", [user_id, by_id[5]])
    expected = sorted(set(by_id) - {by_id[5]}) + [by_id[5]]
    assert ids(group(client, user_id)) == expected
    moved(client, user_id, by_id[5], after_id=None)
    listed = group(client, user_id)
    assert ids(listed) == [by_id[5], *expected[:-1]]
    assert_strictly_ordered(listed)


def tail(database_url, user_id):
    with connect(database_url) as conn:
        return conn.execute("SELECT task_tail FROM users WHERE id = %s", [user_id]).fetchone()[0]


def test_the_next_key_the_users_row_gives_is_the_one_python_gives(database_url):
    """position_after (migration 0016), which a create in one statement takes its key from, against
    positions.between(key, None) on keys of every width and sign, at the carries, and past the largest integer."""
    rng = random.Random(16)
    keys = ["a0", "az", "azV", "b0z", "bzz", "Zz", "Z0", "Yzz", "Yzz3", "B" + "z" * 25, "A" + "z" * 26, "z" + "z" * 26]
    for _ in range(3000):
        head = rng.choice(string.ascii_letters)
        width = ord(head) - ord("a") + 1 if head.islower() else ord("Z") - ord(head) + 1
        digits = "".join(rng.choice("0yz" if rng.random() < 0.5 else positions.DIGITS) for _ in range(width))
        fraction = "".join(rng.choice(positions.DIGITS) for _ in range(rng.randrange(4))).rstrip("0")
        if positions.valid(head + digits + fraction):
            keys.append(head + digits + fraction)
    key = "a0"
    for _ in range(5000):  # appends through the first widths, as a group grows
        keys.append(key := positions.between(key, None))
    with connect(database_url) as conn:
        answered = conn.execute("SELECT k, position_after(k) FROM unnest(%s::text[]) AS k", [keys]).fetchall()
    for key, after in answered:
        expected = positions.between(key, None)
        if len(expected) > len(key) and expected.startswith(key):  # no next integer: the fraction grows
            assert after is None, key
        else:
            assert after == expected and after > key, key


def test_a_create_in_no_list_goes_last_whatever_moved_there_before(client, user_id, database_url):
    """The end of the top-level tasks in no list, kept on the user's row: set by a create that read the group,
    advanced by each create, forgotten by a move there or a renumbering, and never behind a task's key."""
    first = create(client, user_id, "first")
    assert tail(database_url, user_id) == first["position"]
    second = create(client, user_id, "second")
    assert tail(database_url, user_id) == second["position"] > first["position"]
    moved(client, user_id, second["id"], after_id=None)
    assert tail(database_url, user_id) is None
    third = create(client, user_id, "third")
    assert ids(group(client, user_id)) == [second["id"], first["id"], third["id"]]
    assert tail(database_url, user_id) == third["position"]

    work = make_list(client, user_id)
    elsewhere = create(client, user_id, "from a list", list_id=work["id"])
    assert tail(database_url, user_id) == third["position"]  # a create in a list leaves it
    moved(client, user_id, elsewhere["id"], list_id=None)
    fourth = create(client, user_id, "fourth")
    assert ids(group(client, user_id)) == [second["id"], first["id"], third["id"], elsewhere["id"], fourth["id"]]

    # Past the largest integer part there is no next key to take: the create reads the group instead.
    largest = "z" + "z" * 26
    with connect(database_url) as conn:
        conn.execute("UPDATE tasks SET position = %s WHERE user_id = %s AND id = %s", [largest, user_id, fourth["id"]])
        conn.execute("UPDATE users SET task_tail = %s WHERE id = %s", [largest, user_id])
    fifth = create(client, user_id, "fifth")
    assert fifth["position"] > largest and positions.valid(fifth["position"])
    assert ids(group(client, user_id))[-2:] == [fourth["id"], fifth["id"]]

    # A renumbering (here of tasks from before positions) forgets it too.
    with connect(database_url) as conn:
        conn.execute("UPDATE tasks SET position = '' WHERE user_id = %s AND list_id IS NULL", [user_id])
    order = sorted(ids(group(client, user_id)))
    moved(client, user_id, order[0], after_id=order[1])
    assert tail(database_url, user_id) is None
    sixth = create(client, user_id, "sixth")
    assert ids(group(client, user_id)) == [order[1], order[0], *order[2:], sixth["id"]]
    assert_strictly_ordered(group(client, user_id))


# --- Isolation ---------------------------------------------------------------------------------------------------


def test_another_user_can_place_nothing_under_after_or_into_my_tasks_and_lists(client, user_id):
    mine = make_list(client, user_id)
    parent = create(client, user_id, "parent", list_id=mine["id"])
    child = create(client, user_id, "child", parent_id=parent["id"])
    intruder = other_user(client)
    theirs = create(client, intruder, "theirs")

    def state():
        return (
            walk(client, user_id, "sort=position"),
            client.get(f"/users/{user_id}/lists").get_json(),
            walk(client, intruder, "sort=position"),
            client.get(f"/users/{intruder}/lists").get_json(),
        )

    before = state()
    attempts = [
        ("create", {"list_id": mine["id"]}, "list_id"),
        ("create", {"parent_id": parent["id"]}, "parent_id"),
        ("create", {"parent_id": child["id"]}, "parent_id"),
        ("move", {"list_id": mine["id"]}, "list_id"),
        ("move", {"parent_id": parent["id"]}, "parent_id"),
        ("move", {"after_id": parent["id"]}, "after_id"),
        ("move", {"after_id": child["id"]}, "after_id"),
        ("move", {"list_id": mine["id"], "parent_id": parent["id"], "after_id": child["id"]}, None),
    ]
    for kind, body, field in attempts:
        if kind == "create":
            response = client.post(f"/users/{intruder}/tasks", json={"title": "x", **body})
        else:
            response = move(client, intruder, theirs["id"], **body)
        details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
        assert field is None or set(details) == {field}, (body, details)
    # Nor through the victim's tasks as the path's task.
    assert_error(move(client, intruder, parent["id"], parent_id=None), 404, "TASK_NOT_FOUND")
    assert state() == before
    for query in (f"list_id={mine['id']}", f"parent_id={parent['id']}", f"list_id={mine['id']}&parent_id=none"):
        assert walk(client, intruder, query + "&sort=position") == []


# --- Concurrency through real processes --------------------------------------------------------------------------

WRITERS = 8
SECONDS = 5


def _writer(base, user, list_id, group_list, seed, start, number, results):
    """One client process: moves random tasks of the group (those in `group_list`, None: in no list; after a random
    sibling, first, last) and creates new ones in it; now and then makes a scratch list with a task in it, renames
    the list or deletes a scratch list, for the sync client to follow."""
    rng = random.Random(number)
    known, created, scratch, counts = list(seed), [], [], Counter()
    start.wait(60)
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.25:
            status, _, body = http("POST", f"{base}/users/{user}/tasks", {"title": f"w{number}", "list_id": group_list})
            kind = "create"
            if status == 201:
                created.append(body["id"])
                known.append(body["id"])
        elif roll < 0.28:
            status, _, body = http("POST", f"{base}/users/{user}/lists", {"name": f"scratch {number}"})
            kind = "scratch list"
            if status == 201:
                scratch.append(body["id"])
                status = http("POST", f"{base}/users/{user}/tasks", {"title": "s", "list_id": body["id"]})[0]
                status = 200 if status == 201 else status
        elif roll < 0.30 and scratch:
            status = http("DELETE", f"{base}/users/{user}/lists/{scratch.pop()}")[0]
            kind = "list delete"
        elif roll < 0.32:
            status = http("PATCH", f"{base}/users/{user}/lists/{list_id}", {"name": f"renamed by {number}"})[0]
            kind = "list rename"
        else:
            task = rng.choice(known)
            where = rng.random()
            if where < 0.15:
                body = {}  # last
            elif where < 0.3:
                body = {"after_id": None}  # first
            else:
                body = {"after_id": rng.choice([other for other in known if other != task])}
            status = http("POST", f"{base}/users/{user}/tasks/{task}/move", body)[0]
            kind = "move"
        counts[kind] += 1
        if status not in (200, 201, 204):
            counts[f"{kind} {status}"] += 1
    results.put(("writer", created, dict(counts)))


def _sync_client(base, user, start, stop, results):
    """The change-feed client: applies every answer into its copies of the tasks and lists, until told to stop and
    caught up."""
    tasks, lists, since, rounds = {}, {}, None, 0
    start.wait(60)
    while True:
        finishing = stop.is_set()
        while True:
            query = "limit=50" + (f"&since={quote(since)}" if since else "")
            status, _, answer = http("GET", f"{base}/users/{user}/changes?{query}")
            assert status == 200, answer
            rounds += 1
            for task in answer["upserted"]:
                tasks[task["id"]] = task
            for gone in answer["deleted"]:
                tasks.pop(gone["id"], None)
            for item in answer["lists_upserted"]:
                lists[item["id"]] = item
            for gone in answer["lists_deleted"]:
                lists.pop(gone["id"], None)
            since = answer["next_since"]
            if not answer["has_more"]:
                break
        if finishing:
            results.put(("sync", tasks, lists, rounds))
            return


def served_walk(base, user, query):
    items, url = [], f"{base}/users/{user}/tasks?{query}&limit=100"
    while True:
        status, _, page = http("GET", url)
        assert status == 200, page
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        url = f"{base}/users/{user}/tasks?limit=100&cursor={quote(page['next_cursor'])}"


@pytest.mark.parametrize("in_list", [True, False], ids=["a list", "no list"])
def test_concurrent_moves_and_creates_keep_the_group_whole_and_sync_exact(database_url, tmp_path, in_list):
    """In a list, every create reads the group under the user's row lock; in no list, most are one statement that
    takes the next key from the user's row (queries.append_task), while moves make it forget that key."""
    with running_gunicorn(database_url, tmp_path / "gunicorn.log") as server:
        base = server["url"]
        user = http("POST", base + "/users", {})[2]["id"]
        list_id = http("POST", f"{base}/users/{user}/lists", {"name": "shared"})[2]["id"]
        group_list = list_id if in_list else None
        seed = [
            http("POST", f"{base}/users/{user}/tasks", {"title": f"s{n}", "list_id": group_list})[2]["id"]
            for n in range(10)
        ]
        began = time.monotonic()
        # Forked: each client process starts at once (spawn or a fork server re-imports this module and the app,
        # which took 20-40 s on the loaded 2-core test machine). The clients use only helpers.http, nothing of the
        # test process's pool or threads.
        context = multiprocessing.get_context("fork")
        start, stop, results = context.Barrier(WRITERS + 2), context.Event(), context.Queue()
        writers = [
            context.Process(target=_writer, args=(base, user, list_id, group_list, seed, start, number, results))
            for number in range(WRITERS)
        ]
        syncer = context.Process(target=_sync_client, args=(base, user, start, stop, results))
        for process in [*writers, syncer]:
            process.start()
        start.wait(60)
        started = time.monotonic()
        answers = [results.get(timeout=60) for _ in writers]
        stop.set()
        answers.append(results.get(timeout=60))
        finished = time.monotonic()
        for process in [*writers, syncer]:
            process.join(30)
            assert process.exitcode == 0

        created, counts = [], Counter()
        for answer in answers[:-1]:
            created += answer[1]
            counts.update(answer[2])
        _, synced_tasks, synced_lists, rounds = answers[-1]
        print(
            f"\n{WRITERS} writers for {SECONDS} s: {dict(counts)}; the sync client made {rounds} requests"
            f" (start {started - began:.1f} s, run {finished - started:.1f} s)"
        )
        assert not [kind for kind in counts if kind.split()[-1].isdigit()], counts  # every answer a 2xx
        assert counts["move"] > 20 and counts["create"] > 5, counts

        shared = served_walk(base, user, f"list_id={group_list or 'none'}&parent_id=none&sort=position")
        keys = [task["position"] for task in shared]
        assert len(set(keys)) == len(keys)
        assert [(task["position"].encode(), task["id"]) for task in shared] == sorted(
            (task["position"].encode(), task["id"]) for task in shared
        )
        assert keys == sorted(keys, key=str.encode)
        assert sorted(ids(shared)) == sorted(seed + created)
        assert all(len(key) <= positions.MAX_LENGTH for key in keys)

        listed = {task["id"]: task for task in served_walk(base, user, "sort=created_at")}
        assert synced_tasks == listed
        lists = {item["id"]: item for item in http("GET", f"{base}/users/{user}/lists")[2]["items"]}
        assert synced_lists == lists

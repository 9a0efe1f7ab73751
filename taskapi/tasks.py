"""The tasks blueprint: one user's tasks, always reached through that user's path."""

from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Blueprint, current_app, request, url_for

from taskapi import apidoc, bounds, columns, cursors, filters, housekeeping, idempotency, queries
from taskapi.db import connection
from taskapi.errors import PreconditionFailed, QuotaExceeded, TaskNotFound, UserNotFound, ValidationFailed
from taskapi.payload import compact, json_answer, json_object
from taskapi.preconditions import etag, if_match_versions, if_none_match
from taskapi.schemas import MOVED_ONLY, incarnation, move_schema, task_list_query_schema, task_schema

bp = Blueprint("tasks", __name__, url_prefix="/users/<user_id>/tasks")
DEFAULT_SORT = "-created_at"


def not_found(conn, user_id):
    """The error for a task that is not there: the user's absence, else the task's. A task of another
    user is simply not among this user's tasks, so it gets exactly the answer of one that never existed."""
    return TaskNotFound() if queries.user_exists(conn, user_id) else UserNotFound()


def refused(conn, user_id, task_id):
    """Why a conditional write touched nothing: the task is there under another version (412, with the current
    ETag), or it is not there at all (404, whatever If-Match said)."""
    version = queries.fetch_task_version(conn, user_id, task_id)
    if version is None:
        return not_found(conn, user_id)
    return PreconditionFailed(headers={"ETag": etag(version)})


def one_task(task, status=200, **headers):
    """An answer carrying one task: its JSON, as PostgreSQL wrote it, and its ETag."""
    return json_answer(task["task"], status, {"ETag": etag(task["version"]), **headers})


@bp.post("")
@apidoc.operation(
    "createTask",
    tag="tasks",
    summary="Create a task",
    description="Answers the task with its `ETag`. Send an `Idempotency-Key` to make a retry safe: it replays the"
    " first answer instead of creating a second task.",
    parameters=[apidoc.IDEMPOTENCY_KEY],
    body="Task",
    example={
        "title": "Buy milk",
        "description": "2 litres, semi-skimmed",
        "is_completed": False,
        "due": {"date": "2026-12-24", "time": "17:30", "time_zone": "Europe/Berlin"},
        "priority": "high",
        "labels": ["Errands"],
    },
    success=apidoc.ok(
        "Created.",
        "Task",
        {**apidoc.LOCATION, **apidoc.ETAG, **apidoc.REPLAYED},
        status="201",
        links=apidoc.links(
            {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
            "getTask",
            "replaceTask",
            "patchTask",
            "deleteTask",
        ),
    ),
    errors=("400", "404user", "409key", "413", "415", "422"),
)
def create_task(user_id):
    body = json_object()
    fields = task_schema.load(body)

    quota = current_app.config["TASKS_PER_USER_MAX"]

    def create(conn):
        housekeeping.sweep(conn, "search", housekeeping.fill_search_columns)
        # Most tasks go last among the top-level tasks in no list: one statement, when the user's row knows where.
        task = queries.appends(fields) and queries.append_task(
            conn, user_id, columns.task_columns(user_id, fields), quota
        )
        task = task or placed(conn)
        return one_task(task, 201, Location=url_for(".get_task", user_id=user_id, task_id=task["id"]))

    def placed(conn):
        # The user's row first: the zone an all-day due needs, and the new task's place (last among its siblings)
        # cannot change before it commits.
        with conn.transaction():
            zone = queries.lock_user_zone(conn, user_id)
            if zone is None:
                raise UserNotFound()
            stored = columns.task_columns(user_id, fields, zone)
            place = queries.place_new_task(conn, user_id, fields)
            created = queries.insert_task(conn, user_id, stored, place, max_tasks=quota)
            if created.task is None:
                raise QuotaExceeded(details={"limit": quota})
            return created.task

    return idempotency.create_once(user_id, body, create)


@bp.get("")
@apidoc.operation(
    "listTasks",
    tag="tasks",
    summary="List a user's tasks",
    description="Newest first by default (`sort=-created_at`); every sort breaks ties by id. Filter by `priority`,"
    " `label`, `due_from`/`due_to` (dates in the user's zone), `has_due`, `overdue`, `is_completed` and search with"
    " `q`, in any combination. Page with `offset` (at most 10,000), or follow `next_cursor` (a keyset seek: the same"
    " cost at any depth; it carries the sort and filters); `count=none` skips counting. A page holds at most about"
    " 1 MiB.",
    parameters=[{"in": "query", "schema": task_list_query_schema}],
    success=apidoc.ok("One page.", "TaskPage"),
    errors=("400", "404user"),
)
def list_tasks(user_id):
    query = task_list_query_schema.load(request.args)
    limit, given = query["limit"], query.get("cursor")
    if given is None:
        sort, chosen, after = query.get("sort", DEFAULT_SORT), filters.canonical(query), None
    else:
        position = cursor_position(given, query, user_id)
        sort, chosen, after = position.sort, position.filters, position.after
    with connection() as conn:
        zone = queries.fetch_zone(conn, user_id) if filters.needs_zone(chosen) else None
        if zone is None and filters.needs_zone(chosen):
            raise UserNotFound()
        conditions = filters.conditions(user_id, chosen, zone, datetime.now(UTC))
        # One task more than the page: whether it comes back says whether there is a next page.
        page = queries.list_tasks(
            conn,
            user_id,
            sort,
            limit + 1,
            conditions,
            query["offset"],
            after,
            count=query["count"] == "exact",
        )
    if page is None:
        raise UserNotFound()
    born = incarnation(page.created_at)
    if given is not None and position.incarnation != born:  # issued before the account was registered again
        raise cursors.invalid()
    # At most `limit` tasks, and fewer when they would take the answer past its byte bound; then there is more.
    shown = min(limit, bounds.fitting(page.items, bounds.items_budget()))
    more = len(page.items) > shown
    # The tasks come as JSON text from PostgreSQL; the page around them is a handful of scalars.
    head = {
        "total": page.total,
        "limit": limit,
        "offset": None if given else query["offset"],
        "next_cursor": cursors.encode(user_id, born, sort, chosen, page.keys[shown - 1]) if more else None,
    }
    return json_answer('{"items":[' + ",".join(page.items[:shown]) + "]," + compact(head)[1:])


def cursor_position(given, query, user_id):
    """Where a cursor says the page starts; it carries its own sort and filters, which the query may repeat but not
    change, and it replaces the offset."""
    position = cursors.decode(given, user_id)
    conflicts = {}
    if "offset" in request.args:
        conflicts["offset"] = ["Give either offset or cursor."]
    if query.get("sort", position.sort) != position.sort:
        conflicts["sort"] = ["The cursor was issued for another sort."]
    for name, value in filters.canonical(query).items():
        if position.filters.get(name) != value:
            conflicts[name] = ["The cursor was issued for another filter."]
    if conflicts:
        raise ValidationFailed(details=conflicts)
    return position


@bp.get("/<task_id>")
@apidoc.operation(
    "getTask",
    tag="tasks",
    summary="Read a task",
    description="With `If-None-Match` naming the current `ETag`, 304 and no body.",
    parameters=[apidoc.IF_NONE_MATCH],
    success={**apidoc.ok("The task.", "Task", apidoc.ETAG), **apidoc.NOT_MODIFIED},
    errors=("400", "404task"),
)
def get_task(user_id, task_id):
    not_modified = if_none_match()
    with connection() as conn:
        task = queries.fetch_task(conn, user_id, task_id)
        if task is None:
            raise not_found(conn, user_id)
    if not_modified(task["version"]):
        return "", 304, {"ETag": etag(task["version"])}
    return one_task(task)


@bp.put("/<task_id>")
@apidoc.operation(
    "replaceTask",
    tag="tasks",
    summary="Replace a task",
    description="Every writable field: an absent `description` / `is_completed` resets to null / false. With"
    " `If-Match`, only if the task is still at that version (else 412 and nothing changes).",
    parameters=[apidoc.IF_MATCH],
    body="TaskReplace",
    example={"title": "Buy oat milk", "description": None, "is_completed": False, "due": {"date": "2026-12-24"}},
    success=apidoc.ok("Replaced.", "Task", apidoc.ETAG),
    errors=("400", "404task", "412", "413", "415"),
)
def replace_task(user_id, task_id):
    return _update(user_id, task_id, task_schema.load(_writable(json_object())))


@bp.patch("/<task_id>")
@apidoc.operation(
    "patchTask",
    tag="tasks",
    summary="Change some fields of a task",
    description="Only the fields given (at least one). With `If-Match`, only if the task is still at that version"
    " (else 412 and nothing changes).",
    parameters=[apidoc.IF_MATCH],
    body="TaskPatch",
    example={"is_completed": True},
    success=apidoc.ok("Changed.", "Task", apidoc.ETAG),
    errors=("400", "404task", "412", "413", "415"),
)
def patch_task(user_id, task_id):
    fields = task_schema.load(_writable(json_object()), partial=True)
    if not fields:
        raise ValidationFailed(details={"_schema": [f"Give at least one of {', '.join(columns.GROUPS)}."]})
    return _update(user_id, task_id, fields)


def _writable(body):
    """A PUT or PATCH body, refused when it names where the task is: that changes only by a move (which takes the
    subtree along and keeps the order)."""
    given = [name for name in MOVED_ONLY if name in body]
    if given:
        raise ValidationFailed(details={name: ["Use POST .../tasks/{task_id}/move."] for name in given})
    return body


def _update(user_id, task_id, fields):
    versions = if_match_versions()
    with connection() as conn:
        with stored_columns(conn, user_id, fields) as stored:
            task = queries.write_task(conn, user_id, task_id, stored, versions)
        if task is None:
            raise refused(conn, user_id, task_id)
    return one_task(task)


@contextmanager
def stored_columns(conn, user_id, fields):
    """The columns that store `fields`. When they depend on the user's zone (an all-day due, or a timed one given no
    zone), the block runs in a transaction that took the user's row first, so the zone cannot change under it."""
    if not columns.needs_zone(fields):
        yield columns.task_columns(user_id, fields)
        return
    with conn.transaction():
        zone = queries.lock_user_zone(conn, user_id)
        if zone is None:
            raise UserNotFound()
        yield columns.task_columns(user_id, fields, zone)


@bp.delete("/<task_id>")
@apidoc.operation(
    "deleteTask",
    tag="tasks",
    summary="Delete a task",
    description="With its subtasks, at every level; each deleted task leaves a tombstone in the change feed. With"
    " `If-Match` (on this task), only if the task is still at that version.",
    parameters=[apidoc.IF_MATCH],
    success=apidoc.NO_CONTENT,
    errors=("400", "404task", "412"),
)
def delete_task(user_id, task_id):
    versions = if_match_versions()
    with connection() as conn:
        max_tombstones = current_app.config["TOMBSTONES_PER_USER_MAX"]
        if not queries.remove_task(conn, user_id, task_id, versions, max_tombstones):
            raise refused(conn, user_id, task_id)
        retention_days = current_app.config["TOMBSTONE_RETENTION_DAYS"]
        housekeeping.sweep(conn, "tombstones", queries.purge_tombstones, retention_days)
    return "", 204


@bp.post("/<task_id>/move")
@apidoc.operation(
    "moveTask",
    tag="tasks",
    summary="Move a task (and its subtasks) to another place",
    description="Any of `list_id` (absent: the same list), `parent_id` (absent: the same parent while the list stays,"
    " top level when it changes) and `after_id` (the sibling to follow at the destination; null: first; absent:"
    " last). The subtasks follow, keeping their parents and order. A parent that is the task or one of its"
    " subtasks, deeper than 5 levels, in another list, or with 1,000 subtasks, and an id naming nothing of yours"
    " are 400 naming the field. With `If-Match`, only if the task is still at that version.",
    parameters=[apidoc.IF_MATCH],
    body="Move",
    example={"list_id": "6f1c2a3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f", "after_id": None},
    success=apidoc.ok("Moved.", "Task", apidoc.ETAG),
    errors=("400", "404task", "412", "413", "415"),
)
def move_task(user_id, task_id):
    given = move_schema.load(json_object())
    versions = if_match_versions()
    with connection() as conn:
        task = queries.move_task(conn, user_id, task_id, given, versions)
        if task is None:
            raise refused(conn, user_id, task_id)
    return one_task(task)

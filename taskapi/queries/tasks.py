"""One task: create, read, update, delete. Each write is one statement that also keeps its user's bookkeeping.

Every write first takes its user's row: it advances the user's change counter (and, for creates and deletes, the
task count) and stamps the task with the new number. The row lock this takes is held until the statement commits,
so a user's writers commit in counter order (the change feed's guarantee: the numbers a reader sees form an
unbroken prefix) and the count is exact (the quota's). Every writer, the user's deletion included, locks the user's
row before any task row, so writers never deadlock.
"""

from dataclasses import dataclass

from taskapi.queries.users import user_exists

# A task as the API writes it, made by PostgreSQL: the keys in the documented order, the values as TaskSchema dumps
# them (a test holds the two equal), compact (row_to_json, like every answer's JSON). Answers carry this text as it
# comes: no row, no dict, no JSON encoding in Python, which is most of what serving one task costs there. A task
# completed before round 3 has no completed_at: its last update stands in (and is kept by the next write).
_UTC = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_DUE_JSON = """CASE WHEN tasks.due_date IS NOT NULL THEN (SELECT row_to_json(due) FROM (SELECT
        to_char(tasks.due_date, 'YYYY-MM-DD') AS date, to_char(tasks.due_time, 'HH24:MI:SS') AS time,
        tasks.due_zone AS time_zone, to_char(tasks.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at
    ) AS due) END"""
COMPLETED_AT = "coalesce(tasks.completed_at, CASE WHEN tasks.is_completed THEN tasks.updated_at END)"
TASK_JSON = f"""(SELECT row_to_json(task)::text FROM (SELECT
    tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.is_completed, {_DUE_JSON} AS due,
    (ARRAY['none', 'low', 'medium', 'high', 'urgent'])[tasks.priority + 1] AS priority, tasks.labels,
    {_UTC.format(COMPLETED_AT)} AS completed_at, tasks.list_id, tasks.parent_id, tasks.position, tasks.version,
    {_UTC.format("tasks.created_at")} AS created_at, {_UTC.format("tasks.updated_at")} AS updated_at
) AS task)"""
# The columns TASK_JSON reads: a statement that makes it from a subquery (a page) selects these under the name tasks.
JSON_COLUMNS = (
    "id, user_id, title, description, is_completed, due_date, due_time, due_zone, due_at, priority, labels,"
    " completed_at, list_id, parent_id, position, version, created_at, updated_at"
)
# What a task's JSON takes, in bytes, known before it is made: its title, description and labels as JSON (kept by
# a trigger on every write; the stored length for rows older than that column) and at most this for the rest.
JSON_OVERHEAD = 512
JSON_BYTES = f"""({JSON_OVERHEAD} + coalesce(
    text_bytes, octet_length(title) + coalesce(octet_length(description), 0)))"""
# What a statement answering with one task returns: its id (for Location), its version (for ETag), its JSON; and
# for the cascades, its completion.
_ONE_TASK = f"tasks.id, tasks.version, {TASK_JSON} AS task, tasks.is_completed, tasks.completed_at"

# If-Match, decided by the write itself: a row whose version is not among those allowed is not touched. A
# concurrent writer that got there first makes PostgreSQL re-check this condition on the row it left, so of two
# writers sending the same If-Match exactly one matches.
VERSION_MATCHES = "(%(versions)s::bigint[] IS NULL OR tasks.version = ANY(%(versions)s::bigint[]))"

# Every stored column a write may set, with its type (a NULL parameter needs one).
_WRITTEN = {
    "title": "text",
    "search_title": "text",
    "title_keys": "integer[]",
    "description": "text",
    "search_description": "text",
    "description_keys": "integer[]",
    "is_completed": "boolean",
    "due_date": "date",
    "due_time": "time",
    "due_zone": "text",
    "due_at": "timestamptz",
    "due_sort": "timestamptz",
    "priority": "smallint",
    "labels": "text[]",
    "label_keys": "text[]",
    "label_hashes": "integer[]",
}
# The field (columns.GROUPS) each column belongs to: a PUT or PATCH sets a column when its field was given.
_FIELD_OF = {
    "title": "title",
    "search_title": "title",
    "title_keys": "title",
    "description": "description",
    "search_description": "description",
    "description_keys": "description",
    "is_completed": "is_completed",
    "priority": "priority",
    "labels": "labels",
    "label_keys": "labels",
    "label_hashes": "labels",
    **{column: "due" for column in ("due_date", "due_time", "due_zone", "due_at", "due_sort")},
}

# The quota is part of the user's row update: a writer that waited for the lock re-checks it on the row its
# predecessor left, so concurrent creates can never pass it together. No row back: no such user, or no room.
# INSERT_TASK: the caller took the user's row already (its transaction chose the position under that lock); a task
# placed last among the top-level tasks in no list leaves its key as the end of them (users.task_tail, 0016).
# APPEND_TASK: a top-level task in no list, in one statement: its key follows the end the user's row keeps, read
# and advanced under the row's lock as the change number is. No row back also when that end is not known.
_INSERT = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1, task_count = task_count + 1, task_tail = {{tail}}
    WHERE id = %(user_id)s AND task_count < %(max_tasks)s {{known}}
    RETURNING id, change_seq, task_tail
)
INSERT INTO tasks (user_id, change_seq, completed_at, list_id, parent_id, position, {", ".join(_WRITTEN)})
SELECT id, change_seq, CASE WHEN %(is_completed)s::boolean THEN now() END, {{place}},
       {", ".join(f"%({column})s::{kind}" for column, kind in _WRITTEN.items())}
FROM owner
RETURNING {_ONE_TASK}
"""
INSERT_TASK = _INSERT.format(
    tail="CASE WHEN %(list_id)s::uuid IS NULL AND %(parent_id)s::uuid IS NULL THEN %(position)s ELSE task_tail END",
    known="",
    place="%(list_id)s::uuid, %(parent_id)s::uuid, %(position)s",
)
APPEND_TASK = _INSERT.format(
    tail="position_after(task_tail)",
    known="AND position_after(task_tail) IS NOT NULL",
    place="NULL::uuid, NULL::uuid, task_tail",
)
# A task placed among the top-level tasks in no list by anything but a create (a move, a renumbering) makes their
# end unknown again: the next create there reads the group (INSERT_TASK) and sets it.
FORGET_TAIL = "UPDATE users SET task_tail = NULL WHERE id = %(user_id)s"

SELECT_TASK = f"SELECT {_ONE_TASK} FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

SELECT_TASK_VERSION = "SELECT version FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

# One statement serves PUT (every field given) and PATCH (only some): each column is set when its field was given
# (`set_<field>`), else kept. completed_at follows is_completed: set by the write that makes it true, kept by writes
# that leave it true, cleared with it. A write that finds no task (or a stale If-Match) still used a number of the
# counter: a gap, which the change feed does not mind.
# `guarded`: the write is refused (no row back) when it would cascade (making a task with children completed, or a
# subtask open again), so that the caller can do that in a transaction; the row's child_count and parent_id are re-read
# under its lock, so a child added meanwhile is seen. Most tasks have neither: one statement, one round trip.
_NEW_IS_COMPLETED = "CASE WHEN %(set_is_completed)s THEN %(is_completed)s::boolean ELSE tasks.is_completed END"
_CASCADES = """(%(set_is_completed)s AND %(is_completed)s::boolean <> tasks.is_completed
    AND CASE WHEN %(is_completed)s::boolean THEN tasks.child_count > 0 ELSE tasks.parent_id IS NOT NULL END)"""
UPDATE_TASK = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1 WHERE id = %(user_id)s RETURNING change_seq
)
UPDATE tasks SET
    {
    ", ".join(
        f"{column} = CASE WHEN %(set_{_FIELD_OF[column]})s THEN %({column})s::{kind} ELSE tasks.{column} END"
        for column, kind in _WRITTEN.items()
    )
},
    completed_at = CASE
        WHEN NOT {_NEW_IS_COMPLETED} THEN NULL
        WHEN tasks.is_completed THEN {COMPLETED_AT}
        ELSE now() END,
    version = tasks.version + 1,
    updated_at = now(),
    change_seq = owner.change_seq
FROM owner
WHERE tasks.user_id = %(user_id)s AND tasks.id = %(task_id)s AND {VERSION_MATCHES}
    AND NOT (%(guarded)s AND {_CASCADES})
RETURNING {_ONE_TASK}
"""

# A delete must not lower the task count unless the task really went, so it locks the user's row first (taking
# the newest committed counter, even after waiting), deletes, and only then updates the row, if anything was
# deleted. The deleted task leaves a tombstone carrying its change number, for the change feed. Beyond the user's
# bound, the oldest tombstones collapse to make room (the count lives on the user's row, beside the task count),
# and the floor remembers the newest number collapsed: a sync token from before it may have missed a deletion.
# Only a task without children goes here (child_count, re-read under the row's lock); its parent has one child
# less. A subtree is deleted by queries.delete_subtree.
DELETE_TASK = f"""
WITH owner AS (
    SELECT id, change_seq + 1 AS seq, task_count, tombstone_count FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
),
gone AS (
    DELETE FROM tasks USING owner
    WHERE tasks.user_id = %(user_id)s AND tasks.id = %(task_id)s AND {VERSION_MATCHES} AND tasks.child_count = 0
    RETURNING tasks.id, tasks.parent_id, owner.seq
),
parent AS (
    UPDATE tasks SET child_count = child_count - 1
    WHERE tasks.user_id = %(user_id)s AND tasks.id = (SELECT parent_id FROM gone)
),
collapsed AS (
    DELETE FROM tombstones WHERE user_id = %(user_id)s AND change_seq IN (
        SELECT change_seq FROM tombstones
        WHERE user_id = %(user_id)s AND EXISTS (SELECT 1 FROM gone)
        ORDER BY change_seq
        LIMIT (SELECT GREATEST(tombstone_count + 1 - %(max_tombstones)s, 0) FROM owner))
    RETURNING change_seq
),
counter AS (
    UPDATE users SET
        change_seq = owner.seq,
        task_count = owner.task_count - 1,
        tombstone_count = owner.tombstone_count + 1 - (SELECT count(*) FROM collapsed),
        tombstone_floor = GREATEST(users.tombstone_floor, (SELECT max(change_seq) FROM collapsed))
    FROM owner WHERE users.id = owner.id AND EXISTS (SELECT 1 FROM gone)
)
INSERT INTO tombstones (user_id, change_seq, task_id)
SELECT %(user_id)s, seq, id FROM gone
RETURNING task_id
"""

# Many tasks at once (a subtree, a list's tasks: at most DELETE_BATCH a statement), each leaving a tombstone with a
# change number of its own, in a transaction that took the user's row; then the tombstones beyond the user's bound
# collapse, oldest first.
DELETE_TASK_IDS = """
WITH gone AS (
    DELETE FROM tasks WHERE user_id = %(user_id)s AND id = ANY(%(ids)s::uuid[]) RETURNING id
),
numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM gone),
owner AS (
    UPDATE users SET
        change_seq = change_seq + (SELECT count(*) FROM gone),
        task_count = task_count - (SELECT count(*) FROM gone),
        tombstone_count = tombstone_count + (SELECT count(*) FROM gone)
    WHERE id = %(user_id)s
    RETURNING change_seq - (SELECT count(*) FROM gone) AS base
)
INSERT INTO tombstones (user_id, change_seq, task_id)
SELECT %(user_id)s, owner.base + numbered.k, numbered.id FROM numbered, owner
"""
TRIM_TOMBSTONES = """
WITH collapsed AS (
    DELETE FROM tombstones WHERE user_id = %(user_id)s AND change_seq IN (
        SELECT change_seq FROM tombstones WHERE user_id = %(user_id)s
        ORDER BY change_seq
        LIMIT (SELECT GREATEST(tombstone_count - %(max_tombstones)s, 0) FROM users WHERE id = %(user_id)s))
    RETURNING change_seq
)
UPDATE users SET
    tombstone_count = tombstone_count - (SELECT count(*) FROM collapsed),
    tombstone_floor = GREATEST(tombstone_floor, (SELECT max(change_seq) FROM collapsed))
WHERE id = %(user_id)s AND EXISTS (SELECT 1 FROM collapsed)
"""
DELETE_BATCH = 1000


# Tasks written before migration 0009, which have no search columns yet; a bounded batch, never waiting on a writer.
# In user order, so that the partial index of such rows serves it (a generic plan would read the table from the
# start, past every row already filled).
SELECT_UNKEYED = """
SELECT user_id, id, title, description, labels FROM tasks WHERE (title_keys IS NULL OR description_keys IS NULL)
ORDER BY user_id LIMIT %(batch)s FOR UPDATE SKIP LOCKED
"""
STORE_SEARCH_COLUMNS = """
UPDATE tasks SET search_title = %(search_title)s, title_keys = %(title_keys)s::integer[],
    search_description = %(search_description)s, description_keys = %(description_keys)s::integer[],
    label_keys = %(label_keys)s::text[], label_hashes = %(label_hashes)s::integer[]
WHERE user_id = %(user_id)s AND id = %(task_id)s
"""


@dataclass
class Created:
    """What an insert came to: the task, or why not (no such user; the user's quota is full)."""

    task: dict | None
    user_found: bool


def insert_task(conn, user_id, columns, place, max_tasks=2**62):
    """Insert a task with `columns` (columns.task_columns of every field) where `place` (tree.Place) says, in the
    caller's transaction, which took the user's row; Created says how it went."""
    params = {**columns, "user_id": user_id, "max_tasks": max_tasks, **place.columns()}
    task = conn.execute(INSERT_TASK, params).fetchone()
    if task is not None:
        return Created(task=task, user_found=True)
    # Refused: say why (a second statement, on this path only).
    return Created(task=None, user_found=user_exists(conn, user_id))


def append_task(conn, user_id, columns, max_tasks=2**62):
    """Insert a top-level task in no list with `columns` (columns.task_columns of every field), last there, in one
    statement; None when the user's row does not know where that is (nor whether the user is there, or has room:
    then insert_task, in a transaction that took the row, finds out)."""
    return conn.execute(APPEND_TASK, {**columns, "user_id": user_id, "max_tasks": max_tasks}).fetchone()


def fetch_task(conn, user_id, task_id):
    return conn.execute(SELECT_TASK, {"user_id": user_id, "task_id": task_id}).fetchone()


def fetch_task_version(conn, user_id, task_id):
    row = conn.execute(SELECT_TASK_VERSION, {"user_id": user_id, "task_id": task_id}).fetchone()
    return None if row is None else row["version"]


def update_task(conn, user_id, task_id, columns, versions=None, guarded=False):
    """Apply `columns` (columns.task_columns of the fields given; a PUT gives all of them) if the task's version is
    among `versions` (None: any); the updated task, or None when not found, not matched, or (`guarded`) when the
    write would cascade."""
    params = {**columns, "user_id": user_id, "task_id": task_id, "versions": versions, "guarded": guarded}
    return conn.execute(UPDATE_TASK, params).fetchone()


def delete_task(conn, user_id, task_id, versions=None, max_tombstones=2**62):
    """True when deleted; False when not found, its version is not among `versions` (None: any), or it has
    children (then queries.delete_subtree)."""
    params = {"user_id": user_id, "task_id": task_id, "versions": versions, "max_tombstones": max_tombstones}
    return conn.execute(DELETE_TASK, params).fetchone() is not None


def delete_task_ids(conn, user_id, ids, max_tombstones):
    """Delete these tasks of the user's, each leaving a tombstone, DELETE_BATCH a statement (each then collapsing
    the tombstones beyond `max_tombstones`), in the caller's transaction, which took the user's row."""
    for start in range(0, len(ids), DELETE_BATCH):
        conn.execute(DELETE_TASK_IDS, {"user_id": user_id, "ids": ids[start : start + DELETE_BATCH]})
        trim_tombstones(conn, user_id, max_tombstones)


def trim_tombstones(conn, user_id, max_tombstones):
    conn.execute(TRIM_TOMBSTONES, {"user_id": user_id, "max_tombstones": max_tombstones})


def fetch_unkeyed_tasks(conn, batch):
    return conn.execute(SELECT_UNKEYED, {"batch": batch}).fetchall()


def store_search_columns(conn, rows):
    """Store the search columns of several tasks, `rows` of (user_id, task_id, columns): psycopg's executemany sends
    them in one pipeline, one round trip for the batch."""
    with conn.cursor() as cur:
        cur.executemany(STORE_SEARCH_COLUMNS, [{**c, "user_id": u, "task_id": t} for u, t, c in rows])

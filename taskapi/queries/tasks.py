"""One task: create, read, update, delete. Each write is one statement that also keeps its user's bookkeeping.

Every write first takes its user's row: it advances the user's change counter (and, for creates and deletes, the
task count) and stamps the task with the new number. The row lock this takes is held until the statement commits,
so a user's writers commit in counter order (the change feed's guarantee: the numbers a reader sees form an
unbroken prefix) and the count is exact (the quota's). Every writer, the user's deletion included, locks the user's
row before any task row, so writers never deadlock.
"""

from dataclasses import dataclass

from taskapi.queries.users import user_exists

TASK_COLUMNS = "id, user_id, title, description, is_completed, version, created_at, updated_at"

# A task as the API writes it, made by PostgreSQL: the keys in the documented order, the values as TaskSchema dumps
# them (a test holds the two equal). Answers carry this text as it comes: no row, no dict, no JSON encoding in
# Python, which is most of what serving one task costs there.
_UTC = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
TASK_JSON = f"""json_build_object(
    'id', tasks.id, 'user_id', tasks.user_id, 'title', tasks.title, 'description', tasks.description,
    'is_completed', tasks.is_completed, 'version', tasks.version,
    'created_at', {_UTC.format("tasks.created_at")}, 'updated_at', {_UTC.format("tasks.updated_at")}
)::text"""
# What a task's JSON takes, in bytes, known before it is made: its title and description as JSON (kept by a trigger
# on every write; the stored length for rows older than that column) and at most this for the rest of it.
JSON_OVERHEAD = 256
JSON_BYTES = f"""({JSON_OVERHEAD} + coalesce(
    text_bytes, octet_length(title) + coalesce(octet_length(description), 0)))"""
# What a statement answering with one task returns: its id (for Location), its version (for ETag), its JSON.
_ONE_TASK = f"tasks.id, tasks.version, {TASK_JSON} AS task"

# If-Match, decided by the write itself: a row whose version is not among those allowed is not touched. A
# concurrent writer that got there first makes PostgreSQL re-check this condition on the row it left, so of two
# writers sending the same If-Match exactly one matches.
_VERSION_MATCHES = "(%(versions)s::bigint[] IS NULL OR tasks.version = ANY(%(versions)s::bigint[]))"

# The quota is part of the user's row update: a writer that waited for the lock re-checks it on the row its
# predecessor left, so concurrent creates can never pass it together. No row back: no such user, or no room.
INSERT_TASK = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1, task_count = task_count + 1
    WHERE id = %(user_id)s AND task_count < %(max_tasks)s
    RETURNING id, change_seq
)
INSERT INTO tasks (user_id, title, description, is_completed, change_seq)
SELECT id, %(title)s, %(description)s, %(is_completed)s, change_seq FROM owner
RETURNING {_ONE_TASK}
"""

SELECT_TASK = f"SELECT {_ONE_TASK} FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

SELECT_TASK_VERSION = "SELECT version FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

# One statement serves PUT (every field given) and PATCH (only some): a NULL title or is_completed means
# "keep", and description, which may be set to NULL, says so with set_description. A write that finds no task (or
# a stale If-Match) still used a number of the counter: a gap, which the change feed does not mind.
UPDATE_TASK = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1 WHERE id = %(user_id)s RETURNING change_seq
)
UPDATE tasks SET
    title = COALESCE(%(title)s, tasks.title),
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE tasks.description END,
    is_completed = COALESCE(%(is_completed)s, tasks.is_completed),
    version = tasks.version + 1,
    updated_at = now(),
    change_seq = owner.change_seq
FROM owner
WHERE tasks.user_id = %(user_id)s AND tasks.id = %(task_id)s AND {_VERSION_MATCHES}
RETURNING {_ONE_TASK}
"""

# A delete must not lower the task count unless the task really went, so it locks the user's row first (taking
# the newest committed counter, even after waiting), deletes, and only then updates the row, if anything was
# deleted. The deleted task leaves a tombstone carrying its change number, for the change feed. Beyond the user's
# bound, the oldest tombstones collapse to make room (the count lives on the user's row, beside the task count),
# and the floor remembers the newest number collapsed: a sync token from before it may have missed a deletion.
DELETE_TASK = f"""
WITH owner AS (
    SELECT id, change_seq + 1 AS seq, task_count, tombstone_count FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
),
gone AS (
    DELETE FROM tasks USING owner
    WHERE tasks.user_id = %(user_id)s AND tasks.id = %(task_id)s AND {_VERSION_MATCHES}
    RETURNING tasks.id, owner.seq
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


@dataclass
class Created:
    """What an insert came to: the task, or why not (no such user; the user's quota is full)."""

    task: dict | None
    user_found: bool


def insert_task(conn, user_id, title, description=None, is_completed=False, max_tasks=2**62):
    params = {
        "user_id": user_id,
        "title": title,
        "description": description,
        "is_completed": is_completed,
        "max_tasks": max_tasks,
    }
    task = conn.execute(INSERT_TASK, params).fetchone()
    if task is not None:
        return Created(task=task, user_found=True)
    # Refused: say why (a second statement, on this path only).
    return Created(task=None, user_found=user_exists(conn, user_id))


def fetch_task(conn, user_id, task_id):
    return conn.execute(SELECT_TASK, {"user_id": user_id, "task_id": task_id}).fetchone()


def fetch_task_version(conn, user_id, task_id):
    row = conn.execute(SELECT_TASK_VERSION, {"user_id": user_id, "task_id": task_id}).fetchone()
    return None if row is None else row["version"]


def update_task(conn, user_id, task_id, fields, versions=None):
    """Apply the given fields (a PUT passes all of them) if the task's version is among `versions` (None: any);
    the updated task, or None when not found or not matched."""
    params = {
        "user_id": user_id,
        "task_id": task_id,
        "versions": versions,
        "title": fields.get("title"),
        "is_completed": fields.get("is_completed"),
        "set_description": "description" in fields,
        "description": fields.get("description"),
    }
    return conn.execute(UPDATE_TASK, params).fetchone()


def delete_task(conn, user_id, task_id, versions=None, max_tombstones=2**62):
    """True when deleted; False when not found, or its version is not among `versions` (None: any)."""
    params = {"user_id": user_id, "task_id": task_id, "versions": versions, "max_tombstones": max_tombstones}
    return conn.execute(DELETE_TASK, params).fetchone() is not None

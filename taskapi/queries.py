"""Every SQL statement of the service, and the small functions that run them.

Values are always bound parameters; every statement on `tasks` has `user_id` in its WHERE clause.
"""

import uuid
from dataclasses import dataclass

from psycopg import errors

NO_USER_SCOPE = uuid.UUID(int=0)  # the scope of POST /users idempotency keys under AUTH_MODE=none
TASK_COLUMNS = "id, user_id, title, description, is_completed, version, created_at, updated_at"

INSERT_USER = """
INSERT INTO users (id) VALUES (COALESCE(%(id)s::uuid, gen_random_uuid()))
ON CONFLICT (id) DO NOTHING
RETURNING id, created_at
"""

SELECT_USER = "SELECT id, created_at FROM users WHERE id = %(user_id)s"

USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS found"

# The user's tasks go by ON DELETE CASCADE; in the same statement go the idempotency keys scoped to them, and the
# stored answer that registered them under AUTH_MODE=none (scoped to no user), so no retry revives a deleted user.
DELETE_USER = """
WITH keys AS (
    DELETE FROM idempotency_keys
    WHERE scope = %(user_id)s OR (scope = %(no_user)s AND location = '/users/' || %(user_id)s::text)
)
DELETE FROM users WHERE id = %(user_id)s RETURNING id
"""

# The user's existence is part of the insert: no row back means no such user, in one round trip.
INSERT_TASK = f"""
INSERT INTO tasks (user_id, title, description, is_completed)
SELECT id, %(title)s, %(description)s, %(is_completed)s FROM users WHERE id = %(user_id)s
RETURNING {TASK_COLUMNS}
"""

SELECT_TASK = f"SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

SELECT_TASK_VERSION = "SELECT version FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

# If-Match, decided by the write itself: a row whose version is not among those allowed is not touched. A
# concurrent writer that got there first makes PostgreSQL re-check this condition on the row it left, so of two
# writers sending the same If-Match exactly one matches.
_VERSION_MATCHES = "(%(versions)s::bigint[] IS NULL OR version = ANY(%(versions)s::bigint[]))"

# One statement serves PUT (every field given) and PATCH (only some): a NULL title or is_completed means
# "keep", and description, which may be set to NULL, says so with set_description.
UPDATE_TASK = f"""
UPDATE tasks SET
    title = COALESCE(%(title)s, title),
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    is_completed = COALESCE(%(is_completed)s, is_completed),
    version = version + 1,
    updated_at = now()
WHERE user_id = %(user_id)s AND id = %(task_id)s AND {_VERSION_MATCHES}
RETURNING {TASK_COLUMNS}
"""

DELETE_TASK = f"""
DELETE FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s AND {_VERSION_MATCHES} RETURNING id
"""

_STATUS_FILTER = "(%(is_completed)s::boolean IS NULL OR is_completed = %(is_completed)s::boolean)"

# One statement, one snapshot: whether the user exists, how many tasks match, and the page. The head row always
# comes back; with an empty page its task columns are NULL.
LIST_TASKS = f"""
SELECT head.user_found, head.total,
       page.id, page.user_id, page.title, page.description, page.is_completed, page.version,
       page.created_at, page.updated_at
FROM (SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS user_found,
             (SELECT count(*) FROM tasks WHERE user_id = %(user_id)s AND {_STATUS_FILTER}) AS total) AS head
LEFT JOIN LATERAL (
    SELECT {TASK_COLUMNS} FROM tasks
    WHERE user_id = %(user_id)s AND {_STATUS_FILTER}
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s OFFSET %(offset)s
) AS page ON true
ORDER BY page.created_at DESC, page.id DESC
"""


# Idempotency keys. The claim inserts the key, or takes over an expired one; a live key conflicts and returns no
# row. A concurrent claim of the same key waits (up to lock_timeout) for the first one's transaction to end.
CLAIM_KEY = """
INSERT INTO idempotency_keys AS k (scope, key, fingerprint) VALUES (%(scope)s, %(key)s, %(fingerprint)s)
ON CONFLICT (scope, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, created_at = now(), status = NULL, body = NULL, location = NULL, etag = NULL
    WHERE k.created_at < now() - make_interval(hours => %(ttl_hours)s)
RETURNING scope
"""

SELECT_KEY = """
SELECT fingerprint, status, body, location, etag FROM idempotency_keys WHERE scope = %(scope)s AND key = %(key)s
"""

STORE_ANSWER = """
UPDATE idempotency_keys SET status = %(status)s, body = %(body)s, location = %(location)s, etag = %(etag)s
WHERE scope = %(scope)s AND key = %(key)s
"""

# Bounded work per purge; SKIP LOCKED never waits on a key being claimed right now.
PURGE_EXPIRED_KEYS = """
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => %(ttl_hours)s)
    ORDER BY created_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
"""


@dataclass
class Page:
    items: list
    total: int


def insert_user(conn, user_id=None):
    """The new user, or None when the id is taken."""
    return conn.execute(INSERT_USER, {"id": user_id}).fetchone()


def fetch_user(conn, user_id):
    return conn.execute(SELECT_USER, {"user_id": user_id}).fetchone()


def user_exists(conn, user_id):
    return conn.execute(USER_EXISTS, {"user_id": user_id}).fetchone()["found"]


def delete_user(conn, user_id):
    """True when the user (and with it every task of theirs) was deleted."""
    return conn.execute(DELETE_USER, {"user_id": user_id, "no_user": NO_USER_SCOPE}).fetchone() is not None


def insert_task(conn, user_id, title, description=None, is_completed=False):
    """The new task, or None when the user does not exist."""
    params = {"user_id": user_id, "title": title, "description": description, "is_completed": is_completed}
    try:
        return conn.execute(INSERT_TASK, params).fetchone()
    except errors.ForeignKeyViolation:  # the user was deleted between the SELECT and the insert
        return None


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


def delete_task(conn, user_id, task_id, versions=None):
    """True when deleted; False when not found, or its version is not among `versions` (None: any)."""
    params = {"user_id": user_id, "task_id": task_id, "versions": versions}
    return conn.execute(DELETE_TASK, params).fetchone() is not None


def list_tasks(conn, user_id, limit, offset, is_completed=None):
    """One page of the user's tasks, newest first, with the count of all that match; None when no such user."""
    params = {"user_id": user_id, "limit": limit, "offset": offset, "is_completed": is_completed}
    rows = conn.execute(LIST_TASKS, params).fetchall()
    if not rows[0]["user_found"]:
        return None
    return Page(items=[row for row in rows if row["id"] is not None], total=rows[0]["total"])


def claim_key(conn, scope, key, fingerprint, ttl_hours):
    """True when this transaction now owns the key (new, or expired and taken over); False when it is live."""
    params = {"scope": scope, "key": key, "fingerprint": fingerprint, "ttl_hours": ttl_hours}
    return conn.execute(CLAIM_KEY, params).fetchone() is not None


def fetch_key(conn, scope, key):
    return conn.execute(SELECT_KEY, {"scope": scope, "key": key}).fetchone()


def store_answer(conn, scope, key, status, body, location, etag):
    params = {"scope": scope, "key": key, "status": status, "body": body, "location": location, "etag": etag}
    conn.execute(STORE_ANSWER, params)


def purge_expired_keys(conn, ttl_hours, batch):
    """Delete up to `batch` expired keys, oldest first; returns how many went."""
    return conn.execute(PURGE_EXPIRED_KEYS, {"ttl_hours": ttl_hours, "batch": batch}).rowcount

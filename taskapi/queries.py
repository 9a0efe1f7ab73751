"""Every SQL statement of the service, and the small functions that run them.

Values are always bound parameters; every statement on `tasks` has `user_id` in its WHERE clause.
"""

from dataclasses import dataclass

from psycopg import errors

TASK_COLUMNS = "id, user_id, title, description, is_completed, created_at, updated_at"

INSERT_USER = """
INSERT INTO users (id) VALUES (COALESCE(%(id)s::uuid, gen_random_uuid()))
ON CONFLICT (id) DO NOTHING
RETURNING id, created_at
"""

SELECT_USER = "SELECT id, created_at FROM users WHERE id = %(user_id)s"

USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS found"

DELETE_USER = "DELETE FROM users WHERE id = %(user_id)s RETURNING id"

# The user's existence is part of the insert: no row back means no such user, in one round trip.
INSERT_TASK = f"""
INSERT INTO tasks (user_id, title, description, is_completed)
SELECT id, %(title)s, %(description)s, %(is_completed)s FROM users WHERE id = %(user_id)s
RETURNING {TASK_COLUMNS}
"""

SELECT_TASK = f"SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"

# One statement serves PUT (every field given) and PATCH (only some): a NULL title or is_completed means
# "keep", and description, which may be set to NULL, says so with set_description.
UPDATE_TASK = f"""
UPDATE tasks SET
    title = COALESCE(%(title)s, title),
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    is_completed = COALESCE(%(is_completed)s, is_completed),
    updated_at = now()
WHERE user_id = %(user_id)s AND id = %(task_id)s
RETURNING {TASK_COLUMNS}
"""

DELETE_TASK = "DELETE FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s RETURNING id"

_STATUS_FILTER = "(%(is_completed)s::boolean IS NULL OR is_completed = %(is_completed)s::boolean)"

# One statement, one snapshot: whether the user exists, how many tasks match, and the page. The head row always
# comes back; with an empty page its task columns are NULL.
LIST_TASKS = f"""
SELECT head.user_found, head.total,
       page.id, page.user_id, page.title, page.description, page.is_completed, page.created_at, page.updated_at
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
    return conn.execute(DELETE_USER, {"user_id": user_id}).fetchone() is not None


def insert_task(conn, user_id, title, description=None, is_completed=False):
    """The new task, or None when the user does not exist."""
    params = {"user_id": user_id, "title": title, "description": description, "is_completed": is_completed}
    try:
        return conn.execute(INSERT_TASK, params).fetchone()
    except errors.ForeignKeyViolation:  # the user was deleted between the SELECT and the insert
        return None


def fetch_task(conn, user_id, task_id):
    return conn.execute(SELECT_TASK, {"user_id": user_id, "task_id": task_id}).fetchone()


def update_task(conn, user_id, task_id, fields):
    """Apply the given fields (a PUT passes all of them); the updated task, or None when not found."""
    params = {
        "user_id": user_id,
        "task_id": task_id,
        "title": fields.get("title"),
        "is_completed": fields.get("is_completed"),
        "set_description": "description" in fields,
        "description": fields.get("description"),
    }
    return conn.execute(UPDATE_TASK, params).fetchone()


def delete_task(conn, user_id, task_id):
    return conn.execute(DELETE_TASK, {"user_id": user_id, "task_id": task_id}).fetchone() is not None


def list_tasks(conn, user_id, limit, offset, is_completed=None):
    """One page of the user's tasks, newest first, with the count of all that match; None when no such user."""
    params = {"user_id": user_id, "limit": limit, "offset": offset, "is_completed": is_completed}
    rows = conn.execute(LIST_TASKS, params).fetchall()
    if not rows[0]["user_found"]:
        return None
    return Page(items=[row for row in rows if row["id"] is not None], total=rows[0]["total"])

"""Users: register, read, delete."""

from taskapi.queries.keys import NO_USER_SCOPE

INSERT_USER = """
INSERT INTO users (id) VALUES (COALESCE(%(id)s::uuid, gen_random_uuid()))
ON CONFLICT (id) DO NOTHING
RETURNING id, created_at
"""

SELECT_USER = "SELECT id, created_at FROM users WHERE id = %(user_id)s"

USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS found"

# The user's row first, as every writer takes it (FOR UPDATE also holds off the foreign-key check of a concurrent
# insert), then the tasks a bounded batch at a time: one statement for 100,000 large tasks (their TOAST included)
# could run past the statement timeout, a batch never does, and all of it is still one transaction.
LOCK_USER = "SELECT id FROM users WHERE id = %(user_id)s FOR UPDATE"
DELETE_TASKS_BATCH = """
DELETE FROM tasks WHERE user_id = %(user_id)s AND id IN (
    SELECT id FROM tasks WHERE user_id = %(user_id)s LIMIT %(batch)s)
"""
DELETE_BATCH = 1000

# The rest, bounded per user, goes in one statement: tombstones by ON DELETE CASCADE, the idempotency keys scoped
# to the user, and the stored answer that registered them under AUTH_MODE=none (scoped to no user), so no retry
# revives them.
DELETE_USER = """
WITH keys AS (
    DELETE FROM idempotency_keys
    WHERE scope = %(user_id)s OR (scope = %(no_user)s AND location = '/users/' || %(user_id)s::text)
)
DELETE FROM users WHERE id = %(user_id)s RETURNING id
"""


def insert_user(conn, user_id=None):
    """The new user, or None when the id is taken."""
    return conn.execute(INSERT_USER, {"id": user_id}).fetchone()


def fetch_user(conn, user_id):
    return conn.execute(SELECT_USER, {"user_id": user_id}).fetchone()


def user_exists(conn, user_id):
    return conn.execute(USER_EXISTS, {"user_id": user_id}).fetchone()["found"]


def delete_user(conn, user_id, batch=DELETE_BATCH):
    """True when the user (and with it every task, tombstone and idempotency key of theirs) was deleted."""
    params = {"user_id": user_id, "no_user": NO_USER_SCOPE, "batch": batch}
    with conn.transaction():
        if conn.execute(LOCK_USER, params).fetchone() is None:
            return False
        while conn.execute(DELETE_TASKS_BATCH, params).rowcount == batch:
            pass
        return conn.execute(DELETE_USER, params).fetchone() is not None

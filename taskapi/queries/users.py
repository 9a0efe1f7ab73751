"""Users: register, read, change their time zone, delete."""

from taskapi.queries.keys import NO_USER_SCOPE

INSERT_USER = """
INSERT INTO users (id, time_zone) VALUES (COALESCE(%(id)s::uuid, gen_random_uuid()), %(time_zone)s)
ON CONFLICT (id) DO NOTHING
RETURNING id, created_at, time_zone
"""

SELECT_USER = "SELECT id, created_at, time_zone FROM users WHERE id = %(user_id)s"

# A writer whose statement depends on the user's zone (an all-day due ends with the user's day) takes the user's
# row first, in its transaction, so the zone cannot change before it commits.
LOCK_USER_ZONE = "SELECT time_zone FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE"
SELECT_ZONE = "SELECT time_zone FROM users WHERE id = %(user_id)s"

SET_ZONE = "UPDATE users SET time_zone = %(time_zone)s WHERE id = %(user_id)s RETURNING id, created_at, time_zone"
# An all-day due sorts (and turns overdue) at the end of its date in the user's zone: when the zone changes, so do
# those instants. The dates are few (one per day with all-day dues), each mapped by the service; the tasks are
# moved a bounded batch a statement. Their JSON does not change: no new version, no change-feed entry.
ALL_DAY_DATES = """
SELECT DISTINCT due_date FROM tasks WHERE user_id = %(user_id)s AND due_time IS NULL AND due_date IS NOT NULL
"""
MOVE_ALL_DAY_DUES = """
WITH batch AS (
    SELECT tasks.id, moved.day_end FROM tasks
    JOIN unnest(%(days)s::date[], %(ends)s::timestamptz[]) AS moved (day, day_end) ON tasks.due_date = moved.day
    WHERE tasks.user_id = %(user_id)s AND tasks.due_time IS NULL AND tasks.due_sort IS DISTINCT FROM moved.day_end
    LIMIT %(batch)s
)
UPDATE tasks SET due_sort = batch.day_end FROM batch WHERE tasks.user_id = %(user_id)s AND tasks.id = batch.id
"""

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


def insert_user(conn, user_id=None, time_zone="UTC"):
    """The new user, or None when the id is taken."""
    return conn.execute(INSERT_USER, {"id": user_id, "time_zone": time_zone}).fetchone()


def lock_user_zone(conn, user_id):
    """The user's zone, their row locked until the transaction ends; None when there is no such user."""
    row = conn.execute(LOCK_USER_ZONE, {"user_id": user_id}).fetchone()
    return None if row is None else row["time_zone"]


def fetch_zone(conn, user_id):
    row = conn.execute(SELECT_ZONE, {"user_id": user_id}).fetchone()
    return None if row is None else row["time_zone"]


def set_zone(conn, user_id, time_zone, day_end, batch=DELETE_BATCH):
    """Change the user's zone, and with it when their all-day dues end (`day_end(date, zone)`, the service's zone
    rules); the user, or None when there is no such user."""
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return None
        user = conn.execute(SET_ZONE, {"user_id": user_id, "time_zone": time_zone}).fetchone()
        days = [row["due_date"] for row in conn.execute(ALL_DAY_DATES, {"user_id": user_id})]
        params = {"user_id": user_id, "days": days, "ends": [day_end(day, time_zone) for day in days], "batch": batch}
        while days and conn.execute(MOVE_ALL_DAY_DUES, params).rowcount == batch:
            pass
        return user


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

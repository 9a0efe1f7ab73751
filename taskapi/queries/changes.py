"""The change feed: a user's task writes and deletions after a given number of their change counter."""

from dataclasses import dataclass

from taskapi.queries.tasks import TASK_COLUMNS

# One snapshot: the user's counter, and the next changes after `since` in counter order: tasks in their latest
# state (a task's row carries the number of its last write) and tombstones of deleted ones. A task is either in
# `tasks` or deleted, so it appears at most once.
CHANGES = f"""
SELECT head.current_seq, page.change_seq, page.deleted, page.deleted_at,
       {", ".join(f"page.{c}" for c in TASK_COLUMNS.split(", "))}
FROM (SELECT (SELECT change_seq FROM users WHERE id = %(user_id)s) AS current_seq) AS head
LEFT JOIN LATERAL (
    (SELECT change_seq, false AS deleted, NULL::timestamptz AS deleted_at, {TASK_COLUMNS}
     FROM tasks WHERE user_id = %(user_id)s AND change_seq > %(since)s
     ORDER BY change_seq LIMIT %(limit)s)
    UNION ALL
    (SELECT change_seq, true, deleted_at, task_id, user_id, NULL, NULL, NULL, NULL, NULL, NULL
     FROM tombstones WHERE user_id = %(user_id)s AND change_seq > %(since)s
     ORDER BY change_seq LIMIT %(limit)s)
    ORDER BY change_seq LIMIT %(limit)s
) AS page ON true
ORDER BY page.change_seq
"""

# Tombstones past their retention, oldest first, a bounded batch at a time (SKIP LOCKED: never waits).
PURGE_TOMBSTONES = """
DELETE FROM tombstones WHERE ctid IN (
    SELECT ctid FROM tombstones WHERE deleted_at < now() - make_interval(days => %(days)s)
    ORDER BY deleted_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
"""


@dataclass
class Changes:
    rows: list  # in counter order; each has `deleted`, `change_seq`, and the task's columns
    current_seq: int  # the user's counter in the same snapshot: every change up to it is committed and visible


def fetch_changes(conn, user_id, since, limit):
    """Up to `limit` changes after counter value `since`; None when there is no such user."""
    rows = conn.execute(CHANGES, {"user_id": user_id, "since": since, "limit": limit}).fetchall()
    if rows[0]["current_seq"] is None:
        return None
    return Changes(rows=[row for row in rows if row["change_seq"] is not None], current_seq=rows[0]["current_seq"])


def purge_tombstones(conn, days, batch):
    return conn.execute(PURGE_TOMBSTONES, {"days": days, "batch": batch}).rowcount

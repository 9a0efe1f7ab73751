"""The change feed: a user's task writes and deletions after a given number of their change counter."""

from dataclasses import dataclass

from psycopg.rows import tuple_row

from taskapi.queries.lists import LIST_JSON
from taskapi.queries.tasks import JSON_BYTES, JSON_OVERHEAD, TASK_JSON

TOMBSTONE_BYTES = 80  # at most, for {"id", "deleted_at"}
# What a change is: its `kind` in CHANGES.
TASK, DELETED_TASK, LIST, DELETED_LIST = range(4)

# One snapshot: the user's counter, incarnation and tombstone floor, and the next changes after `since` in counter
# order: tasks and lists in their latest state (a row carries the number of its last write) and tombstones of
# deleted ones. A task or list is either in its table or deleted, so it appears at most once. The changes stop
# before the one whose JSON would pass the byte budget (always keeping the first), and only those kept get their
# JSON made.
CHANGES = f"""
SELECT owner.change_seq, owner.tombstone_floor, owner.created_at,
       page.change_seq, page.kind, page.deleted_at, page.id, page.fetched, {TASK_JSON}, {LIST_JSON}
FROM (SELECT 1) AS one
LEFT JOIN users AS owner ON owner.id = %(user_id)s
LEFT JOIN LATERAL (
    SELECT change_seq, kind, deleted_at, id, fetched FROM (
        SELECT change_seq, kind, deleted_at, id, size,
               sum(size) OVER (ORDER BY change_seq) - size AS before, count(*) OVER () AS fetched
        FROM (
            (SELECT change_seq, {TASK} AS kind, NULL::timestamptz AS deleted_at, id, {JSON_BYTES} AS size
             FROM tasks WHERE user_id = %(user_id)s AND change_seq > %(since)s
             ORDER BY change_seq LIMIT %(limit)s)
            UNION ALL
            (SELECT change_seq, CASE WHEN is_list THEN {DELETED_LIST} ELSE {DELETED_TASK} END, deleted_at, task_id,
                    {TOMBSTONE_BYTES}
             FROM tombstones WHERE user_id = %(user_id)s AND change_seq > %(since)s
             ORDER BY change_seq LIMIT %(limit)s)
            UNION ALL
            (SELECT change_seq, {LIST}, NULL, id, {JSON_OVERHEAD} + octet_length(name) * 6
             FROM lists WHERE user_id = %(user_id)s AND change_seq > %(since)s
             ORDER BY change_seq LIMIT %(limit)s)
            ORDER BY change_seq LIMIT %(limit)s
        ) AS next_changes
    ) AS sized
    WHERE before = 0 OR before + size <= %(budget)s
) AS page ON owner.id IS NOT NULL
LEFT JOIN tasks ON tasks.user_id = %(user_id)s AND tasks.id = page.id AND page.kind = {TASK}
LEFT JOIN lists ON lists.user_id = %(user_id)s AND lists.id = page.id AND page.kind = {LIST}
ORDER BY page.change_seq
"""

# Tombstones past their retention, oldest first, a bounded batch at a time. Their users' rows are locked first, as
# every writer of tombstones locks them (SKIP LOCKED: never waits on one), and their tombstone counts kept exact.
PURGE_TOMBSTONES = """
WITH old AS (
    SELECT user_id, change_seq FROM tombstones WHERE deleted_at < now() - make_interval(days => %(days)s)
    ORDER BY deleted_at LIMIT %(batch)s
),
owners AS (
    SELECT id FROM users WHERE id IN (SELECT user_id FROM old) FOR NO KEY UPDATE SKIP LOCKED
),
gone AS (
    DELETE FROM tombstones USING old, owners
    WHERE old.user_id = owners.id AND tombstones.user_id = old.user_id AND tombstones.change_seq = old.change_seq
    RETURNING tombstones.user_id
)
UPDATE users SET tombstone_count = GREATEST(users.tombstone_count - counted.n, 0)
FROM (SELECT user_id, count(*) AS n FROM gone GROUP BY user_id) AS counted
WHERE users.id = counted.user_id
RETURNING counted.n
"""


@dataclass
class Change:
    change_seq: int
    kind: int  # TASK, DELETED_TASK, LIST or DELETED_LIST
    deleted_at: object  # a datetime for a deletion, else None
    id: object
    json: str | None  # the task's or list's JSON, for an upsert


@dataclass
class Changes:
    changes: list  # Change, in counter order
    fetched: int  # how many of the next `limit + 1` changes there are: more than those kept means more follow
    current_seq: int  # the user's counter in the same snapshot: every change up to it is committed and visible
    floor: int  # changes up to this number may have lost their tombstones
    created_at: object  # the user's incarnation: a re-registered id has another


def fetch_changes(conn, user_id, since, limit, budget):
    """Up to `limit` (and one more, to tell whether more follow) changes after counter value `since`, stopping once
    their stored text passes `budget` bytes; None when there is no such user."""
    params = {"user_id": user_id, "since": since, "limit": limit + 1, "budget": budget}
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(CHANGES, params).fetchall()
    current_seq, floor, created_at, *_ = rows[0]
    if current_seq is None:
        return None
    json_of = {TASK: 8, LIST: 9}  # a deletion has none (the columns then hold the JSON of an all-NULL row)
    changes = [
        Change(*row[3:7], json=row[json_of[row[4]]] if row[4] in json_of else None)
        for row in rows
        if row[3] is not None
    ]
    return Changes(changes, rows[0][7] or 0, current_seq, floor, created_at)


def purge_tombstones(conn, days, batch):
    """Delete up to `batch` tombstones older than `days`; returns how many went."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return sum(n for (n,) in cur.execute(PURGE_TOMBSTONES, {"days": days, "batch": batch}))

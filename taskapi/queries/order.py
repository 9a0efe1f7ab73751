"""Manual order: a new key between two neighbours of a sibling group (tasks of one list and parent, or a user's
lists), and the group's renumbering when there is none short enough.

Every caller runs in a transaction that took the user's row first (queries.lock_user), as every writer of the
user's tasks and lists does: so no other writer changes the group between reading the neighbours and writing the
key, and two siblings never get the same one. Each statement here reads a fresh snapshot (READ COMMITTED), taken
after that lock.
"""

from dataclasses import dataclass
from uuid import UUID

from taskapi import positions
from taskapi.queries.tasks import FORGET_TAIL

# "None" as a sibling group's key: top level, no list. The same expressions as the indexes of migration 0014, where
# they are why a group is read in position order straight from an index.
NIL = UUID(int=0)
PARENT_KEY = "coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid)"
LIST_KEY = "coalesce(list_id, '00000000-0000-0000-0000-000000000000'::uuid)"
LAST = object()  # after_id absent: the end of the group
RENUMBER_BATCH = 250


@dataclass(frozen=True)
class Group:
    """A sibling group: `table` rows of the user's matching `condition` (on the parameters of `params`)."""

    table: str
    condition: str
    params: dict


def task_group(user_id, list_id, parent_id):
    condition = f"user_id = %(user_id)s AND {PARENT_KEY} = %(parent_key)s AND {LIST_KEY} = %(list_key)s"
    return Group("tasks", condition, {"user_id": user_id, "parent_key": parent_id or NIL, "list_key": list_id or NIL})


def list_group(user_id):
    return Group("lists", "user_id = %(user_id)s", {"user_id": user_id})


# The moving row (NIL for a new one) is never its own neighbour.
_LAST = "SELECT position FROM {table} WHERE {condition} AND id <> %(moving)s ORDER BY position DESC, id DESC LIMIT 1"
_FIRST = "SELECT position FROM {table} WHERE {condition} AND id <> %(moving)s ORDER BY position, id LIMIT 1"
_AFTER = """
SELECT anchor.position AS before, following.position AS after
FROM (SELECT position, id FROM {table} WHERE {condition} AND id = %(after_id)s AND id <> %(moving)s) AS anchor
LEFT JOIN LATERAL (
    SELECT position FROM {table}
    WHERE {condition} AND id <> %(moving)s AND (position, id) > (anchor.position, anchor.id)
    ORDER BY position, id LIMIT 1
) AS following ON true
"""
_ORDERED = "SELECT id FROM {table} WHERE {condition} AND id <> %(moving)s ORDER BY position, id"
# Every renumbered row whose key changes is a write like any other: a new version and its own change number.
_RENUMBER = """
WITH new AS (SELECT * FROM unnest(%(ids)s::uuid[], %(keys)s::text[]) WITH ORDINALITY AS new (id, position, n)),
changed AS (
    SELECT new.id, new.position, row_number() OVER (ORDER BY new.n) AS k
    FROM {table} JOIN new ON {table}.user_id = %(user_id)s AND {table}.id = new.id
    WHERE {table}.position <> new.position
),
owner AS (
    UPDATE users SET change_seq = change_seq + (SELECT count(*) FROM changed) WHERE id = %(user_id)s
    RETURNING change_seq - (SELECT count(*) FROM changed) AS base
)
UPDATE {table} SET position = changed.position, version = {table}.version + 1, change_seq = owner.base + changed.k,
    updated_at = now()
FROM changed, owner
WHERE {table}.user_id = %(user_id)s AND {table}.id = changed.id
"""


def position(conn, group, after=LAST, moving=NIL):
    """The key for a row placed in `group` after the sibling `after` (an id; None: first; LAST: last), the moving
    row `moving` (NIL: a new row) apart; None when `after` is not in the group. When no key of at most
    positions.MAX_LENGTH characters fits there (or the neighbours' keys tie, as tasks from before round 3 do), the
    group is renumbered first, in its order, with a slot left for the moving row."""
    params = {**group.params, "moving": moving}
    if after is LAST:
        # The last key is '' only when every sibling is from before round 3: anything sorts after them.
        before, following = _one(conn, _LAST, group, params) or None, None
    elif after is None:
        before, following = None, _one(conn, _FIRST, group, params)
    else:
        row = conn.execute(_AFTER.format(table=group.table, condition=group.condition), {**params, "after_id": after})
        neighbours = row.fetchone()
        if neighbours is None:
            return None
        before, following = neighbours["before"], neighbours["after"]
    key = _between(before, following)
    if key is not None:
        return key
    statement = _ORDERED.format(table=group.table, condition=group.condition)
    ids = [row["id"] for row in conn.execute(statement, params)]
    slot = len(ids) if after is LAST else 0 if after is None else ids.index(after) + 1
    keys = positions.spread(len(ids) + 1)
    key = keys.pop(slot)
    # A bounded batch a statement, so that renumbering a group as big as the quota allows stays within the statement
    # timeout (the watchdog times each statement).
    renumber = _RENUMBER.format(table=group.table)
    for start in range(0, len(ids), RENUMBER_BATCH):
        chunk = {"ids": ids[start : start + RENUMBER_BATCH], "keys": keys[start : start + RENUMBER_BATCH]}
        conn.execute(renumber, {"user_id": group.params["user_id"], **chunk})
    if group.table == "tasks":  # new keys, which may pass the end the user's row keeps
        conn.execute(FORGET_TAIL, {"user_id": group.params["user_id"]})
    return key


def _one(conn, statement, group, params):
    row = conn.execute(statement.format(table=group.table, condition=group.condition), params).fetchone()
    return None if row is None else row["position"]


def _between(before, after):
    """A key between two neighbours' keys, or None when they leave no room for a short one."""
    for key in (before, after):
        if key is not None and not positions.valid(key):
            return None
    if before is not None and after is not None and before >= after:
        return None
    key = positions.between(before, after)
    return key if len(key) <= positions.MAX_LENGTH else None

"""Lists: create, read, rename, move, delete (with their tasks). Each write takes the user's row first, as every
writer of the user's tasks and lists does, and stamps what it changes with the user's change counter."""

from taskapi.queries import order
from taskapi.queries.tasks import _UTC, VERSION_MATCHES, delete_task_ids, trim_tombstones
from taskapi.queries.users import lock_user_zone

LIST_JSON = f"""(SELECT row_to_json(list)::text FROM (SELECT
    lists.id, lists.user_id, lists.name, lists.position, lists.version,
    {_UTC.format("lists.created_at")} AS created_at, {_UTC.format("lists.updated_at")} AS updated_at
) AS list)"""
_ONE_LIST = f"lists.id, lists.version, {LIST_JSON} AS list"

# The quota is kept on the user's row, in the statement that inserts: exact, as for tasks.
INSERT_LIST = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1, list_count = list_count + 1
    WHERE id = %(user_id)s AND list_count < %(max_lists)s
    RETURNING change_seq
)
INSERT INTO lists (user_id, name, position, change_seq)
SELECT %(user_id)s, %(name)s, %(position)s, change_seq FROM owner
RETURNING {_ONE_LIST}
"""
SELECT_LISTS = f"""
SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS found,
       (SELECT coalesce(string_agg({LIST_JSON}, ',' ORDER BY lists.position, lists.id), '')
        FROM lists WHERE lists.user_id = %(user_id)s) AS items
"""
SELECT_LIST = f"SELECT {_ONE_LIST} FROM lists WHERE user_id = %(user_id)s AND id = %(list_id)s"
SELECT_LIST_VERSION = "SELECT version FROM lists WHERE user_id = %(user_id)s AND id = %(list_id)s"
LIST_EXISTS = "SELECT EXISTS (SELECT 1 FROM lists WHERE user_id = %(user_id)s AND id = %(list_id)s) AS found"

_LIST_VERSION_MATCHES = VERSION_MATCHES.replace("tasks.", "lists.")
# A rename, or (`position` given) a move: one statement, If-Match decided by the write itself.
UPDATE_LIST = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1 WHERE id = %(user_id)s RETURNING change_seq
)
UPDATE lists SET
    name = coalesce(%(name)s, lists.name),
    position = coalesce(%(position)s, lists.position),
    version = lists.version + 1,
    updated_at = now(),
    change_seq = owner.change_seq
FROM owner
WHERE lists.user_id = %(user_id)s AND lists.id = %(list_id)s AND {_LIST_VERSION_MATCHES}
RETURNING {_ONE_LIST}
"""
# A list's tasks, a bounded batch at a time (deleted and tombstoned by queries.delete_task_ids).
LIST_TASKS_BATCH = f"""
SELECT id FROM tasks WHERE user_id = %(user_id)s AND {order.LIST_KEY} = %(list_id)s LIMIT %(batch)s
"""
DELETE_BATCH = 1000
DELETE_LIST = """
WITH gone AS (
    DELETE FROM lists WHERE user_id = %(user_id)s AND id = %(list_id)s RETURNING id
),
owner AS (
    UPDATE users SET change_seq = change_seq + 1, list_count = list_count - 1, tombstone_count = tombstone_count + 1
    WHERE id = %(user_id)s AND EXISTS (SELECT 1 FROM gone)
    RETURNING change_seq
)
INSERT INTO tombstones (user_id, change_seq, task_id, is_list)
SELECT %(user_id)s, owner.change_seq, gone.id, true FROM gone, owner
RETURNING task_id
"""


def insert_list(conn, user_id, name, max_lists):
    """The new list (last in the user's order); None when the user holds `max_lists`. The caller checked the user."""
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return None
        key = order.position(conn, order.list_group(user_id))
        params = {"user_id": user_id, "name": name, "position": key, "max_lists": max_lists}
        return conn.execute(INSERT_LIST, params).fetchone()


def fetch_lists(conn, user_id):
    """The user's lists as one JSON array's items text, in manual order; None when there is no such user."""
    row = conn.execute(SELECT_LISTS, {"user_id": user_id}).fetchone()
    return row["items"] if row["found"] else None


def fetch_list(conn, user_id, list_id):
    return conn.execute(SELECT_LIST, {"user_id": user_id, "list_id": list_id}).fetchone()


def fetch_list_version(conn, user_id, list_id):
    row = conn.execute(SELECT_LIST_VERSION, {"user_id": user_id, "list_id": list_id}).fetchone()
    return None if row is None else row["version"]


def list_exists(conn, user_id, list_id):
    return conn.execute(LIST_EXISTS, {"user_id": user_id, "list_id": list_id}).fetchone()["found"]


def rename_list(conn, user_id, list_id, name, versions=None):
    """The renamed list, or None when not found or its version is not among `versions` (None: any)."""
    params = {"user_id": user_id, "list_id": list_id, "name": name, "position": None, "versions": versions}
    return conn.execute(UPDATE_LIST, params).fetchone()


def move_list(conn, user_id, list_id, after, versions=None):
    """The list placed after the list `after` (None: first; order.LAST: last); None when not found or its version
    is not among `versions` (None: any). LookupError when `after` names no other list of the user's."""
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return None
        version = fetch_list_version(conn, user_id, list_id)
        if version is None or (versions is not None and version not in versions):
            return None
        key = order.position(conn, order.list_group(user_id), after, moving=list_id)
        if key is None:
            raise LookupError("after_id")
        params = {"user_id": user_id, "list_id": list_id, "name": None, "position": key, "versions": versions}
        return conn.execute(UPDATE_LIST, params).fetchone()


def delete_list(conn, user_id, list_id, versions, max_tombstones):
    """Delete the list and every task in it, each leaving a tombstone, in one transaction; False when not found or
    its version is not among `versions` (None: any)."""
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return False
        version = fetch_list_version(conn, user_id, list_id)
        if version is None or (versions is not None and version not in versions):
            return False
        params = {"user_id": user_id, "list_id": list_id, "batch": DELETE_BATCH}
        while ids := [row["id"] for row in conn.execute(LIST_TASKS_BATCH, params)]:
            delete_task_ids(conn, user_id, ids, max_tombstones)
        conn.execute(DELETE_LIST, params)
        trim_tombstones(conn, user_id, max_tombstones)  # the list's own tombstone counts against the bound too
        return True

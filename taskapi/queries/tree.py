"""Subtasks: where a task may go (its list, parent and position, checked under the user's row lock), moves that
take the whole subtree along, and the cascades of deletion and completion.

Every function here runs in a transaction that took the user's row first, as every writer of the user's tasks and
lists does, so what it reads cannot change before it writes. An id from a body is only ever looked up among the
user's own rows: another user's id and a made-up one get the same answer.
"""

from dataclasses import dataclass

from taskapi.columns import needs_zone
from taskapi.errors import ValidationFailed
from taskapi.queries import order
from taskapi.queries.lists import list_exists
from taskapi.queries.tasks import _ONE_TASK, delete_task, delete_task_ids, update_task
from taskapi.queries.users import lock_user_zone

MAX_LEVELS = 5  # a top-level task is level 1
MAX_CHILDREN = 1000

# A parent-to-be and its ancestors, nearest first: its list, how many children it has, its level, and the ids of
# the chain (a task may not go under itself or its own descendants: it would be in that chain).
PARENT = f"""
WITH RECURSIVE up AS (
    SELECT id, parent_id, list_id, child_count, 1 AS height
    FROM tasks WHERE user_id = %(user_id)s AND id = %(parent_id)s
    UNION ALL
    SELECT tasks.id, tasks.parent_id, tasks.list_id, tasks.child_count, up.height + 1
    FROM tasks JOIN up ON tasks.user_id = %(user_id)s AND tasks.id = up.parent_id
    WHERE up.height <= {MAX_LEVELS}
)
SELECT (array_agg(list_id ORDER BY height))[1] AS list_id, (array_agg(child_count ORDER BY height))[1] AS child_count,
       max(height) AS level, array_agg(id) AS chain
FROM up
"""
# The children of each task of a recursive CTE's worktable `{of}`, looked up one parent at a time in the index of
# subtasks (migration 0015; OFFSET 0 keeps the planner from flattening the lookup into a hash join over all of the
# user's tasks: 10 ms at 10,000 tasks, against 0.1 ms).
_CHILDREN = """LATERAL (
        SELECT id, is_completed FROM tasks WHERE user_id = %(user_id)s AND parent_id = {of}.id OFFSET 0
    ) AS child"""
# A task and all its descendants, with their depth below it (the task itself: 1).
SUBTREE = f"""
WITH RECURSIVE down AS (
    SELECT id, 1 AS depth FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s
    UNION ALL
    SELECT child.id, down.depth + 1 FROM down, {_CHILDREN.format(of="down")}
)
SELECT id, depth FROM down
"""
COMPLETION_OF = "SELECT is_completed FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"
PLACE_OF = "SELECT list_id, parent_id, version, child_count FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"
# A child more or less; not a change of the parent the API shows (no version, no change number).
ADOPT = "UPDATE tasks SET child_count = child_count + %(delta)s WHERE user_id = %(user_id)s AND id = %(task_id)s"
# A move among the top-level tasks in no list makes their end (users.task_tail) unknown: see tasks.FORGET_TAIL.
MOVE_TASK = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1,
        task_tail = CASE WHEN %(list_id)s::uuid IS NULL AND %(parent_id)s::uuid IS NULL THEN NULL ELSE task_tail END
    WHERE id = %(user_id)s RETURNING change_seq
)
UPDATE tasks SET list_id = %(list_id)s, parent_id = %(parent_id)s, position = %(position)s,
    version = tasks.version + 1, updated_at = now(), change_seq = owner.change_seq
FROM owner
WHERE tasks.user_id = %(user_id)s AND tasks.id = %(task_id)s
RETURNING {_ONE_TASK}
"""
# Writes to many tasks at once (`targets`, a CTE of ids): each a new version and a change number of its own.
_STAMPED = """
numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM targets),
owner AS (
    UPDATE users SET change_seq = change_seq + (SELECT count(*) FROM numbered) WHERE id = %(user_id)s
    RETURNING change_seq - (SELECT count(*) FROM numbered) AS base
)
UPDATE tasks SET {changes}, version = tasks.version + 1, updated_at = now(), change_seq = owner.base + numbered.k
FROM numbered, owner
WHERE tasks.user_id = %(user_id)s AND tasks.id = numbered.id
"""
# The descendants of a task that moved to another list follow it there.
FOLLOW = "WITH targets AS (SELECT unnest(%(ids)s::uuid[]) AS id), " + _STAMPED.format(changes="list_id = %(list_id)s")
COMPLETE_DESCENDANTS = f"""
WITH RECURSIVE below AS (
    SELECT id, is_completed FROM tasks WHERE user_id = %(user_id)s AND parent_id = %(task_id)s
    UNION ALL
    SELECT child.id, child.is_completed FROM below, {_CHILDREN.format(of="below")}
),
targets AS (SELECT id FROM below WHERE NOT is_completed),
{_STAMPED.format(changes="is_completed = true, completed_at = %(completed_at)s")}
"""
REOPEN_ANCESTORS = f"""
WITH RECURSIVE above AS (
    SELECT parent_id AS id FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s AND parent_id IS NOT NULL
    UNION ALL
    SELECT tasks.parent_id FROM tasks JOIN above ON tasks.user_id = %(user_id)s AND tasks.id = above.id
    WHERE tasks.parent_id IS NOT NULL
),
targets AS (
    SELECT tasks.id FROM tasks JOIN above ON tasks.user_id = %(user_id)s AND tasks.id = above.id
    WHERE tasks.is_completed
),
{_STAMPED.format(changes="is_completed = false, completed_at = NULL")}
"""


@dataclass(frozen=True)
class Place:
    """Where a task is: its list and parent (None: none) and its position among those siblings."""

    list_id: object
    parent_id: object
    position: str

    def columns(self):
        return {"list_id": self.list_id, "parent_id": self.parent_id, "position": self.position}


def refuse(field, message):
    return ValidationFailed(details={field: [message]})


NO_LIST = "Names no list of yours."
NO_TASK = "Names no task of yours."
CHILDREN_FULL = f"A task has at most {MAX_CHILDREN} subtasks."


def appends(fields):
    """Whether a new task with `fields` goes where queries.append_task puts it, in one statement: at the end of the
    top-level tasks in no list, with no due that needs the user's zone."""
    return fields.get("list_id") is None and fields.get("parent_id") is None and not needs_zone(fields)


def place_new_task(conn, user_id, fields):
    """Where a new task goes: last among the siblings `fields` name (list_id, parent_id; a subtask given no list_id
    goes to its parent's list), its parent counting one child more; 400 naming the field that cannot be."""
    list_id, parent_id = fields.get("list_id"), fields.get("parent_id")
    if parent_id is not None:
        parent = _parent(conn, user_id, parent_id, None, 1)
        if parent["child_count"] >= MAX_CHILDREN:
            raise refuse("parent_id", CHILDREN_FULL)
        if "list_id" not in fields:
            list_id = parent["list_id"]
        elif parent["list_id"] != list_id:
            raise refuse("parent_id", "Is in another list than list_id.")
    elif list_id is not None and not list_exists(conn, user_id, list_id):
        raise refuse("list_id", NO_LIST)
    position = order.position(conn, order.task_group(user_id, list_id, parent_id))
    if parent_id is not None:
        conn.execute(ADOPT, {"user_id": user_id, "task_id": parent_id, "delta": 1})
    return Place(list_id, parent_id, position)


def _parent(conn, user_id, parent_id, moving, height):
    """The would-be parent of a subtree `height` levels high (1: one task), `moving` (None: a new task); 400 when
    it cannot be."""
    parent = conn.execute(PARENT, {"user_id": user_id, "parent_id": parent_id}).fetchone()
    if parent["level"] is None:
        raise refuse("parent_id", NO_TASK)
    if moving is not None and moving in parent["chain"]:
        raise refuse("parent_id", "Is the task itself or one of its subtasks.")
    if parent["level"] + height > MAX_LEVELS:
        raise refuse("parent_id", f"Tasks nest at most {MAX_LEVELS} levels deep.")
    return parent


def move_task(conn, user_id, task_id, given, versions=None):
    """Move the task and its subtree where `given` says (list_id, parent_id, after_id, each optional, as the move
    endpoint takes them); the moved task, or None when there is no such task or its version is not among
    `versions` (None: any); 400 naming the field for a destination that cannot be."""
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return None
        current = conn.execute(PLACE_OF, {"user_id": user_id, "task_id": task_id}).fetchone()
        if current is None or (versions is not None and current["version"] not in versions):
            return None
        list_id = given.get("list_id", current["list_id"])
        stays = list_id == current["list_id"]
        parent_id = given["parent_id"] if "parent_id" in given else current["parent_id"] if stays else None
        subtree = [{"id": task_id, "depth": 1}]
        if current["child_count"]:
            subtree = conn.execute(SUBTREE, {"user_id": user_id, "task_id": task_id}).fetchall()
        if parent_id is not None:
            height = max(row["depth"] for row in subtree)
            parent = _parent(conn, user_id, parent_id, task_id, height)
            if parent["list_id"] != list_id:
                raise refuse("parent_id", "Is in another list than the task's destination.")
            if parent_id != current["parent_id"] and parent["child_count"] >= MAX_CHILDREN:
                raise refuse("parent_id", CHILDREN_FULL)
        elif list_id is not None and not list_exists(conn, user_id, list_id):
            raise refuse("list_id", NO_LIST)
        group = order.task_group(user_id, list_id, parent_id)
        key = order.position(conn, group, given.get("after_id", order.LAST), moving=task_id)
        if key is None:
            raise refuse("after_id", "Names no other task among the siblings at the destination.")
        if parent_id != current["parent_id"]:
            for parent, delta in ((current["parent_id"], -1), (parent_id, 1)):
                if parent is not None:
                    conn.execute(ADOPT, {"user_id": user_id, "task_id": parent, "delta": delta})
        params = {"user_id": user_id, "task_id": task_id, "list_id": list_id, "parent_id": parent_id}
        task = conn.execute(MOVE_TASK, {**params, "position": key}).fetchone()
        if not stays and len(subtree) > 1:
            conn.execute(FOLLOW, {**params, "ids": [row["id"] for row in subtree if row["id"] != task_id]})
        return task


def write_task(conn, user_id, task_id, columns, versions=None):
    """PUT or PATCH (queries.update_task), with its cascade: a write that makes a task completed completes its open
    descendants (with the same completed_at), one that makes it open reopens its completed ancestors (a write that
    leaves is_completed as it was cascades nowhere). A write that cascades nowhere is one
    statement; one that may runs in a transaction that took the user's row."""
    task = update_task(conn, user_id, task_id, columns, versions, guarded=True)
    if task is not None or not columns["set_is_completed"]:
        return task
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return None
        before = conn.execute(COMPLETION_OF, {"user_id": user_id, "task_id": task_id}).fetchone()
        task = update_task(conn, user_id, task_id, columns, versions)
        if task is not None and task["is_completed"] != before["is_completed"]:  # only a write that changes it
            cascade = COMPLETE_DESCENDANTS if task["is_completed"] else REOPEN_ANCESTORS
            conn.execute(cascade, {"user_id": user_id, "task_id": task_id, "completed_at": task["completed_at"]})
        return task


def remove_task(conn, user_id, task_id, versions=None, max_tombstones=2**62):
    """Delete the task with its subtree, each task leaving a tombstone; False when there is no such task or its
    version is not among `versions` (None: any). A task without children is one statement."""
    if delete_task(conn, user_id, task_id, versions, max_tombstones):
        return True
    with conn.transaction():
        if lock_user_zone(conn, user_id) is None:
            return False
        current = conn.execute(PLACE_OF, {"user_id": user_id, "task_id": task_id}).fetchone()
        if current is None or (versions is not None and current["version"] not in versions):
            return False
        subtree = conn.execute(SUBTREE, {"user_id": user_id, "task_id": task_id}).fetchall()
        delete_task_ids(conn, user_id, [row["id"] for row in subtree], max_tombstones)
        if current["parent_id"] is not None:
            conn.execute(ADOPT, {"user_id": user_id, "task_id": current["parent_id"], "delta": -1})
        return True

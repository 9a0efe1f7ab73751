"""A user's task list, one page at a time: by offset (round 1's paging), or after a position (keyset seek), with any
combination of the filters.

Each statement is made here from fixed tables (the sort's key expression and direction, each filter's condition)
for the combination a request uses, and kept: no value is ever formatted in, and a filter that is not used is not
in the statement (so it cannot stand between the planner and an index). A keyset page is an index seek
(`(key, id) < (value, id)`, LIMIT, no OFFSET), so it costs the same at any depth and list size.
"""

from dataclasses import dataclass
from functools import cache

from psycopg.rows import tuple_row

from taskapi.db import custom_plan_cursor
from taskapi.queries.order import LIST_KEY, PARENT_KEY
from taskapi.queries.tasks import JSON_COLUMNS, TASK_JSON

# The far future and past that stand for "no due" in sort=due and sort=-due (due dates end before year 9000), so
# that tasks without a due come last in both directions; the same expressions as the indexes of migration 0007.
DUE_LAST = "coalesce(due_sort, '9999-01-01 00:00:00+00'::timestamptz)"
DUE_LAST_DESC = "coalesce(due_sort, '0002-01-01 00:00:00+00'::timestamptz)"

# sort parameter -> (key expression, direction, kind of value); ties are always broken by id in the same direction,
# so the order is total.
SORTS = {
    "-created_at": ("created_at", "DESC", "timestamp"),
    "created_at": ("created_at", "ASC", "timestamp"),
    "-updated_at": ("updated_at", "DESC", "timestamp"),
    "updated_at": ("updated_at", "ASC", "timestamp"),
    "title": ("title", "ASC", "text"),
    "-title": ("title", "DESC", "text"),
    "due": (DUE_LAST, "ASC", "timestamp"),
    "-due": (DUE_LAST_DESC, "DESC", "timestamp"),
    "priority": ("priority", "ASC", "integer"),
    "-priority": ("priority", "DESC", "integer"),
    "position": ("position", "ASC", "text"),
}

_LOOKUP = "(title_keys || description_keys || label_hashes)"
# A task written before migration 0009, not yet given all its lookup keys (a PATCH since may have given some).
UNKEYED = "(title_keys IS NULL OR description_keys IS NULL)"
_SEARCHED = "(coalesce(search_title, lower(title)) || E'\\n' || coalesce(search_description, lower(description), ''))"
# filter -> its condition, on the parameters the caller gives for it. Each is served by an index leading with
# user_id, or by the GIN index of the lookup keys (which are scoped to the user).
FILTERS = {
    # A sibling group (both given) is read in position order from its index (migration 0014).
    "list_id": f"{LIST_KEY} = %(list_key)s",
    "parent_id": f"{PARENT_KEY} = %(parent_key)s",
    "is_completed": "is_completed = %(is_completed)s",
    "priority": "priority = ANY(%(priority)s::smallint[])",
    "label": f"{_LOOKUP} @> %(label_hashes)s::integer[] AND label_keys @> %(label)s::text[]",
    # An all-day due's date is the same in every zone; a timed due's date in the user's zone is an instant range.
    "due": "(due_time IS NULL AND due_date BETWEEN %(due_from)s AND %(due_to)s"
    " OR due_at >= %(due_start)s AND due_at < %(due_end)s)",
    "has_due": f"{DUE_LAST} < '9999-01-01 00:00:00+00'::timestamptz",
    "has_no_due": f"{DUE_LAST} = '9999-01-01 00:00:00+00'::timestamptz",
    "overdue": f"NOT is_completed AND {DUE_LAST} < %(now)s",
    "not_overdue": f"(is_completed OR {DUE_LAST} >= %(now)s)",
    # Rows from before migration 0009 may lack keys yet: they are read beside the candidates, searched as lower().
    "q": f"({_LOOKUP} @> %(term_keys)s::integer[] OR {UNKEYED}) AND {_SEARCHED} LIKE ALL (%(patterns)s)",
    "q_unkeyed": f"{_SEARCHED} LIKE ALL (%(patterns)s)",
}


@cache
def page_statement(sort, start, filters):
    """One snapshot: the user (their incarnation; NULL when there is no such user), how many tasks match (only when
    asked: `count`), and the page's tasks as JSON text with their sort key and id, one a row. The head row always
    comes back; with an empty page its task is NULL.

    `start` is where the page begins: "first", "offset" or "after" (a keyset seek); `filters` the names of FILTERS
    the request uses. The page's tasks are picked first and made into JSON above the LIMIT and OFFSET, so an offset
    never builds the JSON of the tasks it skips (the subquery is named `tasks`, so TASK_JSON reads its columns). A
    page holds at most 101 tasks, so its JSON is bounded as it is (about 6 MB for the largest tasks); the caller
    cuts the answer at its byte bound. (The change feed, of up to 1,001 changes, cuts in the statement.)"""
    key, direction, _ = SORTS[sort]
    matches = " ".join(f"AND {FILTERS[name]}" for name in filters)
    seek = f"AND ({key}, id) {'<' if direction == 'DESC' else '>'} (%(after_value)s, %(after_id)s)"
    return f"""
SELECT head.created_at, head.total, page.task, page.sort_key, page.id
FROM (SELECT (SELECT created_at FROM users WHERE id = %(user_id)s) AS created_at,
             CASE WHEN %(count)s THEN
                 (SELECT count(*) FROM tasks WHERE user_id = %(user_id)s {matches})
             END AS total) AS head
LEFT JOIN LATERAL (
    SELECT {TASK_JSON} AS task, tasks.sort_key, tasks.id
    FROM (
        SELECT {JSON_COLUMNS}, {key} AS sort_key FROM tasks
        WHERE user_id = %(user_id)s {matches} {seek if start == "after" else ""}
        ORDER BY {key} {direction}, id {direction}
        LIMIT %(limit)s {"OFFSET %(offset)s" if start == "offset" else ""}
    ) AS tasks
) AS page ON true
ORDER BY page.sort_key {direction}, page.id {direction}
"""


@dataclass
class Page:
    items: list  # each task's JSON text
    keys: list  # each task's (sort key, id): where a page after it starts
    total: int | None
    created_at: object  # the user's incarnation


def list_tasks(conn, user_id, sort, limit, filters, offset=0, after=None, count=True):
    """Up to `limit` tasks in `sort` order matching `filters` (FILTERS name -> its parameters), from `offset`, or
    after `after` = (sort key, id) of the previous page's last task; `total` counts every match when `count`. None
    when there is no such user."""
    params = {"user_id": user_id, "limit": limit, "count": count}
    for values in filters.values():
        params |= values
    if after is not None:
        start, params = "after", {**params, "after_value": after[0], "after_id": after[1]}
    elif offset:
        start, params = "offset", {**params, "offset": offset}
    else:
        start = "first"
    statement = page_statement(sort, start, tuple(sorted(filters)))
    # Plain tuples: a page has up to 101 rows, and a dict a row is the dearer part. A filtered page is planned for
    # its own values (never prepared, the values in its text): how common a label or a term is decides between its
    # index and the sort's.
    cursor = custom_plan_cursor(conn, row_factory=tuple_row) if filters else conn.cursor(row_factory=tuple_row)
    with cursor as cur:
        rows = cur.execute(statement, params, prepare=False if filters else None).fetchall()
    created_at, total, *_ = rows[0]
    if created_at is None:
        return None
    found = [row for row in rows if row[2] is not None]
    return Page(
        items=[row[2] for row in found], keys=[(row[3], row[4]) for row in found], total=total, created_at=created_at
    )

"""A user's task list, one page at a time: by offset (round 1's paging), or after a position (keyset seek).

Each sort has its own pair of statements, made here from a fixed table of column and direction: a keyset page is
an index seek (`(column, id) < (value, id)`, LIMIT, no OFFSET), so it costs the same at any depth and list size.
"""

from dataclasses import dataclass

from psycopg.rows import tuple_row

from taskapi.queries.tasks import JSON_BYTES, TASK_JSON

# sort parameter -> (column, direction); ties are always broken by id in the same direction, so the order is total.
SORTS = {
    "-created_at": ("created_at", "DESC"),
    "created_at": ("created_at", "ASC"),
    "-updated_at": ("updated_at", "DESC"),
    "updated_at": ("updated_at", "ASC"),
    "title": ("title", "ASC"),
    "-title": ("title", "DESC"),
}

_STATUS_FILTER = "(%(is_completed)s::boolean IS NULL OR is_completed = %(is_completed)s::boolean)"


def _page_statement(column, direction, start):
    """One snapshot: the user (their incarnation; NULL when there is no such user), how many tasks match (only when
    asked: `count`), and the page's tasks as JSON text, one a row. The head row always comes back; with an empty
    page its task is NULL.

    `start` is where the page begins: "first", "offset" or "after" (a keyset seek). The page's tasks are picked by
    key first, with the size their JSON will take; those that fit in the byte budget (the first always does) are
    then read and made into JSON. An OFFSET never builds the JSON of the tasks it skips."""
    order = f"{column} {direction}, id {direction}"
    seek = f"AND ({column}, id) {'<' if direction == 'DESC' else '>'} (%(after_value)s, %(after_id)s)"
    return f"""
SELECT head.created_at, head.total, page.task, page.fetched
FROM (SELECT (SELECT created_at FROM users WHERE id = %(user_id)s) AS created_at,
             CASE WHEN %(count)s THEN
                 (SELECT count(*) FROM tasks WHERE user_id = %(user_id)s AND {_STATUS_FILTER})
             END AS total) AS head
LEFT JOIN LATERAL (
    SELECT {TASK_JSON} AS task, tasks.id, tasks.{column}, sized.fetched
    FROM (
        SELECT id, size, sum(size) OVER (ORDER BY {order}) - size AS before, count(*) OVER () AS fetched FROM (
            SELECT id, {column}, {JSON_BYTES} AS size FROM tasks
            WHERE user_id = %(user_id)s AND {_STATUS_FILTER} {seek if start == "after" else ""}
            ORDER BY {order} LIMIT %(limit)s {"OFFSET %(offset)s" if start == "offset" else ""}
        ) AS picked
    ) AS sized
    JOIN tasks ON tasks.user_id = %(user_id)s AND tasks.id = sized.id
    WHERE sized.before = 0 OR sized.before + sized.size <= %(budget)s
) AS page ON true
ORDER BY page.{column} {direction}, page.id {direction}
"""


STATEMENTS = {
    (sort, start): _page_statement(column, direction, start)
    for sort, (column, direction) in SORTS.items()
    for start in ("first", "offset", "after")
}


@dataclass
class Page:
    items: list  # each task's JSON text
    total: int | None
    created_at: object  # the user's incarnation
    fetched: int  # how many tasks the page picked before its byte budget cut it: more than `items` means more


def list_tasks(conn, user_id, sort, limit, offset=0, after=None, is_completed=None, count=True, budget=2**62):
    """Up to `limit` tasks in `sort` order, from `offset`, or after `after` = (sort value, id) of the previous page's
    last task, as many as fit in `budget` bytes of JSON (at least one); `total` counts every match when `count`.
    None when there is no such user."""
    params = {"user_id": user_id, "limit": limit, "is_completed": is_completed, "count": count, "budget": budget}
    if after is not None:
        start, params = "after", {**params, "after_value": after[0], "after_id": after[1]}
    elif offset:
        start, params = "offset", {**params, "offset": offset}
    else:
        start = "first"
    # Plain tuples (created_at, total, task, fetched): a page has up to 101 rows, and a dict a row is the dearer part.
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(STATEMENTS[sort, start], params).fetchall()
    created_at, total, _, fetched = rows[0]
    if created_at is None:
        return None
    items = [task for _, _, task, _ in rows if task is not None]
    return Page(items=items, total=total, created_at=created_at, fetched=fetched or 0)

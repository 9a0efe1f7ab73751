"""A user's task list, one page at a time: by offset (round 1's paging), or after a position (keyset seek).

Each sort has its own pair of statements, made here from a fixed table of column and direction: a keyset page is
an index seek (`(column, id) < (value, id)`, LIMIT, no OFFSET), so it costs the same at any depth and list size.
"""

from dataclasses import dataclass

from psycopg.rows import tuple_row

from taskapi.queries.tasks import TASK_JSON

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


def _page_statement(column, direction, keyset):
    """One snapshot: whether the user exists, how many tasks match (only when asked: `count`), and the page's tasks
    as JSON text, one a row. The head row always comes back; with an empty page its task is NULL."""
    order = f"{column} {direction}, id {direction}"
    seek = f"AND ({column}, id) {'<' if direction == 'DESC' else '>'} (%(after_value)s, %(after_id)s)"
    return f"""
SELECT head.user_found, head.total, page.task
FROM (SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS user_found,
             CASE WHEN %(count)s THEN
                 (SELECT count(*) FROM tasks WHERE user_id = %(user_id)s AND {_STATUS_FILTER})
             END AS total) AS head
LEFT JOIN LATERAL (
    SELECT {TASK_JSON} AS task, id, {column} FROM tasks
    WHERE user_id = %(user_id)s AND {_STATUS_FILTER} {seek if keyset else ""}
    ORDER BY {order}
    LIMIT %(limit)s {"" if keyset else "OFFSET %(offset)s"}
) AS page ON true
ORDER BY page.{column} {direction}, page.id {direction}
"""


LIST_BY_OFFSET = {sort: _page_statement(column, direction, keyset=False) for sort, (column, direction) in SORTS.items()}
LIST_AFTER = {sort: _page_statement(column, direction, keyset=True) for sort, (column, direction) in SORTS.items()}


@dataclass
class Page:
    items: list  # each task's JSON text
    total: int | None


def list_tasks(conn, user_id, sort, limit, offset=0, after=None, is_completed=None, count=True):
    """Up to `limit` tasks in `sort` order, from `offset`, or after `after` = (sort value, id) of the previous page's
    last task; `total` counts every match when `count`. None when there is no such user."""
    params = {"user_id": user_id, "limit": limit, "is_completed": is_completed, "count": count}
    if after is None:
        statement, params = LIST_BY_OFFSET[sort], {**params, "offset": offset}
    else:
        statement, params = LIST_AFTER[sort], {**params, "after_value": after[0], "after_id": after[1]}
    # Plain tuples (user_found, total, task): a page has up to 1001 rows, and a dict a row is the dearer part.
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(statement, params).fetchall()
    user_found, total, _ = rows[0]
    if not user_found:
        return None
    return Page(items=[task for _, _, task in rows if task is not None], total=total)

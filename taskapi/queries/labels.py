"""The labels a user's tasks carry: each once (case-insensitively), with how many tasks carry it."""

from psycopg.rows import tuple_row

# Each folded label once, spelled as on the most recently changed task carrying it, ordered by the folded label
# (code point by code point, whatever the database's collation), at most `limit` of them.
LABELS = """
SELECT owner.id IS NOT NULL, counted.name, counted.count, counted.more
FROM (SELECT 1) AS one
LEFT JOIN users AS owner ON owner.id = %(user_id)s
LEFT JOIN LATERAL (
    SELECT name, count, key, count(*) OVER () > %(limit)s AS more FROM (
        SELECT (array_agg(label.name ORDER BY tasks.updated_at DESC, tasks.id DESC))[1] AS name, count(*) AS count,
               label.key
        FROM tasks, unnest(tasks.labels, tasks.label_keys) AS label (name, key)
        WHERE tasks.user_id = %(user_id)s AND tasks.label_keys <> '{}'
        GROUP BY label.key
    ) AS grouped
    ORDER BY key COLLATE "C"
    LIMIT %(limit)s
) AS counted ON owner.id IS NOT NULL
ORDER BY counted.key COLLATE "C"
"""


def fetch_labels(conn, user_id, limit):
    """(name, count) of up to `limit` labels, and whether there are more; None when there is no such user."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(LABELS, {"user_id": user_id, "limit": limit}).fetchall()
    if not rows[0][0]:
        return None
    return [(name, count) for _, name, count, _ in rows if name is not None], bool(rows[0][3])

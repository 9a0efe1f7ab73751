"""Cleanup the service does by itself, riding on the requests that make the garbage: no cron job to forget.

Every EVERY-th such request of a worker (its first included) handles up to its table's batch of rows, oldest
first: more than the requests in between can have made, so the tables stay bounded.
"""

import itertools
import logging

from taskapi import columns, queries

log = logging.getLogger(__name__)

EVERY = 50
# Rows a sweep handles: a purge deletes by index; filling search columns folds and hashes each row's text in Python
# (up to 10,000 characters: about 10 ms), so its batch is smaller.
# search: also at most SEARCH_TEXT_PER_SWEEP; 10 rows every 50th create cost a create about 0.2 ms on average
# (50 cost the shared bench's create 25 % of its rate on a table of rows from before migration 0009).
BATCHES = {"idempotency_keys": 500, "tombstones": 500, "search": 10}
_counters = {table: itertools.count() for table in BATCHES}


def sweep(conn, table, purge, *args):
    """Run `purge(conn, *args, batch)` when this is the table's EVERY-th request in this worker."""
    if next(_counters[table]) % EVERY == 0:
        removed = purge(conn, *args, BATCHES[table])
        if removed:
            log.info("swept rows", extra={"table": table, "count": removed})


SEARCHED = ("title", "description", "labels")
# What one sweep folds and hashes at most, in characters (about 20 ms of work: the keys of two of the largest
# tasks), so that the request it rides on stays fast whatever the rows hold.
SEARCH_TEXT_PER_SWEEP = 20_000


def fill_search_columns(conn, batch):
    """Give up to `batch` tasks written before migration 0009 their search columns and lookup keys (until then `q`
    reads them as PostgreSQL's lower() sees them). SKIP LOCKED: never waits on a writer; their JSON does not change,
    so no new version and no change-feed entry."""
    with conn.transaction():
        filled, text = [], 0
        for row in queries.fetch_unkeyed_tasks(conn, batch):
            if text > SEARCH_TEXT_PER_SWEEP:  # the rest stay for a later sweep (their locks go with the commit)
                break
            text += len(row["title"]) + len(row["description"] or "")
            given = {field: row[field] for field in SEARCHED}
            filled.append((row["user_id"], row["id"], columns.task_columns(row["user_id"], given)))
        if filled:
            queries.store_search_columns(conn, filled)
    return len(filled)

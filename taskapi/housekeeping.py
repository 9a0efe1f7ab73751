"""Cleanup the service does by itself, riding on the requests that make the garbage: no cron job to forget.

Every EVERY-th such request of a worker (its first included) handles up to its table's batch of rows, oldest
first: more than the requests in between can have made, so the tables stay bounded. Filling the search columns of
rows from before migration 0009 is no such garbage (nothing makes more of it): it runs at most once a second a
worker (SECONDS), so that a busy service pays a bounded share of its time for it, not a share of every write.
"""

import contextvars
import itertools
import logging
import time
from contextlib import contextmanager

import psycopg

from taskapi import columns, queries
from taskapi.db import connection
from taskapi.errors import ServiceUnavailable

log = logging.getLogger(__name__)

EVERY = 50
# Rows a sweep handles: a purge deletes by index; filling search columns folds and hashes each row's text in Python
# (up to 10,000 characters: about 10 ms), so its batch is smaller.
# search: also at most SEARCH_TEXT_PER_SWEEP, and at most once a second. Riding on every 50th create
# instead, 10 rows cost the shared bench's create (whose table is all such rows) 28 % of its rate (449 against 624
# req/s); 20 rows a second a worker is about 30 ms of its second, and keys 100,000 rows in 40 minutes on 2 workers.
BATCHES = {"idempotency_keys": 500, "tombstones": 500, "search": 20}
SECONDS = {"search": 1.0}  # swept by time, not by count
_counters = {table: itertools.count() for table in BATCHES}
_last = dict.fromkeys(SECONDS, float("-inf"))


_deferred = contextvars.ContextVar("deferred_sweeps", default=None)


def sweep(conn, table, purge, *args):
    """Run `purge(conn, *args, batch)` when this is the table's EVERY-th request in this worker (inside `deferred`,
    after its block); for a table of SECONDS, when that long has passed since this worker's last sweep of it."""
    if _due(table):
        pending = _deferred.get()
        if pending is None:
            _purge(conn, table, purge, args)
        else:
            pending[table] = (purge, args)


def _due(table):
    if table not in SECONDS:
        return next(_counters[table]) % EVERY == 0
    now = time.monotonic()
    if now - _last[table] < SECONDS[table]:
        return False
    _last[table] = now
    return True


def _purge(conn, table, purge, args):
    removed = purge(conn, *args, BATCHES[table])
    if removed:
        log.info("swept rows", extra={"table": table, "count": removed})


@contextmanager
def deferred():
    """Sweeps that fall due while the block runs (a batch) run once it is over, each on its own: inside the batch's
    transaction they would hold what they lock (other users' rows among them) until the batch commits. One sweep per
    table: its batch is more than a batch's requests can have made. A sweep that fails is logged, and the next due
    one catches up: the batch has committed, and its answer stands."""
    token = _deferred.set({})
    try:
        yield
    finally:
        pending = _deferred.get()
        _deferred.reset(token)
    if pending:
        try:
            with connection() as conn:
                for table, (purge, args) in pending.items():
                    _purge(conn, table, purge, args)
        except (ServiceUnavailable, psycopg.Error) as exc:
            log.warning("deferred sweep failed: %s", exc)


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

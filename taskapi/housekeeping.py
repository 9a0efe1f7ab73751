"""Cleanup the service does by itself, riding on the requests that make the garbage: no cron job to forget.

Every EVERY-th such request of a worker (its first included) removes up to BATCH expired rows, oldest first: more
than the requests in between can have made, so the tables stay bounded.
"""

import itertools
import logging

log = logging.getLogger(__name__)

EVERY, BATCH = 50, 500
_counters = {"idempotency_keys": itertools.count(), "tombstones": itertools.count()}


def sweep(conn, table, purge, *args):
    """Run `purge(conn, *args, BATCH)` when this is the table's EVERY-th request in this worker."""
    if next(_counters[table]) % EVERY == 0:
        removed = purge(conn, *args, BATCH)
        if removed:
            log.info("purged expired rows", extra={"table": table, "count": removed})

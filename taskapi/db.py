"""The connection pool: built by the app factory, opened lazily in each process, autocommit connections."""

import logging
import threading
from contextlib import contextmanager

import psycopg
from flask import current_app
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from taskapi.errors import ServiceUnavailable

log = logging.getLogger(__name__)
_open_lock = threading.Lock()
RECONNECT_TIMEOUT_SECONDS = 5.0


def init_app(app):
    cfg = app.config
    statement_timeout = cfg["DB_STATEMENT_TIMEOUT_MS"]

    def configure(conn):
        # Session setting, once per new connection; a runaway query is cancelled, not waited for.
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{statement_timeout}ms",))

    # open=False: a pool opened at import would be shared across gunicorn's fork; each worker opens its own.
    app.extensions["taskapi.pool"] = ConnectionPool(
        cfg["DATABASE_URL"],
        min_size=cfg["DB_POOL_MIN_SIZE"],
        max_size=cfg["DB_POOL_MAX_SIZE"],
        timeout=cfg["DB_POOL_TIMEOUT"],
        open=False,
        check=ConnectionPool.check_connection,
        # A lost connection is retried with exponential backoff; giving up after a few seconds (instead of the
        # default 5 minutes) means the next request starts a fresh attempt, so a worker whose backoff grew long
        # during an outage is back as soon as PostgreSQL is, not up to minutes later.
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
        configure=configure,
        kwargs={
            # Every request runs a single statement (the list's count and page are one), so autocommit spares the
            # BEGIN and COMMIT round trips; work that needs several statements uses `with conn.transaction():`.
            "autocommit": True,
            "row_factory": dict_row,
            "prepare_threshold": cfg["DB_PREPARE_THRESHOLD"],
            "connect_timeout": cfg["DB_CONNECT_TIMEOUT"],
        },
        name="taskapi",
    )


def get_pool(app=None):
    """The app's pool, opened on first use in this process (after gunicorn has forked the worker)."""
    pool = (app or current_app).extensions["taskapi.pool"]
    if pool.closed:
        with _open_lock:
            if pool.closed:
                pool.open(wait=False)
    return pool


def close_pool(app):
    pool = app.extensions["taskapi.pool"]
    if not pool.closed:
        pool.close()


@contextmanager
def connection(timeout=None):
    """A pooled connection in autocommit mode: each statement commits on its own.

    A database that cannot be reached, or a pool with no free connection in time, is a 503 to the client.
    """
    try:
        with get_pool().connection(timeout=timeout) as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        log.warning("database unavailable: %s", exc)
        raise ServiceUnavailable() from exc

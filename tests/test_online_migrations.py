"""Migrations online (SPEC, round 3, "Operations added"): the migrations after round 2 applied to a database holding
1,000,000 round-2 tasks while clients keep sending round 2's statements, then rolled back the same way. Every
request's duration is measured: none may take a second, none may fail, and no table may be rewritten.

The clients are plain psycopg connections in processes of their own sending the statements of round 2's
`taskapi/queries` (the code that is still serving while a migration runs): they never name a column added after
0003. A monitor records every lock wait it sees, and what it waited behind, so a slow request can be explained.
"""

import bisect
import logging
import multiprocessing
import queue
import random
import re
import threading
import time
from collections import deque

import psycopg
from test_migrations import apply_up_to

from taskapi import migrate

ROUND_2 = "0003.change-feed-cursors-and-quota"
USERS = 1_000
TASKS_PER_USER = 1_000
TOMBSTONED_USERS, TOMBSTONES_EACH = 100, 10  # the first users (by id) have deleted tasks behind them
KEYS_PER_USER = 10  # stored idempotency answers
WORKERS = 4
MAX_WAIT_S = 1.0
BASELINE_S = 2.0
KINDS = ("list", "get", "update", "create", "delete", "user")
# A migration that gives up on its lock_timeout (or loses a deadlock) is retried; every retry is reported.
RETRIABLE = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)
ATTEMPTS = 5

# --- Round 2's statements, as its taskapi/queries sent them (the list's first page without a count) ---

_UTC = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
TASK_JSON = f"""json_build_object(
    'id', tasks.id, 'user_id', tasks.user_id, 'title', tasks.title, 'description', tasks.description,
    'is_completed', tasks.is_completed, 'version', tasks.version,
    'created_at', {_UTC.format("tasks.created_at")}, 'updated_at', {_UTC.format("tasks.updated_at")}
)::text"""
ONE_TASK = f"tasks.id, tasks.version, {TASK_JSON} AS task"
LIST_PAGE = f"""
SELECT head.user_found, page.task
FROM (SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS user_found) AS head
LEFT JOIN LATERAL (
    SELECT {TASK_JSON} AS task, id, created_at FROM tasks WHERE user_id = %(user_id)s
    ORDER BY created_at DESC, id DESC LIMIT 20
) AS page ON true
ORDER BY page.created_at DESC, page.id DESC
"""
SELECT_TASK = f"SELECT {ONE_TASK} FROM tasks WHERE user_id = %(user_id)s AND id = %(task_id)s"
# An update takes its user's row first (the change counter), then the task, in one transaction.
BUMP_USER = "UPDATE users SET change_seq = change_seq + 1 WHERE id = %(user_id)s RETURNING change_seq"
UPDATE_TASK = f"""
UPDATE tasks SET title = %(title)s, version = tasks.version + 1, updated_at = now(), change_seq = %(seq)s
WHERE user_id = %(user_id)s AND id = %(task_id)s
RETURNING {ONE_TASK}
"""
INSERT_TASK = f"""
WITH owner AS (
    UPDATE users SET change_seq = change_seq + 1, task_count = task_count + 1
    WHERE id = %(user_id)s AND task_count < %(max_tasks)s
    RETURNING id, change_seq
)
INSERT INTO tasks (user_id, title, description, is_completed, change_seq)
SELECT id, %(title)s, %(description)s, false, change_seq FROM owner
RETURNING {ONE_TASK}
"""
# A POST with an Idempotency-Key: the key is claimed, the task made and the answer stored in one transaction.
CLAIM_KEY = """
INSERT INTO idempotency_keys AS k (scope, key, fingerprint) VALUES (%(scope)s, %(key)s, %(fingerprint)s)
ON CONFLICT (scope, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, created_at = now(), status = NULL, body = NULL, location = NULL, etag = NULL
    WHERE k.created_at < now() - make_interval(hours => 24)
RETURNING scope
"""
STORE_ANSWER = """
UPDATE idempotency_keys SET status = %(status)s, body = %(body)s, location = %(location)s, etag = %(etag)s
WHERE scope = %(scope)s AND key = %(key)s
"""
DELETE_TASK = """
WITH owner AS (
    SELECT id, change_seq + 1 AS seq, task_count FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
),
gone AS (
    DELETE FROM tasks USING owner
    WHERE tasks.user_id = %(user_id)s AND tasks.id = %(task_id)s
    RETURNING tasks.id, owner.seq
),
counter AS (
    UPDATE users SET change_seq = owner.seq, task_count = owner.task_count - 1
    FROM owner WHERE users.id = owner.id AND EXISTS (SELECT 1 FROM gone)
)
INSERT INTO tombstones (user_id, change_seq, task_id)
SELECT %(user_id)s, seq, id FROM gone
RETURNING task_id
"""
USER_EXISTS = "SELECT 1 FROM users WHERE id = %(user_id)s"


def client(url, worker, pairs, stop, results):
    """One client process, on users of its own: list, get, update, create (every other one with an idempotency
    key), delete (a task it created) and a look-up of the user, in turn, until `stop`. Every request's start and
    duration are kept, and every error."""
    rng = random.Random(worker)
    samples = {kind: [] for kind in KINDS}
    errors = []
    created = deque()
    # psycopg's default prepare_threshold, as round 2's pool had it: a statement run 5 times is prepared, and then
    # PostgreSQL takes its locks in another order (a prepared INSERT_TASK locks tasks before the users of its WITH).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '10s'")

        def timed(kind, request, *args):
            start = time.monotonic()
            try:
                request(*args)
            except (psycopg.Error, AssertionError) as exc:
                # a deadlock's detail names the processes, the locks and the relations (by oid) of the cycle
                detail = getattr(getattr(exc, "diag", None), "message_detail", None)
                message = str(exc).split("\n")[0] + (f" ({detail})" if detail else "")
                errors.append((kind, start, time.monotonic() - start, type(exc).__name__, message))
            samples[kind].append((start, time.monotonic() - start))

        def list_page(user):
            assert conn.execute(LIST_PAGE, {"user_id": user}).fetchall()[0][0]

        def get(user, task):
            assert conn.execute(SELECT_TASK, {"user_id": user, "task_id": task}).fetchone()

        def update(user, task, n):
            with conn.transaction():
                seq = conn.execute(BUMP_USER, {"user_id": user}).fetchone()[0]
                params = {"user_id": user, "task_id": task, "title": f"renamed {worker}.{n}", "seq": seq}
                assert conn.execute(UPDATE_TASK, params).fetchone()

        def create(user, n):
            key = f"w{worker}-{n}" if n % 2 else None
            params = {"user_id": user, "title": f"made {worker}.{n}", "description": "during", "max_tasks": 2**62}
            with conn.transaction():
                if key:
                    conn.execute("SELECT set_config('lock_timeout', '2000ms', true)")
                    conn.execute(CLAIM_KEY, {"scope": user, "key": key, "fingerprint": key.encode()}).fetchone()
                    conn.execute("SELECT set_config('lock_timeout', '0', true)")
                task_id, version, body = conn.execute(INSERT_TASK, params).fetchone()
                if key:
                    answer = {"status": 201, "body": body.encode(), "etag": f'"{version}"', "scope": user, "key": key}
                    conn.execute(STORE_ANSWER, {**answer, "location": f"/users/{user}/tasks/{task_id}"})
            created.append((user, task_id))

        def delete():
            user, task = created.popleft()
            assert conn.execute(DELETE_TASK, {"user_id": user, "task_id": task}).fetchone()

        def user_exists(user):
            assert conn.execute(USER_EXISTS, {"user_id": user}).fetchone()

        results.put(("ready", worker))
        n = 0
        while not stop.is_set():
            n += 1
            user, task = rng.choice(pairs)
            timed("list", list_page, user)
            timed("get", get, user, task)
            timed("update", update, user, task, n)
            timed("create", create, rng.choice(pairs)[0], n)
            if created:
                timed("delete", delete)
            timed("user", user_exists, user)
    results.put(("done", worker, samples, errors))


class LockMonitor(threading.Thread):
    """Polls every 20 ms for sessions of this database waiting on a lock: what waits, on which lock, behind whom;
    keeps each wait's longest sighting."""

    QUERY = """
    SELECT w.pid, w.query_start, extract(epoch FROM clock_timestamp() - w.query_start)::float8,
           left(regexp_replace(w.query, '\\s+', ' ', 'g'), 70), l.locktype, l.relation::regclass::text, l.mode,
           (SELECT string_agg(left(regexp_replace(b.query, '\\s+', ' ', 'g'), 70) || ' [' || b.state || ']', ' | ')
            FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(w.pid)))
    FROM pg_stat_activity w JOIN pg_locks l ON l.pid = w.pid AND NOT l.granted
    WHERE w.datname = current_database() AND w.wait_event_type = 'Lock' AND w.pid <> pg_backend_pid()
    """

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.halt, self.waits = url, threading.Event(), {}

    def run(self):
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.halt.wait(0.02):
                for pid, started, waited, query, locktype, relation, mode, blockers in conn.execute(self.QUERY):
                    seen = self.waits.get((pid, started))
                    if seen is None or waited > seen[0]:
                        self.waits[(pid, started)] = (waited, query, f"{mode} on {relation or locktype}", blockers)

    def longest(self, over=0.1):
        return sorted((w for w in self.waits.values() if w[0] > over), reverse=True)


class YoyoMarks(logging.Handler):
    """When yoyo starts each migration or rollback (its INFO lines), on the monotonic clock."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.marks = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith(("Applying ", "Rolling back ")):
            self.marks.append((time.monotonic(), message))


class MigrateRetries(logging.Handler):
    """The retries taskapi.migrate makes on its own after a lock timeout (each starts that migration again)."""

    def __init__(self, retries):
        super().__init__(logging.WARNING)
        self.retries = retries

    def emit(self, record):
        message = record.getMessage()
        if "retrying" in message:
            self.retries.append(f"taskapi.migrate: {message}")


def seed(url):
    """Round 2's rows: USERS users of TASKS_PER_USER tasks (change numbers 1..n, in the order they changed), some
    with tombstones after them, stored idempotency answers; the counters on each user's row consistent."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO users (id, created_at, change_seq, task_count) "
            "SELECT gen_random_uuid(), now() - interval '400 days', %s, %s FROM generate_series(1, %s)",
            (TASKS_PER_USER, TASKS_PER_USER, USERS),
        )
        conn.execute(
            """
            INSERT INTO tasks (user_id, title, description, is_completed, change_seq, version, created_at, updated_at)
            SELECT u.id, 'Task ' || n || ' of a user from round 2',
                   CASE WHEN n %% 3 = 0 THEN repeat('Some words. ', 1 + n %% 40) END,
                   n %% 4 = 0, n, 1 + n %% 5,
                   u.created_at + make_interval(mins => n), u.created_at + make_interval(mins => n, secs => n %% 50)
            FROM users u CROSS JOIN generate_series(1, %s) n
            ORDER BY u.id, n
            """,
            (TASKS_PER_USER,),
        )
        conn.execute(
            "INSERT INTO tombstones (user_id, change_seq, task_id, deleted_at) "
            "SELECT u.id, %s + n, gen_random_uuid(), now() - make_interval(hours => n) "
            "FROM (SELECT id FROM users ORDER BY id LIMIT %s) u CROSS JOIN generate_series(1, %s) n",
            (TASKS_PER_USER, TOMBSTONED_USERS, TOMBSTONES_EACH),
        )
        conn.execute(
            "UPDATE users SET change_seq = t.top FROM (SELECT user_id, max(change_seq) AS top FROM tombstones "
            "GROUP BY user_id) t WHERE users.id = t.user_id"
        )
        conn.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, location, etag, created_at) "
            "SELECT u.id, 'seed-' || n, sha256(convert_to(u.id::text || n, 'UTF8')), 201, "
            """convert_to('{"id":"' || gen_random_uuid() || '","title":"seeded"}', 'UTF8'), """
            "'/users/' || u.id || '/tasks/x', '\"1\"', now() - make_interval(mins => n) "
            "FROM users u CROSS JOIN generate_series(1, %s) n",
            (KEYS_PER_USER,),
        )
        vacuum = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        vacuumed = time.monotonic() - vacuum
        counts = conn.execute("SELECT (SELECT count(*) FROM tasks), (SELECT sum(task_count) FROM users)").fetchone()
        assert counts == (USERS * TASKS_PER_USER, USERS * TASKS_PER_USER)
        return vacuumed


def apply_with_retry(url, migration_id, retries):
    """apply_up_to one more migration; one that gives up on a lock is retried (and reported)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            apply_up_to(url, migration_id)
            return
        except RETRIABLE as exc:
            retries.append(
                f"apply {migration_id}, attempt {attempt}: {type(exc).__name__}: {str(exc).split(chr(10))[0]}"
            )
            if attempt == ATTEMPTS:
                raise
            time.sleep(0.5)


def rollback_with_retry(url, newer, retries):
    """migrate.rollback of every migration after round 2; after one that gave up on a lock, the rest again."""
    for attempt in range(1, ATTEMPTS + 1):
        applied = [m for m in newer if m not in migrate.pending(url)]
        try:
            migrate.rollback(url, len(applied))
            return
        except RETRIABLE as exc:
            retries.append(f"rollback, attempt {attempt}: {type(exc).__name__}: {str(exc).split(chr(10))[0]}")
            if attempt == ATTEMPTS:
                raise
            time.sleep(0.5)


def filenodes(conn):
    """The files behind the live tables: a rewrite (ALTER that copies the table) gives a table a new one."""
    rows = conn.execute(
        "SELECT relname, pg_relation_filenode(oid) FROM pg_class "
        "WHERE relname IN ('users', 'tasks', 'idempotency_keys', 'tombstones') AND relkind = 'r'"
    )
    return dict(rows.fetchall())


def columns(conn, table):
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
    return {name for (name,) in rows}


NEW_COLUMNS = {
    "users": {"tombstone_count", "tombstone_floor", "time_zone"},
    "idempotency_keys": {"compressed"},
    "tasks": {
        "text_bytes", "due_date", "due_time", "due_zone", "due_at", "due_sort", "priority", "labels", "label_keys",
        "completed_at", "search_title", "search_description", "title_keys", "description_keys", "label_hashes",
    },
}  # fmt: skip
NEW_INDEXES = [
    "idempotency_keys_scope_created_idx", "tasks_user_due_idx", "tasks_user_due_desc_idx", "tasks_user_due_date_idx",
    "tasks_user_due_at_idx", "tasks_user_priority_idx", "tasks_lookup_keys_idx", "tasks_user_unkeyed_idx",
]  # fmt: skip
NEW_CHECKS = [
    "tasks_priority_range", "tasks_due_shape", "tasks_labels_shape", "tasks_completed_at_only_when_completed",
]  # fmt: skip


def indexes(conn):
    rows = conn.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = ANY(%s)",
        (NEW_INDEXES,),
    )
    return dict(rows.fetchall())


def checks(conn):
    rows = conn.execute("SELECT conname, convalidated FROM pg_constraint WHERE conname = ANY(%s)", (NEW_CHECKS,))
    return dict(rows.fetchall())


def consistent(conn):
    """Every user's counters still tell the truth about the rows the clients left: the task count exact, the change
    counter at or past every number a task or tombstone carries."""
    return conn.execute(
        """
        SELECT count(*) FROM users u
        LEFT JOIN (SELECT user_id, count(*) AS n, max(change_seq) AS top FROM tasks GROUP BY user_id) t
            ON t.user_id = u.id
        LEFT JOIN (SELECT user_id, max(change_seq) AS top FROM tombstones GROUP BY user_id) d ON d.user_id = u.id
        WHERE u.task_count <> coalesce(t.n, 0) OR u.change_seq < greatest(t.top, d.top, 0)
        """
    ).fetchone()[0]


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def test_migrations_apply_and_roll_back_online_under_round_2_load(new_database):
    url = new_database("taskapi_test_online")
    apply_up_to(url, ROUND_2)
    backend = migrate._backend(url)
    try:  # the migrations after round 2, in the order yoyo applies them
        newer = [m.id for m in backend.to_apply(migrate.read_migrations(str(migrate.SQL_DIR)))]
    finally:
        backend.connection.close()
    assert newer, "no migration after round 2"

    started = time.monotonic()
    vacuumed = seed(url)
    seeded = time.monotonic() - started
    with psycopg.connect(url, autocommit=True) as conn:
        before = filenodes(conn)
        sample = conn.execute("SELECT user_id, id FROM tasks TABLESAMPLE SYSTEM (1) REPEATABLE (7)").fetchall()
    users = sorted({user for user, _ in sample})
    share = {user: i % WORKERS for i, user in enumerate(users)}  # each client keeps to users of its own
    pairs = [[(str(u), str(t)) for u, t in sample if share[u] == w] for w in range(WORKERS)]

    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    clients = [context.Process(target=client, args=(url, w, pairs[w], stop, results)) for w in range(WORKERS)]
    monitor, marks = LockMonitor(url), YoyoMarks()
    yoyo_log = logging.getLogger("yoyo.migrations")
    saved_level = yoyo_log.level
    phases, retries, collected = [], [], {}
    migrate_log, migrate_retries = logging.getLogger("taskapi.migrate"), MigrateRetries(retries)
    migrate_log.addHandler(migrate_retries)
    try:
        for process in clients:
            process.start()
        for _ in clients:
            assert results.get(timeout=60)[0] == "ready"
        monitor.start()
        mark = time.monotonic()
        time.sleep(BASELINE_S)
        phases.append(("baseline (no migration)", mark, time.monotonic()))

        for migration_id in newer:
            mark = time.monotonic()
            apply_with_retry(url, migration_id, retries)
            phases.append((f"apply {migration_id}", mark, time.monotonic()))

        mark = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            applied_nodes = filenodes(conn)
            applied_columns = {table: columns(conn, table) for table in NEW_COLUMNS}
            applied_indexes, applied_checks = indexes(conn), checks(conn)
            trigger = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'tasks_text_bytes'").fetchone()[0]
            # the old code's updates and creates, after 0004, had text_bytes kept by the trigger
            kept = conn.execute("SELECT count(*) FROM tasks WHERE text_bytes IS NOT NULL").fetchone()[0]
            # 0004 counted the seeded tombstones of the users that have them (the old code keeps no count)
            counted = conn.execute(
                "SELECT min(tombstone_count) FROM (SELECT tombstone_count FROM users ORDER BY id LIMIT %s) seeded",
                (TOMBSTONED_USERS,),
            ).fetchone()[0]
        phases.append(("schema checks", mark, time.monotonic()))

        yoyo_log.addHandler(marks)
        yoyo_log.setLevel(logging.INFO)
        rollback_started = time.monotonic()
        rollback_with_retry(url, newer, retries)
        rollback_ended = time.monotonic()
        yoyo_log.removeHandler(marks)
        starts = [(t, m.removeprefix("Rolling back ")) for t, m in marks.marks if m.startswith("Rolling back ")]
        rolled_back = [migration_id for _, migration_id in starts]
        for (t, migration_id), (t_next, _) in zip(starts, starts[1:] + [(rollback_ended, None)], strict=True):
            phases.append((f"rollback {migration_id}", t, t_next))

        mark = time.monotonic()
        time.sleep(1.0)
        phases.append(("after (round-2 schema)", mark, time.monotonic()))
    finally:
        yoyo_log.removeHandler(marks)
        yoyo_log.setLevel(saved_level)
        migrate_log.removeHandler(migrate_retries)
        stop.set()
        monitor.halt.set()
        deadline = time.monotonic() + 60
        while len(collected) < sum(p.pid is not None for p in clients) and time.monotonic() < deadline:
            try:
                message = results.get(timeout=1)
            except queue.Empty:
                if not any(p.is_alive() for p in clients):
                    break
                continue
            if message[0] == "done":
                collected[message[1]] = message[2:]
        for process in clients:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
        if monitor.is_alive():
            monitor.join(5)

    with psycopg.connect(url, autocommit=True) as conn:
        after_nodes = filenodes(conn)
        after_columns = {table: columns(conn, table) for table in NEW_COLUMNS}
        after_indexes, after_checks = indexes(conn), checks(conn)
        leftovers = conn.execute(
            "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'tasks_text_bytes'), "
            "(SELECT count(*) FROM pg_proc WHERE proname = 'tasks_text_bytes')"
        ).fetchone()
        task_total = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        inconsistent = consistent(conn)
        relations = dict(
            conn.execute("SELECT 'relation ' || oid, relname FROM pg_class WHERE relkind = 'r'").fetchall()
        )
    pending_after = migrate.pending(url)

    # --- the numbers ---
    samples = {kind: [] for kind in KINDS}
    errors = []
    for worker_samples, worker_errors in collected.values():
        for kind in KINDS:
            samples[kind] += worker_samples[kind]
        errors += worker_errors
    phase_starts = [start for _, start, _ in phases]
    longest = {}  # (phase index, kind) -> seconds
    for kind in KINDS:
        for start, seconds in samples[kind]:
            at = max(0, bisect.bisect_right(phase_starts, start) - 1)
            longest[at, kind] = max(longest.get((at, kind), 0.0), seconds)

    print()
    print(f"online migrations: {USERS * TASKS_PER_USER:,} round-2 tasks ({USERS:,} users), {WORKERS} client processes")
    print(
        f"seed: {USERS * TASKS_PER_USER:,} tasks, {TOMBSTONED_USERS * TOMBSTONES_EACH:,} tombstones, "
        f"{USERS * KEYS_PER_USER:,} idempotency keys in {seeded:.1f} s (of which VACUUM ANALYZE {vacuumed:.1f} s)"
    )
    print(f"\n{'phase':<48}{'time s':>8}" + "".join(f"{kind:>8}" for kind in KINDS) + "   (longest request, ms)")
    for at, (name, start, end) in enumerate(phases):
        cells = "".join(f"{longest[at, kind] * 1000:8.1f}" if (at, kind) in longest else f"{'-':>8}" for kind in KINDS)
        print(f"{name:<48}{end - start:8.2f}{cells}")
    applying = [end - start for name, start, end in phases if name.startswith("apply ")]
    print(
        f"all {len(newer)} applied in {sum(applying):.2f} s; all rolled back by migrate.rollback(url, {len(newer)}) "
        f"in {rollback_ended - rollback_started:.2f} s"
    )
    print(f"\n{'request':<10}{'count':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in KINDS:
        durations = sorted(seconds for _, seconds in samples[kind])
        if durations:
            p50, p99, top = (percentile(durations, f) * 1000 for f in (0.5, 0.99, 1.0))
            print(f"{kind:<10}{len(durations):9,}{p50:9.1f}{p99:9.1f}{top:9.1f}")
    waits = monitor.longest()
    print(f"\nlock waits seen over 100 ms: {len(waits)}")
    for waited, query, lock, blockers in waits[:10]:
        print(f"  {waited * 1000:7.0f} ms  {query!r} waiting for {lock} behind {blockers!r}")
    print(f"migration retries: {retries or 'none'}")
    print(f"client errors: {len(errors)}")
    for kind, start, seconds, name, message in errors[:10]:
        message = re.sub(r"relation \d+", lambda m: relations.get(m[0], m[0]), message).replace("\n", "; ")
        during = phases[max(0, bisect.bisect_right(phase_starts, start) - 1)][0]
        print(f"  {kind} during {during}, after {seconds * 1000:.0f} ms: {name}: {message}")

    # --- the asserts ---
    assert len(collected) == WORKERS, "a client process did not report"
    assert not errors, f"{len(errors)} client errors, the first: {errors[0][0]}: {errors[0][4]}"
    for kind in KINDS:
        assert samples[kind], f"no {kind} request was made"
        top = max(seconds for _, seconds in samples[kind])
        assert top < MAX_WAIT_S, f"a {kind} request took {top:.3f} s"
    assert before == applied_nodes == after_nodes, "a table was rewritten"
    for table, added in NEW_COLUMNS.items():
        assert added <= applied_columns[table], (table, added - applied_columns[table])
        assert not added & after_columns[table], (table, added & after_columns[table])
    assert applied_indexes == dict.fromkeys(NEW_INDEXES, True)
    assert applied_checks == dict.fromkeys(NEW_CHECKS, True)
    assert trigger == 1 and kept > 0
    assert counted >= TOMBSTONES_EACH
    assert rolled_back == list(reversed(newer)) or retries  # after a retry, one is started twice
    assert pending_after == newer
    assert after_indexes == {} and after_checks == {} and leftovers == (0, 0)
    assert task_total >= USERS * TASKS_PER_USER  # each client deletes only tasks it created
    assert inconsistent == 0

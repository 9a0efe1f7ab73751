"""The yoyo migrations in sql/: apply all, roll all back, apply again, on a real database."""

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from helpers import ROOT

from taskapi import migrate


def tables(url):
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows if not name.startswith("_yoyo") and name != "yoyo_lock"}


SCHEMA = {"users", "tasks", "lists", "idempotency_keys", "tombstones", "service_secrets"}
ROUND_1 = "0001.create-users-and-tasks"


def apply_up_to(url, last):
    """Apply migrations up to and including `last`, as a database of that release would have them."""
    backend = migrate._backend(url)
    with backend.lock():
        pending = backend.to_apply(migrate.read_migrations(str(migrate.SQL_DIR)))
        backend.apply_migrations(pending.filter(lambda m: m.id <= last))


def test_round_2_migrations_apply_to_and_roll_back_from_a_database_with_round_1_rows(empty_url):
    apply_up_to(empty_url, ROUND_1)
    with psycopg.connect(empty_url) as conn:
        users = [conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0] for _ in range(3)]
        for user in users:
            conn.execute(
                "INSERT INTO tasks (user_id, title) SELECT %s, 'old ' || n FROM generate_series(1, 50) n", (user,)
            )
    migrate.apply(empty_url)
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT count(*), min(version), max(version) FROM tasks").fetchone() == (150, 1, 1)
        # every existing task has its own change number, 1..50 per user, and the users' counters match
        numbers = conn.execute(
            "SELECT user_id, array_agg(change_seq ORDER BY change_seq) FROM tasks GROUP BY user_id"
        ).fetchall()
        assert all(seqs == list(range(1, 51)) for _, seqs in numbers)
        assert conn.execute("SELECT DISTINCT change_seq, task_count FROM users").fetchall() == [(50, 50)]
        assert len(conn.execute("SELECT value FROM service_secrets").fetchone()[0]) == 32
    newer = [m for m in migrate.migration_ids() if m > ROUND_1]
    assert migrate.rollback(empty_url, len(newer)) == list(reversed(newer))
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (150,)
        columns = {
            r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks'")
        }
    assert "version" not in columns and tables(empty_url) == {"users", "tasks"}


@pytest.fixture
def empty_url(new_database):
    return new_database("taskapi_test_migrations")


def test_apply_rollback_apply(empty_url):
    ids = migrate.migration_ids()
    assert ids and all(id_.split(".")[0].isdigit() for id_ in ids)
    assert migrate.apply(empty_url) == ids
    assert tables(empty_url) == SCHEMA
    assert migrate.pending(empty_url) == []
    assert migrate.apply(empty_url) == []  # idempotent
    assert migrate.rollback(empty_url) == list(reversed(ids))
    assert tables(empty_url) == set()
    assert migrate.pending(empty_url) == ids
    assert migrate.apply(empty_url) == ids
    assert tables(empty_url) == SCHEMA


def test_every_migration_has_a_rollback():
    for path in (ROOT / "sql").glob("*.sql"):
        if not path.name.endswith(".rollback.sql"):
            assert path.with_name(path.stem + ".rollback.sql").exists(), path.name


def test_schema_constraints_mirror_the_input_rules(empty_url):
    migrate.apply(empty_url)
    with psycopg.connect(empty_url) as conn:
        user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
        for title, description in [("   ", None), ("x" * 256, None), ("t", "d" * 10_001)]:
            refused = (psycopg.errors.CheckViolation, psycopg.errors.StringDataRightTruncation)
            with pytest.raises(refused), conn.transaction():
                conn.execute(
                    "INSERT INTO tasks (user_id, title, description) VALUES (%s, %s, %s)", (user, title, description)
                )
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'tasks_user_created_idx'").fetchone()
        assert "(user_id, created_at DESC, id DESC)" in index[0]


def test_readme_commands(empty_url):
    """The README's `python -m taskapi.migrate` and raw `yoyo apply` both work on a postgresql:// URL."""
    env = {**os.environ, "DATABASE_URL": empty_url}
    run = lambda *args: subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=True)  # noqa: E731
    assert "0001" in run(sys.executable, "-m", "taskapi.migrate", "apply").stdout
    assert "0001" in run(sys.executable, "-m", "taskapi.migrate", "rollback", "--all").stdout
    yoyo_url = migrate.yoyo_url(empty_url)
    run(os.path.join(os.path.dirname(sys.executable), "yoyo"), "apply", "--batch", "--database", yoyo_url, "sql")
    assert tables(empty_url) == SCHEMA
    assert "none" in run(sys.executable, "-m", "taskapi.migrate", "status").stdout


def test_the_change_feed_migration_applies_to_and_rolls_back_from_a_database_with_round_2_rows(empty_url):
    """0003 over a database as 0002 left it: tasks at several versions, idempotency keys; and back."""
    apply_up_to(empty_url, "0002.task-versions-and-idempotency-keys")
    with psycopg.connect(empty_url) as conn:
        user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
        conn.execute(
            "INSERT INTO tasks (user_id, title, version) SELECT %s, 'v' || n, n FROM generate_series(1, 20) n", (user,)
        )
        conn.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body) VALUES (%s, 'k', '\\x00', 201, '{}')",
            (user,),
        )
    apply_up_to(empty_url, "0003.change-feed-cursors-and-quota")
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT change_seq, task_count FROM users").fetchone() == (20, 20)
        assert conn.execute("SELECT sum(version), count(DISTINCT change_seq) FROM tasks").fetchone() == (210, 20)
    assert migrate.rollback(empty_url, 1) == ["0003.change-feed-cursors-and-quota"]
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT count(*), sum(version) FROM tasks").fetchone() == (20, 210)
        assert conn.execute("SELECT count(*) FROM idempotency_keys").fetchone() == (1,)


def test_the_bounds_migrations_apply_to_and_roll_back_from_a_database_with_round_2_rows(empty_url, app):
    """0004 to 0007 over a database as round 2 left it: tombstone counts filled in, a stored answer from before
    (uncompressed) still replays byte for byte; and back, the answers kept."""
    apply_up_to(empty_url, "0003.change-feed-cursors-and-quota")
    answer = b'{"id":"x","title":"stored before the bounds"}'
    with psycopg.connect(empty_url) as conn:
        user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
        conn.execute(
            "INSERT INTO tombstones (user_id, change_seq, task_id) SELECT %s, n, gen_random_uuid() "
            "FROM generate_series(1, 7) n",
            (user,),
        )
        conn.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body) VALUES (%s, 'k', '\\x00', 201, %s)",
            (user, answer),
        )
    apply_up_to(empty_url, "0007.task-text-bytes")
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT tombstone_count, tombstone_floor FROM users").fetchone() == (7, 0)
        stored = conn.execute("SELECT status, body, compressed, location, etag FROM idempotency_keys").fetchone()
        index = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idempotency_keys_scope_created_idx'::regclass"
        ).fetchone()
    assert index == (True,)
    from taskapi.idempotency import replay

    with app.app_context():
        keys = ("status", "body", "compressed", "location", "etag")
        assert replay(dict(zip(keys, stored, strict=True))).get_data() == answer
    assert migrate.rollback(empty_url, 4) == [
        "0007.task-text-bytes",
        "0006.idempotency-keys-by-scope-and-age",
        "0005.idempotency-answers-compressed",
        "0004.user-tombstone-bounds",
    ]
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT count(*) FROM tombstones").fetchone() == (7,)
        assert conn.execute("SELECT body FROM idempotency_keys").fetchone() == (answer,)


def test_a_migration_that_waits_too_long_for_a_lock_gives_up_and_is_retried(empty_url):
    """A long transaction holds the users table: 0004 gives up after its lock_timeout (so requests do not queue
    behind it for long), and taskapi.migrate tries again until it gets the lock."""
    apply_up_to(empty_url, "0003.change-feed-cursors-and-quota")
    holder = psycopg.connect(empty_url)
    holder.execute("SELECT count(*) FROM users")  # a transaction left open holds ACCESS SHARE on users

    def release():
        time.sleep(1.0)
        holder.rollback()

    threading.Thread(target=release).start()
    started = time.monotonic()
    assert "0004.user-tombstone-bounds" in migrate.apply(empty_url)
    assert time.monotonic() - started >= 1.0
    holder.close()

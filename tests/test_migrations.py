"""The yoyo migrations in sql/: apply all, roll all back, apply again, on a real database."""

import os
import subprocess
import sys

import psycopg
import pytest
from helpers import ROOT

from taskapi import migrate


def tables(url):
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows if not name.startswith("_yoyo") and name != "yoyo_lock"}


@pytest.fixture
def empty_url(new_database):
    return new_database("taskapi_test_migrations")


def test_apply_rollback_apply(empty_url):
    ids = migrate.migration_ids()
    assert ids and all(id_.split(".")[0].isdigit() for id_ in ids)
    assert migrate.apply(empty_url) == ids
    assert tables(empty_url) == {"users", "tasks"}
    assert migrate.pending(empty_url) == []
    assert migrate.apply(empty_url) == []  # idempotent
    assert migrate.rollback(empty_url) == list(reversed(ids))
    assert tables(empty_url) == set()
    assert migrate.pending(empty_url) == ids
    assert migrate.apply(empty_url) == ids
    assert tables(empty_url) == {"users", "tasks"}


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
    assert tables(empty_url) == {"users", "tasks"}
    assert "none" in run(sys.executable, "-m", "taskapi.migrate", "status").stdout

"""Schema migrations: yoyo applied to the `.sql` files in `sql/`, for any `postgresql://` URL.

python -m taskapi.migrate [apply|rollback|status]     (DATABASE_URL from the environment or .env)
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations

from taskapi.config import MIGRATION_TABLE

log = logging.getLogger(__name__)
# A migration that gives up waiting for a lock (SET LOCAL lock_timeout in its file) is tried again, this many times.
LOCK_ATTEMPTS, LOCK_RETRY_SECONDS = 20, 0.25

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def yoyo_url(url):
    """yoyo picks its driver from the scheme: `postgresql+psycopg://` is psycopg 3 (plain would mean psycopg2). It
    reads a single host and port from the netloc, so every parameter goes in the query instead, which yoyo hands to
    psycopg.connect as it is: several hosts (`host=a,b`, target_session_attrs) and the key=value form reach libpq."""
    params = conninfo_to_dict(url)
    return f"postgresql+psycopg:///{quote(params.pop('dbname', ''), safe='')}?{urlencode(params)}"


def migration_ids():
    """Every migration the code expects, in order."""
    return [m.id for m in read_migrations(str(SQL_DIR))]


def _backend(url):
    return get_backend(yoyo_url(url), migration_table=MIGRATION_TABLE)


def apply(url):
    """Apply every pending migration; returns the ids applied."""
    backend = _backend(url)
    with backend.lock():
        pending = backend.to_apply(read_migrations(str(SQL_DIR)))
        for migration in pending:
            _retrying(lambda m=migration: backend.apply_one(m))
    return [m.id for m in pending]


def rollback(url, count=None):
    """Roll back the newest `count` applied migrations (all of them when None); returns the ids."""
    backend = _backend(url)
    with backend.lock():
        applied = backend.to_rollback(read_migrations(str(SQL_DIR)))
        chosen = applied if count is None else applied[:count]
        for migration in chosen:
            _retrying(lambda m=migration: backend.rollback_one(m))
    return [m.id for m in chosen]


def _retrying(step, attempts=LOCK_ATTEMPTS):
    """Run one migration step; when it gave up waiting for a table lock (its lock_timeout: a long transaction held
    the table, and the migration must not queue every request behind it), roll back and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except psycopg.errors.LockNotAvailable:
            if attempt == attempts:
                raise
            log.warning("migration waited too long for a lock; retrying (%d of %d)", attempt, attempts)
            time.sleep(LOCK_RETRY_SECONDS * attempt)


def pending(url):
    backend = _backend(url)
    return [m.id for m in backend.to_apply(read_migrations(str(SQL_DIR)))]


def main(argv=None):
    from dotenv import load_dotenv

    from taskapi.config import ConfigError, require_database_url

    parser = argparse.ArgumentParser(prog="python -m taskapi.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="apply", choices=["apply", "rollback", "status"])
    parser.add_argument("--all", action="store_true", help="rollback: every migration, not just the newest")
    args = parser.parse_args(argv)
    load_dotenv()
    try:
        url = require_database_url()
    except ConfigError as exc:
        sys.exit(f"taskapi.migrate: {exc}")
    if args.command == "apply":
        done = apply(url)
        print(f"applied: {', '.join(done) or 'nothing pending'}")
    elif args.command == "rollback":
        done = rollback(url, None if args.all else 1)
        print(f"rolled back: {', '.join(done) or 'nothing applied'}")
    else:
        print(f"pending: {', '.join(pending(url)) or 'none'}")


if __name__ == "__main__":
    main()

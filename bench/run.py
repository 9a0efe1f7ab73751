"""`make bench`: taskapi alone under load, the production way (gunicorn.conf.py), on the embedded database.

Seeds a fresh `taskapi_bench` database (users x tasks), starts gunicorn, drives each workload with wrk, and prints
req/s, p50 and p99 per workload. For the comparison with the seed design, see the README (Performance).

    python bench/run.py [--duration 10] [--connections 32] [--workers 2] [--users 100] [--tasks-per-user 200]
                        [--workloads list,get,create,update,mixed]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from taskapi import embedded, migrate  # noqa: E402
from taskapi.serve import GUNICORN  # noqa: E402

WORKLOADS = ["list", "get", "create", "update", "mixed"]
SEED = [
    "TRUNCATE users CASCADE",
    "INSERT INTO users (id) SELECT gen_random_uuid() FROM generate_series(1, %(users)s)",
    """INSERT INTO tasks (user_id, title, description, is_completed, created_at, updated_at)
  SELECT u.id, 'Task ' || t, CASE WHEN t %% 3 = 0 THEN NULL ELSE 'Some words about this task.' END, t %% 4 = 0,
         now() - t * interval '1 minute', now() - t * interval '1 minute'
    FROM users u, generate_series(1, %(tasks)s) t""",
    "VACUUM ANALYZE tasks",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url, users, tasks, pairs_file):
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement, {"users": users, "tasks": tasks} if "%(" in statement else None)
        rows = conn.execute("SELECT user_id, id FROM tasks").fetchall()
    pairs_file.write_text("".join(f"{u} {t}\n" for u, t in rows))


def worker_rss_mib(master_pid):
    """Resident memory of each gunicorn worker (the master's children), in MiB."""
    rss = []
    for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss.append(int(line.split()[1]) / 1024)
    return rss


def wait_up(url, proc):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("gunicorn did not become ready")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--tasks-per-user", type=int, default=200)
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of " + ",".join(WORKLOADS))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (make bench installs it when run as root)")

    server = embedded.start(ROOT / "instance" / "pgdata")
    url = embedded.ensure_database(server.get_uri("postgres"), "taskapi_bench", fresh=True)
    migrate.apply(url)
    tmp = Path(tempfile.mkdtemp(prefix="taskapi-bench-"))
    pairs = tmp / "pairs.txt"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WEB_CONCURRENCY": str(args.workers),
        "TASKAPI_ENV": "production",
        "TASKAPI_BIND": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    with open(tmp / "gunicorn.log", "wb") as log:
        gunicorn = subprocess.Popen(
            GUNICORN,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base, gunicorn)
        print(
            f"taskapi {args.workers} workers, {args.connections} connections, {args.duration} s per workload, "
            f"{args.users} users x {args.tasks_per_user} tasks, {os.cpu_count()} CPUs"
        )
        print(f"{'workload':10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for workload in args.workloads.split(","):
            seed(url, args.users, args.tasks_per_user, pairs)
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{args.connections}",
                    f"-d{args.duration}s",
                    "-s",
                    str(ROOT / "bench" / "tasks.lua"),
                    base,
                    "--",
                    workload,
                    str(pairs),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
            rps = r["requests"] / (r["duration_us"] / 1e6)
            print(f"{workload:10}{rps:10.1f}{r['p50_us'] / 1000:10.2f}{r['p99_us'] / 1000:10.2f}{r['errors']:8d}")
        print("worker RSS after the runs: " + ", ".join(f"{mib:.1f} MiB" for mib in worker_rss_mib(gunicorn.pid)))
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

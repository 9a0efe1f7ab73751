"""`make bench`: taskapi alone under load, the production way (gunicorn.conf.py), on the embedded database.

Seeds a fresh `taskapi_bench` database (users x tasks), starts gunicorn, drives each workload with wrk, and prints
req/s, p50 and p99 per workload. For the comparison with the seed design, see the README (Performance).

    python bench/run.py [--duration 10] [--connections 32] [--workers 2] [--users 100] [--tasks-per-user 200]
                        [--workloads list,get,create,update,mixed,batch,depth,filters,order]
                        [--auth none,hs256,rs256] [--batch-rounds 20]

Each `--auth` mode gets its own gunicorn: `none` (AUTH_MODE=none), `hs256` (a JWT_SECRET) or `rs256` (keys from a
JWKS served by this script), every request carrying its user's token; the difference is the cost of authentication.
"""

import argparse
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
import psycopg  # noqa: E402

from taskapi import embedded, migrate  # noqa: E402
from taskapi.serve import GUNICORN  # noqa: E402

WORKLOADS = ["list", "get", "create", "update", "mixed", "batch"]
# `depth`: one user with 100,000 tasks and one with 500; a cursor page (count=none, limit 20) from the middle of
# each list, and each list's first page with count=exact, each driven alone by wrk.
DEPTH_USERS = {"big": 100_000, "small": 500}
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


BENCH_SECRET = "bench-secret-" + "x" * 32


def serve_jwks():
    """An RSA key and a loopback JWKS endpoint publishing it, for the rs256 mode: (private key, JWKS URL)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = json.dumps(
        {"keys": [{**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench", "alg": "RS256"}]}
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return key, f"http://127.0.0.1:{server.server_port}/jwks.json"


def auth_settings(mode):
    """The gunicorn environment for an --auth mode, and a function that mints a user's token (None: no token)."""
    if mode == "none":
        return {"AUTH_MODE": "none"}, lambda user: ""
    if mode == "hs256":
        return {"AUTH_MODE": "jwt", "JWT_SECRET": BENCH_SECRET}, lambda user: _mint(user, BENCH_SECRET, "HS256", None)
    key, url = serve_jwks()
    return {"AUTH_MODE": "jwt", "JWT_JWKS_URL": url}, lambda user: _mint(user, key, "RS256", "bench")


def _mint(user, key, alg, kid):
    now = int(time.time())
    claims = {"sub": str(user), "iat": now, "exp": now + 3600}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)


def seed(url, users, tasks, pairs_file, mint):
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement, {"users": users, "tasks": tasks} if "%(" in statement else None)
        rows = conn.execute("SELECT user_id, id FROM tasks").fetchall()
    tokens = {u: mint(u) for u in {u for u, _ in rows}}
    pairs_file.write_text("".join(f"{u} {t} {tokens[u]}\n" for u, t in rows))


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


def seed_depth(url):
    """The depth users: DEPTH_USERS tasks each, one second apart, so every sort value is distinct."""
    users = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, count in DEPTH_USERS.items():
            user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
            conn.execute(
                "INSERT INTO tasks (user_id, title, created_at, updated_at, change_seq)"
                " SELECT %s, 'Task ' || n, now() - n * interval '1 second', now() - n * interval '1 second', n"
                " FROM generate_series(1, %s) n",
                (user, count),
            )
            conn.execute("UPDATE users SET task_count = %s, change_seq = %s WHERE id = %s", (count, count, user))
            users[name] = user
        conn.execute("VACUUM ANALYZE tasks")
    return users


def cursor_at(base, path, headers, depth, filters=""):
    """The next_cursor after `depth` tasks, walked the way a client walks (pages of 100, count=none)."""
    cursor, seen = None, 0
    while seen < depth:
        query = "limit=100&count=none" + (f"&cursor={cursor}" if cursor else f"&{filters}" if filters else "")
        request = urllib.request.Request(f"{base}{path}?{query}", headers=headers)
        with urllib.request.urlopen(request) as response:
            page = json.load(response)
        seen, cursor = seen + len(page["items"]), page["next_cursor"]
    return cursor


def wrk_fixed(args, url, headers):
    """p50 and p99 (ms) and req/s of one URL under wrk's fixed load."""
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return wrk_numbers(subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout)


def wrk_numbers(out):
    """req/s, p50 and p99 (ms) of wrk's --latency output."""
    percent = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()[:3] in ("50%", "99%")}
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))

    def ms(text):
        return (
            float(text[:-2])
            if text.endswith("ms")
            else float(text[:-2]) / 1000
            if text.endswith("us")
            else float(text[:-1]) * 1000
        )

    return rps, ms(percent["50%"]), ms(percent["99%"])


def run_depth(args, url, base, mode, mint):
    users = seed_depth(url)
    results = {}
    for name, user in users.items():
        token = mint(user)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        path = f"/users/{user}/tasks"
        cursor = cursor_at(base, path, headers, DEPTH_USERS[name] // 2)
        for label, query in (("cursor", f"limit=20&count=none&cursor={cursor}"), ("first", "limit=20&count=exact")):
            rps, p50, p99 = wrk_fixed(args, f"{base}{path}?{query}", headers)
            results[(name, label)] = p50
            print(f"{mode:8}{name + ' ' + label:10}{rps:10.1f}{p50:10.2f}{p99:10.2f}{'':>8}", flush=True)
    ratio = results[("big", "cursor")] / results[("small", "cursor")]
    print(f"{mode:8}depth: cursor page p50 at half depth, 100,000 vs 500 tasks: {ratio:.2f}x", flush=True)


# `filters`: the same two depths, with round 3's fields spread over the tasks (every fifth priority; the label
# "work" on 30 %, "tax" on 0.2 %; a due on half, all-day and timed, over two years; "milk" in 2 % of titles); a
# cursor page (count=none, limit 20) from the middle of each filter's matches, for each user.
FILTER_QUERIES = {
    "label common": "label=work",
    "label rare": "label=tax",
    "priority": "priority=high",
    "due month": "due_from=2026-06-01&due_to=2026-06-30",
    "q word": "q=milk",
}


def seed_filters(url):
    """The depth users, their tasks carrying round 3's fields, written with the columns the service would store."""
    from taskapi import columns

    users = {}
    names = [name for name in columns.GROUPS for name in columns.GROUPS[name]]
    with psycopg.connect(url, autocommit=True) as conn:
        for name, count in DEPTH_USERS.items():
            user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
            with conn.cursor().copy(
                f"COPY tasks (user_id, change_seq, created_at, updated_at, {', '.join(names)}) FROM STDIN"
            ) as copy:
                for n in range(1, count + 1):
                    fields = {
                        "title": f"Task {n} " + ("buy milk" if n % 50 == 0 else "write report"),
                        "description": "Some words about this task.",
                        "is_completed": n % 4 == 0,
                        "priority": ["none", "low", "medium", "high", "urgent"][n % 5],
                        "labels": (["work"] if n % 10 < 3 else []) + (["tax"] if n % 500 == 0 else []),
                        "due": None
                        if n % 2
                        else {
                            "date": date(2026, 1, 1) + timedelta(days=n % 730),
                            "time": None if n % 4 else wall_time(9, 30),
                            "time_zone": None if n % 4 else "Europe/Berlin",
                        },
                    }
                    stored = columns.task_columns(user, fields, "UTC")
                    stamp = datetime.now(UTC) - timedelta(seconds=n)
                    copy.write_row([user, n, stamp, stamp, *(stored[column] for column in names)])
            conn.execute("UPDATE users SET task_count = %s, change_seq = %s WHERE id = %s", (count, count, user))
            users[name] = user
        conn.execute("VACUUM ANALYZE tasks")
    return users


def run_filters(args, url, base, mode, mint):
    users = seed_filters(url)
    results = {}
    for label, query in FILTER_QUERIES.items():
        for name, user in users.items():
            token = mint(user)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            path = f"/users/{user}/tasks"
            matches = count_matches(base, path, headers, query)
            cursor = cursor_at(base, path, headers, matches // 2, query)
            page = f"limit=20&count=none&cursor={cursor}" if cursor else f"limit=20&count=none&{query}"
            rps, p50, p99 = wrk_fixed(args, f"{base}{path}?{page}", headers)
            results[(label, name)] = p50
            print(f"{mode:8}{label + ' ' + name:22}{rps:10.1f}{p50:10.2f}{p99:10.2f}  ({matches} match)", flush=True)
        ratio = results[(label, "big")] / results[(label, "small")]
        print(f"{mode:8}{label}: cursor page p50, 100,000 vs 500 tasks: {ratio:.2f}x", flush=True)


# `order`: manual order. A user whose one list holds 100,000 top-level tasks and one whose list holds 500: a cursor
# page (sort=position, count=none, limit 20) from the middle of each. And a user whose list holds 10,000 siblings:
# moves after a random sibling against PATCHes of the same tasks, each driven alone by wrk (bench/order.lua).
ORDER_USERS = {"big": 100_000, "small": 500, "movers": 10_000}


def seed_order(url):
    from taskapi import positions

    users = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, count in ORDER_USERS.items():
            user = conn.execute("INSERT INTO users (list_count) VALUES (1) RETURNING id").fetchone()[0]
            list_id = conn.execute(
                "INSERT INTO lists (user_id, name, position, change_seq) VALUES (%s, 'Work', 'a0', 1) RETURNING id",
                (user,),
            ).fetchone()[0]
            with conn.cursor().copy(
                "COPY tasks (user_id, title, list_id, position, change_seq, created_at, updated_at) FROM STDIN"
            ) as copy:
                stamp = datetime.now(UTC)
                for n, key in enumerate(positions.spread(count), start=2):
                    copy.write_row([user, f"Task {n}", list_id, key, n, stamp, stamp])
            conn.execute("UPDATE users SET task_count = %s, change_seq = %s WHERE id = %s", (count, count + 1, user))
            users[name] = (user, list_id)
        conn.execute("VACUUM ANALYZE tasks")
    return users


def run_order(args, url, base, mode, mint):
    users = seed_order(url)
    results = {}
    for name in ("big", "small"):
        user, list_id = users[name]
        token = mint(user)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        path, group = f"/users/{user}/tasks", f"list_id={list_id}&parent_id=none&sort=position"
        cursor = cursor_at(base, path, headers, ORDER_USERS[name] // 2, group)
        rps, p50, p99 = wrk_fixed(args, f"{base}{path}?limit=20&count=none&cursor={cursor}", headers)
        results[name] = p50
        print(f"{mode:8}{'position ' + name:22}{rps:10.1f}{p50:10.2f}{p99:10.2f}", flush=True)
    print(f"{mode:8}position: cursor page p50, 100,000 vs 500 siblings: {results['big'] / results['small']:.2f}x")
    user, _ = users["movers"]
    token = mint(user)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with psycopg.connect(url) as conn:
        ids = [str(row[0]) for row in conn.execute("SELECT id FROM tasks WHERE user_id = %s", (user,))]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as group:
        group.write("\n".join([f"/users/{user}/tasks/", *ids]) + "\n")
    for workload in ("patch", "move"):
        command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
        command += [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
        command += ["-s", str(ROOT / "bench" / "order.lua"), base, "--", workload, group.name]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rps, p50, p99 = wrk_numbers(out)
        errors = next((line.split()[-1] for line in out.splitlines() if "Non-2xx" in line), "0")
        results[workload] = p50
        print(f"{mode:8}{workload + ' of 10,000':22}{rps:10.1f}{p50:10.2f}{p99:10.2f}{errors:>8}", flush=True)
    os.unlink(group.name)
    print(f"{mode:8}move: p50 against a PATCH's among 10,000 siblings: {results['move'] / results['patch']:.2f}x")


# `batch`: from one client, over one kept-alive connection, BATCH_SIZE single creates in a row against one batch of
# BATCH_SIZE creates, `--batch-rounds` times each (a fresh user per round, so the quota never fills): tasks/s (the
# tasks created over the time spent) and the p50 of one create, and of one batch.
BATCH_SIZE = 100


def run_batch(args, url, base, mode, mint):
    from http.client import HTTPConnection
    from statistics import median

    parts = urllib.parse.urlsplit(base)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(path, body, headers):
        started = time.perf_counter()
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        answer = json.loads(response.read())
        return response.status, answer, time.perf_counter() - started

    singles, batches = [], []
    for _ in range(args.batch_rounds):
        user = new_user(url)
        token = mint(user)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        path = f"/users/{user}/tasks"
        for n in range(BATCH_SIZE):
            status, _, took = post(path, {"title": f"single {n}"}, headers)
            assert status == 201, status
            singles.append(took)
        requests = [
            {"id": f"t{n}", "method": "POST", "path": path, "body": {"title": f"batched {n}"}}
            for n in range(BATCH_SIZE)
        ]
        status, answer, took = post(f"/users/{user}/batch", {"requests": requests}, headers)
        assert status == 200 and answer["committed"] and len(answer["responses"]) == BATCH_SIZE, answer
        batches.append(took)
    conn.close()
    single_rate, batch_rate = len(singles) / sum(singles), BATCH_SIZE * len(batches) / sum(batches)
    print(f"{mode:8}{'single':10}{single_rate:10.1f}{median(singles) * 1000:10.2f}{'':>10}  tasks/s, p50 of one create")
    print(f"{mode:8}{'batch':10}{batch_rate:10.1f}{median(batches) * 1000:10.2f}{'':>10}  tasks/s, p50 of one batch")
    print(f"{mode:8}batch: {batch_rate / single_rate:.1f}x the tasks/s of {BATCH_SIZE} single creates", flush=True)


def new_user(url):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]


def count_matches(base, path, headers, query):
    request = urllib.request.Request(f"{base}{path}?limit=1&count=exact&{query}", headers=headers)
    with urllib.request.urlopen(request) as response:
        return json.load(response)["total"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--tasks-per-user", type=int, default=200)
    ap.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated subset of " + ",".join([*WORKLOADS, *EXTRA_WORKLOADS]),
    )
    ap.add_argument("--batch-rounds", type=int, default=20, help="rounds of the batch workload")
    ap.add_argument("--auth", default="none", help="comma-separated subset of none,hs256,rs256")
    args = ap.parse_args()
    if set(args.workloads.split(",")) - {"batch"} and not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (make bench installs it when run as root)")

    server = embedded.start(ROOT / "instance" / "pgdata")
    url = embedded.ensure_database(server.get_uri("postgres"), "taskapi_bench", fresh=True)
    migrate.apply(url)
    print(
        f"taskapi {args.workers} workers, {args.connections} connections, {args.duration} s per workload, "
        f"{args.users} users x {args.tasks_per_user} tasks, {os.cpu_count()} CPUs"
    )
    print(f"{'auth':8}{'workload':10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for mode in args.auth.split(","):
        run_mode(args, url, mode)


def run_mode(args, url, mode):
    tmp = Path(tempfile.mkdtemp(prefix="taskapi-bench-"))
    pairs = tmp / "pairs.txt"
    port = free_port()
    settings, mint = auth_settings(mode)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WEB_CONCURRENCY": str(args.workers),
        "TASKAPI_ENV": "production",
        "TASKAPI_BIND": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    with open(tmp / "gunicorn.log", "wb") as log:
        gunicorn = subprocess.Popen(GUNICORN, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base, gunicorn)
        for workload in args.workloads.split(","):
            if workload in EXTRA_WORKLOADS:
                EXTRA_WORKLOADS[workload](args, url, base, mode, mint)
                continue
            seed(url, args.users, args.tasks_per_user, pairs, mint)
            out = subprocess.run(
                ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "-s", str(ROOT / "bench" / "tasks.lua")]
                + [base, "--", workload, str(pairs)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
            rps = r["requests"] / (r["duration_us"] / 1e6)
            print(
                f"{mode:8}{workload:10}{rps:10.1f}{r['p50_us'] / 1000:10.2f}{r['p99_us'] / 1000:10.2f}{r['errors']:8d}",
                flush=True,
            )
        rss = ", ".join(f"{mib:.1f} MiB" for mib in worker_rss_mib(gunicorn.pid))
        print(f"{mode:8}worker RSS after the runs: {rss}")
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


# Workloads with set-ups of their own (not wrk's script): each is run(args, url, base, mode, mint).
EXTRA_WORKLOADS = {"depth": run_depth, "filters": run_filters, "batch": run_batch, "order": run_order}

if __name__ == "__main__":
    main()

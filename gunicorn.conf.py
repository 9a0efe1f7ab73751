"""gunicorn settings for taskapi: `gunicorn -c gunicorn.conf.py wsgi:app`. Every value comes from the environment."""

import fcntl
import functools
import json
import os
import shutil
import sys
import tempfile

import gunicorn.util
from dotenv import load_dotenv

load_dotenv()

# Metrics (taskapi/metrics.py): each worker writes its numbers into files of one directory, and the master adds
# them up for GET /metrics. prometheus_client picks that mode when it is first imported, which the taskapi imports
# below do, so the directory goes into the environment first (the workers inherit it). It is always this master's
# own: TASKAPI_METRICS_DIR, or a fresh temporary directory, never a PROMETHEUS_MULTIPROC_DIR inherited from
# elsewhere, so two gunicorns on one host never add up each other's workers; and a second gunicorn given the same
# TASKAPI_METRICS_DIR refuses to start, as the first holds a lock on it while it runs (a raw descriptor, which
# nothing closes). A reload (SIGHUP) reads this file again in the same master: it keeps its directory and lock.
METRICS_OWNER = "TASKAPI_METRICS_MASTER_PID"
if os.environ.get("TASKAPI_METRICS", "").strip().lower() == "off":
    metrics_dir = None
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
elif os.environ.get(METRICS_OWNER) == str(os.getpid()):
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
else:
    metrics_dir = os.environ.get("TASKAPI_METRICS_DIR", "").strip() or tempfile.mkdtemp(prefix="taskapi-metrics-")
    os.makedirs(metrics_dir, exist_ok=True)
    lock = os.open(os.path.join(metrics_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"taskapi: TASKAPI_METRICS_DIR {metrics_dir} is in use by another gunicorn; give each its own.")
    os.environ.update({"PROMETHEUS_MULTIPROC_DIR": metrics_dir, METRICS_OWNER: str(os.getpid())})


def remove_own_metrics_dir():
    """The temporary directory made above goes when the master does; a configured one stays (emptied at start)."""
    if metrics_dir and not os.environ.get("TASKAPI_METRICS_DIR", "").strip():
        shutil.rmtree(metrics_dir, ignore_errors=True)


from taskapi import metrics  # noqa: E402  (after the metrics directory is set)
from taskapi.config import ConfigError, from_env, start_warnings  # noqa: E402  (after .env is read)
from taskapi.errors import code_for, envelope  # noqa: E402
from taskapi.logs import FORMATTER  # noqa: E402

try:
    settings = from_env()
except ConfigError as exc:
    # One clear line, before any worker is forked.
    remove_own_metrics_dir()
    sys.exit(f"taskapi: {exc}")

bind = os.environ.get("TASKAPI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
# gunicorn's sync worker, closing a finished connection without waiting on the client (taskapi/worker.py).
worker_class = "taskapi.worker.Worker"
timeout = 30
graceful_timeout = 20
keepalive = 5
# The longest request line gunicorn takes (its maximum; the default is 4,094): a list cursor carries its filters
# and the last task's sort value, and a page's cursor must always fit in the request for the next one. nginx takes
# 8 KiB (large_client_header_buffers) in front.
limit_request_line = 8190
# The app writes one JSON line per request (taskapi.access, with its request id), so gunicorn's access log stays
# off (and its logger skips the work of formatting one); gunicorn's own lines (boot, worker exits, timeouts) are
# JSON of the same shape, on stderr.
accesslog = None
logger_class = "taskapi.worker.NoAccessLogger"
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pythonjsonlogger.json.JsonFormatter", **FORMATTER}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}
# Which proxy may say what the client's scheme was is the app's decision (TRUSTED_PROXY_COUNT, Werkzeug's
# ProxyFix), made in one place: gunicorn itself trusts no forwarded header from anyone, loopback included.
forwarded_allow_ips = ""
secure_scheme_headers = {}
# gunicorn 27's control socket lives at one path per user ($HOME/.gunicorn); several instances on one host would
# fight over it, and nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """One warning line for each setting that starts but leaves the service open (taskapi.config.start_warnings);
    and an empty metrics directory (files of an earlier run would count as this one's)."""
    for line in start_warnings(settings):
        server.log.warning(line)
    if metrics_dir:
        metrics.clean_directory(metrics_dir)


def on_exit(server):
    remove_own_metrics_dir()


def when_ready(server):
    """Liveness from the master, on TASKAPI_HEALTH_BIND (empty: off): it answers while every worker is busy or
    stuck on the database, which a liveness probe must not mistake for a dead service (nginx routes /healthz
    here). The master restarts a stuck worker itself after `timeout`. /metrics is answered there too: from the
    master, a scrape sees every worker's numbers whichever worker is busy, and never through the public server."""
    if settings["HEALTH_BIND"]:
        from taskapi.liveness import serve

        routes = {"/metrics": functools.partial(metrics.exposition, metrics_dir)} if metrics_dir else {}
        try:
            server.health_server = serve(settings["HEALTH_BIND"], lambda: len(server.WORKERS) > 0, routes)
        except OSError as exc:  # the API itself still serves; say loudly that liveness does not
            server.log.error("liveness not served on %s: %s", settings["HEALTH_BIND"], exc)
            return
        server.log.info("liveness on http://%s/healthz", settings["HEALTH_BIND"])
        if routes:
            server.log.info("metrics on http://%s/metrics", settings["HEALTH_BIND"])


def post_fork(server, worker):
    # The worker inherited the master's liveness socket; only the master answers on it.
    if getattr(server, "health_server", None):
        server.health_server.socket.close()


def post_worker_init(worker):
    """Open this worker's pool now that it has forked, so its first request does not pay for it; and start
    sampling the pool and breaker for /metrics (a thread of this worker's)."""
    from taskapi.db import get_pool

    get_pool(worker.wsgi)
    if metrics_dir:
        metrics.start_sampler(worker.wsgi)


def worker_exit(server, worker):
    from taskapi.db import close_pool

    if worker.wsgi is not None:
        close_pool(worker.wsgi)


def child_exit(server, worker):
    """In the master, once a worker has exited (however it died): its gauges leave the sums."""
    if metrics_dir:
        metrics.worker_exited(worker.pid, metrics_dir)


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's own error answer (bad request line, URI over 4094 bytes, headers too large), in the API's envelope."""
    body = json.dumps(envelope(*code_for(status_int, reason)))
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
    )
    gunicorn.util.write_nonblock(sock, f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode("latin-1"))


# gunicorn answers requests it cannot parse before the app sees them, with an HTML page written by this one
# function; the SPEC wants its JSON envelope on every error, so that function is swapped for one that writes it.
gunicorn.util.write_error = write_json_error

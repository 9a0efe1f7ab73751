"""Prometheus metrics: what each worker records, and the master's GET /metrics adding every worker's numbers up.

prometheus_client's multiprocess mode: each worker writes its values into mmap'd files of its own in one
directory (PROMETHEUS_MULTIPROC_DIR, chosen by gunicorn.conf.py before anything imports the library), and the
master reads them all for each scrape. Without that directory (the app outside gunicorn) the same metrics simply
live in the process, unread.
"""

import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# Label values come from short fixed sets, so no client can mint new series, and no id or raw path is ever a
# label: a method outside these is OTHER, a path no route matches is UNMATCHED; a route is its template.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNMATCHED = "unmatched"
# From half a millisecond (a get takes about one in the app) to gunicorn's 30 s worker timeout.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SAMPLE_SECONDS = 1.0

REQUESTS = Counter(
    "taskapi_http_requests", "Requests answered, by method, route template and status.", ("method", "route", "status")
)
DURATION = Histogram(
    "taskapi_http_request_duration_seconds",
    "Seconds from a request reaching the app to its answer, by method and route template.",
    ("method", "route"),
    buckets=DURATION_BUCKETS,
)
# Gauges of live workers only ("livesum"): a worker's share goes when it exits (mark_process_dead); counters stay.
IN_FLIGHT = Gauge(
    "taskapi_http_requests_in_flight", "Requests being handled (sampled every second).", multiprocess_mode="livesum"
)
WORKERS = Gauge("taskapi_workers", "Worker processes running.", multiprocess_mode="livesum")
POOL_CONNECTIONS = Gauge(
    "taskapi_db_pool_connections",
    "Pooled database connections: in_use (held by a request, or being opened) and idle.",
    ("state",),
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge("taskapi_db_pool_max_connections", "Connections the pools may open.", multiprocess_mode="livesum")
POOL_WAITING = Gauge(
    "taskapi_db_pool_waiting_requests", "Requests waiting for a pooled connection.", multiprocess_mode="livesum"
)
BREAKER_OPEN = Gauge(
    "taskapi_db_breaker_open",
    "Workers whose database breaker is open (answering 503 at once until the database is back).",
    multiprocess_mode="livesum",
)
AUTH_FAILURES = Counter("taskapi_auth_failures", "Answers 401 UNAUTHORIZED: no valid bearer token.")
QUOTA_REFUSALS = Counter("taskapi_quota_refusals", "Answers 409 QUOTA_EXCEEDED.")
IDEMPOTENT_REPLAYS = Counter("taskapi_idempotent_replays", "Stored answers replayed for a repeated Idempotency-Key.")
UNAVAILABLE = Counter(
    "taskapi_unavailable", "Answers 503 SERVICE_UNAVAILABLE (database unreachable or too slow, signing keys unknown)."
)
_BY_ERROR_CODE = {"UNAUTHORIZED": AUTH_FAILURES, "QUOTA_EXCEEDED": QUOTA_REFUSALS, "SERVICE_UNAVAILABLE": UNAVAILABLE}
_IN_USE, _IDLE = POOL_CONNECTIONS.labels("in_use"), POOL_CONNECTIONS.labels("idle")


def count_error(code):
    """An API error became an answer (errors.handle_api_error, the one place every one does): count those
    operators watch, whichever module raised them."""
    counter = _BY_ERROR_CODE.get(code)
    if counter is not None:
        counter.inc()


class Middleware:
    """WSGI middleware around the app: counts and times each request, and how many are in flight.

    The route label is the rule Flask matched, so every blueprint's routes, those still to come included, are
    labelled without a list of them. It is read when the answer starts: werkzeug keeps the request in the environ
    until then, and Flask clears it once the request is done.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        # A plain number, which the sampler writes to IN_FLIGHT: each metric write takes a lock and an mmap'd
        # file, and the request's two writes (counter, histogram) are the only ones the hot path pays for. (A
        # sync worker handles one request at a time, so no two threads change it at once.)
        self.in_flight = 0
        # (method, route, status) -> the two labelled children: labels() checks and looks up on every call, a few
        # microseconds the hot path need not pay twice. Bounded, as the labels are.
        self._children = {}

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        answer = [UNMATCHED, "500"]  # route and status, until the answer starts

        def start(status_line, headers, exc_info=None):
            request = environ.get("werkzeug.request")
            rule = request.url_rule if request is not None else None
            answer[:] = rule.rule if rule is not None else UNMATCHED, status_line[:3]
            return start_response(status_line, headers, exc_info)

        self.in_flight += 1
        try:
            return self.wsgi_app(environ, start)
        finally:
            self.in_flight -= 1
            method = environ.get("REQUEST_METHOD")
            key = (method if method in METHODS else OTHER_METHOD, *answer)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (REQUESTS.labels(*key), DURATION.labels(*key[:2]))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


def init_app(app):
    if app.config["METRICS"]:
        app.wsgi_app = app.extensions["taskapi.metrics"] = Middleware(app.wsgi_app)


def sample(app):
    """This worker's requests in flight, pool and breaker, as they are now."""
    IN_FLIGHT.set(app.extensions["taskapi.metrics"].in_flight)
    stats = app.extensions["taskapi.pool"].get_stats()
    _IN_USE.set(stats["pool_size"] - stats["pool_available"])
    _IDLE.set(stats["pool_available"])
    POOL_MAX.set(stats["pool_max"])
    POOL_WAITING.set(stats.get("requests_waiting", 0))
    BREAKER_OPEN.set(1 if app.extensions["taskapi.breaker"].is_open else 0)


def start_sampler(app):
    """Sample every SAMPLE_SECONDS, in a thread of this worker (gunicorn.conf.py starts it after the fork). Not at
    the end of each request: a sync worker runs one at a time, so its pool would always look idle there, and the
    moments that matter (a request waiting for a connection, or stuck on a frozen database) would never show. The
    master cannot ask a busy worker either. The thread costs ~20 us a second; a scrape sees values at most a
    second old, as good as current for gauges a Prometheus reads every 15 s."""
    WORKERS.set(1)

    def run():
        while True:
            sample(app)
            time.sleep(SAMPLE_SECONDS)

    threading.Thread(target=run, daemon=True, name="metrics-sampler").start()


def clean_directory(path):
    """Start from nothing: files a previous run left would add its workers' numbers to this one's."""
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()


def worker_exited(pid, path):
    """A worker's gauges go with it (in flight, pool, breaker); its counters and histograms stay, so that sums over
    the service never go down when a worker is replaced."""
    mark_process_dead(pid, path)


def exposition(path):
    """GET /metrics, in the master: every worker's files in `path` added up, in the text format 0.0.4 that every
    Prometheus reads. A liveness route: (status, content type, body)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    return 200, CONTENT_TYPE_PLAIN_0_0_4, generate_latest(registry)

"""Logging: JSON lines on stderr, one per request (with its request id) and one per error, trace included."""

import contextvars
import logging
import re
import sys
import time
import uuid

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed into a header and the log: only short, plain tokens (UUIDs, ULIDs, hex, ...).
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

access_log = logging.getLogger("taskapi.access")
request_id = contextvars.ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Stamp every record logged while a request is handled with that request's id."""

    def filter(self, record):
        current = request_id.get()
        if current is not None:
            record.request_id = current
        return True


# Shared with gunicorn.conf.py, so gunicorn's own lines are JSON of the same shape.
FORMATTER = {"fmt": "%(levelname)s %(name)s %(message)s", "rename_fields": {"levelname": "level"}, "timestamp": "time"}


def configure(level):
    """The app's loggers (taskapi.*) and psycopg's (the pool's reconnect warnings) write JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(**FORMATTER))
    handler.addFilter(RequestIdFilter())
    for name, logger_level in (("taskapi", level), ("psycopg", "WARNING")):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logger_level)
        logger.propagate = False
    # No line carries the caller's thread or process (FORMATTER names what a line holds): the logging HOWTO's
    # "Optimization" switches spare each record from looking them up.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


class AccessLog:
    """WSGI middleware around the whole app: gives each request its id (the client's X-Request-ID when well formed,
    else a new one), echoes it in the answer, stamps the log lines written meanwhile with it, and writes one access
    line per request, whatever answered it (a route, an error handler, a refusal before any route ran)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if WELL_FORMED_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        status = []

        def start(status_line, headers, exc_info=None):
            status.append(status_line)
            headers.append((REQUEST_ID_HEADER, rid))
            return start_response(status_line, headers, exc_info)

        token = request_id.set(rid)
        try:
            return self.wsgi_app(environ, start)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": environ.get("REQUEST_METHOD"),
                    # The path as Flask's request.path reads it: WSGI's latin-1 string, decoded as UTF-8.
                    "path": environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
                    "status": int(status[-1][:3]) if status else 500,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "remote_addr": environ.get("REMOTE_ADDR"),
                },
            )
            request_id.reset(token)


def init_app(app):
    configure(app.config["LOG_LEVEL"])
    app.wsgi_app = AccessLog(app.wsgi_app)

"""Logging: JSON lines on stderr, one per request (with its request id) and one per error, trace included."""

import logging
import re
import sys
import time
import uuid

from flask import g, has_request_context, request, request_started
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed into a header and the log: only short, plain tokens (UUIDs, ULIDs, hex, ...).
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

access_log = logging.getLogger("taskapi.access")


class RequestIdFilter(logging.Filter):
    """Stamp every record logged while a request is handled with that request's id."""

    def filter(self, record):
        if has_request_context() and "request_id" in g:
            record.request_id = g.request_id
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


def _start(app, **_):
    g.started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if WELL_FORMED_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _finish(response):
    response.headers[REQUEST_ID_HEADER] = g.request_id
    access_log.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.started) * 1000, 3),
            "remote_addr": request.remote_addr,
        },
    )
    return response


def init_app(app):
    configure(app.config["LOG_LEVEL"])
    # request_started fires before URL preprocessing, so requests refused there are timed and logged too.
    request_started.connect(_start, app)
    app.after_request(_finish)

"""Idempotent creation: a POST sent with an Idempotency-Key creates at most once; its retries get the first answer.

The key is claimed, the resource created and the answer stored in one transaction: a crash anywhere before the
commit leaves neither the resource nor the key, and a retry is processed afresh.
"""

import hashlib
import json
import re
import zlib

import psycopg
from flask import current_app, request, url_for

from taskapi import housekeeping, metrics, queries
from taskapi.db import connection
from taskapi.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed

HEADER = "Idempotency-Key"
# 1-255 printable ASCII characters; no space at either end (HTTP would strip it), no quote first (that is the
# quoted form).
KEY = re.compile(r"[\x21\x23-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")
# The IETF draft's Structured Field string form, `"abc"`, means `abc`; a key holding a quote or backslash is sent
# bare, so no escapes need reading.
QUOTED = re.compile(r'"([\x21\x23-\x5b\x5d-\x7e](?:[\x20\x21\x23-\x5b\x5d-\x7e]{0,253}[\x21\x23-\x5b\x5d-\x7e])?)"')
# How long a retry waits for the first request with its key to finish before it is told to come back later.
WAIT_FOR_FIRST_MS = 2000


def request_key():
    """The request's key, unquoted; None when absent. 1-255 printable ASCII characters, else 400."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    quoted = QUOTED.fullmatch(value)
    if not (quoted or KEY.fullmatch(value)):
        raise ValidationFailed(details={HEADER: ["Give 1-255 printable ASCII characters, bare or quoted."]})
    return quoted[1] if quoted else value


def fingerprint(body):
    """What makes two requests the same: method, path and the parsed body (whitespace and key order aside). The path
    is the canonical one, rebuilt from the parsed ids: `/users/me/tasks` and the caller's id in any case are one."""
    path = url_for(request.endpoint, **request.view_args)
    canonical = json.dumps([request.method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


class Unstored(Exception):
    """Raised by a `create` with the answer to give when there is nothing to keep (a batch that committed nothing):
    its transaction rolls back, the claim of the key with it, so a retry is processed afresh."""

    def __init__(self, answer):
        super().__init__("answer not stored")
        self.answer = answer


def create_once(scope, body, create):
    """Run `create(conn)` (which returns the response, or raises an error or Unstored) once per Idempotency-Key in
    `scope`.

    Without a key it simply runs. With one, a live key with the same fingerprint replays the stored answer, with a
    different one is 422, and one still being processed is waited for, then replayed (409 after WAIT_FOR_FIRST_MS).
    A scope keeps its newest IDEMPOTENCY_KEYS_PER_USER_MAX keys; the oldest beyond go.
    """
    try:
        return _create_once(scope, body, create)
    except Unstored as unstored:
        return unstored.answer


def _create_once(scope, body, create):
    key = request_key()
    if key is None:
        with connection() as conn:
            return create(conn)
    digest, ttl_hours = fingerprint(body), current_app.config["IDEMPOTENCY_TTL_HOURS"]
    with connection() as conn:
        housekeeping.sweep(conn, "idempotency_keys", queries.purge_expired_keys, ttl_hours)
        with conn.transaction():
            if not _claim(conn, scope, key, digest, ttl_hours):
                stored = queries.fetch_key(conn, scope, key)
                if stored["fingerprint"] != digest:
                    raise IdempotencyKeyReused()
                return replay(stored)
            queries.trim_keys(conn, scope, current_app.config["IDEMPOTENCY_KEYS_PER_USER_MAX"])
            response = current_app.make_response(create(conn))
            location, etag = response.headers.get("Location"), response.headers.get("ETag")
            stored = zlib.compress(response.get_data())
            queries.store_answer(conn, scope, key, response.status_code, stored, location, etag)
            return response


def _claim(conn, scope, key, digest, ttl_hours):
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{WAIT_FOR_FIRST_MS}ms",))
    try:
        claimed = queries.claim_key(conn, scope, key, digest, ttl_hours)
    except psycopg.errors.LockNotAvailable:  # the transaction rolls back: nothing was created
        raise IdempotencyKeyInUse() from None
    conn.execute("SELECT set_config('lock_timeout', '0', true)")  # only the claim waits this briefly
    return claimed


def replay(stored):
    body = zlib.decompress(stored["body"]) if stored["compressed"] else bytes(stored["body"])
    response = current_app.response_class(body, status=stored["status"], mimetype="application/json")
    for header, value in (("Location", stored["location"]), ("ETag", stored["etag"])):
        if value:
            response.headers[header] = value
    response.headers["Idempotent-Replayed"] = "true"
    metrics.IDEMPOTENT_REPLAYS.inc()
    return response

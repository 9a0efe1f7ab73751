"""Idempotency keys, and the service's shared signing key."""

import uuid

NO_USER_SCOPE = uuid.UUID(int=0)  # the scope of POST /users idempotency keys under AUTH_MODE=none

# The claim inserts the key, or takes over an expired one; a live key conflicts and returns no row. A concurrent
# claim of the same key waits (up to lock_timeout) for the first one's transaction to end.
CLAIM_KEY = """
INSERT INTO idempotency_keys AS k (scope, key, fingerprint) VALUES (%(scope)s, %(key)s, %(fingerprint)s)
ON CONFLICT (scope, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, created_at = now(), status = NULL, body = NULL, location = NULL, etag = NULL
    WHERE k.created_at < now() - make_interval(hours => %(ttl_hours)s)
RETURNING scope
"""

SELECT_KEY = """
SELECT fingerprint, status, body, compressed, location, etag FROM idempotency_keys
WHERE scope = %(scope)s AND key = %(key)s
"""

STORE_ANSWER = """
UPDATE idempotency_keys
SET status = %(status)s, body = %(body)s, compressed = true, location = %(location)s, etag = %(etag)s
WHERE scope = %(scope)s AND key = %(key)s
"""

# A scope keeps its newest `max_keys` keys: older ones go (their retries are processed afresh). The index on
# (scope, created_at DESC) finds the boundary in max_keys steps.
TRIM_KEYS = """
DELETE FROM idempotency_keys WHERE scope = %(scope)s AND created_at <= (
    SELECT created_at FROM idempotency_keys WHERE scope = %(scope)s
    ORDER BY created_at DESC OFFSET %(max_keys)s LIMIT 1)
"""

# Bounded work per purge; SKIP LOCKED never waits on a key being claimed right now.
PURGE_EXPIRED_KEYS = """
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => %(ttl_hours)s)
    ORDER BY created_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
"""

SELECT_SIGNING_KEY = "SELECT value FROM service_secrets WHERE name = 'token_signing_key'"


def claim_key(conn, scope, key, fingerprint, ttl_hours):
    """True when this transaction now owns the key (new, or expired and taken over); False when it is live."""
    params = {"scope": scope, "key": key, "fingerprint": fingerprint, "ttl_hours": ttl_hours}
    return conn.execute(CLAIM_KEY, params).fetchone() is not None


def fetch_key(conn, scope, key):
    return conn.execute(SELECT_KEY, {"scope": scope, "key": key}).fetchone()


def trim_keys(conn, scope, max_keys):
    return conn.execute(TRIM_KEYS, {"scope": scope, "max_keys": max_keys}).rowcount


def store_answer(conn, scope, key, status, body, location, etag):
    """Store the answer; `body` is zlib-compressed (the column says so, for rows stored before it was)."""
    params = {"scope": scope, "key": key, "status": status, "body": body, "location": location, "etag": etag}
    conn.execute(STORE_ANSWER, params)


def purge_expired_keys(conn, ttl_hours, batch):
    """Delete up to `batch` expired keys, oldest first; returns how many went."""
    return conn.execute(PURGE_EXPIRED_KEYS, {"ttl_hours": ttl_hours, "batch": batch}).rowcount


def fetch_signing_key(conn):
    """The key that signs cursors and sync tokens: made by a migration, the same for every worker and host."""
    return bytes(conn.execute(SELECT_SIGNING_KEY).fetchone()["value"])

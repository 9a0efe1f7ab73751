"""The changes blueprint: what changed in a user's tasks since a sync token, deletions included.

The token carries a number of the user's change counter. Every task write takes the next number in its own
statement, under a lock on the user's row that is held until it commits, so the numbers a reader can see always
form an unbroken prefix: following `next_since` can never step over a write that commits late.
"""

import time

from flask import Blueprint, current_app, request

from taskapi import queries, signing
from taskapi.db import connection
from taskapi.errors import SyncTokenExpired, UserNotFound, ValidationFailed
from taskapi.schemas import changes_query_schema, task_json, utc_timestamp

bp = Blueprint("changes", __name__, url_prefix="/users/<user_id>/changes")
KIND = "since"
SECONDS_PER_DAY = 86_400


def encode_since(user_id, seq):
    return signing.sign(KIND, {"u": str(user_id), "n": seq, "t": int(time.time())})


def decode_since(token, user_id):
    """The counter value a token names; 400 for a token not issued for this user's feed, 410 for one older than
    the tombstones (a deletion it should report may be gone)."""
    try:
        payload = signing.verify(KIND, token)
        seq, issued = payload["n"], payload["t"]
        if payload["u"] != str(user_id) or not isinstance(seq, int) or not isinstance(issued, int) or seq < 0:
            raise ValueError("another feed")
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed(details={"since": ["Not a sync token this service issued for this user."]}) from None
    if time.time() - issued > current_app.config["TOMBSTONE_RETENTION_DAYS"] * SECONDS_PER_DAY:
        raise SyncTokenExpired()
    return seq


@bp.get("")
def list_changes(user_id):
    query = changes_query_schema.load(request.args)
    limit = query["limit"]
    since = decode_since(query["since"], user_id) if "since" in query else 0
    with connection() as conn:
        changes = queries.fetch_changes(conn, user_id, since, limit + 1)
    if changes is None:
        raise UserNotFound()
    rows = changes.rows[:limit]
    has_more = len(changes.rows) > limit
    # With more to come, the next call starts after the last change sent; otherwise after everything committed
    # when this answer was read (the counter), so nothing in between is skipped.
    next_seq = rows[-1]["change_seq"] if has_more else max(changes.current_seq, since)
    return {
        "upserted": [task_json(row) for row in rows if not row["deleted"]],
        "deleted": [
            {"id": str(row["id"]), "deleted_at": utc_timestamp(row["deleted_at"])} for row in rows if row["deleted"]
        ],
        "next_since": encode_since(user_id, next_seq),
        "has_more": has_more,
    }


def tombstone_json(row):
    return {"id": str(row["id"]), "deleted_at": utc_timestamp(row["deleted_at"])}

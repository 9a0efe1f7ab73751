"""The changes blueprint: what changed in a user's tasks since a sync token, deletions included.

The token carries a number of the user's change counter. Every task write takes the next number in its own
statement, under a lock on the user's row that is held until it commits, so the numbers a reader can see always
form an unbroken prefix: following `next_since` can never step over a write that commits late.
"""

import time

from flask import Blueprint, current_app, request

from taskapi import apidoc, bounds, queries, signing
from taskapi.db import connection
from taskapi.errors import SyncTokenExpired, UserNotFound, ValidationFailed
from taskapi.fields import utc_timestamp
from taskapi.payload import compact, json_answer
from taskapi.schemas import changes_query_schema, incarnation

bp = Blueprint("changes", __name__, url_prefix="/users/<user_id>/changes")
KIND = "since"
SECONDS_PER_DAY = 86_400


def encode_since(user_id, created_at, seq):
    return signing.sign(KIND, {"u": str(user_id), "c": incarnation(created_at), "n": seq, "t": int(time.time())})


def decode_since(token, user_id):
    """(counter value, incarnation) a token names; 400 for a token not issued for this user's feed, 410 for one
    older than the tombstones (a deletion it should report may be gone)."""
    try:
        payload = signing.verify(KIND, token)
        seq, issued, born = payload["n"], payload["t"], payload["c"]
        if payload["u"] != str(user_id) or not all(isinstance(v, int) for v in (seq, issued, born)) or seq < 0:
            raise ValueError("another feed")
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed(details={"since": ["Not a sync token this service issued for this user."]}) from None
    if time.time() - issued > current_app.config["TOMBSTONE_RETENTION_DAYS"] * SECONDS_PER_DAY:
        raise SyncTokenExpired()
    return seq, born


@bp.get("")
@apidoc.operation(
    "listChanges",
    tag="tasks",
    summary="Sync: what changed since a token",
    description="Tasks and lists created or changed since `since`, in their latest state, and the ids of those"
    " deleted since. Apply each answer, then call again with `next_since` while `has_more` is true: the client then"
    " holds exactly what the list endpoints would return, and no write is ever missed. `limit` caps the four arrays"
    " together.",
    parameters=[{"in": "query", "schema": changes_query_schema}],
    success=apidoc.ok("Changes.", "Changes"),
    errors=("400", "404user", "410"),
)
def list_changes(user_id):
    query = changes_query_schema.load(request.args)
    limit = query["limit"]
    since, born = decode_since(query["since"], user_id) if "since" in query else (0, None)
    with connection() as conn:
        feed = queries.fetch_changes(conn, user_id, since, limit, bounds.ITEMS_BYTES_MAX)
    if feed is None:
        raise UserNotFound()
    # A token from before the account was deleted and registered again, or from before the oldest tombstone kept:
    # deletions it should learn of may be gone. The client starts over.
    if born is not None and (born != incarnation(feed.created_at) or since < feed.floor):
        raise SyncTokenExpired()
    items = [change.json or tombstone_json(change) for change in feed.changes[:limit]]
    changes = feed.changes[: bounds.fitting(items)]
    has_more = feed.fetched > len(changes)
    # With more to come, the next call starts after the last change sent; otherwise after everything committed
    # when this answer was read (the counter), so nothing in between is skipped.
    next_seq = changes[-1].change_seq if has_more else max(feed.current_seq, since)
    arrays = {name: [] for name in ARRAYS.values()}
    for change, item in zip(changes, items, strict=False):
        arrays[ARRAYS[change.kind]].append(item)
    body = ",".join(f'"{name}":[{",".join(array)}]' for name, array in arrays.items())
    tail = {"next_since": encode_since(user_id, feed.created_at, next_seq), "has_more": has_more}
    return json_answer(f"{{{body},{compact(tail)[1:]}")


# Which array of the answer each kind of change goes to, in the answer's order.
ARRAYS = {
    queries.TASK: "upserted",
    queries.DELETED_TASK: "deleted",
    queries.LIST: "lists_upserted",
    queries.DELETED_LIST: "lists_deleted",
}


def tombstone_json(change):
    return compact({"id": str(change.id), "deleted_at": utc_timestamp(change.deleted_at)})

"""List cursors: where the next page starts (the last task's sort key and id), for which list (user and its
incarnation, sort, filters), signed so that a cursor the service did not issue is refused."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from taskapi import signing
from taskapi.errors import ValidationFailed
from taskapi.queries import SORTS

KIND = "cursor"


@dataclass
class Position:
    sort: str
    filters: dict  # the list's filters, canonical (as the query schema loads them, dates as text)
    after: tuple  # (sort key, id) of the previous page's last task
    incarnation: int  # of the user the list belongs to: compare with the user's own


def encode(user_id, born, sort, filters, key):
    """The cursor after the task whose (sort key, id) is `key`."""
    value, task_id = key
    value = value.isoformat() if isinstance(value, datetime) else value
    return signing.sign(KIND, {"u": str(user_id), "c": born, "s": sort, "f": filters, "k": [value, str(task_id)]})


def decode(cursor, user_id):
    """The position a cursor names, or 400 for any cursor not issued by this service for this user's list."""
    try:
        payload = signing.verify(KIND, cursor)
        sort, filters, born = payload["s"], payload["f"], payload["c"]
        if payload["u"] != str(user_id) or sort not in SORTS or not isinstance(filters, dict):
            raise ValueError("another list")
        if not isinstance(born, int):
            raise ValueError("bad incarnation")
        value, task_id = payload["k"]
        kind = SORTS[sort][2]
        value = datetime.fromisoformat(value) if kind == "timestamp" else value
        if not isinstance(value, {"timestamp": datetime, "text": str, "integer": int}[kind]):
            raise ValueError("bad value")
        return Position(sort=sort, filters=filters, after=(value, uuid.UUID(task_id)), incarnation=born)
    except (ValueError, KeyError, TypeError):
        raise invalid() from None


def invalid():
    return ValidationFailed(details={"cursor": ["Not a cursor this service issued for this list."]})

"""List cursors: where the next page starts (the last task's sort value and id), for which list (user and its
incarnation, sort, filter), signed so that a cursor the service did not issue is refused."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from taskapi import signing
from taskapi.errors import ValidationFailed
from taskapi.queries import SORTS

KIND = "cursor"
TIMESTAMPS = {"created_at", "updated_at"}


@dataclass
class Position:
    sort: str
    is_completed: bool | None
    after: tuple  # (sort value, id) of the previous page's last task
    incarnation: int  # of the user the list belongs to: compare with the user's own


def encode(user_id, born, sort, is_completed, last):
    """The cursor after `last`, a task's JSON text: its sort column's value (timestamps as the API writes them) and
    its id."""
    task = json.loads(last)
    key = [task[SORTS[sort][0]], task["id"]]
    return signing.sign(KIND, {"u": str(user_id), "c": born, "s": sort, "f": is_completed, "k": key})


def decode(cursor, user_id):
    """The position a cursor names, or 400 for any cursor not issued by this service for this user's list."""
    try:
        payload = signing.verify(KIND, cursor)
        if payload["u"] != str(user_id) or payload["s"] not in SORTS or payload["f"] not in (None, True, False):
            raise ValueError("another list")
        if not isinstance(payload["c"], int):
            raise ValueError("bad incarnation")
        value, task_id = payload["k"]
        column = SORTS[payload["s"]][0]
        value = datetime.fromisoformat(value) if column in TIMESTAMPS else value
        if not isinstance(value, str | datetime):
            raise ValueError("bad value")
        after = (value, uuid.UUID(task_id))
        return Position(sort=payload["s"], is_completed=payload["f"], after=after, incarnation=payload["c"])
    except (ValueError, KeyError, TypeError):
        raise invalid() from None


def invalid():
    return ValidationFailed(details={"cursor": ["Not a cursor this service issued for this list."]})

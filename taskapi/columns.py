"""How a task's fields, as the API takes them, become the columns a write stores (what the filters, sorts and search
read included). Pure: the writer passes the user's zone in."""

from marshmallow import ValidationError

from taskapi import due, search
from taskapi.fields import instant
from taskapi.schemas import PRIORITIES

# Each field the API writes, with the columns it decides: a write changes the columns of the fields it is given.
GROUPS = {
    "title": ("title", "search_title", "title_keys"),
    "description": ("description", "search_description", "description_keys"),
    "is_completed": ("is_completed",),
    "due": ("due_date", "due_time", "due_zone", "due_at", "due_sort"),
    "priority": ("priority",),
    "labels": ("labels", "label_keys", "label_hashes"),
}


def needs_zone(fields):
    """Whether writing these fields needs the user's zone: an all-day due ends with the user's day, and a timed due
    given no zone takes the user's."""
    stated = fields.get("due")
    return stated is not None and stated["time_zone"] is None


def task_columns(user_id, fields, user_zone=None):
    """The stored columns of the given fields, and `set_<field>` for each field of GROUPS, true when given."""
    columns = {f"set_{field}": field in fields for field in GROUPS}
    columns |= {column: None for group in GROUPS.values() for column in group}
    if "title" in fields:
        folded = search.fold(fields["title"])
        columns |= {"title": fields["title"], "search_title": folded, "title_keys": search.text_keys(user_id, folded)}
    if "description" in fields:
        folded = search.fold(fields["description"] or "")
        columns |= {
            "description": fields["description"],
            "search_description": folded,
            "description_keys": search.text_keys(user_id, folded),
        }
    if "is_completed" in fields:
        columns["is_completed"] = fields["is_completed"]
    if fields.get("due") is not None:
        columns |= due_columns(fields["due"], user_zone)
    if "priority" in fields:
        columns["priority"] = PRIORITIES.index(fields["priority"])
    if "labels" in fields:
        keys = [search.fold(label) for label in fields["labels"]]
        columns |= {"labels": fields["labels"], "label_keys": keys, "label_hashes": search.label_hashes(user_id, keys)}
    return columns


def due_columns(stated, user_zone):
    """A due as stored: what the client said (date; time and zone for a timed one), the instant a timed due names,
    and the instant sort=due and overdue go by (an all-day due's is the end of its date in the user's zone)."""
    if stated["time"] is None:
        return {"due_date": stated["date"], "due_sort": due.day_end(stated["date"], user_zone)}
    zone_name = stated["time_zone"] or user_zone
    try:
        at = instant(stated, zone_name)
    except ValidationError as exc:  # the user's zone skips the wall time
        raise ValidationError({"due": exc.messages}) from None
    return {"due_date": stated["date"], "due_time": stated["time"], "due_zone": zone_name, "due_at": at, "due_sort": at}

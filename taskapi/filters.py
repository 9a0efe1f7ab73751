"""The filters of a task list: their canonical form (what a cursor carries and compares), and the conditions and
parameters of queries.FILTERS they come to for one user at one moment."""

from datetime import date
from uuid import UUID

from taskapi import due, search
from taskapi.queries.order import NIL

NAMES = ("list_id", "parent_id", "is_completed", "priority", "label", "due_from", "due_to", "has_due", "overdue", "q")


def canonical(query):
    """The filters a loaded list query gives, as JSON values (lists sorted, terms and labels folded)."""
    given = {name: query[name] for name in NAMES if name in query}
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in given.items()}


def needs_zone(filters):
    """Whether these filters depend on the user's zone: a timed due's date is its date there."""
    return "due_from" in filters or "due_to" in filters


def conditions(user_id, filters, zone_name, now):
    """queries.FILTERS names -> their parameters, for canonical `filters` of this user, in their zone, at `now`."""
    out = {}
    for name, key in (("list_id", "list_key"), ("parent_id", "parent_key")):
        if name in filters:
            out[name] = {key: NIL if filters[name] == "none" else UUID(filters[name])}
    if "is_completed" in filters:
        out["is_completed"] = {"is_completed": filters["is_completed"]}
    if "priority" in filters:
        out["priority"] = {"priority": filters["priority"]}
    if "label" in filters:
        keys = filters["label"]
        out["label"] = {"label": keys, "label_hashes": search.label_hashes(user_id, keys)}
    if needs_zone(filters):
        # An open end is open: a timed due's date in the user's zone may lie a day past the due dates' own range.
        first = date.fromisoformat(filters["due_from"]) if "due_from" in filters else date.min
        last = date.fromisoformat(filters["due_to"]) if "due_to" in filters else date.max
        start, end = due.day_range(first, last, zone_name)
        out["due"] = {"due_from": first, "due_to": last, "due_start": start, "due_end": end}
    if "has_due" in filters:
        out["has_due" if filters["has_due"] else "has_no_due"] = {}
    if "overdue" in filters:
        out["overdue" if filters["overdue"] else "not_overdue"] = {"now": now}
    if "q" in filters:
        terms = filters["q"]
        keys, patterns = search.term_keys(user_id, terms), search.like_patterns(terms)
        if keys:
            out["q"] = {"term_keys": keys, "patterns": patterns}
        else:  # every term too short for a key: the text alone decides, among the user's tasks in the page's order
            out["q_unkeyed"] = {"patterns": patterns}
    return out

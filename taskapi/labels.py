"""The labels blueprint: every label on a user's tasks, once, with how many tasks carry it."""

from flask import Blueprint

from taskapi import apidoc, bounds, queries
from taskapi.db import connection
from taskapi.errors import UserNotFound

bp = Blueprint("labels", __name__, url_prefix="/users/<user_id>/labels")


@bp.get("")
@apidoc.operation(
    "listLabels",
    tag="tasks",
    summary="List the labels on a user's tasks",
    description="Every label once (case is ignored: `Errands` and `errands` are one), spelled as on the most recently"
    " changed task carrying it, with how many tasks carry it, sorted by name ignoring case. At most 4,000; past"
    " that, `truncated` is true.",
    success=apidoc.ok("The labels.", "Labels"),
    errors=("404user",),
)
def list_labels(user_id):
    with connection() as conn:
        found = queries.fetch_labels(conn, user_id, bounds.LABELS_SHOWN_MAX)
    if found is None:
        raise UserNotFound()
    labels, truncated = found
    return {"items": [{"name": name, "count": count} for name, count in labels], "truncated": truncated}

"""The lists blueprint: a user's named lists of tasks, in manual order, always reached through that user's path."""

from flask import Blueprint, current_app, url_for

from taskapi import apidoc, idempotency, queries
from taskapi.db import connection
from taskapi.errors import ListNotFound, PreconditionFailed, QuotaExceeded, UserNotFound, ValidationFailed
from taskapi.payload import json_answer, json_object
from taskapi.preconditions import etag, if_match_versions, if_none_match
from taskapi.schemas import list_move_schema, list_schema

bp = Blueprint("lists", __name__, url_prefix="/users/<user_id>/lists")
LIST_CHANGED = "The list has changed: If-Match names none of its versions."


def not_found(conn, user_id):
    """A list of another user is simply not among this user's lists: the answer of one that never existed."""
    return ListNotFound() if queries.user_exists(conn, user_id) else UserNotFound()


def refused(conn, user_id, list_id):
    """Why a conditional write touched nothing: another version (412, with the current ETag), or no list (404)."""
    version = queries.fetch_list_version(conn, user_id, list_id)
    if version is None:
        return not_found(conn, user_id)
    return PreconditionFailed(LIST_CHANGED, headers={"ETag": etag(version)})


def one_list(row, status=200, **headers):
    return json_answer(row["list"], status, {"ETag": etag(row["version"]), **headers})


LIST_LINKS = ("getList", "renameList", "moveList", "deleteList")


@bp.post("")
@apidoc.operation(
    "createList",
    tag="lists",
    summary="Create a list",
    description="The new list goes last. Answers the list with its `ETag`. An `Idempotency-Key` makes a retry safe,"
    " as for tasks. A user holds at most LISTS_PER_USER_MAX lists (1,000 unless configured): 409 beyond.",
    parameters=[apidoc.IDEMPOTENCY_KEY],
    body="List",
    example={"name": "Work"},
    success=apidoc.ok(
        "Created.",
        "List",
        {**apidoc.LOCATION, **apidoc.ETAG, **apidoc.REPLAYED},
        status="201",
        links=apidoc.links({"user_id": "$request.path.user_id", "list_id": "$response.body#/id"}, *LIST_LINKS),
    ),
    errors=("400", "404user", "409key", "413", "415", "422"),
)
def create_list(user_id):
    body = json_object()
    name = list_schema.load(body)["name"]
    quota = current_app.config["LISTS_PER_USER_MAX"]

    def create(conn):
        if not queries.user_exists(conn, user_id):
            raise UserNotFound()
        row = queries.insert_list(conn, user_id, name, quota)
        if row is None:
            raise QuotaExceeded("The user holds as many lists as allowed.", details={"limit": quota})
        return one_list(row, 201, Location=url_for(".get_list", user_id=user_id, list_id=row["id"]))

    return idempotency.create_once(user_id, body, create)


@bp.get("")
@apidoc.operation(
    "listLists",
    tag="lists",
    summary="List a user's lists",
    description="All of them (at most 1,000), in manual order.",
    success=apidoc.ok("The lists.", "Lists"),
    errors=("404user",),
)
def list_lists(user_id):
    with connection() as conn:
        items = queries.fetch_lists(conn, user_id)
    if items is None:
        raise UserNotFound()
    return json_answer('{"items":[' + items + "]}")


@bp.get("/<list_id>")
@apidoc.operation(
    "getList",
    tag="lists",
    summary="Read a list",
    description="With `If-None-Match` naming the current `ETag`, 304 and no body.",
    parameters=[apidoc.IF_NONE_MATCH],
    success={**apidoc.ok("The list.", "List", apidoc.ETAG), **apidoc.NOT_MODIFIED},
    errors=("400", "404list"),
)
def get_list(user_id, list_id):
    not_modified = if_none_match()
    with connection() as conn:
        row = queries.fetch_list(conn, user_id, list_id)
        if row is None:
            raise not_found(conn, user_id)
    if not_modified(row["version"]):
        return "", 304, {"ETag": etag(row["version"])}
    return one_list(row)


@bp.patch("/<list_id>")
@apidoc.operation(
    "renameList",
    tag="lists",
    summary="Rename a list",
    description="`name`, the one writable field. With `If-Match`, only if the list is still at that version.",
    parameters=[apidoc.IF_MATCH],
    body="List",
    example={"name": "Home"},
    success=apidoc.ok("Renamed.", "List", apidoc.ETAG),
    errors=("400", "404list", "412", "413", "415"),
)
def rename_list(user_id, list_id):
    name = list_schema.load(json_object())["name"]
    versions = if_match_versions()
    with connection() as conn:
        row = queries.rename_list(conn, user_id, list_id, name, versions)
        if row is None:
            raise refused(conn, user_id, list_id)
    return one_list(row)


@bp.post("/<list_id>/move")
@apidoc.operation(
    "moveList",
    tag="lists",
    summary="Move a list in the user's order",
    description="After the list `after_id` (null: first; absent: last). With `If-Match`, only if the list is still at"
    " that version.",
    parameters=[apidoc.IF_MATCH],
    body="ListMove",
    example={"after_id": None},
    success=apidoc.ok("Moved.", "List", apidoc.ETAG),
    errors=("400", "404list", "412", "413", "415"),
)
def move_list(user_id, list_id):
    after = list_move_schema.load(json_object()).get("after_id", queries.LAST)
    versions = if_match_versions()
    with connection() as conn:
        try:
            row = queries.move_list(conn, user_id, list_id, after, versions)
        except LookupError:
            raise ValidationFailed(details={"after_id": ["Names no other list of yours."]}) from None
        if row is None:
            raise refused(conn, user_id, list_id)
    return one_list(row)


@bp.delete("/<list_id>")
@apidoc.operation(
    "deleteList",
    tag="lists",
    summary="Delete a list and its tasks",
    description="Every task in the list goes with it, each leaving a tombstone in the change feed, in one"
    " transaction. With `If-Match`, only if the list is still at that version.",
    parameters=[apidoc.IF_MATCH],
    success=apidoc.NO_CONTENT,
    errors=("400", "404list", "412"),
)
def delete_list(user_id, list_id):
    versions = if_match_versions()
    with connection() as conn:
        max_tombstones = current_app.config["TOMBSTONES_PER_USER_MAX"]
        if not queries.delete_list(conn, user_id, list_id, versions, max_tombstones):
            raise refused(conn, user_id, list_id)
    return "", 204

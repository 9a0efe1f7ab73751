"""The users blueprint: register, read, change (the time zone) and delete a user."""

from flask import Blueprint, url_for

from taskapi import apidoc, auth, due, idempotency, queries
from taskapi.db import connection
from taskapi.errors import Conflict, UserNotFound
from taskapi.payload import json_object
from taskapi.schemas import user_patch_schema, user_schema

bp = Blueprint("users", __name__)


@bp.post("/users")
@apidoc.operation(
    "createUser",
    tag="users",
    summary="Register a user",
    description='Send `{}` and the server picks the id, or `{"id": "<uuid>"}` to register an id your identity provider'
    " issued. Under bearer authentication this registers the caller, and only the caller.",
    parameters=[apidoc.IDEMPOTENCY_KEY],
    body="User",
    example={},
    success=apidoc.ok(
        "Created.",
        "User",
        {**apidoc.LOCATION, **apidoc.REPLAYED},
        status="201",
        links=apidoc.links({"user_id": "$response.body#/id"}, "getUser", "deleteUser", "createTask", "listTasks"),
    ),
    errors=("400", "409", "413", "415", "422"),
)
def create_user():
    body = json_object()
    fields = user_schema.load(body)
    user_id = auth.registrant(fields.get("id"))

    def create(conn):
        user = queries.insert_user(conn, user_id, fields["time_zone"])
        if user is None:
            raise Conflict("A user with this id already exists.")
        return user_schema.dump(user), 201, {"Location": url_for(".get_user", user_id=user["id"])}

    # Keys are the caller's under jwt; under none there is no user yet, and keys stand alone.
    return idempotency.create_once(auth.caller_scope(), body, create)


@bp.get("/users/<user_id>")
@apidoc.operation(
    "getUser",
    tag="users",
    summary="Read a user",
    description="`me` stands for the caller under bearer authentication.",
    success=apidoc.ok("The user.", "User"),
    errors=("404user",),
)
def get_user(user_id):
    with connection() as conn:
        user = queries.fetch_user(conn, user_id)
    if user is None:
        raise UserNotFound()
    return user_schema.dump(user)


@bp.patch("/users/<user_id>")
@apidoc.operation(
    "patchUser",
    tag="users",
    summary="Change a user's time zone",
    description="`time_zone` (an IANA name) decides what today and an all-day due mean for the user: the user's"
    " all-day dues then end, sort and turn overdue by the new zone's days. Timed dues keep their own zone.",
    body="UserPatch",
    example={"time_zone": "Europe/Berlin"},
    success=apidoc.ok("Changed.", "User"),
    errors=("400", "404user", "413", "415"),
)
def patch_user(user_id):
    fields = user_patch_schema.load(json_object())
    with connection() as conn:
        user = queries.set_zone(conn, user_id, fields["time_zone"], due.day_end)
    if user is None:
        raise UserNotFound()
    return user_schema.dump(user)


@bp.delete("/users/<user_id>")
@apidoc.operation(
    "deleteUser",
    tag="users",
    summary="Delete a user",
    description="The user's tasks, deletion records and idempotency keys go too.",
    success=apidoc.NO_CONTENT,
    errors=("404user",),
)
def delete_user(user_id):
    with connection() as conn:
        deleted = queries.delete_user(conn, user_id)
    if not deleted:
        raise UserNotFound()
    return "", 204

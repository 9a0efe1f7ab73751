"""The users blueprint: register, read and delete a user."""

from flask import Blueprint, url_for

from taskapi import auth, idempotency, queries
from taskapi.db import connection
from taskapi.errors import Conflict, UserNotFound
from taskapi.payload import json_object
from taskapi.schemas import user_schema

bp = Blueprint("users", __name__)


@bp.post("/users")
def create_user():
    body = json_object()
    user_id = auth.registrant(user_schema.load(body).get("id"))

    def create(conn):
        user = queries.insert_user(conn, user_id)
        if user is None:
            raise Conflict("A user with this id already exists.")
        return user_schema.dump(user), 201, {"Location": url_for(".get_user", user_id=user["id"])}

    # Keys are the caller's under jwt; under none there is no user yet, and keys stand alone.
    return idempotency.create_once(auth.caller_scope(), body, create)


@bp.get("/users/<user_id>")
def get_user(user_id):
    with connection() as conn:
        user = queries.fetch_user(conn, user_id)
    if user is None:
        raise UserNotFound()
    return user_schema.dump(user)


@bp.delete("/users/<user_id>")
def delete_user(user_id):
    with connection() as conn:
        deleted = queries.delete_user(conn, user_id)
    if not deleted:
        raise UserNotFound()
    return "", 204

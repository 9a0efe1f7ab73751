"""The users blueprint: register, read and delete a user."""

from flask import Blueprint, url_for

from taskapi import auth, queries
from taskapi.db import connection
from taskapi.errors import Conflict, UserNotFound
from taskapi.payload import json_object
from taskapi.schemas import user_schema

bp = Blueprint("users", __name__)


@bp.post("/users")
def create_user():
    fields = user_schema.load(json_object())
    user_id = auth.registrant(fields.get("id"))
    with connection() as conn:
        user = queries.insert_user(conn, user_id)
    if user is None:
        raise Conflict("A user with this id already exists.")
    return user_schema.dump(user), 201, {"Location": url_for(".get_user", user_id=user["id"])}


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

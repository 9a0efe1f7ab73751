"""The tasks blueprint: one user's tasks, always reached through that user's path."""

from flask import Blueprint, request, url_for

from taskapi import idempotency, queries
from taskapi.db import connection
from taskapi.errors import PreconditionFailed, TaskNotFound, UserNotFound, ValidationFailed
from taskapi.payload import json_object
from taskapi.preconditions import etag, if_match_versions, if_none_match
from taskapi.schemas import task_json, task_list_query_schema, task_schema

bp = Blueprint("tasks", __name__, url_prefix="/users/<user_id>/tasks")


def not_found(conn, user_id):
    """The error for a task that is not there: the user's absence, else the task's. A task of another
    user is simply not among this user's tasks, so it gets exactly the answer of one that never existed."""
    return TaskNotFound() if queries.user_exists(conn, user_id) else UserNotFound()


def refused(conn, user_id, task_id):
    """Why a conditional write touched nothing: the task is there under another version (412, with the current
    ETag), or it is not there at all (404, whatever If-Match said)."""
    version = queries.fetch_task_version(conn, user_id, task_id)
    if version is None:
        return not_found(conn, user_id)
    return PreconditionFailed(headers={"ETag": etag(version)})


def one_task(task, status=200, **headers):
    """An answer carrying one task: its JSON and its ETag."""
    return task_json(task), status, {"ETag": etag(task["version"]), **headers}


@bp.post("")
def create_task(user_id):
    body = json_object()
    fields = task_schema.load(body)

    def create(conn):
        task = queries.insert_task(conn, user_id, **fields)
        if task is None:
            raise UserNotFound()
        return one_task(task, 201, Location=url_for(".get_task", user_id=user_id, task_id=task["id"]))

    return idempotency.create_once(user_id, body, create)


@bp.get("")
def list_tasks(user_id):
    query = task_list_query_schema.load(request.args)
    with connection() as conn:
        page = queries.list_tasks(conn, user_id, **query)
    if page is None:
        raise UserNotFound()
    return {
        "items": [task_json(task) for task in page.items],
        "total": page.total,
        "limit": query["limit"],
        "offset": query["offset"],
    }


@bp.get("/<task_id>")
def get_task(user_id, task_id):
    not_modified = if_none_match()
    with connection() as conn:
        task = queries.fetch_task(conn, user_id, task_id)
        if task is None:
            raise not_found(conn, user_id)
    if not_modified(task["version"]):
        return "", 304, {"ETag": etag(task["version"])}
    return one_task(task)


@bp.put("/<task_id>")
def replace_task(user_id, task_id):
    return _update(user_id, task_id, task_schema.load(json_object()))


@bp.patch("/<task_id>")
def patch_task(user_id, task_id):
    fields = task_schema.load(json_object(), partial=True)
    if not fields:
        raise ValidationFailed(details={"_schema": ["Give at least one of title, description, is_completed."]})
    return _update(user_id, task_id, fields)


def _update(user_id, task_id, fields):
    versions = if_match_versions()
    with connection() as conn:
        task = queries.update_task(conn, user_id, task_id, fields, versions)
        if task is None:
            raise refused(conn, user_id, task_id)
    return one_task(task)


@bp.delete("/<task_id>")
def delete_task(user_id, task_id):
    versions = if_match_versions()
    with connection() as conn:
        if not queries.delete_task(conn, user_id, task_id, versions):
            raise refused(conn, user_id, task_id)
    return "", 204

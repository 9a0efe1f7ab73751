"""The OpenAPI 3.0.3 document, built by apispec from what each route records (taskapi.apidoc) and the schemas.

python -m taskapi.openapi > openapi.json      # export it; the running service serves it at /openapi.json
"""

import json
import re
import sys

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields, validate

from taskapi import API_BLUEPRINTS, due
from taskapi.apidoc import ERRORS
from taskapi.batch_requests import BatchSchema
from taskapi.errors import HTTP_CODES, ApiError
from taskapi.schemas import MOVED_ONLY, ListMoveSchema, ListSchema, MoveSchema, TaskSchema, UserPatchSchema, UserSchema

ERROR_CODES = sorted(
    {code for code, _ in HTTP_CODES.values()}
    | {"URI_TOO_LONG", "REQUEST_HEADER_FIELDS_TOO_LARGE"}  # gunicorn's and nginx's own
    | {"TOO_MANY_REQUESTS", "REQUEST_TIMEOUT", "NOT_IMPLEMENTED", "HTTP_VERSION_NOT_SUPPORTED"}  # nginx's own
    | {ApiError.code}
    | {cls.code for cls in ApiError.__subclasses__()}
)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, validate=validate.OneOf(ERROR_CODES))
    message = fields.String(required=True)
    details = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        metadata={"description": "Each offending field (or `_schema`) mapped to its messages; `{}` when none."},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class TaskPageSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema), required=True)
    total = fields.Integer(
        required=True, allow_none=True, validate=validate.Range(min=0), metadata={"description": "null with count=none"}
    )
    limit = fields.Integer(required=True, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(
        required=True, allow_none=True, validate=validate.Range(min=0), metadata={"description": "null with a cursor"}
    )
    next_cursor = fields.String(
        required=True, allow_none=True, metadata={"description": "The next page's `cursor`; null on the last page."}
    )


class DeletedTaskSchema(Schema):
    id = fields.UUID(required=True)
    deleted_at = fields.DateTime(required=True)


class ChangesSchema(Schema):
    upserted = fields.List(fields.Nested(TaskSchema), required=True, metadata={"description": "Latest states."})
    deleted = fields.List(fields.Nested(DeletedTaskSchema), required=True)
    lists_upserted = fields.List(fields.Nested(ListSchema), required=True, metadata={"description": "Latest states."})
    lists_deleted = fields.List(fields.Nested(DeletedTaskSchema), required=True)
    next_since = fields.String(required=True, metadata={"description": "Pass as `since` next time."})
    has_more = fields.Boolean(required=True, metadata={"description": "true: call again with next_since now."})


class ListsSchema(Schema):
    items = fields.List(fields.Nested(ListSchema), required=True)


class LabelSchema(Schema):
    name = fields.String(required=True, metadata={"description": "As spelled on the most recently changed task."})
    count = fields.Integer(required=True, validate=validate.Range(min=1))


class LabelsSchema(Schema):
    items = fields.List(fields.Nested(LabelSchema), required=True)
    truncated = fields.Boolean(required=True, metadata={"description": "true: more labels than the 4,000 listed."})


class SubResponseSchema(Schema):
    id = fields.String(required=True, metadata={"description": "The request's id."})
    status = fields.Integer(
        required=True,
        metadata={"description": "Its status, as alone; 424 (FAILED_DEPENDENCY) when a request it refers to failed."},
    )
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "ETag and Location, where the request alone would have them."},
    )
    body = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "What the request alone would answer (the error envelope for an error); null for"
            " 204 and 304."
        },
    )


class BatchAnswerSchema(Schema):
    committed = fields.Boolean(
        required=True,
        metadata={"description": "false: nothing was applied (atomic: a request failed; not atomic: every one did)."},
    )
    responses = fields.List(
        fields.Nested(SubResponseSchema),
        required=True,
        metadata={"description": "In request order; of a failed atomic batch, only the failing request's."},
    )


class StatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


def _id_param(name, what):
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id: a UUID, 36 characters with hyphens, any case.",
        "schema": {"type": "string", "format": "uuid"},
    }


# Each path variable's parameter, named on the path item of every path that has the variable.
PATH_IDS = {
    "user_id": _id_param("user_id", "user"),
    "task_id": _id_param("task_id", "task"),
    "list_id": _id_param("list_id", "list"),
}

TAGS = [
    {"name": "users", "description": "Register, read and delete users."},
    {"name": "tasks", "description": "A user's tasks: create, read, change, move, delete, list and sync."},
    {"name": "lists", "description": "A user's lists of tasks, in manual order."},
    {"name": "health", "description": "Liveness and readiness probes."},
]
PUBLIC_PATHS = {"/healthz", "/readyz"}
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
AUTH_DESCRIPTION = (
    " Every operation but /healthz and /readyz needs `Authorization: Bearer <JWT>`; `me` in a path stands for the"
    " token's user, and a path naming anyone else is 403."
)


def _with_auth(path, operation):
    """An operation as AUTH_MODE=jwt serves it: bearer security, and its 401 / 403 answers."""
    if path in PUBLIC_PATHS:
        return {**operation, "security": []}
    responses = {**operation["responses"], "401": ERRORS["401"], "403": ERRORS["403"]}
    return {**operation, "responses": dict(sorted(responses.items()))}


def _paths():
    """Each route's path (`{user_id}` for `<user_id>`) and its operations by method, as the route's decorator
    recorded them: the blueprints on a bare app, so no configuration or database is needed."""
    app = Flask(__name__, static_folder=None)
    for blueprint in API_BLUEPRINTS:
        app.register_blueprint(blueprint)
    paths = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(\w+)>", r"{\1}", rule.rule)
        methods = rule.methods - {"HEAD", "OPTIONS"}  # Flask answers these by itself
        paths.setdefault(path, {}).update({m.lower(): app.view_functions[rule.endpoint].apidoc for m in methods})
    return paths


def _zone_names(zones):
    """Enum member names for generated clients (`x-enum-varnames`): `Etc/GMT-0` and `GMT0` would otherwise both
    become GMT0 in a generator that drops punctuation."""
    names = [zone.upper().replace("/", "_").replace("-", "_MINUS_").replace("+", "_PLUS_") for zone in zones]
    assert len(set(names)) == len(names), "two zones would get one enum name"
    return names


TIME_ZONE = {
    "type": "string",
    "enum": sorted(due.KNOWN_ZONES),
    "x-enum-varnames": _zone_names(sorted(due.KNOWN_ZONES)),
    "description": "An IANA time-zone name the server's zone database (tzdata) knows.",
    "example": "Europe/Berlin",
}
ZONE_REF = {"$ref": "#/components/schemas/TimeZone"}


def _kept(schema, *keys):
    return {key: schema[key] for key in keys if key in schema}


def build(auth_mode="jwt"):
    """The document as a dict, as the service serves it under `auth_mode`."""
    jwt = auth_mode == "jwt"
    description = "Each user keeps a list of tasks. Every error has the envelope of the Error schema."
    spec = APISpec(
        title="taskapi",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": description + (AUTH_DESCRIPTION if jwt else "")},
        tags=TAGS,
        **({"security": [{"bearerAuth": []}]} if jwt else {}),
    )
    if jwt:
        spec.components.security_scheme("bearerAuth", BEARER)
    spec.components.schema("User", schema=UserSchema)
    spec.components.schema("UserPatch", schema=UserPatchSchema)
    spec.components.schema("Task", schema=TaskSchema)
    # PUT and PATCH leave where a task is to POST .../move.
    spec.components.schema("TaskReplace", schema=TaskSchema(exclude=MOVED_ONLY))
    spec.components.schema(
        "TaskPatch", schema=TaskSchema(partial=True, exclude=MOVED_ONLY), component={"minProperties": 1}
    )
    spec.components.schema("Move", schema=MoveSchema)
    spec.components.schema("List", schema=ListSchema)
    spec.components.schema("Lists", schema=ListsSchema)
    spec.components.schema("ListMove", schema=ListMoveSchema)
    spec.components.schema("TaskPage", schema=TaskPageSchema)
    spec.components.schema("Changes", schema=ChangesSchema)
    spec.components.schema("Labels", schema=LabelsSchema)
    spec.components.schema("Batch", schema=BatchSchema)
    spec.components.schema("BatchAnswer", schema=BatchAnswerSchema)
    spec.components.schema("Status", schema=StatusSchema)
    spec.components.schema("Error", schema=ErrorSchema)
    for path, operations in _paths().items():
        if jwt:
            operations = {method: _with_auth(path, op) for method, op in operations.items()}
        ids = [PATH_IDS[name] for name in re.findall(r"{(\w+)}", path)]
        spec.path(path=path, operations=operations, parameters=ids)
    spec.components.schema("TimeZone", TIME_ZONE)
    document = spec.to_dict()
    # Every time zone the server knows, listed once (597 names) and referred to where a zone is given.
    schemas = document["components"]["schemas"]
    for name in ("User", "UserPatch"):
        zone = schemas[name]["properties"]["time_zone"]
        schemas[name]["properties"]["time_zone"] = {"allOf": [ZONE_REF], **_kept(zone, "default", "description")}
    for name in ("Task", "TaskReplace", "TaskPatch"):
        timed = next(shape for shape in schemas[name]["properties"]["due"]["oneOf"] if shape["title"] == "TimedDue")
        timed["properties"]["time_zone"] = {"allOf": [ZONE_REF], "nullable": True}
    # PATCH leaves an absent field as it is: a `default` here would tell a generated client to send one, and so
    # overwrite data.
    for field in document["components"]["schemas"]["TaskPatch"]["properties"].values():
        field.pop("default", None)
    # Likewise a generated client sends a declared default for `offset` with every call, and offset with a cursor is
    # 400: the default is said in words instead.
    for parameter in document["paths"]["/users/{user_id}/tasks"]["get"]["parameters"]:
        if parameter["name"] == "offset":
            parameter["schema"].pop("default")
            parameter["description"] = "Tasks to skip (default 0). Not with `cursor`."
    return document


if __name__ == "__main__":
    # The document of the production default (AUTH_MODE=jwt); `none` as argument gives the unauthenticated one.
    json.dump(build(sys.argv[1] if len(sys.argv) > 1 else "jwt"), sys.stdout, indent=2)
    sys.stdout.write("\n")

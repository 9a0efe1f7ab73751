"""What a route says of itself in the OpenAPI document: the `operation` decorator and the pieces routes share."""

from taskapi.idempotency import KEY, QUOTED
from taskapi.preconditions import ENTITY_TAG


def operation(operation_id, *, tag, summary, description, success, errors=(), parameters=(), body=None, example=None):
    """Record the route's OpenAPI operation on its view as `view.apidoc` (openapi.build collects it) and return the
    view unchanged: a request pays nothing for it. `summary` is plain text (Swagger UI shows it as is),
    `description` Markdown; `errors` are keys of ERRORS, and every operation has the ones of ALWAYS too; `example`
    is what Swagger UI fills in for "Try it out": readable, and valid every time."""
    doc = {"operationId": operation_id, "tags": [tag], "summary": summary, "description": description}
    if parameters:
        doc["parameters"] = list(parameters)
    if body:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": body, "example": example}}}
    doc["responses"] = {**success, **{key[:3]: ERRORS[key] for key in (*errors, *ALWAYS)}}

    def record(view):
        view.apidoc = doc
        return view

    return record


def ok(description, schema, headers=None, status="200", links=None):
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return {status: response}


def links(parameters, *operation_ids):
    """Stateful links, so clients and schemathesis can follow a create to what acts on the returned id."""
    return {op[0].upper() + op[1:]: {"operationId": op, "parameters": parameters} for op in operation_ids}


def _error(description, *codes, headers=None):
    response = {
        "description": f"{description} Codes: {', '.join(codes)}.",
        "content": {"application/json": {"schema": "Error"}},
    }
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}
ALLOW = {"Allow": {"description": "The methods the path accepts.", "schema": {"type": "string"}}}
ERRORS = {
    "400": _error("Malformed or invalid input.", "VALIDATION_ERROR", "INVALID_JSON"),
    "401": _error(
        "No bearer token, or one that fails a check (see WWW-Authenticate).",
        "UNAUTHORIZED",
        headers={"WWW-Authenticate": {"description": "RFC 6750 challenge.", "schema": {"type": "string"}}},
    ),
    "403": _error("The path names a user other than the token's.", "FORBIDDEN"),
    "404user": _error("No such user (or the id is not a UUID).", "USER_NOT_FOUND"),
    "404task": _error("No such user, or no such task among the user's.", "USER_NOT_FOUND", "TASK_NOT_FOUND"),
    "404list": _error("No such user, or no such list among the user's.", "USER_NOT_FOUND", "LIST_NOT_FOUND"),
    "405": _error("Method not allowed on this path.", "METHOD_NOT_ALLOWED", headers=ALLOW),
    "409": _error(
        "The id is taken, or a request with this Idempotency-Key is still in progress (retry after Retry-After).",
        "CONFLICT",
        "IDEMPOTENCY_KEY_IN_USE",
        headers=RETRY_AFTER,
    ),
    "409key": _error(
        "The user's task (or list) quota is full (details.limit), or a request with this Idempotency-Key is still in"
        " progress (retry after Retry-After).",
        "QUOTA_EXCEEDED",
        "IDEMPOTENCY_KEY_IN_USE",
        headers=RETRY_AFTER,
    ),
    "409inuse": _error(
        "A request with this Idempotency-Key is still in progress (retry after Retry-After).",
        "IDEMPOTENCY_KEY_IN_USE",
        headers=RETRY_AFTER,
    ),
    "412": _error(
        "If-Match names none of the task's (list's) versions; nothing changed. ETag is the current one.",
        "PRECONDITION_FAILED",
        headers={"ETag": {"description": "The task's current version.", "schema": {"type": "string"}}},
    ),
    "410": _error("The sync token is older than the tombstones: sync again without since.", "SYNC_TOKEN_EXPIRED"),
    "422": _error("This Idempotency-Key was used for a different request.", "IDEMPOTENCY_KEY_REUSED"),
    "413": _error("Body over 65,536 bytes.", "PAYLOAD_TOO_LARGE"),
    "413batch": _error("Body over 1,048,576 bytes (1 MiB).", "PAYLOAD_TOO_LARGE"),
    "415": _error("Body is not application/json.", "UNSUPPORTED_MEDIA_TYPE"),
    "503": _error("Database unreachable or busy; retry.", "SERVICE_UNAVAILABLE", headers=RETRY_AFTER),
    "414": _error("Request line over 8,190 bytes (answered by gunicorn or nginx).", "URI_TOO_LONG"),
    "431": _error("Request headers too large (answered by gunicorn or nginx).", "REQUEST_HEADER_FIELDS_TOO_LARGE"),
    "429": _error(
        "Rate or connection limit of the client's address (answered by nginx).",
        "TOO_MANY_REQUESTS",
        headers=RETRY_AFTER,
    ),
    "500": _error("Unexpected failure (details only in the server log).", "INTERNAL_ERROR"),
}
# What any path can answer, whatever the operation.
ALWAYS = ("405", "414", "429", "431", "503", "500")

LOCATION = {"Location": {"description": "Path of the new resource.", "schema": {"type": "string"}}}
ETAG = {"ETag": {"description": 'The task\'s version as a strong validator: `"3"`.', "schema": {"type": "string"}}}
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
NO_CONTENT = {"204": {"description": "Deleted."}}
NOT_MODIFIED = {"304": {"description": "If-None-Match names the current version: no body.", "headers": ETAG}}


def _header(name, description, pattern, example=None):
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", "pattern": pattern, **({"example": example} if example else {})},
    }


CONDITION = rf"^\s*(\*|{ENTITY_TAG}(\s*,\s*{ENTITY_TAG})*)\s*$"
IF_MATCH = _header(
    "If-Match",
    'Write only if the task\'s version is one of these ETags (`"3"`, or `"3", "4"`) or `*`; otherwise 412.',
    CONDITION,
    '"1"',
)
IF_NONE_MATCH = _header(
    "If-None-Match", "Answer 304 with no body when one of these ETags is current.", CONDITION, '"1"'
)
IDEMPOTENCY_KEY = _header(
    "Idempotency-Key",
    "1-255 printable ASCII characters, bare or as a quoted string. A retry with the same key and request within"
    " IDEMPOTENCY_TTL_HOURS gets the first answer again (Idempotent-Replayed: true) and creates nothing.",
    rf"^({KEY.pattern}|{QUOTED.pattern})$",
)

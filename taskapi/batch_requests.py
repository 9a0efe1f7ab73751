"""A batch's requests, checked before any of them runs: the batch's shape, each request one that the tasks or lists
blueprint serves under the batch's own user, and its `$<id>` references to what earlier requests create."""

import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from taskapi.auth import ME
from taskapi.errors import ValidationFailed
from taskapi.fields import StrictBoolean, parse_uuid

REQUESTS_MAX = 100
# What a batch may hold: whatever routes these blueprints have, matched in the app's own url_map.
BLUEPRINTS = frozenset({"tasks", "lists"})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
HEADERS = {"if-match": "If-Match", "if-none-match": "If-None-Match"}  # by lowercase name: names have no case
ID = r"[A-Za-z0-9._~-]{1,64}"
# `"$a"` stands for the id request a created; `"$$a"` is the text `$a` (each `$` more escapes one).
DOLLARS = re.compile(rf"(\$+)({ID})")
# A path as a request line carries it (printable ASCII, percent-encoded beyond), query included: up to 8,000
# characters, within gunicorn's request line.
PATH = r"/[\x21-\x7e]{0,7999}"
HEADER_VALUE = r"[\t\x20-\x7e\x80-\xff]{0,8000}"  # what an HTTP header can carry (Latin-1 text); the handler judges it
PLACEHOLDER = str(uuid.UUID(int=0))  # stands for a reference while a path is matched to its route


def _whole(pattern, message, **metadata):
    """A validator of the whole value (Regexp matches a prefix only), and the pattern the document shows."""
    compiled = re.compile(pattern)

    def check(value):
        if not compiled.fullmatch(value):
            raise ValidationError(message)

    return {"validate": check, "metadata": {"pattern": f"^{pattern}$", **metadata}}


class SubRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, **_whole(ID, "Give 1-64 of A-Z a-z 0-9 . _ ~ -."))
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    path = fields.String(
        required=True,
        **_whole(
            PATH,
            "Give a path starting with /, in printable ASCII (percent-encode the rest).",
            example="/users/me/tasks",
        ),
    )
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(
            **_whole(HEADER_VALUE, "Give text an HTTP header can carry (Latin-1, no control characters).")
        ),
        metadata={"description": "`If-Match` and `If-None-Match` (any case), nothing else."},
    )
    body = fields.Raw(
        allow_none=True,
        metadata={"description": "The JSON body (an object) of a POST, PUT or PATCH; none for GET and DELETE."},
    )


class BatchSchema(Schema):
    class Meta:
        unknown = RAISE

    atomic = StrictBoolean(
        load_default=True,
        metadata={"description": "true: all in one transaction, or nothing. false: each request on its own."},
    )
    requests = fields.List(
        fields.Nested(SubRequestSchema), required=True, validate=validate.Length(min=1, max=REQUESTS_MAX)
    )


batch_schema = BatchSchema()


@dataclass
class SubRequest:
    id: str
    method: str
    path: str  # as given: references stay in it until the request runs
    headers: dict
    body: object
    creates: bool  # its route answers 201 with what it created
    refers: frozenset  # the ids of the earlier requests it refers to
    kept: bool = False  # a later request refers to it: the id it creates is kept


@dataclass
class Batch:
    atomic: bool
    requests: list


def parse(body, app, user_id, caller):
    """The batch `body` asks for, checked; 400 naming each request at fault (`requests.3.path`) otherwise.

    `user_id` is the batch's user (its path's, a UUID); `caller` the token's user under jwt (None under none), for
    whom `me` stands."""
    given = body.get("requests")
    if isinstance(given, list) and len(given) > REQUESTS_MAX:  # before a schema walks 100,000 of them
        raise ValidationFailed(details={"requests": [f"Length must be between 1 and {REQUESTS_MAX}."]})
    try:
        loaded = batch_schema.load(body)
    except ValidationError as exc:
        raise ValidationFailed(details=_flat(exc.messages)) from None
    adapter = app.url_map.bind("localhost")
    earlier, requests, errors = {}, [], {}
    for index, request in enumerate(loaded["requests"]):
        problems, sub = _check(request, earlier, adapter, app.view_functions, user_id, caller)
        errors.update({f"requests.{index}.{name}": [message] for name, message in problems.items()})
        earlier.setdefault(sub.id, sub)
        requests.append(sub)
    if errors:
        raise ValidationFailed(details=errors)
    return Batch(atomic=loaded["atomic"], requests=requests)


def _check(request, earlier, adapter, views, user_id, caller):
    """({field: message}, the SubRequest) of one request; `earlier` holds the requests before it. A request at fault
    still counts as creating, so that those referring to it are not blamed for its fault."""
    problems, method, body = {}, request["method"], request.get("body")
    if request["id"] in earlier:
        problems["id"] = "Another request of the batch has this id."
    endpoint, path_refers = None, set()
    try:
        endpoint, path_refers = _route(request["path"], method, adapter, user_id, caller)
    except _Refused as refused:
        problems[refused.field] = refused.message
    if method in WITH_BODY and not isinstance(body, dict):
        problems["body"] = f"Give the body of the {method}: a JSON object."
    elif method not in WITH_BODY and body is not None:
        problems["body"] = f"A {method} takes no body."
    headers = {}
    for name, value in request.get("headers", {}).items():
        canonical = HEADERS.get(name.lower())
        if canonical is None:
            problems["headers"] = f"Only If-Match and If-None-Match, not {name}."
        elif canonical in headers:
            problems["headers"] = f"Give {canonical} once."
        headers[canonical] = value
    body_refers = set(_references(body))
    for field, refers in (("path", path_refers), ("body", body_refers)):
        for ref in sorted(refers):
            if ref not in earlier:
                problems.setdefault(field, f"${ref}: no request before this one has the id {ref}.")
            elif not earlier[ref].creates:
                problems.setdefault(field, f"${ref}: request {ref} creates nothing.")
    refers = frozenset(path_refers | body_refers)
    if not problems:
        for ref in refers:
            earlier[ref].kept = True
    creates = endpoint is None or "201" in getattr(views[endpoint], "apidoc", {}).get("responses", {})
    return problems, SubRequest(request["id"], method, request["path"], headers, body, creates, refers)


class _Refused(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


def _route(given, method, adapter, user_id, caller):
    """The endpoint a request's path and method reach, and the references in the path; _Refused unless it is a route
    of BLUEPRINTS under the batch's own user."""
    path, _, query = given.partition("?")
    if "#" in given:
        raise _Refused("path", "A path has no fragment (#).")
    if "//" in path or "%2f" in path.lower():
        raise _Refused("path", "A path has no // and no encoded slash.")
    refers, matched = set(), []
    for segment in path.split("/"):
        dollars = DOLLARS.fullmatch(segment)
        if dollars and len(dollars[1]) == 1:
            refers.add(dollars[2])
        matched.append(PLACEHOLDER if dollars and len(dollars[1]) == 1 else segment[1:] if dollars else segment)
    try:
        endpoint, values = adapter.match(unquote("/".join(matched)), method)
    except MethodNotAllowed:
        raise _Refused("method", f"The path does not take {method}.") from None
    except HTTPException:  # NotFound, or a redirect (a trailing slash)
        raise _Refused("path", "Give a path of the API's tasks or lists.") from None
    if endpoint.partition(".")[0] not in BLUEPRINTS:
        raise _Refused("path", "Give a path of the API's tasks or lists.")
    named = values.get("user_id")
    if (caller if caller is not None and named == ME else parse_uuid(named)) != user_id:
        raise _Refused("path", "Give a path under the batch's own user.")
    return endpoint, refers


def _references(value):
    """The request ids `value` (a body) refers to, in any string, however deep."""
    if isinstance(value, str):
        dollars = DOLLARS.fullmatch(value)
        if dollars and len(dollars[1]) == 1:
            yield dollars[2]
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def resolve(value, created):
    """`value` with each reference replaced by the id its request created (`created[id]`, KeyError when there is
    none) and each escaped `$$…` unescaped by one `$`; the rest as it is."""
    if isinstance(value, str):
        dollars = DOLLARS.fullmatch(value)
        if dollars is None:
            return value
        return created[dollars[2]] if len(dollars[1]) == 1 else value[1:]
    if isinstance(value, dict):
        return {key: resolve(item, created) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, created) for item in value]
    return value


def resolved_path(sub, created):
    path, mark, query = sub.path.partition("?")
    return "/".join(resolve(segment, created) for segment in path.split("/")) + mark + query


def _flat(messages, prefix=""):
    """Marshmallow's nested messages as the dotted names `details` uses: {"requests.3.path": [...]}."""
    flat = {}
    for key, value in messages.items():
        name = prefix if key == "_schema" and prefix else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flat(value, name))
        else:
            flat[name] = value
    return flat

"""JSON in and out: reading a request body (media type, size, encoding and JSON syntax, before any schema sees it),
and writing answers in the one style every answer has (compact, UTF-8 as it is)."""

import json

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

from taskapi.errors import InvalidJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

MAX_BODY_BYTES = 65_536
# What Werkzeug may read (app.config["MAX_CONTENT_LENGTH"]): one byte more than we accept. A declared
# Content-Length above it is refused by Werkzeug before reading; a chunked body is cut there *silently*,
# so reading one byte past the limit is how an oversized chunked body is told from one of exactly 64 KiB.
READ_LIMIT = MAX_BODY_BYTES + 1


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def json_object(limit=MAX_BODY_BYTES):
    """The body as a dict, or the SPEC's error: 415 not JSON, 413 over `limit` bytes, 400 undecodable or not an
    object. A route that takes more than MAX_BODY_BYTES (the batch) raises request.max_content_length first."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:  # a declared Content-Length over request.max_content_length
        raw = None
    if raw is None or len(raw) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidJson("Request body is not valid UTF-8.") from None
    except RecursionError:
        raise ValidationFailed(details={"_schema": ["JSON is nested too deeply."]}) from None
    except ValueError:
        raise InvalidJson() from None
    if not isinstance(data, dict):
        raise ValidationFailed(details={"_schema": ["Request body must be a JSON object."]})
    return data


def compact(value):
    """JSON as every answer writes it: no spaces (as JsonProvider and PostgreSQL's row_to_json), UTF-8 as it is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_answer(text, status=200, headers=None):
    """An answer whose JSON text is already made (by PostgreSQL, or assembled around what it made)."""
    return current_app.response_class(text, status, headers, mimetype="application/json")


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON for answers made from Python values (errors, users, labels), in the same style as the rest:
    compact, UTF-8 as it is, keys in the order given, and no newline after it (Flask's own adds one)."""

    ensure_ascii = False
    sort_keys = False

    def response(self, *args, **kwargs):
        return json_answer(self.dumps(self._prepare_response_obj(args, kwargs), separators=(",", ":")))

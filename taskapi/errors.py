"""The error envelope, the typed errors views raise, and every error handler."""

import logging

from flask import jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from taskapi import metrics

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class ApiError(Exception):
    """An error the client caused or can act on; its class fixes the status and code."""

    status = 500
    code = "INTERNAL_ERROR"
    message = "Internal server error."
    headers: dict = {}

    def __init__(self, message=None, details=None, headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.headers = {**self.headers, **(headers or {})}


class Unauthorized(ApiError):
    status, code, message = 401, "UNAUTHORIZED", "A valid bearer token is required."


class Forbidden(ApiError):
    status, code, message = 403, "FORBIDDEN", "A token acts only for its own user."


class UserNotFound(ApiError):
    status, code, message = 404, "USER_NOT_FOUND", "User not found."


class TaskNotFound(ApiError):
    status, code, message = 404, "TASK_NOT_FOUND", "Task not found."


class ListNotFound(ApiError):
    status, code, message = 404, "LIST_NOT_FOUND", "List not found."


class ValidationFailed(ApiError):
    status, code, message = 400, "VALIDATION_ERROR", "Request validation failed."


class InvalidJson(ApiError):
    status, code, message = 400, "INVALID_JSON", "Request body is not valid JSON."


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "UNSUPPORTED_MEDIA_TYPE", "Request body must be application/json."


class PayloadTooLarge(ApiError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "Request body is larger than 65536 bytes."


class Conflict(ApiError):
    status, code, message = 409, "CONFLICT", "The resource already exists."


class PreconditionFailed(ApiError):
    status, code, message = 412, "PRECONDITION_FAILED", "The task has changed: If-Match names none of its versions."


class IdempotencyKeyReused(ApiError):
    status, code, message = 422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request."


class IdempotencyKeyInUse(ApiError):
    status, code, message = 409, "IDEMPOTENCY_KEY_IN_USE", "A request with this Idempotency-Key is still in progress."
    headers = {"Retry-After": "1"}


class QuotaExceeded(ApiError):
    status, code, message = 409, "QUOTA_EXCEEDED", "The user holds as many tasks as allowed."


class FailedDependency(ApiError):
    status, code, message = 424, "FAILED_DEPENDENCY", "A request this one refers to failed: this one was not processed."


class SyncTokenExpired(ApiError):
    status, code, message = 410, "SYNC_TOKEN_EXPIRED", "The sync token is too old: sync again without `since`."


class ServiceUnavailable(ApiError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "The database is unavailable; retry shortly."
    headers = {"Retry-After": RETRY_AFTER_SECONDS}


# Werkzeug's own errors (unknown route, wrong method, oversized body, ...) mapped onto the SPEC's codes.
HTTP_CODES = {
    400: ("VALIDATION_ERROR", "Bad request."),
    404: ("NOT_FOUND", "Resource not found."),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed."),
    413: (PayloadTooLarge.code, PayloadTooLarge.message),
    415: ("UNSUPPORTED_MEDIA_TYPE", UnsupportedMediaType.message),
    500: (ApiError.code, ApiError.message),
}


def code_for(status, name):
    """The SPEC's code and message for an HTTP status; others get a code from the name (URI Too Long: URI_TOO_LONG)."""
    return HTTP_CODES.get(status, (name.upper().replace(" ", "_"), name + "."))


def envelope(code, message, details=None):
    """The SPEC's error body; every error answer, the app's and gunicorn's own, is made from it."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status, code, message, details=None, headers=None):
    response = jsonify(envelope(code, message, details))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_api_error(exc):
    metrics.count_error(exc.code)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def handle_validation_error(exc):
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return error_response(400, ValidationFailed.code, ValidationFailed.message, messages)


def handle_http_exception(exc):
    code, message = code_for(exc.code, exc.name)
    headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else {}
    return error_response(exc.code, code, message, headers=headers)


def handle_unexpected(exc):
    # The trace stays in the server log; the client learns only that it was our fault.
    log.exception("unhandled error")
    return error_response(500, ApiError.code, ApiError.message)


def init_app(app):
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)

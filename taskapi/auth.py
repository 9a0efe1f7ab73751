"""Who is calling: under AUTH_MODE=jwt a bearer token names one user, and a path may name only that user.

Every request but OPTIONS passes through `authorize` (the app's path checks call it before the path ids are parsed),
so no route can forget it; the health and docs blueprints are the only ones it lets through without a token.
"""

import logging
import os
import uuid

import jwt
from flask import current_app, g, request
from flask_cors import CORS
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    PyJWKClientConnectionError,
    PyJWKClientError,
    PyJWKSetError,
    PyJWTError,
)

from taskapi import queries
from taskapi.errors import Forbidden, ServiceUnavailable, Unauthorized, ValidationFailed
from taskapi.fields import parse_uuid

log = logging.getLogger(__name__)

PUBLIC_BLUEPRINTS = frozenset({"health", "docs"})
ME = "me"
REALM = 'Bearer realm="taskapi"'
# gunicorn refuses a header line over 8,190 bytes (431) and nginx over its 8 KiB buffer; a token that fits those
# but not this is refused here, so every path to the app gives the same limit.
MAX_TOKEN_CHARS = 8_000
SUBJECT_MAX_CHARS = 255
JWKS_FETCH_TIMEOUT_SECONDS = 3  # well under gunicorn's 30 s worker timeout

CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed"]


class KeyClient(jwt.PyJWKClient):
    """PyJWT's JWKS client, with three guarantees it lacks: an endpoint that answers something other than a key set
    counts as unreachable (not as a bad token), the last good key set keeps serving while fetches fail, and a kid
    that set lacks is "cannot tell" (503), not "no such key" (401), while the last fetch failed: the key may well
    exist at the identity provider, and telling the client to log in again cannot help."""

    fetch_failing = False

    def fetch_data(self):
        try:
            data = super().fetch_data()
        except PyJWKClientConnectionError:
            self.fetch_failing = True
            raise
        except (ValueError, PyJWKClientError, PyJWKSetError) as exc:  # not JSON, not an object, no usable key
            self.fetch_failing = True
            raise PyJWKClientConnectionError(f"unusable JWKS: {exc}") from exc
        self.fetch_failing = False
        return data

    def get_signing_key(self, kid):
        try:
            return super().get_signing_key(kid)
        except PyJWKClientConnectionError:
            raise
        except PyJWKClientError as exc:  # the kid is not in the key set this client holds
            if self.fetch_failing:
                raise PyJWKClientConnectionError(f"kid {kid!r} unknown and the JWKS cannot be fetched") from exc
            raise

    def get_jwk_set(self, refresh=False):
        try:
            return super().get_jwk_set(refresh)
        except PyJWKClientConnectionError as exc:
            last_good = self.jwk_set_cache and self.jwk_set_cache.jwk_set_with_timestamp
            if not last_good:
                raise
            log.warning("JWKS fetch failed, keeping the last good key set: %s", exc)
            # Served for another cache period, so an outage of the identity provider costs one failed fetch per
            # period, not one per request.
            self.jwk_set_cache.put(last_good.get_jwk_set())
            return last_good.get_jwk_set()


class Authenticator:
    """The token checks of one app, built from its config. The JWKS client is made in the process that uses it
    (after gunicorn's fork), so workers never share a half-read socket or a cache."""

    def __init__(self, config):
        self.secret = config["JWT_SECRET"]
        self.jwks_url = config["JWT_JWKS_URL"]
        self.algorithms = config["JWT_ALGORITHMS"]
        self.audience = config["JWT_AUDIENCE"]
        self.issuer = config["JWT_ISSUER"]
        self.subject_claim = config["JWT_SUBJECT_CLAIM"]
        self.leeway = config["JWT_LEEWAY_SECONDS"]
        self.cache_seconds = config["JWT_JWKS_CACHE_SECONDS"]
        self.cooldown_seconds = config["JWT_JWKS_COOLDOWN_SECONDS"]
        self._client, self._client_pid = None, None

    def _key_for(self, token):
        if self.secret:
            return self.secret
        if self._client is None or self._client_pid != os.getpid():
            self._client = KeyClient(
                self.jwks_url,
                lifespan=self.cache_seconds,
                timeout=JWKS_FETCH_TIMEOUT_SECONDS,
                cooldown_duration=self.cooldown_seconds,
            )
            self._client_pid = os.getpid()
        return self._client.get_signing_key_from_jwt(token)

    def claims(self, token):
        """The token's verified claims; raises PyJWTError (PyJWKClientConnectionError: keys unreachable)."""
        return jwt.decode(
            token,
            self._key_for(token),
            algorithms=self.algorithms,
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
            # Unset audience: `aud` is not checked at all (PyJWT would otherwise refuse any token that has one).
            options={"require": ["exp", self.subject_claim], "verify_aud": self.audience is not None},
        )

    def user_id(self, claims):
        """The caller's user id: a UUID subject as is (lowercase), any other subject mapped by uuid5(iss#sub)."""
        subject, issuer = claims.get(self.subject_claim), claims.get("iss", "")
        if not isinstance(subject, str) or not subject or len(subject) > SUBJECT_MAX_CHARS:
            raise invalid_token("The token's subject is missing, not a string, or too long.")
        if not isinstance(issuer, str):
            raise invalid_token("The token's issuer is not a string.")
        if not _is_text(subject) or not _is_text(issuer):  # JSON's \ud800 decodes to a lone surrogate
            raise invalid_token("The token's subject or issuer is not valid Unicode text.")
        return parse_uuid(subject) or uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer}#{subject}")


def _is_text(value):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def invalid_token(description):
    """RFC 6750's answer to a token that fails a check: which one, only as far as the short description says."""
    challenge = f'{REALM}, error="invalid_token", error_description="{description}"'
    return Unauthorized(headers={"WWW-Authenticate": challenge})


def bearer_token():
    """The request's bearer token; 400 for the ambiguous forms RFC 6750 calls invalid_request, 401 when absent."""
    if "access_token" in request.args:
        raise ValidationFailed(details={"access_token": ["Send the token in the Authorization header only."]})
    given = request.headers.get("Authorization", "")
    # WSGI servers join a repeated header with commas, which no bearer token contains (RFC 6750's b64token).
    if "," in given:
        raise ValidationFailed(details={"Authorization": ["Give one Authorization header."]})
    scheme, _, token = given.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(headers={"WWW-Authenticate": REALM})
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid_token("The token is too long.")
    return token


def authenticate(authenticator):
    """The caller's user id (a UUID) from the request's token, or the error that refuses it."""
    token = bearer_token()
    try:
        claims = authenticator.claims(token)
    except PyJWKClientConnectionError as exc:
        log.warning("signing keys unavailable: %s", exc)
        raise ServiceUnavailable("The identity provider's signing keys cannot be fetched; retry shortly.") from None
    except ExpiredSignatureError:
        raise invalid_token("The token has expired.") from None
    except ImmatureSignatureError:
        raise invalid_token("The token is not valid yet.") from None
    except PyJWTError:
        raise invalid_token("The token is invalid.") from None
    return authenticator.user_id(claims)


def authorize(endpoint, values):
    """Authenticate the caller and hold the path to the caller's own user (`me` stands for it).

    Runs before anything else looks at the path: an unknown route or method is still 404/405 (its routing error is
    raised after this), then 401, then 403 for a path naming anyone else, whether or not that user exists.
    """
    if request.routing_exception is not None:
        return
    if current_app.config["AUTH_MODE"] == "none" or request.blueprint in PUBLIC_BLUEPRINTS:
        return
    caller = authenticate(current_app.extensions["taskapi.auth"])
    g.caller_id = caller
    if values and "user_id" in values:
        named = values["user_id"]
        if named != ME and named.lower() != str(caller):
            raise Forbidden()
        values["user_id"] = str(caller)


def registrant(requested):
    """Who `POST /users` registers: the body's id under AUTH_MODE=none; under jwt the caller, and only the caller."""
    caller = g.get("caller_id")
    if caller is None:
        return requested
    if requested is not None and requested != caller:
        raise Forbidden("A token can register only its own user.")
    return caller


def caller_scope():
    """Whose idempotency keys a `POST /users` uses: the caller's under jwt, a shared scope under none."""
    caller = g.get("caller_id")
    return queries.NO_USER_SCOPE if caller is None else caller


def init_app(app):
    if app.config["AUTH_MODE"] == "jwt":
        app.extensions["taskapi.auth"] = Authenticator(app.config)
    if app.config["CORS_ORIGINS"]:
        # Bearer tokens only, no cookies: credentials stay off, so a browser never sends ambient authority.
        CORS(
            app,
            origins=app.config["CORS_ORIGINS"],
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            supports_credentials=False,
            max_age=600,
        )

"""Opaque tokens handed to clients (list cursors, sync tokens): JSON, signed with HMAC-SHA256.

The key is made by a migration and read from the database once per process, so every worker and every host of
the service signs and checks alike with no setting to share; a token cannot be forged, edited or moved between
kinds or users without failing the check.
"""

import base64
import hashlib
import hmac
import json

from flask import current_app

from taskapi import queries
from taskapi.db import connection

# The longest token issued: a cursor after a title of 255 control characters (each written \u00XX in JSON, 1,530
# bytes; 255 emoji take 1,020 as UTF-8), about 2,300 characters. A request line carrying one stays well inside
# gunicorn's 4,094 bytes and nginx's 8 KiB.
MAX_TOKEN_CHARS = 3072
SIGNATURE_BYTES = 16


def _key():
    key = current_app.extensions.get("taskapi.signing_key")
    if key is None:
        with connection() as conn:
            key = current_app.extensions["taskapi.signing_key"] = queries.fetch_signing_key(conn)
    return key


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(kind, body):
    return hmac.digest(_key(), f"{kind}.{body}".encode(), hashlib.sha256)[:SIGNATURE_BYTES]


def sign(kind, payload):
    # UTF-8 as it is, not \u escapes: a title of 255 CJK characters or emoji stays a third to a half the size.
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_b64(_signature(kind, body))}"


def verify(kind, token):
    """The payload of a token this service signed for `kind`; ValueError for anything else."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
        raise ValueError("not a token")
    body, signature = token.split(".")
    # Compared as text: base64 has several spellings of the same bytes, and only the one issued is accepted.
    if not hmac.compare_digest(signature, _b64(_signature(kind, body))):
        raise ValueError("bad signature")
    payload = json.loads(_unb64(body))
    if not isinstance(payload, dict):
        raise ValueError("not a token")
    return payload

"""Opaque tokens handed to clients (list cursors, sync tokens): JSON, signed with HMAC-SHA256.

The key is made by a migration and read from the database once per process, so every worker and every host of
the service signs and checks alike with no setting to share; a token cannot be forged, edited or moved between
kinds or users without failing the check.
"""

import base64
import hashlib
import hmac
import json
import zlib

from flask import current_app

from taskapi import queries
from taskapi.db import connection

# The longest token accepted. A cursor carries its list's filters (a `q` of up to 200 characters, labels) and the
# last task's sort value (a title of 255 control characters is 1,530 bytes of JSON), compressed when that is
# shorter: the longest the service can issue is bounded by the request line that asked for its page (gunicorn
# takes up to 8,190 bytes, see gunicorn.conf.py), and stays under this.
MAX_TOKEN_CHARS = 8000
RAW, ZLIB = b"\x00", b"\x01"
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
    # UTF-8 as it is, not \u escapes: a title of 255 CJK characters or emoji stays a third to a half the size; and
    # compressed when that is shorter (escaped control characters, repeated text).
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    packed = zlib.compress(data, 9)
    body = _b64(ZLIB + packed if len(packed) < len(data) else RAW + data)
    return f"{body}.{_b64(_signature(kind, body))}"


def verify(kind, token):
    """The payload of a token this service signed for `kind`; ValueError for anything else."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
        raise ValueError("not a token")
    body, signature = token.split(".")
    # Compared as text: base64 has several spellings of the same bytes, and only the one issued is accepted.
    if not hmac.compare_digest(signature, _b64(_signature(kind, body))):
        raise ValueError("bad signature")
    data = _unb64(body)
    if data[:1] == ZLIB:
        data = zlib.decompressobj().decompress(data[1:], MAX_TOKEN_CHARS * 4)  # bounded: no zip bomb
    elif data[:1] == RAW:
        data = data[1:]
    else:
        raise ValueError("not a token")
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError("not a token")
    return payload

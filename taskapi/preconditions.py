"""Conditional requests: a task's ETag, and the If-Match / If-None-Match headers parsed (RFC 9110 §8.8.3, §13.1)."""

import re

from flask import request

from taskapi.errors import ValidationFailed

ANY = "*"
# One entity tag: optional weakness prefix, then a quoted string of visible ASCII but the quote (RFC 9110's etagc
# without obs-text: this service issues none). A bare tag (`3`, as clients that forget the quotes send it) is read
# as the quoted one (`"3"`); it cannot hold a quote, comma, space or `*`, so a list still splits unambiguously.
ENTITY_TAG = r'(?:W/)?(?:"[\x21\x23-\x7e]*"|[\x21\x23-\x29\x2b\x2d-\x7e]+)'
TAG_LIST = re.compile(rf"\s*{ENTITY_TAG}(?:\s*,\s*{ENTITY_TAG})*\s*")
TAG = re.compile(ENTITY_TAG)
VERSION_TAG = re.compile(r'"([0-9]{1,18})"')  # the only tags this service issues


def etag(version):
    """The strong validator of a task version: `"7"`."""
    return f'"{version}"'


def _parse(header):
    """None when absent; ANY for `*`; else the listed tags as (weak, opaque) pairs. Malformed: 400."""
    value = request.headers.get(header)
    if value is None:
        return None
    if value.strip() == ANY:
        return ANY
    if not TAG_LIST.fullmatch(value):
        raise ValidationFailed(details={header: ['Give "*" or one or more quoted entity tags, e.g. "3".']})
    tags = [(tag.startswith("W/"), tag.removeprefix("W/")) for tag in TAG.findall(value)]
    return [(weak, opaque if opaque.startswith('"') else f'"{opaque}"') for weak, opaque in tags]


def if_match_versions():
    """The versions If-Match allows a write on: None when any will do (no header, or `*`); else a list of ints,
    empty when no tag can match (weak tags never match under If-Match's strong comparison)."""
    tags = _parse("If-Match")
    if tags is None or tags == ANY:
        return None
    matches = (VERSION_TAG.fullmatch(opaque) for weak, opaque in tags if not weak)
    return [int(match[1]) for match in matches if match]


def if_none_match():
    """The request's If-None-Match as a test of a version: True when it names it (weak comparison) or is `*`, and
    the GET answers 304. Parsed before the task is read, so a malformed header is 400 on any task."""
    tags = _parse("If-None-Match")
    if tags is None:
        return lambda version: False
    if tags == ANY:
        return lambda version: True
    named = {opaque for _, opaque in tags}
    return lambda version: etag(version) in named

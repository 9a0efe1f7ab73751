"""Input rules: strict JSON types, unknown and read-only fields, lengths, unstorable strings, body framing."""

import json

import pytest
from helpers import assert_error

EMOJI = "\U0001f600"


def post_raw(client, user_id, data, content_type="application/json"):
    return client.post(f"/users/{user_id}/tasks", data=data, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t", "is_completed": "true"}, "is_completed"),
        ({"title": "t", "is_completed": 1}, "is_completed"),
        ({"title": "t", "is_completed": 0}, "is_completed"),
        ({"title": "t", "is_completed": "yes"}, "is_completed"),
        ({"title": "t", "is_completed": None}, "is_completed"),
        ({"title": 123}, "title"),
        ({"title": True}, "title"),
        ({"title": ["t"]}, "title"),
        ({"title": None}, "title"),
        ({"title": "t", "description": 5}, "description"),
        ({"title": "t", "description": {"a": 1}}, "description"),
        ({}, "title"),
        ({"description": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "\u2003\n\t\u3000"}, "title"),  # Unicode whitespace only: str.strip() empties it
        ({"title": "x" * 256}, "title"),
        ({"title": EMOJI * 256}, "title"),
        ({"title": "t", "description": "d" * 10_001}, "description"),
        ({"title": "a\u0000b"}, "title"),
        ({"title": "t", "description": "\u0000"}, "description"),
        ({"title": "t", "colour": "red"}, "colour"),
        ({"title": "t", "id": "0b7e7c6e-5d0a-4a35-9e39-2a3b8c1d2e3f"}, "id"),
        ({"title": "t", "user_id": "0b7e7c6e-5d0a-4a35-9e39-2a3b8c1d2e3f"}, "user_id"),
        ({"title": "t", "created_at": "2026-01-01T00:00:00Z"}, "created_at"),
        ({"title": "t", "updated_at": "2026-01-01T00:00:00Z"}, "updated_at"),
    ],
)
def test_invalid_task_fields_are_named(client, user_id, body, field):
    error = assert_error(client.post(f"/users/{user_id}/tasks", json=body), 400, "VALIDATION_ERROR")
    assert field in error["details"]
    assert all(isinstance(m, str) for m in error["details"][field])


def test_several_faults_are_all_named(client, user_id):
    body = {"title": "", "is_completed": "no", "colour": "red"}
    error = assert_error(client.post(f"/users/{user_id}/tasks", json=body), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"title", "is_completed", "colour"}


@pytest.mark.parametrize(
    ("title", "stored"),
    [
        (EMOJI * 255, EMOJI * 255),  # 255 characters (1,020 bytes) pass: characters, not bytes
        ("x" * 255, "x" * 255),
        ("  " + "y" * 255 + "  ", "y" * 255),  # trimmed first, then counted
        ("\u00a0caf\u00e9\u2003", "caf\u00e9"),
        ("a\u200bb", "a\u200bb"),  # zero-width space is not whitespace to str.strip()
    ],
)
def test_valid_titles(client, user_id, title, stored):
    response = client.post(f"/users/{user_id}/tasks", json={"title": title})
    assert response.status_code == 201
    assert response.get_json()["title"] == stored


def test_description_limit_and_null(client, user_id):
    # Sent as raw UTF-8 (40,000 bytes): escaped as \ud83d\ude00 it would be 120,000 and hit the 64 KiB limit.
    body = json.dumps({"title": "t", "description": EMOJI * 10_000}, ensure_ascii=False).encode()
    ok = post_raw(client, user_id, body)
    assert ok.status_code == 201 and ok.get_json()["description"] == EMOJI * 10_000
    assert client.post(f"/users/{user_id}/tasks", json={"title": "t", "description": None}).status_code == 201


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "\\ud800"}',  # lone high surrogate
        b'{"title": "t", "description": "x\\udfff"}',  # lone low surrogate
        b'{"title": "a\\u0000"}',
    ],
)
def test_unstorable_strings_are_400(client, user_id, raw):
    assert_error(post_raw(client, user_id, raw), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"title": "t",}',
        b"{'title': 't'}",
        b'{"title": NaN}',
        b'{"title": Infinity}',
        b'{"title": "t"} extra',
        b'\xef\xbb\xbf{"title": "t"}',  # a byte order mark is not JSON
        b'{"title": "\xff\xfe"}',  # not UTF-8
        b'{"title": "caf\xe9"}',  # Latin-1, not UTF-8
    ],
)
def test_invalid_json(client, user_id, raw):
    assert_error(post_raw(client, user_id, raw), 400, "INVALID_JSON")


@pytest.mark.parametrize("raw", [b"[]", b'"t"', b"42", b"null", b"true", b'[{"title": "t"}]'])
def test_json_that_is_not_an_object(client, user_id, raw):
    assert_error(post_raw(client, user_id, raw), 400, "VALIDATION_ERROR")


def test_deeply_nested_json_is_400(client, user_id):
    raw = b'{"title": "t", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    response = post_raw(client, user_id, raw)
    assert response.status_code == 400
    assert_error(response, 400, response.get_json()["error"]["code"])


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "application/merge-patch+json", "json"],
)
def test_wrong_content_type_is_415(client, user_id, content_type):
    assert_error(post_raw(client, user_id, b'{"title": "t"}', content_type), 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"]
)
def test_json_content_type_variants_are_accepted(client, user_id, content_type):
    assert post_raw(client, user_id, b'{"title": "t"}', content_type).status_code == 201


def test_body_of_exactly_64_kib_is_accepted_and_one_more_byte_is_413(client, user_id):
    head = b'{"title": "padded"'
    exact = head + b" " * (65_536 - len(head) - 1) + b"}"
    assert len(exact) == 65_536
    assert post_raw(client, user_id, exact).status_code == 201
    over = head + b" " * (65_537 - len(head) - 1) + b"}"
    assert_error(post_raw(client, user_id, over), 413, "PAYLOAD_TOO_LARGE")

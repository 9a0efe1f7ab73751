"""Marshmallow fields of the API's own rules: strict JSON types, storable text, canonical ids, and the round-3
values (time zones, dues, priorities, labels) and query-string forms."""

import re
import unicodedata
import uuid
from datetime import UTC

from marshmallow import ValidationError, fields

from taskapi import due, search

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_uuid(value):
    """A UUID from its 36-character hyphenated form (any case), or None for anything else."""
    if isinstance(value, str) and UUID_RE.fullmatch(value):
        return uuid.UUID(value)
    return None


# What the OpenAPI document says of Text fields (JSON Schema can't express "unpaired surrogate"). The whitespace is
# spelled out, exactly what str.strip() removes: `\s` means different sets in Python, ECMA and Rust regexes.
WHITESPACE = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace())
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = rf"^[^\u0000]*[^\u0000{WHITESPACE}][^\u0000]*$"


class Text(fields.String):
    """A string PostgreSQL can store: no U+0000, no lone surrogate; optionally trimmed (str.strip)."""

    default_error_messages = {
        "unstorable": "Must not contain U+0000 or unpaired surrogates.",
        "blank": "Must not be blank.",
    }

    def __init__(self, *, strip=False, **kwargs):
        kwargs["metadata"] = {"pattern": NOT_BLANK if strip else NO_NUL, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)
        self.strip = strip

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value or not value.isascii() and not _utf8_encodable(value):
            raise self.make_error("unstorable")
        if self.strip and value and not value.strip():
            raise self.make_error("blank")
        return value.strip() if self.strip else value


def _utf8_encodable(value):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictBoolean(fields.Boolean):
    """Only JSON true and false: "true", 1 and "yes" are not booleans."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class CanonicalUUID(fields.UUID):
    """A UUID in the 36-character hyphenated form only; written out lowercase."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = parse_uuid(value)
        if parsed is None:
            raise self.make_error("invalid_uuid")
        return parsed


def utc_timestamp(value):
    """RFC 3339 in UTC with microseconds, e.g. 2026-01-07T09:30:00.123456Z.

    isoformat() of a UTC time always ends in "+00:00"; swapping that for "Z" costs 1.9 us against strftime's 5.0.
    """
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


class UtcTimestamp(fields.DateTime):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else utc_timestamp(value)


class QueryId(fields.String):
    """A query-string id: a UUID, or `none` (kept as the text "none"); written out lowercase."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "none":
            return value
        parsed = parse_uuid(value)
        if parsed is None:
            raise ValidationError("Give an id (a UUID) or none.")
        return str(parsed)


class QueryInteger(fields.Integer):
    """A query-string integer: ASCII digits only (no plus sign, spaces, underscores or exponent), at most 64 bits.
    A minus sign is read, so that `-1` is told it is out of range rather than not a number."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,19}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBoolean(fields.Boolean):
    """A query-string boolean: exactly `true` or `false`, lowercase."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value not in ("true", "false"):
            raise self.make_error("invalid")
        return value == "true"


class TimeZoneName(fields.String):
    """An IANA time-zone name the server's zone database knows (`Europe/Berlin`, `UTC`), as spelled there."""

    default_error_messages = {"unknown": "Not a time zone this server knows; give an IANA name such as Europe/Berlin."}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if due.zone(value) is None:
            raise self.make_error("unknown")
        return value


class Due(fields.Field):
    """A task's due: null, all-day `{"date"}`, or a wall time `{"date", "time", "time_zone"?}`. Loads to a dict of
    date, time and time_zone (None when not given: the writer fills in the user's zone, then checks the wall time
    exists there, as this field does for a zone it is given)."""

    KEYS = ("date", "time", "time_zone")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError('Give null, {"date": "YYYY-MM-DD"}, or {"date", "time": "HH:MM", "time_zone"}.')
        problems = [f"Unknown key: {key}." for key in value if key not in self.KEYS]
        if "date" not in value:
            problems.append("date: Missing.")
        if value.get("time_zone") is not None and value.get("time") is None:
            problems.append("time_zone: Only with a time.")
        parsed = {}
        for key, parse in (("date", due.parse_date), ("time", due.parse_time), ("time_zone", _zone_name)):
            given = value.get(key)
            if given is None and key != "date":
                continue
            try:
                parsed[key] = parse(given) if isinstance(given, str) else _not_a_string()
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        if "date" in parsed and not due.FIRST_DAY <= parsed["date"] <= due.LAST_DAY:
            problems.append(f"date: Must be between {due.FIRST_DAY} and {due.LAST_DAY}.")
        if problems:
            raise ValidationError(problems)
        stated = {"date": parsed["date"], "time": parsed.get("time"), "time_zone": parsed.get("time_zone")}
        if stated["time_zone"] is not None:
            instant(stated)
        return stated


def instant(stated, zone_name=None):
    """The UTC instant of a timed due in its zone (or `zone_name`, the user's, when it names none); 400 naming `due`
    for a wall time that does not exist there."""
    zone_name = stated["time_zone"] or zone_name
    try:
        return due.timed_instant(stated["date"], stated["time"], zone_name)
    except due.NonexistentTime:
        raise ValidationError(
            f"{stated['time'].isoformat()} does not exist on {stated['date'].isoformat()} in {zone_name}"
            " (the clocks skip it)."
        ) from None


def _zone_name(name):
    if due.zone(name) is None:
        raise ValueError("Not a time zone this server knows; give an IANA name such as Europe/Berlin.")
    return name


def _not_a_string():
    raise ValueError("Must be a string.")


LABELS_MAX, LABEL_CHARS_MAX = 20, 50


class Labels(fields.Field):
    """At most 20 labels, each a string, trimmed, then 1-50 characters without commas or control characters, no
    two equal ignoring case (Unicode case folding). Loads to the labels as spelled (trimmed), in the order given."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("Must be a list of strings.")
        if len(value) > LABELS_MAX:
            raise ValidationError(f"At most {LABELS_MAX} labels.")
        labels, seen, problems = [], {}, []
        for given in value:
            try:
                label = label_text(given)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            key = search.fold(label)
            if key in seen:
                problems.append(f"{seen[key]!r} and {label!r} are the same label (case is ignored).")
            seen.setdefault(key, label)
            labels.append(label)
        if problems:
            raise ValidationError(list(dict.fromkeys(problems)))
        return labels


def label_text(given):
    """One label, trimmed, or ValueError saying what is wrong with it."""
    if not isinstance(given, str):
        raise ValueError("Each label must be a string.")
    if not _utf8_encodable(given):
        raise ValueError("A label must not contain unpaired surrogates.")
    label = given.strip()
    if not 1 <= len(label) <= LABEL_CHARS_MAX:
        raise ValueError(f"Each label must be 1-{LABEL_CHARS_MAX} characters once trimmed.")
    if "," in label or any(unicodedata.category(c) == "Cc" for c in label):
        raise ValueError("A label must not contain commas or control characters.")
    return label


class QueryList(fields.String):
    """A comma-separated query value: the items given once each, sorted (a filter's canonical form), through
    `parse_item` (which raises ValueError for a bad one)."""

    def __init__(self, parse_item, max_items, **kwargs):
        super().__init__(**kwargs)
        self.parse_item, self.max_items = parse_item, max_items

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        items = value.split(",")
        if len(items) > self.max_items:
            raise ValidationError(f"At most {self.max_items} comma-separated values.")
        try:
            return sorted({self.parse_item(item) for item in items})
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class QueryDate(fields.String):
    """A query-string date: exactly YYYY-MM-DD."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return due.parse_date(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class SearchQuery(Text):
    """`q`: 1-200 characters holding at least one term; loads to its terms, folded, each once, sorted."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not 1 <= len(value) <= 200:
            raise ValidationError("Length must be between 1 and 200.")
        terms = sorted(set(search.terms(value)))
        if not terms:
            raise ValidationError("Give at least one term.")
        return terms

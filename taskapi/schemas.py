"""Marshmallow schemas: the one place that says what input is valid and how resources are written out."""

from datetime import UTC, datetime, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from taskapi import search
from taskapi.bounds import OFFSET_MAX
from taskapi.errors import ListNotFound, TaskNotFound, UserNotFound
from taskapi.fields import (
    LABEL_CHARS_MAX,
    LABELS_MAX,
    WHITESPACE,
    CanonicalUUID,
    Due,
    Labels,
    QueryBoolean,
    QueryDate,
    QueryId,
    QueryInteger,
    QueryList,
    SearchQuery,
    StrictBoolean,
    Text,
    TimeZoneName,
    UtcTimestamp,
    label_text,
    parse_uuid,
)
from taskapi.queries import SORTS
from taskapi.signing import MAX_TOKEN_CHARS

TITLE_MAX, DESCRIPTION_MAX = 255, 10_000
# A priority's name, by its stored number (what sort=priority orders by).
PRIORITIES = ["none", "low", "medium", "high", "urgent"]
BETWEEN = "Must be between {min} and {max}."


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def incarnation(created_at):
    """Which registration of a user id this is (its created_at in microseconds): sync tokens and cursors carry it,
    so one issued before the account was deleted and registered again is refused."""
    return (created_at - EPOCH) // timedelta(microseconds=1)


PATH_ID_ERRORS = {"user_id": UserNotFound, "task_id": TaskNotFound, "list_id": ListNotFound}


def parse_path_ids(endpoint, values):
    """Turn `user_id` / `task_id` in the URL into UUIDs; an id that is not one names nothing: 404."""
    for name, not_found in PATH_ID_ERRORS.items():
        if values and name in values:
            values[name] = parse_uuid(values[name])
            if values[name] is None:
                raise not_found()


class UserSchema(Schema):
    class Meta:
        unknown = RAISE

    id = CanonicalUUID()
    created_at = UtcTimestamp(dump_only=True)
    time_zone = TimeZoneName(
        load_default="UTC",
        metadata={"description": "IANA zone: what today and an all-day due mean for this user.", "example": "UTC"},
    )


class UserPatchSchema(Schema):
    """PATCH /users/{id}: the user's writable fields (time_zone), at least one."""

    class Meta:
        unknown = RAISE

    time_zone = TimeZoneName(required=True, metadata={"example": "Europe/Berlin"})


# What the document says a due is: one of two shapes, so that a generated client never sends a zone without a time.
_DUE_DATE = {"type": "string", "format": "date", "pattern": r"^[1-8]\d{3}-\d{2}-\d{2}$", "example": "2026-12-24"}
_AT = {"type": "string", "nullable": True, "readOnly": True, "example": "2026-12-24T16:30:00Z"}
_NULL = {"type": "string", "nullable": True, "enum": [None]}
DUE_SHAPES = {
    "all-day": {
        "type": "object",
        "title": "AllDayDue",
        "properties": {"date": _DUE_DATE, "time": _NULL, "time_zone": _NULL, "at": _AT},
        "required": ["date"],
        "additionalProperties": False,
    },
    "timed": {
        "type": "object",
        "title": "TimedDue",
        "properties": {
            "date": _DUE_DATE,
            "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$", "example": "17:30"},
            "time_zone": {"type": "string", "nullable": True, "example": "Europe/Berlin"},
            "at": _AT,
        },
        "required": ["date", "time"],
        "additionalProperties": False,
    },
}


# A label as the document says it: no comma, no control character, something left once trimmed.
_LABEL_CHAR = r"[^,\u0000-\u001f\u007f-\u009f]"
LABEL_PATTERN = rf"^{_LABEL_CHAR}*[^,\u0000-\u001f\u007f-\u009f{WHITESPACE}]{_LABEL_CHAR}*$"


# Where a task is: given on create, changed afterwards only by a move.
MOVED_ONLY = ("list_id", "parent_id")


class TaskSchema(Schema):
    """A task as clients write it (title, description, is_completed) and read it (every column).

    Read-only fields are dump_only, so a body that sends them is rejected with the field named.
    """

    class Meta:
        unknown = RAISE

    id = fields.UUID(dump_only=True)
    user_id = fields.UUID(dump_only=True)
    title = Text(strip=True, required=True, validate=validate.Length(min=1, max=TITLE_MAX))
    description = Text(allow_none=True, load_default=None, validate=validate.Length(max=DESCRIPTION_MAX))
    is_completed = StrictBoolean(load_default=False)
    due = Due(
        allow_none=True,
        load_default=None,
        metadata={
            "description": 'null; all-day `{"date"}`; or `{"date", "time", "time_zone"}` (a wall time; the'
            " user's zone when none is given). Answered whole, with `at`: the UTC instant of a timed due.",
            "nullable": True,
            "oneOf": [DUE_SHAPES["all-day"], DUE_SHAPES["timed"]],
        },
    )
    priority = fields.String(load_default="none", validate=validate.OneOf(PRIORITIES))
    labels = Labels(
        load_default=list,
        metadata={
            "type": "array",
            "maxItems": LABELS_MAX,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": LABEL_CHARS_MAX, "pattern": LABEL_PATTERN},
            "description": "Compared ignoring case (Unicode case folding); answered as spelled, in the order given.",
        },
    )
    completed_at = UtcTimestamp(
        dump_only=True,
        allow_none=True,
        metadata={"description": "When is_completed last became true; null while false."},
    )
    list_id = CanonicalUUID(
        allow_none=True,
        metadata={
            "description": "The task's list (null: none). Set on create (a subtask given none goes to its parent's"
            " list); changed only by POST .../move.",
            "nullable": True,
        },
    )
    parent_id = CanonicalUUID(
        allow_none=True,
        metadata={
            "description": "The parent task (null: top level), in the same list; at most 5 levels, 1,000 children."
            " Set on create; changed only by POST .../move.",
            "nullable": True,
        },
    )
    position = fields.String(
        dump_only=True,
        metadata={
            "description": "Manual order among the siblings (same list_id and parent_id): sort by it as bytes, ties"
            " by id. Kept by the server.",
            "example": "a0",
        },
    )
    version = fields.Integer(
        dump_only=True, metadata={"description": "Changes on every PUT or PATCH, never repeats; the ETag."}
    )
    created_at = UtcTimestamp(dump_only=True)
    updated_at = UtcTimestamp(dump_only=True)


class MoveSchema(Schema):
    """POST .../tasks/{task_id}/move: where to (each field optional)."""

    class Meta:
        unknown = RAISE

    list_id = CanonicalUUID(
        allow_none=True,
        metadata={"description": "The destination list (null: none); absent: the task's list.", "nullable": True},
    )
    parent_id = CanonicalUUID(
        allow_none=True,
        metadata={
            "description": "The new parent (null: top level); absent: the same parent while the list stays, top"
            " level when list_id changes.",
            "nullable": True,
        },
    )
    after_id = CanonicalUUID(
        allow_none=True,
        metadata={
            "description": "The sibling to follow at the destination; null: first; absent: last.",
            "nullable": True,
        },
    )


class ListSchema(Schema):
    """A list as clients write it (name) and read it."""

    class Meta:
        unknown = RAISE

    id = fields.UUID(dump_only=True)
    user_id = fields.UUID(dump_only=True)
    name = Text(strip=True, required=True, validate=validate.Length(min=1, max=TITLE_MAX), metadata={"example": "Work"})
    position = fields.String(
        dump_only=True, metadata={"description": "Manual order of the user's lists, as bytes.", "example": "a0"}
    )
    version = fields.Integer(dump_only=True, metadata={"description": "Changes on every write; the ETag."})
    created_at = UtcTimestamp(dump_only=True)
    updated_at = UtcTimestamp(dump_only=True)


class ListMoveSchema(Schema):
    class Meta:
        unknown = RAISE

    after_id = CanonicalUUID(
        allow_none=True,
        metadata={"description": "The list to follow; null: first; absent: last.", "nullable": True},
    )


class QuerySchema(Schema):
    """A query string: unknown parameters are 400, and so is one given twice."""

    class Meta:
        unknown = RAISE

    @pre_load
    def single_values(self, data, **kwargs):
        """A repeated parameter is ambiguous: reject it rather than guess which value was meant."""
        if hasattr(data, "getlist"):
            repeated = {key: ["Give this parameter once."] for key in data if len(data.getlist(key)) > 1}
            if repeated:
                raise ValidationError(repeated)
            data = data.to_dict()
        return data


def priority_number(name):
    if name not in PRIORITIES:
        raise ValueError(f"Give priorities from {', '.join(PRIORITIES)}.")
    return PRIORITIES.index(name)


class TaskListQuerySchema(QuerySchema):
    limit = QueryInteger(load_default=20, validate=validate.Range(min=1, max=100, error=BETWEEN))
    offset = QueryInteger(
        load_default=0,
        validate=validate.Range(min=0, max=OFFSET_MAX, error=BETWEEN + " Deeper pages: follow next_cursor."),
    )
    is_completed = QueryBoolean()
    priority = QueryList(
        priority_number,
        len(PRIORITIES),
        metadata={"description": "Comma-separated priorities, e.g. `high,urgent`: tasks with any of them."},
    )
    label = QueryList(
        lambda given: search.fold(label_text(given)),
        LABELS_MAX,
        metadata={"description": "Comma-separated labels: tasks carrying every one (case is ignored)."},
    )
    list_id = QueryId(metadata={"description": "A list's id (its tasks, at every level), or `none`: tasks in no list."})
    parent_id = QueryId(metadata={"description": "A task's id (its subtasks), or `none`: top-level tasks."})
    due_from = QueryDate(metadata={"description": "Due on or after this date (in the user's zone), YYYY-MM-DD."})
    due_to = QueryDate(metadata={"description": "Due on or before this date (in the user's zone), YYYY-MM-DD."})
    has_due = QueryBoolean()
    overdue = QueryBoolean(metadata={"description": "`true`: not completed and due before now."})
    q = SearchQuery(
        metadata={
            "description": "1-200 characters: tasks whose title or description contains every whitespace-separated"
            " term, ignoring case.",
            "minLength": 1,
            "maxLength": 200,
        }
    )
    sort = fields.String(
        validate=validate.OneOf(SORTS),
        metadata={"description": "Order; ties broken by id in the same direction. Default `-created_at`."},
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=MAX_TOKEN_CHARS),
        metadata={"description": "`next_cursor` of the previous page; carries its sort and filter. Not with offset."},
    )
    count = fields.String(
        load_default="exact",
        validate=validate.OneOf(["exact", "none"]),
        metadata={"description": "`none`: `total` is null and nothing is counted."},
    )


class ChangesQuerySchema(QuerySchema):
    since = fields.String(
        validate=validate.Length(min=1, max=MAX_TOKEN_CHARS),
        metadata={"description": "`next_since` of an earlier answer; absent: from the beginning."},
    )
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000, error=BETWEEN))


user_schema = UserSchema()
user_patch_schema = UserPatchSchema()
task_schema = TaskSchema()
move_schema = MoveSchema()
list_schema = ListSchema()
list_move_schema = ListMoveSchema()
task_list_query_schema = TaskListQuerySchema()
changes_query_schema = ChangesQuerySchema()

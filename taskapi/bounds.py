"""What one request may cost: the bytes of an answer, the depth of an offset."""

import contextvars
from contextlib import contextmanager

# No list page or change-feed answer passes this many bytes: it stops early (`next_cursor`, `has_more`) before the
# item that would take it past, and always holds at least one item (a task's JSON is at most about 62 KB).
ANSWER_BYTES_MAX = 1_048_576
# What the items of an answer may take: the budget less room for the rest of it (a cursor of up to 3 KB, counts).
ROOM = 8_192
ITEMS_BYTES_MAX = ANSWER_BYTES_MAX - ROOM
# The deepest offset a list page may start at: past it, `cursor` (a keyset seek, the same cost at any depth).
OFFSET_MAX = 10_000


# Inside a batch: what is left of the one answer's worth of bytes its task pages share (None outside).
_batch_left = contextvars.ContextVar("batch_answer_bytes_left", default=None)


def items_budget():
    """What the items of this answer may take: ITEMS_BYTES_MAX, or inside a batch what its earlier answers left of
    one answer's bytes (a page still holds at least one item, so it can always be walked on)."""
    left = _batch_left.get()
    return ITEMS_BYTES_MAX if left is None else max(0, min(ITEMS_BYTES_MAX, left - ROOM))


@contextmanager
def shared_answer():
    """The block's task pages share one answer's ANSWER_BYTES_MAX (a batch: without it, 100 pages of 1 MiB each)."""
    token = _batch_left.set(ANSWER_BYTES_MAX)
    try:
        yield
    finally:
        _batch_left.reset(token)


def spent(nbytes):
    """An answer of `nbytes` was given inside `shared_answer`: the answers after it have that much less."""
    left = _batch_left.get()
    if left is not None:
        _batch_left.set(left - nbytes)


def text_bytes(text):
    """The UTF-8 size of `text` (isascii() is a flag lookup: no encoding for the common case)."""
    return len(text) if text.isascii() else len(text.encode())


def fitting(items, budget=ITEMS_BYTES_MAX):
    """How many of `items` (JSON texts, in order) fit in `budget` bytes joined by commas; at least one."""
    used = 0
    for n, item in enumerate(items):
        used += text_bytes(item) + 1
        if used > budget and n:
            return n
    return len(items)


# The labels one answer of GET /users/{id}/labels lists (a label's JSON is at most about 250 bytes): past it the
# answer says `truncated`.
LABELS_SHOWN_MAX = 4_000

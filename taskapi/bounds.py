"""What one request may cost: the bytes of an answer, the depth of an offset."""

# No list page or change-feed answer passes this many bytes: it stops early (`next_cursor`, `has_more`) before the
# item that would take it past, and always holds at least one item (a task's JSON is at most about 62 KB).
ANSWER_BYTES_MAX = 1_048_576
# What the items of an answer may take: the budget less room for the rest of it (a cursor of up to 3 KB, counts).
ITEMS_BYTES_MAX = ANSWER_BYTES_MAX - 8_192
# The deepest offset a list page may start at: past it, `cursor` (a keyset seek, the same cost at any depth).
OFFSET_MAX = 10_000


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

"""What `q` and `label` compare: text folded for case, and the hashed, user-scoped keys an index finds them by.

PostgreSQL's own case mapping depends on the database's locale (under "C" it folds ASCII only), and the trigram
extension is not everywhere: so the service folds (Unicode case folding, NFC) and hashes here, and the database only
stores and compares. A task's keys are the distinct 1- to 3-grams of its folded title and description, and its folded
labels, each hashed (CRC-32) together with the user's id: one GIN index over them finds a user's candidates without
an index that leads with user_id, and the folded text and labels then decide exactly (a collision only adds a
candidate). Each field has keys of its own, so a write that changes one field recomputes only that field's.
"""

import unicodedata
import zlib

LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
GRAM_MAX = 3


def fold(text):
    """`text` as the comparisons see it: case-folded, composed (`CAFÉ`, `café`, `cafe\u0301` are one)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def text_keys(user_id, folded):
    """The lookup keys of one folded text (a title, a description): its distinct 1- to 3-grams."""
    return _hashed(user_id, b"g", _grams(folded, range(1, GRAM_MAX + 1)))


def label_hashes(user_id, label_keys):
    """The lookup keys of folded labels; a task carrying every one of them has all of these."""
    return _hashed(user_id, b"l", label_keys)


def _hashed(user_id, kind, values):
    seed = zlib.crc32(kind, zlib.crc32(user_id.bytes))
    # As PostgreSQL's signed integer.
    return sorted({(h := zlib.crc32(value.encode(), seed)) - (h >> 31 << 32) for value in values})


def _grams(text, lengths):
    return {text[i : i + n] for n in lengths for i in range(len(text) - n + 1)}


def terms(q):
    """The folded whitespace-separated terms of a query (duplicates dropped, order kept)."""
    return list(dict.fromkeys(fold(q).split()))


def term_keys(user_id, folded_terms):
    """The keys a task containing every term has: each term's longest grams (a term is its own gram when short)."""
    grams = set()
    for term in folded_terms:
        grams |= _grams(term, [min(len(term), GRAM_MAX)])
    return _hashed(user_id, b"g", grams)


def like_patterns(folded_terms):
    """`LIKE ALL` patterns: each term anywhere, its `%`, `_` and `\\` taken literally."""
    return [f"%{term.translate(LIKE_SPECIAL)}%" for term in folded_terms]

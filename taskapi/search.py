"""What `q` and `label` compare: text folded for case, and the hashed, user-scoped keys an index finds them by.

PostgreSQL's own case mapping depends on the database's locale (under "C" it folds ASCII only), and the trigram
extension is not everywhere: so the service folds (Unicode case folding, NFC) and hashes here, and the database only
stores and compares. A task's keys are the distinct trigrams of the words of its folded title and description (a
term holds no whitespace, so no query asks for a gram across one), and its folded labels, each hashed (CRC-32)
together with the user's id: one GIN index over them finds a user's candidates without an index that leads with
user_id, and the folded text and labels then decide exactly (a collision only adds a candidate). Each field has keys
of its own, so a write that changes one field recomputes only that field's.

Trigrams of words only, as pg_trgm: a term of one or two characters has no key, and a query made only of such terms
reads the user's tasks in the page's order (dense matches end the page soon; a rare pair of letters reads them all).
The keys are what a write costs: inserting them into the GIN index was more than half of what a create or an update
cost PostgreSQL when they were every 1- to 3-gram of the text (migration 0009's first design: about five times as
many). Rows keyed that way keep the extra keys, a superset that every query still finds, until their next write.
"""

import unicodedata
import zlib

LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
GRAM = 3


def fold(text):
    """`text` as the comparisons see it: case-folded, composed (`CAFÉ`, `café`, `cafe\u0301` are one)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def text_keys(user_id, folded):
    """The lookup keys of one folded text (a title, a description): the distinct trigrams of its words."""
    return _hashed(user_id, b"g", _grams(folded))


def label_hashes(user_id, label_keys):
    """The lookup keys of folded labels; a task carrying every one of them has all of these."""
    return _hashed(user_id, b"l", label_keys)


def _hashed(user_id, kind, values):
    seed = zlib.crc32(kind, zlib.crc32(user_id.bytes))
    # As PostgreSQL's signed integer.
    return sorted({(h := zlib.crc32(value.encode(), seed)) - (h >> 31 << 32) for value in values})


def _grams(text):
    """The trigrams of the whitespace-separated words of `text` (str.split's whitespace, as `terms` splits)."""
    return {word[i : i + GRAM] for word in text.split() for i in range(len(word) - GRAM + 1)}


def terms(q):
    """The folded whitespace-separated terms of a query (duplicates dropped, order kept)."""
    return list(dict.fromkeys(fold(q).split()))


def term_keys(user_id, folded_terms):
    """The keys a task containing every term has: the trigrams of each term; none for a term shorter than that."""
    return _hashed(user_id, b"g", _grams(" ".join(folded_terms)))


def like_patterns(folded_terms):
    """`LIKE ALL` patterns: each term anywhere, its `%`, `_` and `\\` taken literally."""
    return [f"%{term.translate(LIKE_SPECIAL)}%" for term in folded_terms]

"""Manual-order keys of siblings (`position`): fractional indexing over 0-9A-Za-z, compared as bytes.

A key is an integer part and then a fraction, both in base 62 with the digits 0-9A-Za-z, whose ASCII byte order
(PostgreSQL `COLLATE "C"`, Python's `str` comparison) is their digit order. The integer part's first character says
how many digits follow: a..z one to 26 (the integers from 0 up), Z..A one to 26 (the negative ones, Z nearest 0), so
integers compare as their keys do and a key grows by one character only after 62, 3,844, 238,328... appends at the
end ("a0", "a1", ... "az", "b00") or as many prepends ("Zz", ... "Z0", "Yzz"). The fraction never ends in "0", so
there is always a key between two others, at most one character longer than the longer of the two (this is
rocicorp's `fractional-indexing`, as Figma uses it). Inserting again and again into the same gap halves it each
time, about six inserts per character, so `between` may return a key longer than MAX_LENGTH; it never fails on
length. The caller checks `len(key) > MAX_LENGTH` and then renumbers the whole sibling group, in its manual order
and with the new key's task in its place, with `spread(len(group))`: 1 + ceil(log62(len(group) + 1)) characters.
"""

import string

DIGITS = string.digits + string.ascii_uppercase + string.ascii_lowercase
BASE = len(DIGITS)
MAX_LENGTH = 64
MAX_INTEGER_DIGITS = 26
FIRST = "a0"
# The least integer: nothing could ever sort before it alone, so it is only ever a key with a fraction after it.
SMALLEST_INTEGER = "A" + "0" * MAX_INTEGER_DIGITS
_DIGIT_VALUES = {digit: value for value, digit in enumerate(DIGITS)}


def between(before: str | None, after: str | None) -> str:
    """A key strictly between two siblings' keys; None is no sibling on that side (first, last, or the only one)."""
    if after is None:
        if before is None:
            return FIRST
        integer, fraction = _split(before)
        return _integer(_value(integer) + 1) or integer + _midpoint(fraction, None)
    integer, fraction = _split(after)
    if before is None:
        if integer == SMALLEST_INTEGER:
            return integer + _midpoint("", fraction)
        if fraction:
            return integer
        return _integer(_value(integer) - 1) or SMALLEST_INTEGER + _midpoint("", None)
    low_integer, low_fraction = _split(before)
    if before >= after:
        raise ValueError(f"position {before!r} does not sort before {after!r}")
    if low_integer == integer:
        return integer + _midpoint(low_fraction, fraction)
    # The next integer exists: the integer part of `after` is a greater one.
    higher = _integer(_value(low_integer) + 1)
    return higher if higher < after else low_integer + _midpoint(low_fraction, None)


def spread(count: int) -> list[str]:
    """`count` keys in increasing order, evenly spaced over the integers of one width: 1 + ceil(log62(count + 1))
    characters each, with room between and around them."""
    width = 1
    while BASE**width <= count:
        width += 1
    head = chr(ord("a") + width - 1)
    return [head + _digits((index + 1) * BASE**width // (count + 1), width) for index in range(count)]


def valid(key: object) -> bool:
    """Whether `key` is a well-formed key of at most MAX_LENGTH characters, as every stored position is."""
    try:
        _split(key)
    except ValueError:
        return False
    return len(key) <= MAX_LENGTH


def _split(key):
    """(integer part, fraction) of a well-formed key of any length; ValueError for anything else."""
    if isinstance(key, str) and key and key[0] in string.ascii_letters:
        end = 1 + (ord(key[0]) - ord("a") + 1 if key[0] >= "a" else ord("Z") - ord(key[0]) + 1)
        integer, fraction = key[:end], key[end:]
        well_formed = len(integer) == end and key != SMALLEST_INTEGER and not fraction.endswith("0")
        if well_formed and all(character in _DIGIT_VALUES for character in key):
            return integer, fraction
    raise ValueError(f"malformed position {key!r}")


def _value(integer):
    """The integer an integer part stands for."""
    width, number = len(integer) - 1, 0
    for digit in integer[1:]:
        number = number * BASE + _DIGIT_VALUES[digit]
    shorter = sum(BASE**size for size in range(1, width))
    return shorter + number if integer[0] >= "a" else number - shorter - BASE**width


def _integer(value):
    """The integer part standing for `value`; None past the 26-digit integers and for SMALLEST_INTEGER."""
    width = 1
    if value >= 0:
        while value >= BASE**width:
            value, width = value - BASE**width, width + 1
        head = chr(ord("a") + width - 1)
    else:
        while value < -(BASE**width):
            value, width = value + BASE**width, width + 1
        value, head = value + BASE**width, chr(ord("Z") - width + 1)
    integer = head + _digits(value, width)
    return integer if width <= MAX_INTEGER_DIGITS and integer != SMALLEST_INTEGER else None


def _digits(number, width):
    """`number` in base 62, `width` digits with leading zeros."""
    digits = ""
    for _ in range(width):
        number, digit = divmod(number, BASE)
        digits = DIGITS[digit] + digits
    return digits


def _midpoint(low, high):
    """A fraction strictly between fractions `low` < `high` (None: 1), as short as the gap allows, never ending in 0."""
    prefix = ""
    if high is not None:
        # Skip what they share, reading `low` as padded with zeros; `high` has no trailing zero, so they differ.
        shared = 0
        while (low[shared : shared + 1] or "0") == high[shared]:
            shared += 1
        prefix, low, high = high[:shared], low[shared:], high[shared:]
        low_digit, high_digit = _DIGIT_VALUES[low[0]] if low else 0, _DIGIT_VALUES[high[0]]
        if high_digit - low_digit > 1:
            return prefix + DIGITS[(low_digit + high_digit) // 2]
        if len(high) > 1:
            return prefix + high[0]
        # No digit fits between them: keep low's, and find room above the rest of low.
        prefix, low = prefix + DIGITS[low_digit], low[1:]
    # With no bound above, the first digit of low that is not the largest has room above it.
    largest = len(low) - len(low.lstrip(DIGITS[-1]))
    low_digit = _DIGIT_VALUES[low[largest]] if largest < len(low) else 0
    return prefix + low[:largest] + DIGITS[(low_digit + BASE) // 2]

"""Position keys without a database: a key between any two keeps the byte order, spread and appends stay short, and
renumbering with spread keeps every key within MAX_LENGTH through the SPEC's 10,000 moves into one gap."""

import random
import string
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from taskapi.positions import DIGITS, MAX_LENGTH, SMALLEST_INTEGER, between, spread, valid

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
# Most carries and borrows happen at the ends of the alphabet, and most keys of a real group start with these heads.
DIGIT = st.one_of(st.sampled_from("01yz"), st.sampled_from(ALPHABET))
HEAD = st.one_of(st.sampled_from("aZbYzA"), st.sampled_from(string.ascii_letters))
FRACTION = st.text(DIGIT, max_size=15).map(lambda digits: digits.rstrip("0"))


def integer_width(key):
    """How many characters the integer part of `key` takes: its head and the digits the head announces."""
    head = key[0]
    return 1 + (ord(head) - ord("a") + 1 if head.islower() else ord("Z") - ord(head) + 1)


@st.composite
def keys(draw):
    """A well-formed key of at most 42 characters."""
    head = draw(HEAD)
    digits = integer_width(head) - 1
    key = head + draw(st.text(DIGIT, min_size=digits, max_size=digits)) + draw(FRACTION)
    assume(key != SMALLEST_INTEGER)
    return key


@st.composite
def ordered_pairs(draw):
    """Two keys a < b of at most 57 characters, often sharing the integer part or more, where keys come closest."""
    first = draw(keys())
    if draw(st.booleans()):
        second = draw(keys())
    else:
        cut = draw(st.integers(integer_width(first), len(first)))
        second = first[:cut] + draw(FRACTION)
    assume(first != second and valid(second))
    return min(first, second), max(first, second)


def assert_between(before, after, key):
    assert (before is None or before < key) and (after is None or key < after)
    assert valid(key)
    # One insert makes a key at most one character longer than its longer neighbour (the first key has two).
    assert len(key) <= max(len(before or ""), len(after or ""), 1) + 1


def base62(digits):
    number = 0
    for digit in digits:
        number = number * 62 + ALPHABET.index(digit)
    return number


def width_for(count):
    """ceil(log62(count + 1)): the fewest base-62 digits that number `count` keys apart from 0."""
    digits = 1
    while 62**digits <= count:
        digits += 1
    return digits


def test_alphabet_is_ascii_in_byte_order():
    assert DIGITS == ALPHABET
    encoded = DIGITS.encode("ascii")
    assert list(encoded) == sorted(encoded) and len(set(encoded)) == 62


@given(ordered_pairs())
def test_between_two_keys(pair):
    before, after = pair
    assert_between(before, after, between(before, after))


@given(keys())
def test_between_a_key_and_no_neighbour(key):
    assert_between(None, key, between(None, key))
    assert_between(key, None, between(key, None))


@given(ordered_pairs())
def test_unordered_neighbours_are_rejected(pair):
    before, after = pair
    for wrong in ((after, before), (before, before)):
        with pytest.raises(ValueError):
            between(*wrong)


@given(ordered_pairs())
def test_str_order_is_byte_order(pair):
    before, after = pair
    assert before.encode("ascii") < after.encode("ascii")
    key = between(before, after)
    assert before.encode("ascii") < key.encode("ascii") < after.encode("ascii")


@pytest.mark.parametrize(
    "before, after, expected",
    [
        (None, None, "a0"),
        ("a0", None, "a1"),
        (None, "a0", "Zz"),
        ("a0", "a1", "a0V"),
        ("a0", "a0V", "a0F"),
        ("a0V", "a1", "a0k"),
        ("az", None, "b00"),
        (None, "Z0", "Yzz"),
        (None, "a0V", "a0"),
        ("a0zz", "a1", "a0zzV"),
        (None, SMALLEST_INTEGER + "1", SMALLEST_INTEGER + "0V"),
        (None, "A" + "0" * 25 + "1", SMALLEST_INTEGER + "V"),
        ("z" * 27, None, "z" * 27 + "V"),
    ],
)
def test_between_examples(before, after, expected):
    assert between(before, after) == expected


@pytest.mark.parametrize(
    "key",
    ["", "a", "b", "0", "0a", "a00", "aV0", "b0", "a0 ", "a0-", "a0é", "é", SMALLEST_INTEGER, 7, b"a0"],
)
def test_malformed_keys(key):
    """Single letters are malformed here: a head always announces its digits (unlike a plain-fraction scheme)."""
    assert not valid(key)
    for pair in ((key, None), (None, key), (key, "z" * 27), ("Z0", key)):
        with pytest.raises(ValueError):
            between(*pair)


def test_valid_keys():
    assert not valid(None)
    assert valid("a0") and valid("Zz") and valid("a0V") and valid(SMALLEST_INTEGER + "1")
    assert valid("a" + "0" + "V" * 62) and not valid("a" + "0" + "V" * 63)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2000))
def test_spread(count):
    positions = spread(count)
    assert len(positions) == count and all(valid(key) for key in positions)
    assert all(before < after for before, after in pairwise(positions))
    assert {len(key) for key in positions} <= {1 + width_for(count)}
    # Room around and between: the next key is never longer than one more character.
    for before, after in pairwise([None, *positions, None]):
        assert_between(before, after, between(before, after))


@pytest.mark.parametrize("count, length", [(1, 2), (61, 2), (62, 3), (3843, 3), (3844, 4), (100_000, 4)])
def test_spread_widths_and_even_gaps(count, length):
    positions = spread(count)
    assert len(positions) == count and all(valid(key) for key in positions)
    assert all(before < after for before, after in pairwise(positions))
    assert {len(key) for key in positions} == {length}
    # Evenly spaced over the integers of that width, 0 and the first of the next width included.
    values = [0, *(base62(key[1:]) for key in positions), 62 ** (length - 1)]
    gaps = {after - before for before, after in pairwise(values)}
    assert min(gaps) >= 1 and max(gaps) - min(gaps) <= 1


@pytest.mark.parametrize("side", ["last", "first"])
def test_appending_and_prepending_100000_keys_stays_short(side):
    key = between(None, None)
    for _ in range(100_000):
        new = between(key, None) if side == "last" else between(None, key)
        assert (key < new) if side == "last" else (new < key)
        key = new
    print(f"after 100,000 keys placed {side}, the newest is {key!r}: {len(key)} characters")
    assert len(key) == 4


def same_gap(pattern, step):
    """Whether the `step`th insert into one gap goes just before the previous insert (else just after it)."""
    return {"before": True, "after": False, "alternating": step % 2 == 0}[pattern]


PATTERNS = ["before", "after", "alternating"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_10000_inserts_into_one_gap_outgrow_max_length(pattern):
    """Without renumbering, the SPEC's worst case outgrows MAX_LENGTH, though every key stays in order."""
    low, previous, high = spread(3)
    outgrown = None
    for step in range(1, 10_001):
        if same_gap(pattern, step):
            key = between(low, previous)
            assert low < key < previous
            previous, high = key, previous
        else:
            key = between(previous, high)
            assert previous < key < high
            low, previous = previous, key
        if outgrown is None and len(key) > MAX_LENGTH:
            outgrown = step
    print(f"{pattern}: past {MAX_LENGTH} characters after {outgrown} inserts, {len(previous)} after 10,000")
    assert 300 < outgrown < 400 and len(previous) > 1000


class Siblings:
    """A sibling group as the service keeps it: tasks in their intended order, each with its key, renumbered with
    spread whenever a new key would pass MAX_LENGTH."""

    def __init__(self, count):
        self.order = list(range(count))
        self.keys = dict(zip(self.order, spread(count), strict=True))
        self.renumbered = 0

    def place(self, task, index):
        """Put `task` at `index` of the intended order, keyed between its new neighbours."""
        self.order.insert(index, task)
        before = self.keys[self.order[index - 1]] if index > 0 else None
        after = self.keys[self.order[index + 1]] if index + 1 < len(self.order) else None
        key = between(before, after)
        if len(key) > MAX_LENGTH:
            self.keys = dict(zip(self.order, spread(len(self.order)), strict=True))
            self.renumbered += 1
            self.assert_in_order()
        else:
            self.keys[task] = key

    def remove(self, task):
        self.order.remove(task)
        del self.keys[task]

    def assert_in_order(self):
        assert len(self.keys) == len(self.order)
        assert all(self.keys[before] < self.keys[after] for before, after in pairwise(self.order))
        assert all(valid(key) for key in self.keys.values())


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kind", ["moves", "inserts"])
def test_10000_into_one_gap_with_renumbering(kind, pattern):
    """The SPEC's worst case: 10,000 moves (in a group of 1,000) or creates into one gap; every key <= MAX_LENGTH."""
    pick = random.Random(2026)
    group = Siblings(1000 if kind == "moves" else 3)
    index = len(group.order) // 2  # of the task placed last, which the next one goes just before or after
    longest = 0
    for step in range(10_000):
        index += 0 if same_gap(pattern, step) else 1
        if kind == "moves":
            # Any task but the one placed last and the neighbours this one goes between.
            near = set(group.order[index - 1 : index + 1])
            task = pick.choice(group.order)
            while task in near:
                task = pick.choice(group.order)
            if group.order.index(task) < index:
                index -= 1
            group.remove(task)
        else:
            task = 3 + step
        group.place(task, index)
        longest = max(longest, len(group.keys[task]))
    group.assert_in_order()
    assert longest <= MAX_LENGTH
    print(f"{kind}, {pattern}: {group.renumbered} renumberings of {len(group.order)} siblings in 10,000")
    assert 10 <= group.renumbered <= 40


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 30), st.data())
def test_random_operations_keep_a_total_order(count, data):
    group = Siblings(count)
    last_index, next_task = 0, count
    operations = data.draw(st.lists(st.sampled_from(["insert", "insert", "move", "delete"]), max_size=150))
    for operation in operations:
        if operation != "insert" and not group.order:
            continue
        if operation != "insert":
            task = data.draw(st.sampled_from(group.order))
            group.remove(task)
        if operation != "delete":
            # Often the same gap as the last time, where keys grow fastest.
            bound = len(group.order)
            index = data.draw(st.one_of(st.just(min(last_index, bound)), st.integers(0, bound)))
            if operation == "insert":
                task, next_task = next_task, next_task + 1
            group.place(task, index)
            last_index = index
        group.assert_in_order()

"""Due-date rules: IANA zones from the pinned tzdata, wall time + zone -> UTC instant, and a day's bounds in a zone."""

import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import tzdata  # noqa: F401  (fail at import, not on the first request, when the zone files are missing)

# Only the pinned tzdata package, never the machine's zone files, so every machine gives the same answers; zones
# cached before this import may have come from those files.
zoneinfo.reset_tzpath(to=[])
ZoneInfo.clear_cache()

# "Factory" is tzdata's placeholder for "no zone configured", not a place anyone lives in.
KNOWN_ZONES = frozenset(zoneinfo.available_timezones() - {"Factory"})

# Bounds clamped to what datetime can hold: a day ending past 9999-12-31 UTC ends at LATEST.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)

DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?", re.ASCII)
MICROSECOND = timedelta(microseconds=1)
# The dates a due may have: wide for any to-do list, and far from datetime's own ends (no instant of a due, in any
# zone, overflows), and from the far past and future that stand for "no due" in sort=due.
FIRST_DAY, LAST_DAY = date(1000, 1, 1), date(8999, 12, 31)


class NonexistentTime(ValueError):
    """A wall time that a zone skips (the hour lost when clocks go forward)."""


def zone(name):
    """The zone for an IANA name the pinned tzdata knows (case-sensitive), else None."""
    if isinstance(name, str) and name in KNOWN_ZONES:
        return ZoneInfo(name)
    return None


def timed_instant(day, at, zone_name):
    """The UTC instant of wall time `at` on `day` in the zone; a repeated wall time means its first occurrence."""
    tz = _known(zone_name)
    wall = datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz)
    try:
        instant = wall.astimezone(UTC)
    except OverflowError:
        raise ValueError("The due time falls outside the years 0001-9999 in UTC.") from None
    if _naive(instant.astimezone(tz)) != _naive(wall):
        raise NonexistentTime(f"{at.isoformat()} does not occur on {day.isoformat()} in {zone_name} (clocks skip it).")
    return instant


def day_end(day, zone_name):
    """The first UTC instant whose local date in the zone is after `day` (clamped to LATEST)."""
    tz = _known(zone_name)
    if day == date.max:
        return LATEST
    return _day_start(day + timedelta(days=1), tz)


def day_range(first, last, zone_name):
    """The half-open UTC interval [start of `first`, end of `last`) in the zone: inclusive dates as instants."""
    return _day_start(first, _known(zone_name)), day_end(last, zone_name)


def today(zone_name, now):
    """The date it is in the zone at the aware instant `now`."""
    return _aware(now).astimezone(_known(zone_name)).date()


def parse_date(text):
    """A date written exactly as YYYY-MM-DD, or ValueError."""
    match = DATE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError("Expected a date as YYYY-MM-DD.")
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        raise ValueError(f"{text} is not a date that exists.") from None


def parse_time(text):
    """A time written exactly as HH:MM or HH:MM:SS, from 00:00:00 to 23:59:59, or ValueError."""
    match = TIME.fullmatch(text) if isinstance(text, str) else None
    if match:
        hour, minute, second = (int(part) for part in match.groups(default="0"))
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise ValueError("Expected a time as HH:MM or HH:MM:SS, from 00:00:00 to 23:59:59.")


def format_instant(moment):
    """An aware instant as the API writes it: UTC, whole seconds, `Z` (2026-12-24T16:30:00Z)."""
    return _naive(_aware(moment).astimezone(UTC)).isoformat(timespec="seconds") + "Z"


def _known(zone_name):
    tz = zone(zone_name)
    if tz is None:
        raise ValueError(f"Unknown time zone: {zone_name!r}.")
    return tz


def _aware(moment):
    # A naive datetime would be read in the machine's own zone.
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise TypeError("Expected an aware datetime.")
    return moment


def _naive(moment):
    return moment.replace(tzinfo=None)


def _day_start(day, tz):
    """The first UTC instant whose local date in `tz` is `day` or later (clamped to EARLIEST / LATEST)."""
    wall = datetime.combine(day, time(0), tzinfo=tz)
    try:
        instant = wall.astimezone(UTC)
    except OverflowError:
        return EARLIEST if day.year == 1 else LATEST
    if _naive(instant.astimezone(tz)) == _naive(wall):
        return instant
    # Midnight is skipped: the day starts at the change of offset, after `fold=1` (the offset after the change, an
    # instant still on the day before) and at or before `fold=0` (the offset before it, an instant already in `day`).
    before, after = wall.replace(fold=1).astimezone(UTC), instant
    while after - before > MICROSECOND:
        middle = before + (after - before) // 2
        before, after = (middle, after) if middle.astimezone(tz).date() < day else (before, middle)
    return after

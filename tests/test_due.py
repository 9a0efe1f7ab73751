"""Due-date rules without a database: wall time + zone -> instant across DST gaps and folds, days at the date line
and where midnight is skipped, zone names, strict parsing, and answers that do not depend on the machine's zone."""

import time as clock
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest

from taskapi import due


def utc(text):
    """An aware UTC datetime from `2026-12-24T16:30:00Z` (microseconds allowed)."""
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "day, at, zone_name, expected",
    [
        # Europe/Berlin, east of UTC: clocks skip 02:00-03:00 on 2026-03-29 and repeat it on 2026-10-25.
        ("2026-12-24", "17:30", "Europe/Berlin", "2026-12-24T16:30:00Z"),
        ("2026-07-01", "17:30", "Europe/Berlin", "2026-07-01T15:30:00Z"),
        ("2026-03-28", "12:00", "Europe/Berlin", "2026-03-28T11:00:00Z"),
        ("2026-03-29", "01:59:59", "Europe/Berlin", "2026-03-29T00:59:59Z"),
        ("2026-03-29", "03:00", "Europe/Berlin", "2026-03-29T01:00:00Z"),
        ("2026-03-30", "12:00", "Europe/Berlin", "2026-03-30T10:00:00Z"),
        ("2026-10-25", "01:59:59", "Europe/Berlin", "2026-10-24T23:59:59Z"),
        ("2026-10-25", "02:00", "Europe/Berlin", "2026-10-25T00:00:00Z"),
        ("2026-10-25", "02:30", "Europe/Berlin", "2026-10-25T00:30:00Z"),
        ("2026-10-25", "02:59:59", "Europe/Berlin", "2026-10-25T00:59:59Z"),
        ("2026-10-25", "03:00", "Europe/Berlin", "2026-10-25T02:00:00Z"),
        # America/New_York, west of UTC: skips 02:00-03:00 on 2026-03-08, repeats 01:00-02:00 on 2026-11-01.
        ("2026-03-07", "12:00", "America/New_York", "2026-03-07T17:00:00Z"),
        ("2026-03-08", "01:59:59", "America/New_York", "2026-03-08T06:59:59Z"),
        ("2026-03-08", "03:00", "America/New_York", "2026-03-08T07:00:00Z"),
        ("2026-03-09", "12:00", "America/New_York", "2026-03-09T16:00:00Z"),
        ("2026-11-01", "00:59:59", "America/New_York", "2026-11-01T04:59:59Z"),
        ("2026-11-01", "01:00", "America/New_York", "2026-11-01T05:00:00Z"),
        ("2026-11-01", "01:30", "America/New_York", "2026-11-01T05:30:00Z"),
        ("2026-11-01", "02:00", "America/New_York", "2026-11-01T07:00:00Z"),
        # Half-hour and 45-minute offsets, both sides of the date line, and UTC itself.
        ("2026-12-24", "17:30", "Asia/Kolkata", "2026-12-24T12:00:00Z"),
        ("2026-12-24", "17:30", "Asia/Kathmandu", "2026-12-24T11:45:00Z"),
        ("2026-06-16", "00:00", "Pacific/Kiritimati", "2026-06-15T10:00:00Z"),
        ("2026-06-14", "23:00", "Pacific/Pago_Pago", "2026-06-15T10:00:00Z"),
        ("2026-12-24", "23:59:59", "UTC", "2026-12-24T23:59:59Z"),
    ],
)
def test_timed_instant(day, at, zone_name, expected):
    instant = due.timed_instant(due.parse_date(day), due.parse_time(at), zone_name)
    assert instant.tzinfo is UTC
    assert due.format_instant(instant) == expected


@pytest.mark.parametrize(
    "day, at, zone_name",
    [
        ("2026-03-29", "02:00", "Europe/Berlin"),
        ("2026-03-29", "02:30", "Europe/Berlin"),
        ("2026-03-29", "02:59:59", "Europe/Berlin"),
        ("2026-03-08", "02:00", "America/New_York"),
        ("2026-03-08", "02:30", "America/New_York"),
        ("2026-03-08", "02:59:59", "America/New_York"),
        ("2026-03-08", "00:00", "America/Havana"),
        ("2011-12-30", "12:00", "Pacific/Apia"),  # Samoa skipped the whole day, crossing the date line
    ],
)
def test_a_skipped_wall_time_is_refused(day, at, zone_name):
    with pytest.raises(due.NonexistentTime, match="does not occur"):
        due.timed_instant(due.parse_date(day), due.parse_time(at), zone_name)


@pytest.mark.parametrize(
    "day, at, zone_name",
    [("0001-01-01", "00:00", "Asia/Tokyo"), ("9999-12-31", "23:00", "America/New_York")],
)
def test_an_instant_before_year_1_or_after_9999_is_refused(day, at, zone_name):
    with pytest.raises(ValueError, match="outside the years") as caught:
        due.timed_instant(due.parse_date(day), due.parse_time(at), zone_name)
    assert not isinstance(caught.value, due.NonexistentTime)


@pytest.mark.parametrize(
    "now, zone_name, expected",
    [
        # Kiritimati (UTC+14) and Pago Pago (UTC-11) are two calendar days apart from 10:00Z to 11:00Z.
        ("2026-06-15T09:59:59.999999Z", "Pacific/Kiritimati", "2026-06-15"),
        ("2026-06-15T10:00:00Z", "Pacific/Kiritimati", "2026-06-16"),
        ("2026-06-15T10:00:00Z", "Pacific/Pago_Pago", "2026-06-14"),
        ("2026-06-15T10:59:59.999999Z", "Pacific/Pago_Pago", "2026-06-14"),
        ("2026-06-15T10:59:59.999999Z", "Pacific/Kiritimati", "2026-06-16"),
        ("2026-06-15T11:00:00Z", "Pacific/Pago_Pago", "2026-06-15"),
        ("2026-06-15T10:30:00Z", "UTC", "2026-06-15"),
        # The last microsecond of a day and the first of the next, in the user's zone.
        ("2026-12-24T22:59:59.999999Z", "Europe/Berlin", "2026-12-24"),
        ("2026-12-24T23:00:00Z", "Europe/Berlin", "2026-12-25"),
        ("2026-07-01T03:59:59.999999Z", "America/New_York", "2026-06-30"),
        ("2026-07-01T04:00:00Z", "America/New_York", "2026-07-01"),
        ("2026-12-24T18:29:59.999999Z", "Asia/Kolkata", "2026-12-24"),
        ("2026-12-24T18:30:00Z", "Asia/Kolkata", "2026-12-25"),
        ("2026-12-24T18:14:59.999999Z", "Asia/Kathmandu", "2026-12-24"),
        ("2026-12-24T18:15:00Z", "Asia/Kathmandu", "2026-12-25"),
        # A `now` given in another offset means the same instant.
        ("2026-12-25T00:00:00+01:00", "Europe/Berlin", "2026-12-25"),
        ("2026-12-25T00:00:00+01:00", "UTC", "2026-12-24"),
    ],
)
def test_today(now, zone_name, expected):
    assert due.today(zone_name, utc(now)) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    "day, zone_name, expected",
    [
        ("2026-12-24", "UTC", "2026-12-25T00:00:00Z"),
        ("2026-12-24", "Europe/Berlin", "2026-12-24T23:00:00Z"),
        ("2026-06-30", "America/New_York", "2026-07-01T04:00:00Z"),
        ("2026-06-15", "Pacific/Kiritimati", "2026-06-15T10:00:00Z"),
        ("2026-06-15", "Pacific/Pago_Pago", "2026-06-16T11:00:00Z"),
        ("2026-12-24", "Asia/Kolkata", "2026-12-24T18:30:00Z"),
        ("2026-12-24", "Asia/Kathmandu", "2026-12-24T18:15:00Z"),
        # Midnight skipped (tzdata 2026.6): the next day starts when the clocks jump, at 01:00 local.
        ("2026-03-07", "America/Havana", "2026-03-08T05:00:00Z"),
        ("2026-09-05", "America/Santiago", "2026-09-06T04:00:00Z"),
        ("2026-04-23", "Africa/Cairo", "2026-04-23T22:00:00Z"),
        # Toronto jumped from 23:30 to 00:30 in 1919: 1919-03-31 began at 00:30, not at a skipped midnight.
        ("1919-03-30", "America/Toronto", "1919-03-31T04:30:00Z"),
        # Samoa skipped 2011-12-30: that day and the one before end at the same instant.
        ("2011-12-29", "Pacific/Apia", "2011-12-30T10:00:00Z"),
        ("2011-12-30", "Pacific/Apia", "2011-12-30T10:00:00Z"),
        # Past year 9999 in UTC: the latest instant datetime holds.
        ("9999-12-31", "UTC", "9999-12-31T23:59:59Z"),
        ("9999-12-31", "Pacific/Pago_Pago", "9999-12-31T23:59:59Z"),
    ],
)
def test_day_end(day, zone_name, expected):
    end = due.day_end(due.parse_date(day), zone_name)
    assert due.format_instant(end) == expected
    # The end is the first instant of a later local date: a microsecond earlier is still on `day` (or before it).
    assert due.today(zone_name, end) > due.parse_date(day) or end == due.LATEST
    assert due.today(zone_name, end - timedelta(microseconds=1)) <= due.parse_date(day)


@pytest.mark.parametrize(
    "day, zone_name, hours",
    [
        ("2026-03-29", "Europe/Berlin", 23),
        ("2026-10-25", "Europe/Berlin", 25),
        ("2026-03-08", "America/New_York", 23),
        ("2026-11-01", "America/New_York", 25),
        ("2026-03-08", "America/Havana", 23),
        ("2026-06-15", "Europe/Berlin", 24),
        ("2011-12-30", "Pacific/Apia", 0),
    ],
)
def test_day_length(day, zone_name, hours):
    day = due.parse_date(day)
    length = due.day_end(day, zone_name) - due.day_end(day - timedelta(days=1), zone_name)
    assert length == timedelta(hours=hours)


@pytest.mark.parametrize(
    "first, last, zone_name, start, end",
    [
        ("2026-06-15", "2026-06-15", "Pacific/Kiritimati", "2026-06-14T10:00:00Z", "2026-06-15T10:00:00Z"),
        ("2026-06-15", "2026-06-15", "Pacific/Pago_Pago", "2026-06-15T11:00:00Z", "2026-06-16T11:00:00Z"),
        ("2026-03-01", "2026-03-31", "Europe/Berlin", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z"),
        ("2026-11-01", "2026-11-01", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"),
        ("2026-03-08", "2026-03-08", "America/Havana", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"),
        ("2026-12-24", "2026-12-24", "Asia/Kathmandu", "2026-12-23T18:15:00Z", "2026-12-24T18:15:00Z"),
        ("0001-01-01", "9999-12-31", "UTC", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
    ],
)
def test_day_range(first, last, zone_name, start, end):
    bounds = due.day_range(due.parse_date(first), due.parse_date(last), zone_name)
    assert [due.format_instant(bound) for bound in bounds] == [start, end]


@pytest.mark.parametrize(
    "name",
    ["Europe/Berlin", "America/New_York", "UTC", "Etc/UTC", "Asia/Kathmandu", "America/Argentina/Buenos_Aires"],
)
def test_zone_accepts_iana_names(name):
    assert due.zone(name).key == name


@pytest.mark.parametrize(
    "name",
    [
        "Europe/Nowhere",
        "europe/berlin",
        "../etc/passwd",
        "/etc/localtime",
        "/usr/share/zoneinfo/UTC",
        "localtime",
        "posixrules",
        "Factory",
        "",
        "UTC ",
        " UTC",
        "UTC\x00",
        "Europe\\Berlin",
        "Europe/Berlin/..",
        "Éurope/Berlin",
        "A" * 65,
        None,
        42,
        ["UTC"],
    ],
)
def test_zone_refuses_other_text(name):
    assert due.zone(name) is None


def test_every_known_zone_is_a_plain_key_read_from_tzdata():
    assert zoneinfo.TZPATH == ()
    assert {"Europe/Berlin", "America/New_York", "UTC"} <= due.KNOWN_ZONES
    for name in due.KNOWN_ZONES:
        assert name.isascii() and 0 < len(name) <= 64 and name.isprintable(), name
        assert not name.startswith("/") and ".." not in name.split("/") and "\\" not in name, name
    assert zoneinfo.ZoneInfo.no_cache("Europe/Berlin").utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)


def test_an_unknown_zone_or_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="Unknown time zone"):
        due.timed_instant(date(2026, 12, 24), time(17, 30), "Europe/Nowhere")
    with pytest.raises(TypeError, match="aware"):
        due.today("UTC", datetime(2026, 12, 24, 12))
    with pytest.raises(TypeError, match="aware"):
        due.format_instant(datetime(2026, 12, 24, 12))


@pytest.mark.parametrize(
    "text, expected",
    [("2026-12-24", date(2026, 12, 24)), ("2024-02-29", date(2024, 2, 29)), ("0001-01-01", date.min)],
)
def test_parse_date(text, expected):
    assert due.parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30",
        "2025-02-29",
        "2026-13-01",
        "2026-00-10",
        "0000-01-01",
        "20261224",
        "2026-W52-1",
        "2026-358",
        "2026-1-01",
        "2026-12-24T00:00",
        "2026-12-24Z",
        "2026/12/24",
        " 2026-12-24",
        "2026-12-24\n",
        "\uff12\uff10\uff12\uff16-12-24",  # full-width digits
        "\u0662\u0660\u0662\u0666-12-24",  # Arabic-Indic digits
        "",
        None,
        20261224,
    ],
)
def test_parse_date_refuses(text):
    with pytest.raises(ValueError, match="date"):
        due.parse_date(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("17:30", time(17, 30)),
        ("17:30:05", time(17, 30, 5)),
        ("00:00", time(0)),
        ("00:00:00", time(0)),
        ("23:59:59", time(23, 59, 59)),
    ],
)
def test_parse_time(text, expected):
    assert due.parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "24:00",
        "24:00:00",
        "23:60",
        "23:59:60",
        "7:30",
        "17:3",
        "17:30:0",
        "17:30:00.5",
        "17:30Z",
        "17:30+01:00",
        "1730",
        "T17:30",
        "17:30\n",
        "\uff11\uff17:30",  # full-width digits
        "",
        None,
        1730,
    ],
)
def test_parse_time_refuses(text):
    with pytest.raises(ValueError, match="HH:MM"):
        due.parse_time(text)


@pytest.mark.parametrize(
    "moment, expected",
    [
        (datetime(2026, 12, 24, 17, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")), "2026-12-24T16:30:00Z"),
        (utc("2026-12-24T16:30:00.999999Z"), "2026-12-24T16:30:00Z"),
        (utc("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z"),
    ],
)
def test_format_instant(moment, expected):
    assert due.format_instant(moment) == expected


def computations():
    """One answer of each function, at edges where a slip into the machine's zone would show."""
    return [
        due.timed_instant(date(2026, 10, 25), time(2, 30), "Europe/Berlin"),
        due.timed_instant(date(2026, 3, 8), time(3), "America/New_York"),
        due.day_end(date(2026, 3, 7), "America/Havana"),
        due.day_range(date(2026, 6, 15), date(2026, 6, 15), "Pacific/Kiritimati"),
        due.today("Pacific/Pago_Pago", utc("2026-06-15T10:59:59.999999Z")),
        due.format_instant(datetime(2026, 12, 24, 17, 30, tzinfo=due.zone("Europe/Berlin"))),
    ]


def test_answers_do_not_depend_on_the_machines_zone(monkeypatch):
    answers, offsets = [], set()
    try:
        for machine_zone in ("UTC", "Pacific/Kiritimati", "America/Los_Angeles"):
            monkeypatch.setenv("TZ", machine_zone)
            clock.tzset()
            offsets.add(clock.strftime("%z", clock.localtime(1781517600)))  # 2026-06-15T10:00:00Z
            answers.append(computations())
    finally:
        monkeypatch.undo()
        clock.tzset()
    assert len(offsets) == 3, "TZ did not change the machine's zone (no system zone files?)"
    assert answers[1] == answers[0] and answers[2] == answers[0]

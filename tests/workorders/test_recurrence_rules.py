"""A visit plan's rule must move forward and name dates that exist (workorders.recurrence.validate):
dateutil accepts INTERVAL=0 and never advances, and searches to year 9999 for a date that does not
exist; a plan anchored on a 29 February is a plan like any other."""

from __future__ import annotations

import datetime as dt

import pytest

from workorders import recurrence


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be at least 1"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "names no date that exists"),
        ("FREQ=MONTHLY;BYMONTH=4,6,9,11;BYMONTHDAY=31", "names no date that exists"),
        # ends before it begins (a plan carried into a renewal from a rule that is over)
        ("FREQ=MONTHLY;BYMONTHDAY=1;UNTIL=20251201", "UNTIL is before the plan's start"),
    ],
)
def test_a_rule_that_never_moves_on_is_refused(rule, message):
    with pytest.raises(ValueError, match=message):
        recurrence.validate(rule, dt.date(2026, 1, 1))


@pytest.mark.parametrize("rule", ["FREQ=YEARLY", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=MONTHLY;BYMONTHDAY=-1"])
def test_rules_that_recur_are_taken_from_a_leap_day_too(rule):
    assert recurrence.validate(rule, dt.date(2028, 2, 29)) == rule
    found = recurrence.occurrences(
        rule,
        time_zone="Europe/London",
        anchor=dt.date(2028, 2, 29),
        after=dt.datetime(2028, 2, 28, tzinfo=dt.UTC),
        until=dt.datetime(2033, 1, 1, tzinfo=dt.UTC),
    )
    assert found and found[0].date() == dt.date(2028, 2, 29)


@pytest.mark.parametrize(
    ("time_zone", "anchor", "days"),
    [
        ("Europe/Amsterdam", dt.date(2026, 1, 1), 366),  # a spring gap and an autumn overlap
        ("Australia/Lord_Howe", dt.date(2026, 1, 1), 366),  # half-hour DST changes
        ("Pacific/Apia", dt.date(2011, 1, 1), 366),  # 2011-12-30 did not happen there
        ("UTC", dt.date(2028, 2, 29), 1),
    ],
)
def test_a_rule_has_at_most_24_occurrences_a_day_none_in_the_same_local_minute(time_zone, anchor, days):
    import zoneinfo

    rule = "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24))) + ";BYMINUTE=30"
    after = dt.datetime.combine(anchor, dt.time(23, 59), tzinfo=dt.UTC) - dt.timedelta(days=1)
    until = after + dt.timedelta(days=days)
    found = recurrence.occurrences(
        rule, time_zone=time_zone, anchor=anchor - dt.timedelta(days=1), after=after, until=until, limit=None
    )
    assert days * 22 <= len(found) <= recurrence.max_occurrences(after, until)
    local = {f"{o.astimezone(zoneinfo.ZoneInfo(time_zone)):%Y%m%d-%H%M}" for o in found}
    assert len(local) == len(found)  # a job's reference is VISIT-{plan}-{YYYYMMDD-HHMM}


def test_a_refused_rule_is_never_run():
    with pytest.raises(ValueError, match="BYMINUTE takes one minute"):
        day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        recurrence.occurrences(
            "FREQ=DAILY;BYMINUTE=0,1", time_zone="UTC", anchor=day.date(), after=day, until=day + dt.timedelta(days=1)
        )

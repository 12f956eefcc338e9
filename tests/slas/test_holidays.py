"""Public holidays now come from the `holidays` package (the hand-written module is gone); the
dates its tests pinned are kept here against the package, plus the regions a calendar may name."""

import datetime as dt

import pytest

from slas.clock import CalendarSpec, check_region, due, public_holidays


def test_uk_bank_holidays_with_weekend_substitutes():
    assert sorted(public_holidays("GB", "ENG", 2026)) == [
        dt.date(2026, 1, 1),
        dt.date(2026, 4, 3),
        dt.date(2026, 4, 6),
        dt.date(2026, 5, 4),
        dt.date(2026, 5, 25),
        dt.date(2026, 8, 31),
        dt.date(2026, 12, 25),
        dt.date(2026, 12, 26),  # Boxing Day itself is a Saturday (no working day lost) ...
        dt.date(2026, 12, 28),  # ... and is substituted on Monday
    ]
    assert {dt.date(2027, 12, 27), dt.date(2027, 12, 28)} <= public_holidays("GB", "ENG", 2027)  # both on the weekend
    assert dt.date(2022, 1, 3) in public_holidays("GB", "ENG", 2022)  # New Year on a Saturday
    assert dt.date(2026, 1, 2) in public_holidays("GB", "SCT", 2026)  # 2 January in Scotland only
    assert dt.date(2026, 1, 2) not in public_holidays("GB", "ENG", 2026)


def test_easter_from_the_package():
    # Good Friday is two days before the Easter Sunday the old module computed.
    for year, easter in [(2024, (3, 31)), (2025, (4, 20)), (2026, (4, 5)), (2027, (3, 28)), (2038, (4, 25))]:
        assert dt.date(year, *easter) - dt.timedelta(days=2) in public_holidays("GB", "ENG", year)


def test_dutch_public_holidays():
    assert dt.date(2026, 4, 27) in public_holidays("NL", None, 2026)  # Koningsdag
    assert dt.date(2026, 5, 14) in public_holidays("NL", None, 2026)  # Hemelvaartsdag
    assert dt.date(2027, 4, 27) in public_holidays("NL", None, 2027)
    assert dt.date(2025, 4, 26) in public_holidays("NL", None, 2025)  # the 27th is a Sunday
    assert dt.date(2025, 4, 27) not in public_holidays("NL", None, 2025)


def test_regions_are_checked_against_the_package():
    check_region("GB", "SCT")
    check_region("US", "CA")
    check_region(None, None)
    with pytest.raises(ValueError, match="'XX' is not supported"):
        check_region("XX", None)
    with pytest.raises(ValueError, match="'ZZ' is not one of GB's"):
        check_region("GB", "ZZ")
    with pytest.raises(ValueError, match="needs a holiday country"):
        check_region(None, "SCT")
    with pytest.raises(ValueError):
        CalendarSpec("UTC", country="XX")


OFFICE = tuple((weekday, "08:00", "17:00") for weekday in range(1, 6))


def london(*args):
    """An instant given in UTC (London is UTC+0 in winter, +1 in summer)."""
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_country_calendar_gives_due_times_across_years():
    """A five-year contract needs no upkeep: every year's holidays are computed when needed."""
    spec = CalendarSpec("Europe/London", OFFICE, country="GB", subdivision="ENG")
    # Thursday 24 Dec 2026 16:00 GMT + 3 h: 1 h Thursday, Fri 25 and Mon 28 are holidays -> Tue 29 10:00.
    assert due(spec, london(2026, 12, 24, 16), 180) == london(2026, 12, 29, 10)
    # Four years on, same rule with no edit: Good Friday 2030 is 19 April, Easter Monday 22 April.
    # Thursday 18 April 16:00 BST (15:00 UTC) + 2 h: 1 h Thursday, 1 h from Tuesday 08:00 BST.
    assert due(spec, london(2030, 4, 18, 15), 120) == london(2030, 4, 23, 8)
    # Scotland works on Easter Monday 2030.
    scotland = CalendarSpec("Europe/London", OFFICE, country="GB", subdivision="SCT")
    assert due(scotland, london(2030, 4, 18, 15), 120) == london(2030, 4, 22, 8)


def test_additions_and_working_days():
    base = CalendarSpec("Europe/London", OFFICE, country="GB", subdivision="ENG")
    # Worked despite Easter Monday 2026 (6 April): Thursday 16:00 + 2 h -> Monday 9:00 BST = 08:00 UTC.
    worked = CalendarSpec("Europe/London", OFFICE, country="GB", subdivision="ENG", working_days={"2026-04-06"})
    start = london(2026, 4, 2, 15)  # Thursday 16:00 BST
    assert due(base, start, 120) == london(2026, 4, 7, 8)
    assert due(worked, start, 120) == london(2026, 4, 6, 8)
    # An addition (company closure on Tuesday 7 April) stays a holiday.
    closed = CalendarSpec("Europe/London", OFFICE, {"2026-04-07"}, country="GB", subdivision="ENG")
    assert due(closed, start, 120) == london(2026, 4, 8, 8)

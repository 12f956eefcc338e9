"""The SLA clock (slas/clock.py, DESIGN §6): business time and due times, pure Python, no database.

Worked cases with exact expected instants (DST in Europe/Amsterdam and America/New_York,
holidays, weekend starts, starts at the exact opening and closing instants, the closing-instant
rule, two intervals a day, a 24:00 end, pauses, an open pause), validation, the compiled-calendar
cache, and hypothesis properties over random calendars, instants and pauses, including a
comparison with a slow day-by-day oracle.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from slas.clock import (
    HORIZON_END_YEAR,
    TWENTY_FOUR_SEVEN,
    CalendarSpec,
    CompiledCalendar,
    business_seconds,
    clear_cache,
    compile_calendar,
    due,
    parse_hours,
)

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")
HOUR = 3600


def ams(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weekdays(start: str, end: str, days=range(1, 6)) -> tuple[tuple[int, str, str], ...]:
    return tuple((day, start, end) for day in days)


OFFICE = CalendarSpec("Europe/Amsterdam", weekdays("08:00", "17:00"))
SPLIT = CalendarSpec("Europe/Amsterdam", weekdays("08:00", "12:00") + weekdays("13:00", "17:00"))
NY_OFFICE = CalendarSpec("America/New_York", weekdays("09:00", "17:00"))
AMS_ALWAYS = CalendarSpec("Europe/Amsterdam", weekdays("00:00", "24:00", range(1, 8)))
NY_ALWAYS = CalendarSpec("America/New_York", weekdays("00:00", "24:00", range(1, 8)))
AMS_SUNDAY_NIGHT = CalendarSpec("Europe/Amsterdam", ((7, "01:00", "04:00"),))
NY_SUNDAY_NIGHT = CalendarSpec("America/New_York", ((7, "01:00", "04:00"),))

# 2026: Monday 12 January is an ordinary working day; Friday 16 January precedes a weekend.
MONDAY = (2026, 1, 12)


# --- worked cases: opening, closing, weekends -----------------------------------------------------


def test_due_is_an_aware_utc_datetime():
    result = due(OFFICE, ams(*MONDAY, 9), 60)
    assert result == ams(*MONDAY, 10)
    assert result.tzinfo is UTC


def test_start_on_saturday_counts_from_monday_opening():
    assert due(OFFICE, ams(2026, 1, 10, 10), 60) == utc(2026, 1, 12, 8)  # Mon 09:00 CET


def test_start_exactly_at_opening():
    assert due(OFFICE, ams(*MONDAY, 8), 1) == ams(*MONDAY, 8, 1)
    assert due(OFFICE, ams(*MONDAY, 8), 9 * 60) == ams(*MONDAY, 17)
    assert due(OFFICE, ams(*MONDAY, 8), 9 * 60 + 1) == ams(2026, 1, 13, 8, 1)


def test_start_exactly_at_closing_counts_from_next_opening():
    assert due(OFFICE, ams(*MONDAY, 17), 1) == ams(2026, 1, 13, 8, 1)
    assert business_seconds(OFFICE, ams(*MONDAY, 17), ams(2026, 1, 13, 8)) == 0


def test_target_running_out_at_closing_is_due_at_closing_instant():
    assert due(OFFICE, ams(*MONDAY, 16), 60) == ams(*MONDAY, 17)  # not Tuesday 08:00
    assert due(OFFICE, ams(2026, 1, 16, 15), 120) == ams(2026, 1, 16, 17)  # Friday: not Monday 08:00
    assert due(OFFICE, ams(*MONDAY, 10), 9 * 60) == ams(2026, 1, 13, 10)


def test_friday_afternoon_runs_over_the_weekend():
    assert due(OFFICE, ams(2026, 1, 16, 16), 120) == ams(2026, 1, 19, 9)
    assert business_seconds(OFFICE, ams(2026, 1, 16, 16), ams(2026, 1, 19, 9)) == 2 * HOUR


def test_sub_second_start_is_truncated_to_the_second():
    assert due(OFFICE, ams(*MONDAY, 9, 0, 0, 999_999), 1) == ams(*MONDAY, 9, 1)
    assert business_seconds(OFFICE, ams(*MONDAY, 9, 0, 0, 999_999), ams(*MONDAY, 9, 0, 1, 1)) == 1


def test_two_intervals_a_day():
    assert due(SPLIT, ams(*MONDAY, 11), 60) == ams(*MONDAY, 12)  # closing of the morning
    assert due(SPLIT, ams(*MONDAY, 11, 30), 60) == ams(*MONDAY, 13, 30)
    assert due(SPLIT, ams(*MONDAY, 12, 15), 30) == ams(*MONDAY, 13, 30)  # start at lunch
    assert due(SPLIT, ams(*MONDAY, 8), 8 * 60) == ams(*MONDAY, 17)
    assert business_seconds(SPLIT, ams(*MONDAY, 11), ams(*MONDAY, 14)) == 2 * HOUR


def test_24_00_end_and_intervals_merged_across_midnight():
    night = CalendarSpec("Europe/Amsterdam", ((5, "18:00", "24:00"), (6, "00:00", "06:00")))
    friday, saturday = (2026, 1, 16), (2026, 1, 17)
    assert due(night, ams(*friday, 23), 120) == ams(*saturday, 1)
    assert business_seconds(night, ams(*friday, 12), ams(*saturday, 12)) == 12 * HOUR
    compiled = compile_calendar(night)
    week = int(ams(*friday).timestamp()), int(ams(2026, 1, 19).timestamp())
    assert compiled.intervals(*week) == [(int(ams(*friday, 18).timestamp()), int(ams(*saturday, 6).timestamp()))]

    friday_only = CalendarSpec("Europe/Amsterdam", ((5, "18:00", "24:00"),))
    assert due(friday_only, ams(*friday, 23), 60) == ams(*saturday, 0)  # closing at 24:00, not next Friday


# --- worked cases: holidays --------------------------------------------------------------------------

DUTCH_2026 = frozenset({date(2026, 4, 27), date(2026, 12, 25), date(2026, 12, 26)})
OFFICE_WITH_HOLIDAYS = CalendarSpec("Europe/Amsterdam", OFFICE.hours, DUTCH_2026)


def test_holiday_monday_is_skipped():
    # Koningsdag 2026 is Monday 27 April: Friday 16:00 + 2 h runs to Tuesday 09:00 CEST.
    assert due(OFFICE_WITH_HOLIDAYS, ams(2026, 4, 24, 16), 120) == utc(2026, 4, 28, 7)
    assert due(OFFICE, ams(2026, 4, 24, 16), 120) == ams(2026, 4, 27, 9)


def test_christmas_holidays():
    # Friday 25 and Saturday 26 December 2026: Thursday 16:30 + 1 h runs to Monday 08:30.
    assert due(OFFICE_WITH_HOLIDAYS, ams(2026, 12, 24, 16, 30), 60) == ams(2026, 12, 28, 8, 30)


def test_start_on_a_holiday_counts_from_next_opening():
    assert due(OFFICE_WITH_HOLIDAYS, ams(2026, 4, 27, 10), 30) == ams(2026, 4, 28, 8, 30)
    assert business_seconds(OFFICE_WITH_HOLIDAYS, ams(2026, 4, 27), ams(2026, 4, 28)) == 0


# --- worked cases: DST -------------------------------------------------------------------------------


def test_office_hours_across_dst_weekends():
    # Amsterdam: CET -> CEST on 2026-03-29, back on 2026-10-25.
    assert due(OFFICE, ams(2026, 3, 27, 16), 120) == utc(2026, 3, 30, 7)  # Mon 09:00 CEST
    assert due(OFFICE, ams(2026, 10, 23, 16), 120) == utc(2026, 10, 26, 8)  # Mon 09:00 CET
    # New York: EST -> EDT on 2026-03-08, back on 2026-11-01.
    assert due(NY_OFFICE, ny(2026, 3, 6, 16), 120) == utc(2026, 3, 9, 14)  # Mon 10:00 EDT
    assert due(NY_OFFICE, ny(2026, 10, 30, 16), 120) == utc(2026, 11, 2, 15)  # Mon 10:00 EST


@pytest.mark.parametrize(
    ("calendar", "day", "hours"),
    [
        (AMS_ALWAYS, ams(2026, 3, 29), 23),
        (AMS_ALWAYS, ams(2026, 10, 25), 25),
        (AMS_ALWAYS, ams(2026, 3, 30), 24),
        (NY_ALWAYS, ny(2026, 3, 8), 23),
        (NY_ALWAYS, ny(2026, 11, 1), 25),
    ],
)
def test_local_24x7_day_lasts_its_real_length(calendar, day, hours):
    next_midnight = datetime.combine(day.date() + timedelta(days=1), day.time(), day.tzinfo)
    assert business_seconds(calendar, day, next_midnight) == hours * HOUR
    assert business_seconds(None, day, next_midnight) == hours * HOUR


def test_local_24x7_due_counts_real_hours_across_dst():
    # A day of business time from Sunday midnight ends at 01:00 Monday in spring (Sunday has 23
    # hours) and at 23:00 Sunday in autumn (Sunday has 25): the same as no calendar at all.
    for calendar in (AMS_ALWAYS, None):
        assert due(calendar, ams(2026, 3, 29), 24 * 60) == utc(2026, 3, 29, 23) == ams(2026, 3, 30, 1)
        assert due(calendar, ams(2026, 10, 25), 24 * 60) == utc(2026, 10, 25, 22) == ams(2026, 10, 25, 23)
    for calendar in (NY_ALWAYS, None):
        assert due(calendar, ny(2026, 3, 8), 24 * 60) == ny(2026, 3, 9, 1)
        assert due(calendar, ny(2026, 11, 1), 24 * 60) == ny(2026, 11, 1, 23)


def test_interval_spanning_the_dst_hour():
    # Sunday 01:00-04:00 lasts 2 real hours on a spring-forward night and 4 on a fall-back night.
    assert business_seconds(AMS_SUNDAY_NIGHT, ams(2026, 3, 28), ams(2026, 3, 30)) == 2 * HOUR
    assert business_seconds(AMS_SUNDAY_NIGHT, ams(2026, 10, 24), ams(2026, 10, 26)) == 4 * HOUR
    assert business_seconds(AMS_SUNDAY_NIGHT, ams(2026, 1, 10), ams(2026, 1, 12)) == 3 * HOUR
    assert due(AMS_SUNDAY_NIGHT, ams(2026, 3, 28, 12), 60) == utc(2026, 3, 29, 1)  # 03:00 CEST
    assert due(AMS_SUNDAY_NIGHT, ams(2026, 3, 28, 12), 120) == utc(2026, 3, 29, 2)  # 04:00 CEST, closing
    assert due(AMS_SUNDAY_NIGHT, ams(2026, 3, 28, 12), 121) == ams(2026, 4, 5, 1, 1)  # next Sunday
    assert due(AMS_SUNDAY_NIGHT, ams(2026, 10, 24, 12), 240) == utc(2026, 10, 25, 3)  # 04:00 CET
    # New York; 01:00 on 2026-11-01 is ambiguous and read as its first occurrence (EDT).
    assert business_seconds(NY_SUNDAY_NIGHT, ny(2026, 3, 7), ny(2026, 3, 9)) == 2 * HOUR
    assert business_seconds(NY_SUNDAY_NIGHT, ny(2026, 10, 31), ny(2026, 11, 2)) == 4 * HOUR
    assert due(NY_SUNDAY_NIGHT, ny(2026, 3, 7, 12), 120) == utc(2026, 3, 8, 8)  # 04:00 EDT
    assert due(NY_SUNDAY_NIGHT, ny(2026, 10, 31, 12), 1) == utc(2026, 11, 1, 5, 1)  # 01:01 EDT
    assert due(NY_SUNDAY_NIGHT, ny(2026, 10, 31, 12), 240) == utc(2026, 11, 1, 9)  # 04:00 EST


def test_nonexistent_and_ambiguous_wall_times_follow_fold_0():
    # A wall time in the spring-forward gap is read with the offset before the gap:
    # 02:30 on 2026-03-29 in Amsterdam is 01:30 UTC (03:30 CEST).
    gap = CalendarSpec("Europe/Amsterdam", ((7, "02:30", "05:00"),))
    assert business_seconds(gap, ams(2026, 3, 28), ams(2026, 3, 30)) == 90 * 60
    assert due(gap, ams(2026, 3, 28), 1) == utc(2026, 3, 29, 1, 31)
    # An interval that lies wholly in the gap counts nothing that night (an hour every other Sunday).
    missing = CalendarSpec("Europe/Amsterdam", ((7, "02:00", "03:00"),))
    assert business_seconds(missing, ams(2026, 3, 28), ams(2026, 3, 30)) == 0
    assert due(missing, ams(2026, 3, 28), 60) == ams(2026, 4, 5, 3)
    # An ambiguous wall time is its first occurrence: 01:30 EDT on 2026-11-01 in New York.
    fold = CalendarSpec("America/New_York", ((7, "01:30", "02:00"),))
    assert business_seconds(fold, ny(2026, 10, 31), ny(2026, 11, 2)) == 90 * 60
    assert due(fold, ny(2026, 10, 31), 1) == utc(2026, 11, 1, 5, 31)


# --- worked cases: pauses ----------------------------------------------------------------------------


def m(hour: int, minute: int = 0, day: tuple[int, int, int] = MONDAY) -> datetime:
    return ams(*day, hour, minute)


TUESDAY = (2026, 1, 13)


def test_pause_inside_working_time():
    assert due(OFFICE, m(9), 120, [(m(9, 30), m(10))]) == m(11, 30)
    assert business_seconds(OFFICE, m(9), m(12), [(m(9, 30), m(10))]) == 150 * 60


def test_pause_across_closing_time():
    assert due(OFFICE, m(15), 120, [(m(16), m(9, 0, TUESDAY))]) == m(10, 0, TUESDAY)


def test_pause_outside_working_time_changes_nothing():
    pause = [(m(18), m(7, 0, TUESDAY))]
    assert due(OFFICE, m(16), 120, pause) == due(OFFICE, m(16), 120) == m(9, 0, TUESDAY)


def test_target_reached_just_as_a_pause_begins_is_due_then():
    assert due(OFFICE, m(9), 60, [(m(10), m(11))]) == m(10)


def test_pause_covering_the_start():
    assert due(OFFICE, m(9), 60, [(m(8, 30), m(9, 30))]) == m(10, 30)


def test_overlapping_pauses_are_merged():
    pauses = [(m(9, 45), m(10, 30)), (m(9, 30), m(10))]
    assert due(OFFICE, m(9), 120, pauses) == m(12)
    assert business_seconds(OFFICE, m(9), m(12), pauses) == 2 * HOUR


def test_open_pause():
    assert due(OFFICE, m(9), 60, [(m(9, 30), None)]) is None
    assert due(OFFICE, m(9), 60, [(m(8), None)]) is None
    assert due(OFFICE, m(9), 60, [(m(12, 0, TUESDAY), None)]) == m(10)  # opens after the due time
    assert business_seconds(OFFICE, m(9), m(12), [(m(9, 30), None)]) == 30 * 60


def test_pauses_without_a_calendar():
    start = utc(2026, 3, 29, 0)
    assert due(None, start, 60, [(start + timedelta(minutes=10), start + timedelta(minutes=40))]) == utc(
        2026, 3, 29, 1, 30
    )
    assert business_seconds(None, start, start + timedelta(hours=2), [(start, start + timedelta(hours=1))]) == HOUR


def test_pause_ending_before_it_starts_is_rejected():
    with pytest.raises(ValueError, match="before it starts"):
        due(OFFICE, m(9), 60, [(m(10), m(9))])


# --- no working time, horizon, validation ------------------------------------------------------------


def test_calendar_without_working_time_is_never_due():
    empty = CalendarSpec("Europe/Amsterdam")
    assert due(empty, m(9), 60) is None
    assert business_seconds(empty, m(9), m(17)) == 0


def test_due_beyond_the_horizon_is_none():
    one_minute_a_week = CalendarSpec("UTC", ((7, "00:00", "00:01"),))
    assert due(one_minute_a_week, utc(2026, 1, 1), 10_000) is not None  # about 192 years
    assert due(one_minute_a_week, utc(2026, 1, 1), 10_000_000) is None
    assert compile_calendar(one_minute_a_week).years[1] == HORIZON_END_YEAR - 1


def test_instant_outside_the_horizon_is_rejected():
    with pytest.raises(ValueError, match="horizon"):
        due(OFFICE, ams(1800, 1, 6, 9), 60)
    assert due(None, ams(1800, 1, 6, 9), 60) == ams(1800, 1, 6, 10)  # 24x7 has no horizon


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="naive"):
        due(OFFICE, datetime(2026, 1, 12, 9), 60)
    with pytest.raises(ValueError, match="naive"):
        business_seconds(None, m(9), datetime(2026, 1, 12, 10))
    with pytest.raises(ValueError, match="naive"):
        due(OFFICE, m(9), 60, [(datetime(2026, 1, 12, 9), None)])
    with pytest.raises(TypeError):
        due(OFFICE, "2026-01-12T09:00:00Z", 60)


@pytest.mark.parametrize("target", [0, -5, 1.5, True, "60", None])
def test_target_must_be_a_whole_number_of_minutes_at_least_1(target):
    with pytest.raises(ValueError, match="target"):
        due(OFFICE, m(9), target)
    with pytest.raises(ValueError, match="target"):
        due(None, m(9), target)


def test_reversed_span_has_no_business_time():
    assert business_seconds(OFFICE, m(12), m(9)) == 0
    assert business_seconds(None, m(12), m(9)) == 0


def test_parse_hours_normalises():
    assert parse_hours(
        [
            {"weekday": 2, "start": "13:00", "end": "24:00"},
            {"weekday": 1, "start": "08:00", "end": "12:00"},
            {"weekday": 2, "start": "08:00", "end": "13:00"},  # touching is not overlapping
        ]
    ) == ((1, "08:00", "12:00"), (2, "08:00", "13:00"), (2, "13:00", "24:00"))
    assert parse_hours([]) == ()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("mon 8-5", r"hours must be a list"),
        ([["1", "08:00", "17:00"]], r"hours\[0\]: must be an object"),
        ([{"weekday": 1, "start": "08:00"}], r"hours\[0\]: end is required"),
        ([{"weekday": 1, "start": "08:00", "end": "17:00", "tz": "x"}], r"hours\[0\]: unknown key"),
        ([{"weekday": 0, "start": "08:00", "end": "17:00"}], r"hours\[0\]: weekday"),
        ([{"weekday": 8, "start": "08:00", "end": "17:00"}], r"hours\[0\]: weekday"),
        ([{"weekday": "1", "start": "08:00", "end": "17:00"}], r"hours\[0\]: weekday"),
        ([{"weekday": True, "start": "08:00", "end": "17:00"}], r"hours\[0\]: weekday"),
        ([{"weekday": 1, "start": "8:00", "end": "17:00"}], r"hours\[0\]: start"),
        ([{"weekday": 1, "start": "08:60", "end": "17:00"}], r"hours\[0\]: start"),
        ([{"weekday": 1, "start": "\u0660\u0668:00", "end": "17:00"}], r"hours\[0\]: start"),  # Arabic-Indic 08
        ([{"weekday": 1, "start": "08:00", "end": "\uff11\uff17:00"}], r"hours\[0\]: end"),  # fullwidth 17
        ([{"weekday": 1, "start": "24:00", "end": "24:00"}], r"hours\[0\]: start"),
        ([{"weekday": 1, "start": "08:00", "end": "24:30"}], r"hours\[0\]: end"),
        ([{"weekday": 1, "start": "08:00", "end": "25:00"}], r"hours\[0\]: end"),
        ([{"weekday": 1, "start": "08:00", "end": 17}], r"hours\[0\]: end"),
        ([{"weekday": 1, "start": "17:00", "end": "08:00"}], r"hours\[0\]: end 08:00 must be after start 17:00"),
        ([{"weekday": 1, "start": "08:00", "end": "08:00"}], r"hours\[0\]: end 08:00 must be after"),
        (
            [
                {"weekday": 1, "start": "08:00", "end": "17:00"},
                {"weekday": 2, "start": "08:00", "end": "17:00"},
                {"weekday": 1, "start": "12:00", "end": "13:00"},
            ],
            r"hours\[2\]: overlaps hours\[0\] on weekday 1",
        ),
    ],
)
def test_parse_hours_names_the_bad_index(items, message):
    with pytest.raises(ValueError, match=message):
        parse_hours(items)


def test_calendar_spec_validates_and_normalises():
    spec = CalendarSpec("Europe/Amsterdam", [(2, "08:00", "17:00"), (1, "08:00", "17:00")], {"2026-04-27"})
    assert spec == CalendarSpec("Europe/Amsterdam", ((1, "08:00", "17:00"), (2, "08:00", "17:00")), {date(2026, 4, 27)})
    assert hash(spec) == hash(CalendarSpec("Europe/Amsterdam", spec.hours, frozenset({date(2026, 4, 27)})))
    with pytest.raises(ValueError, match="time zone"):
        CalendarSpec("Mars/Olympus_Mons")
    with pytest.raises(ValueError, match=r"hours\[0\]: start"):
        CalendarSpec("UTC", ((1, "24:00", "24:00"),))
    with pytest.raises(ValueError, match=r"hours\[0\]: must be a \(weekday, start, end\) triple"):
        CalendarSpec("UTC", ((1, "08:00"),))
    with pytest.raises(ValueError, match="holiday"):
        CalendarSpec("UTC", (), {"27-04-2026"})


# --- the compiled-calendar cache and on-demand growth ------------------------------------------------


def test_compiled_calendars_are_cached_per_spec():
    clear_cache()
    compiled = compile_calendar(OFFICE)
    assert isinstance(compiled, CompiledCalendar)
    assert compile_calendar(CalendarSpec("Europe/Amsterdam", weekdays("08:00", "17:00"))) is compiled
    changed = CalendarSpec("Europe/Amsterdam", OFFICE.hours, DUTCH_2026)
    assert compile_calendar(changed) is not compiled  # a changed calendar is a new key
    clear_cache()
    assert compile_calendar(OFFICE) is not compiled
    assert compile_calendar(None) is TWENTY_FOUR_SEVEN
    with pytest.raises(TypeError):
        compile_calendar({"time_zone": "UTC"})


def test_compiled_span_grows_on_demand_and_answers_the_same():
    grown = CompiledCalendar(OFFICE_WITH_HOLIDAYS)
    instants = [m(9), ams(1990, 6, 1, 9), ams(2150, 6, 1, 9), ams(2026, 4, 24, 16), ams(1960, 3, 1, 12)]
    for start in instants:
        fresh = CompiledCalendar(OFFICE_WITH_HOLIDAYS)
        s = int(start.timestamp())
        assert grown.due(s, 5000 * 60) == fresh.due(s, 5000 * 60)
        assert grown.business_seconds(s - 90 * 86400, s) == fresh.business_seconds(s - 90 * 86400, s)
    assert grown.years[0] <= 1959 and grown.years[1] >= 2150


def test_concurrent_growth_is_consistent():
    spec = CalendarSpec("America/New_York", SPLIT.hours, frozenset({date(2030, 7, 4)}))
    starts = [int(ny(year, 7, 3, 11).timestamp()) for year in range(1995, 2125, 5)]
    expected = [CompiledCalendar(spec).due(s, 3000 * 60) for s in starts]
    shared = CompiledCalendar(spec)
    results: dict[int, list] = {}

    def worker(n: int) -> None:
        order = starts[n::4] + starts[:n:4]
        results[n] = [(s, shared.due(s, 3000 * 60)) for s in order]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answer = dict(zip(starts, expected, strict=True))
    assert all(answer[s] == t for pairs in results.values() for s, t in pairs)


def test_growth_compiles_only_the_local_years_asked_for():
    office = CompiledCalendar(OFFICE_WITH_HOLIDAYS)
    assert office.years is None
    assert office.due(int(ams(2026, 11, 18, 15).timestamp()), 60 * 60) == int(ams(2026, 11, 18, 16).timestamp())
    assert office.years == (2026, 2026)  # not the year before and after as well
    office.business_seconds(int(ams(2024, 5, 1, 9).timestamp()), int(ams(2024, 5, 1, 10).timestamp()))
    assert office.years == (2024, 2026)  # out to the earlier year, the span kept whole
    # The local year decides: 20:00 UTC on New Year's Eve is already New Year's Day in Tokyo.
    tokyo = CompiledCalendar(CalendarSpec("Asia/Tokyo", weekdays("09:00", "18:00")))
    tokyo.business_seconds(int(utc(2026, 12, 31, 20).timestamp()), int(utc(2026, 12, 31, 21).timestamp()))
    assert tokyo.years == (2027, 2027)
    # A due time past the compiled year grows the span forward, with the answer of a wide span:
    # Wednesday 30 December 16:00 + 27 office hours (1 + 9 + 9 on New Year's Day + 8).
    late = int(ams(2026, 12, 30, 16).timestamp())
    wide = CompiledCalendar(OFFICE_WITH_HOLIDAYS)
    wide.business_seconds(int(ams(2020, 1, 1).timestamp()), int(ams(2035, 1, 1).timestamp()))
    fresh = CompiledCalendar(OFFICE_WITH_HOLIDAYS)
    assert fresh.due(late, 3 * 9 * HOUR) == wide.due(late, 3 * 9 * HOUR) == int(ams(2027, 1, 4, 16).timestamp())
    assert fresh.years[0] == 2026 and fresh.years[1] >= 2027


def test_an_instant_in_an_hour_repeated_across_new_years_midnight_is_covered():
    # Phoenix went back from war time at midnight on 1 January 1944: 23:30 on New Year's Eve came
    # twice, the second time after the first midnight of 1944, i.e. outside its own local year's span.
    phoenix = CalendarSpec("America/Phoenix", weekdays("00:00", "24:00", range(1, 8)))
    zone = ZoneInfo("America/Phoenix")
    second = int(datetime(1943, 12, 31, 23, 30, tzinfo=zone).replace(fold=1).timestamp())
    assert second > int(datetime(1944, 1, 1, tzinfo=zone).timestamp())
    wide = CompiledCalendar(phoenix)
    wide.business_seconds(int(utc(1940, 6, 1).timestamp()), int(utc(1948, 6, 1).timestamp()))
    fresh = CompiledCalendar(phoenix)
    assert fresh.due(second, 3600) == wide.due(second, 3600) == second + 3600
    assert fresh.years == (1943, 1944)  # its local year, and the next one that covers it
    for a, b in ((second, second + 7 * 86400), (second - 7 * 86400, second), (second - 60, second + 60)):
        assert CompiledCalendar(phoenix).business_seconds(a, b) == wide.business_seconds(a, b) == b - a
        assert CompiledCalendar(phoenix).due(a, 3600) == wide.due(a, 3600) == a + 3600
        assert CompiledCalendar(phoenix).intervals(a, b) == wide.intervals(a, b)


NEW_YEARS = [int(utc(year, 1, 1).timestamp()) for year in (2026, 2027, 2028)]
AROUND_NEW_YEAR = st.builds(lambda t, d: t + d, st.sampled_from(NEW_YEARS), st.integers(-3 * 86400, 3 * 86400))


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Amsterdam", "America/Santiago"]),
    st.sets(st.integers(0, 96), min_size=2, max_size=6),
    AROUND_NEW_YEAR,
    st.integers(-10 * 86400, 10 * 86400),
    st.integers(1, 5_000),
)
def test_answers_do_not_depend_on_the_span_compiled(zone, quarter_points, start, length, minutes):
    """On demand, one local year at a time, or compiled over years around: the same answers."""
    hours = tuple((weekday, hhmm(s * 15), hhmm(e * 15)) for weekday in range(1, 8) for s, e in _pairs(quarter_points))
    assume(hours)
    spec = CalendarSpec(zone, hours)
    wide = CompiledCalendar(spec)
    wide.business_seconds(int(utc(2020, 1, 1).timestamp()), int(utc(2035, 1, 1).timestamp()))
    a, b = sorted((start, start + length))
    assert CompiledCalendar(spec).business_seconds(a, b) == wide.business_seconds(a, b)
    assert CompiledCalendar(spec).due(start, minutes * 60) == wide.due(start, minutes * 60)
    assert CompiledCalendar(spec).intervals(a, b) == wide.intervals(a, b)
    end = CompiledCalendar(spec)  # grown from the other end first
    assert (end.business_seconds(b, b + 1), end.business_seconds(a, b)) == (
        wide.business_seconds(b, b + 1),
        wide.business_seconds(a, b),
    )


# --- hypothesis properties ---------------------------------------------------------------------------

ZONES = ["Europe/Amsterdam", "America/New_York", "UTC", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
LO = int(utc(2026, 1, 1).timestamp())
HI = int(utc(2028, 1, 1).timestamp())
TRANSITIONS = [
    int(t.timestamp())
    for t in (utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2027, 4, 4, 3))
]


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _pairs(points: set[int]) -> list[tuple[int, int]]:
    ordered = sorted(points)
    return list(zip(ordered[::2], ordered[1::2], strict=False))


@st.composite
def specs(draw) -> CalendarSpec:
    hours = []
    for weekday in range(1, 8):
        quarter_points = draw(st.sets(st.integers(0, 96), max_size=6))
        for start, end in _pairs(quarter_points):
            hours.append((weekday, hhmm(start * 15), hhmm(end * 15)))
    holidays = draw(st.frozensets(st.dates(date(2025, 12, 1), date(2028, 3, 31)), max_size=40))
    return CalendarSpec(draw(st.sampled_from(ZONES)), tuple(hours), holidays)


calendars = st.one_of(st.none(), specs(), st.sampled_from([OFFICE_WITH_HOLIDAYS, SPLIT, AMS_SUNDAY_NIGHT, NY_OFFICE]))
instants = st.one_of(
    st.integers(LO, HI),
    st.builds(lambda t, d: t + d, st.sampled_from(TRANSITIONS), st.integers(-3 * 86400, 3 * 86400)),
)
pause_lists = st.lists(
    st.tuples(instants, st.one_of(st.none(), st.integers(0, 10 * 86400))).map(
        lambda p: (p[0], None if p[1] is None else p[0] + p[1])
    ),
    max_size=4,
)
PROPERTY = settings(max_examples=200, deadline=None)


def _merge(intervals):
    merged = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        elif e > s:
            merged.append([s, e])
    return merged


def _local(zone: ZoneInfo, day: date, hhmm: str) -> int:
    if hhmm == "24:00":
        day, hhmm = day + timedelta(days=1), "00:00"
    return int(datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), zone).timestamp())


def oracle_segments(spec: CalendarSpec | None, a: int, b: int, pauses) -> list[tuple[int, int]]:
    """Business time in [a, b) as disjoint segments, day by day: the slow, obvious way."""
    if spec is None:
        working = [[a, b]]
    else:
        zone = ZoneInfo(spec.time_zone)
        day = datetime.fromtimestamp(a, zone).date() - timedelta(days=2)
        last = datetime.fromtimestamp(b, zone).date() + timedelta(days=2)
        raw = []
        while day <= last:
            if day not in spec.holidays:
                raw += [(_local(zone, day, s), _local(zone, day, e)) for w, s, e in spec.hours if w == day.isoweekday()]
            day += timedelta(days=1)
        working = [[max(s, a), min(e, b)] for s, e in _merge(raw) if min(e, b) > max(s, a)]
    holds = _merge([(s, b + 1 if e is None else e) for s, e in pauses])
    segments = []
    for s, e in working:
        for hold_start, hold_end in holds:
            if hold_start < e and hold_end > s:
                if hold_start > s:
                    segments.append((s, hold_start))
                s = max(s, hold_end)
        if e > s:
            segments.append((s, e))
    return segments


def oracle_due(spec: CalendarSpec | None, start: int, target: int, pauses) -> int | None:
    window = 60 * 86400
    while window < 40 * 365 * 86400:
        remaining = target
        for s, e in oracle_segments(spec, start, start + window, pauses):
            if e - s >= remaining:
                return s + remaining
            remaining -= e - s
        if any(end is None and s < start + window for s, end in pauses):
            return None  # on hold for good before the target was reached
        window *= 4
    return None


def _seconds(calendar, a, b, pauses=()):
    return compile_calendar(calendar).business_seconds(a, b, pauses)


@PROPERTY
@given(calendars, instants, instants, instants, pause_lists)
def test_business_seconds_properties(calendar, x, y, z, pauses):
    a, b, c = sorted((x, y, z))
    ab, bc, ac = _seconds(calendar, a, b, pauses), _seconds(calendar, b, c, pauses), _seconds(calendar, a, c, pauses)
    assert ab + bc == ac  # additive over adjacent spans
    assert 0 <= ab <= ac and 0 <= bc <= ac  # monotone
    assert ac <= c - a  # never more than wall time
    assert _seconds(calendar, a, c) >= ac  # pauses only take time away
    assert _seconds(calendar, c, a, pauses) == 0
    assert ac == sum(e - s for s, e in oracle_segments(calendar, a, c, pauses))


@PROPERTY
@given(calendars, instants, st.integers(1, 5_000), pause_lists)
def test_due_properties(calendar, start, minutes, pauses):
    assume(calendar is None or calendar.hours)
    compiled = compile_calendar(calendar)
    target = minutes * 60
    t = compiled.due(start, target, pauses)
    expected = oracle_due(calendar, start, target, pauses)
    assert t == expected
    if t is None:  # only an open pause stops the clock for good
        assert any(end is None for _, end in pauses)
        return
    assert compiled.business_seconds(start, t, pauses) == target  # reaches the target at t ...
    assert compiled.business_seconds(start, t - 1, pauses) == target - 1  # ... and not a second earlier
    assert compiled.business_seconds(t - 1, t, pauses) == 1  # inside or at the end of a working interval
    assert any(s < t <= e for s, e in compiled.intervals(t - 1, t + 1))
    # due(start, elapsed(start, u)) <= u, in seconds and in whole minutes
    for u in (t + 1, t + 3600, t + 7 * 86400):
        elapsed = compiled.business_seconds(start, u, pauses)
        assert compiled.due(start, elapsed, pauses) <= u
        if elapsed >= 60:
            assert compiled.due(start, elapsed // 60 * 60, pauses) <= u


@PROPERTY
@given(instants, st.integers(1, 5_000), instants)
def test_local_24x7_calendar_equals_no_calendar(start, minutes, other):
    assert compile_calendar(AMS_ALWAYS).due(start, minutes * 60) == start + minutes * 60
    assert compile_calendar(NY_ALWAYS).business_seconds(start, other) == max(other - start, 0)


@settings(max_examples=50, deadline=None)
@given(calendars, instants, st.integers(1, 5_000), pause_lists)
def test_datetime_api_agrees_with_epoch_api(calendar, start, minutes, pauses):
    def local(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, AMS)

    local_pauses = [(local(s), None if e is None else local(e)) for s, e in pauses]
    compiled = compile_calendar(calendar)
    t = compiled.due(start, minutes * 60, pauses)
    assert due(calendar, local(start), minutes, local_pauses) == (None if t is None else datetime.fromtimestamp(t, UTC))
    end = start + 3 * 86400
    assert business_seconds(calendar, local(start), local(end), local_pauses) == compiled.business_seconds(
        start, end, pauses
    )


@PROPERTY
@given(calendars, instants, instants, st.integers(1, 5_000), st.one_of(st.none(), st.integers(1, 8_000)), pause_lists)
def test_figures_are_the_three_answers(calendar, start, end, minutes, level, pauses):
    """`figures` (its fast paths read the business time at the start once) answers as `due`,
    `business_seconds` and `due` of the level do, asked before or after the span is compiled."""
    level_seconds = None if level is None else level * 60
    for calendar_now in (CompiledCalendar(calendar) if calendar else TWENTY_FOUR_SEVEN, compile_calendar(calendar)):
        first = calendar_now.figures(start, minutes * 60, end, pauses, level_seconds)  # a fresh one: unbuilt
        expected = (
            calendar_now.due(start, minutes * 60, pauses),
            calendar_now.business_seconds(start, end, pauses),
            None if level is None else calendar_now.due(start, level_seconds, pauses),
        )
        assert first == expected
        assert calendar_now.figures(start, minutes * 60, end, pauses, level_seconds) == expected  # now compiled
        assert calendar_now.figures(start, minutes * 60, end, (), level_seconds) == (
            calendar_now.due(start, minutes * 60),
            calendar_now.business_seconds(start, end),
            None if level is None else calendar_now.due(start, level_seconds),
        )


@pytest.mark.parametrize("calendar", [None, OFFICE])
@pytest.mark.parametrize(("target", "level"), [(0, None), (60, 0), (60, 1.5)])
def test_figures_reject_what_due_rejects(calendar, target, level):
    compiled = compile_calendar(calendar)
    start = int(ams(*MONDAY, 9).timestamp())
    compiled.business_seconds(start, start + 7 * 86400)  # compiled: the fast path is asked
    with pytest.raises(ValueError, match="whole number of seconds"):
        compiled.figures(start, target, start + 3600, (), level)

"""The clock's batch API (`due_many`, `business_seconds_many`) gives, element by element, exactly
what the scalar epoch API gives: on office hours across DST changes and holidays, on a night
shift that crosses midnight, on a calendar with no working time, on 24x7, and past the compiled
span (where the scalar path grows the calendar)."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from slas import clock

OFFICE = clock.CalendarSpec(
    time_zone="Europe/Amsterdam",
    hours=tuple((day, "08:00", "17:00") for day in range(1, 6)),
    holidays=frozenset({dt.date(2026, 1, 1), dt.date(2026, 4, 6), dt.date(2026, 12, 25)}),
)
NIGHTS = clock.CalendarSpec(
    time_zone="America/New_York", hours=tuple((day, "22:00", "24:00") for day in range(1, 8)) + ((2, "00:00", "06:00"),)
)
NOTHING = clock.CalendarSpec(time_zone="UTC")
START = int(dt.datetime(2025, 10, 1, tzinfo=dt.UTC).timestamp())
END = int(dt.datetime(2027, 4, 1, tzinfo=dt.UTC).timestamp())


def _calendars():
    return [clock.compile_calendar(spec) for spec in (OFFICE, NIGHTS, NOTHING)] + [clock.TWENTY_FOUR_SEVEN]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("target_minutes", [1, 60, 240, 60 * 24 * 30])
def test_due_many_is_due_element_by_element(index, target_minutes):
    calendar = _calendars()[index]
    rng = random.Random(index * 1000 + target_minutes)
    starts = [rng.randrange(START, END) for _ in range(2000)]
    starts += [START, END, int(dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC).timestamp())]  # a DST night
    got = calendar.due_many(np.array(starts, dtype=np.int64), target_minutes * 60)
    expected = [calendar.due(start, target_minutes * 60) for start in starts]
    assert got.tolist() == [-1 if value is None else value for value in expected]


@pytest.mark.parametrize("index", range(4))
def test_business_seconds_many_is_business_seconds_element_by_element(index):
    calendar = _calendars()[index]
    rng = random.Random(index)
    a = [rng.randrange(START, END) for _ in range(3000)]
    b = [start + rng.randrange(-86400, 90 * 86400) for start in a]  # some reversed, some months long
    got = calendar.business_seconds_many(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64))
    assert got.tolist() == [calendar.business_seconds(x, y) for x, y in zip(a, b, strict=True)]


def test_a_due_time_past_the_compiled_span_grows_it():
    calendar = clock.CompiledCalendar(OFFICE)  # fresh: nothing compiled yet
    start = int(dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC).timestamp())
    got = calendar.due_many(np.array([start]), 60 * 60 * 24 * 400)  # a target of more than a year
    assert got.tolist() == [clock.CompiledCalendar(OFFICE).due(start, 60 * 60 * 24 * 400)]


def test_empty_batches_and_bad_targets():
    calendar = clock.compile_calendar(OFFICE)
    assert calendar.due_many(np.array([], dtype=np.int64), 60).tolist() == []
    assert calendar.business_seconds_many(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == []
    with pytest.raises(ValueError):
        calendar.due_many(np.array([START]), 0)

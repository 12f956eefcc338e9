"""The SLA clock: business time and due times over a working-hours calendar (DESIGN §6).

Pure Python over datetimes and epoch seconds; no Django import, so it can be tested and
benchmarked on its own.

Semantics
=========

- A **calendar** (`CalendarSpec`) has an IANA time zone, weekly working intervals in local wall
  time (ISO weekday 1 = Monday .. 7 = Sunday, ``"HH:MM"`` to ``"HH:MM"``; several a day allowed,
  ``"24:00"`` allowed as an end, never as a start) and holidays (whole local dates: every working
  interval of that date is dropped). **No calendar (None) means 24x7**: every second counts.
- **Business time** between instants a and b is the real (UTC) length, in whole seconds, of the
  part of [a, b) that lies inside working intervals, outside holidays and outside the job's pause
  intervals. An empty or reversed span (b <= a) has business time 0.
- **DST**: each local interval is converted to UTC instants on its own date, so a 01:00-04:00
  interval lasts 2 real hours on a spring-forward night and 4 on a fall-back night, and a
  00:00-24:00 day lasts 23 or 25 hours. Wall times that do not exist or exist twice are read the
  way Python reads them with ``fold=0`` (PEP 495):

  * an *ambiguous* time (in the repeated hour after a fall-back) is its **first** occurrence,
    i.e. the one with the summer (pre-transition) offset;
  * a *nonexistent* time (in the gap of a spring-forward) is read with the offset in force
    **before** the gap, so it lands that far after the gap: in Europe/Amsterdam 02:30 on
    2026-03-29 is 01:30 UTC = 03:30 CEST.

  An interval that is empty after conversion (e.g. 02:00-03:00 on the spring-forward night in
  Amsterdam, an hour that does not exist) counts nothing; working intervals that touch or
  overlap after conversion (e.g. Friday 18:00-24:00 and Saturday 00:00-06:00) are merged.
- A **target** is a whole number of business minutes, at least 1. The **due time** is the earliest
  instant t at which the business time from the clock start reaches the target. So:

  * a target that runs out exactly at closing time is due **at the closing instant** (17:00),
    not at the next opening;
  * a start outside working hours (or inside a pause) counts from the next opening (or the end of
    the pause);
  * the due time always lies inside a working interval, or at its end, and never inside a pause
    (a target that is reached exactly when a pause begins is due at that instant).

- **Pauses** are the job's on-hold intervals ``(start, end)``; ``end`` None means still on hold.
  They may overlap each other and working time in any way; they are clipped and merged first.
  While an open pause has begun before the target is reached, the due time is not defined and
  ``due`` returns None (recompute it when the hold ends).
- A calendar with **no working time at all** (no weekly intervals) is never due: ``due`` returns
  None and business time is always 0. The same holds for a due time that would fall after
  ``HORIZON_END_YEAR`` (calendars are compiled for local years ``HORIZON_START_YEAR`` up to, not
  including, ``HORIZON_END_YEAR``); an *input* instant outside that horizon is a ``ValueError``.
  The 24x7 clock has no horizon.
- **Counting is to the second.** Instants are whole epoch seconds; a datetime with a fraction of a
  second is truncated to the whole second before it (toward the past). Datetimes must be aware
  (a naive one is a ``ValueError``); due times come back as aware datetimes in UTC.

How it is computed
==================

`compile_calendar(spec)` turns a spec into a `CompiledCalendar`: two sorted lists of UTC epoch
seconds (the starts and ends of the merged, non-overlapping working intervals, holidays removed)
and the cumulative business seconds at each interval's end. B(t), the business seconds from the
beginning of the compiled span to t, is one bisect; business time from a to b is B(b) - B(a);
the due time for a start and a target is one bisect over the cumulative list (the earliest t with
B(t) = B(start) + target). Pauses are walked in order, each shifting the cumulative target by the
business time it covers, so a due time costs O((1 + #pauses) * log n), never a day-by-day loop.

A compiled calendar covers a span of local years that grows on demand (the local year of the
first instant asked for, out to the local year of each later instant outside it, then doubling
forward when a due time runs past the end: a process that only asks about this year compiles only
this year); growing rebuilds the lists under a lock and swaps them in whole, so concurrent readers
always see a consistent span. What the span covers never changes an answer, only when it is built.
Compiled calendars are cached at two levels, so that a calendar compiles once per process and
thousands of calendars in use never thrash:

- by spec: equal specs share one compiled calendar for as long as anything holds it (a weak-value
  map, so there is no size limit to thrash past), and the 512 most recently asked for stay alive
  on their own (an LRU of strong references) for callers that hold nothing, like the tests;
- by the caller's key (`compile_keyed(key, stamp, make_spec)`): the models keep one entry per
  calendar row, keyed by its id and stamped with its `updated_at`, so a clock computation costs a
  dict lookup, not building and hashing a spec; a changed row has a new stamp and recompiles.

`clear_cache()` drops them all. The compiled lists are `array('q')` (8 bytes a boundary), so ten
thousand calendars with a few years each fit in tens of megabytes.

Public holidays come from the `holidays` package (``country`` and ``subdivision`` on the spec),
computed for each local year when that year is compiled, so a calendar needs no upkeep across
years; the spec's own ``holidays`` are additions, and its ``working_days`` are dates worked
despite a public holiday (they cancel a public holiday, never an addition or a weekend).

Public API
==========

- ``CalendarSpec(time_zone, hours=(), holidays=frozenset(), country=None, subdivision=None,
  working_days=frozenset())``: frozen, hashable, validated and normalised (hours sorted, dates as
  `date` objects; ISO strings accepted; country and subdivision checked against the package).
- ``public_holidays(country, subdivision, year)``: the package's dates (cached per year);
  ``supported_countries()``: ``{country: (subdivisions...)}``.
- ``parse_hours(items)``: validate API input ``[{"weekday", "start", "end"}, ...]`` into the
  ``hours`` tuple; ``ValueError`` naming the index (``hours[2]: ...``).
- ``compile_calendar(spec)``, ``compile_keyed(key, stamp, make_spec)``, ``clear_cache()``,
  ``TWENTY_FOUR_SEVEN``.
- On datetimes: ``business_seconds(calendar, a, b, pauses=())`` and
  ``due(calendar, start, target_minutes, pauses=())``; ``calendar`` is a `CalendarSpec`, a
  compiled calendar, or None (24x7).
- On epoch seconds, as methods of a compiled calendar (or ``TWENTY_FOUR_SEVEN``):
  ``.business_seconds(a, b, pauses=())``, ``.due(start, target_seconds, pauses=())`` and
  ``.intervals(a, b)``; ``CompiledCalendar.years`` tells which local years are compiled so far.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from abc import ABC, abstractmethod
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package
import numpy as np

__all__ = [
    "HORIZON_END_YEAR",
    "HORIZON_START_YEAR",
    "TWENTY_FOUR_SEVEN",
    "Calendar",
    "CalendarSpec",
    "CompiledCalendar",
    "business_seconds",
    "check_region",
    "clear_cache",
    "compile_calendar",
    "compile_keyed",
    "due",
    "parse_hours",
    "public_holidays",
    "supported_countries",
]

HORIZON_START_YEAR = 1900
HORIZON_END_YEAR = 2400  # exclusive

_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")  # ASCII digits: `\d` takes any script's
_DAY_MINUTES = 24 * 60

Pause = tuple[int, int | None]


# --------------------------------------------------------------------------- calendar spec


def _minutes(value: object, *, is_end: bool) -> int | None:
    """Minutes after local midnight of "HH:MM" (00:00-23:59, "24:00" only as an end), else None."""
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value)
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not is_end)):
        return None
    return hour * 60 + minute


class HoursError(ValueError):
    """A working interval refused: its index in `hours` (None: the list as a whole) and why. The
    message names the path (`hours[2]: ...`); the API keys the reason by that path."""

    def __init__(self, index: int | None, reason: str) -> None:
        self.index, self.reason = index, reason
        super().__init__(reason if index is None else f"hours[{index}]: {reason}")

    def detail(self) -> dict | list:
        """DRF's error detail of the `hours` field: by index (flattened to `hours[2]`) when it has one."""
        return [self.reason] if self.index is None else {self.index: [self.reason]}


def _check_hours(items: Sequence[tuple[object, object, object]]) -> tuple[tuple[int, str, str], ...]:
    """Validate (weekday, start, end) triples; return them sorted. HoursError names the index."""
    checked = []
    for index, (weekday, start, end) in enumerate(items):
        if type(weekday) is not int or not 1 <= weekday <= 7:
            raise HoursError(index, f"weekday must be an integer from 1 (Monday) to 7 (Sunday), not {weekday!r}")
        start_minute = _minutes(start, is_end=False)
        if start_minute is None:
            raise HoursError(index, f'start must be a time "HH:MM" from 00:00 to 23:59, not {start!r}')
        end_minute = _minutes(end, is_end=True)
        if end_minute is None:
            raise HoursError(index, f'end must be a time "HH:MM" from 00:01 to 24:00, not {end!r}')
        if end_minute <= start_minute:
            # Each interval lies within its own date (holidays are whole dates): say how to write
            # midnight and a night shift rather than only that the end comes first.
            hint = ""
            if end_minute == 0:
                hint = ': midnight as an end is "24:00"'
            elif end_minute < start_minute:
                hint = f": hours past midnight are two intervals, {start}-24:00 and 00:00-{end} on the next weekday"
            raise HoursError(index, f"end {end} must be after start {start}{hint}")
        checked.append((weekday, start_minute, end_minute, index))
    checked.sort()
    for previous, current in zip(checked, checked[1:], strict=False):
        if current[0] == previous[0] and current[1] < previous[2]:
            first, second = sorted((previous[3], current[3]))
            raise HoursError(second, f"overlaps hours[{first}] on weekday {current[0]}")
    return tuple((weekday, _hhmm(start), _hhmm(end)) for weekday, start, end, _ in checked)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_hours(items: object) -> tuple[tuple[int, str, str], ...]:
    """Validate API input ``[{"weekday": 1, "start": "08:00", "end": "17:00"}, ...]``.

    Returns the ``CalendarSpec.hours`` tuple of ``(weekday, "HH:MM", "HH:MM")``, sorted. Raises
    HoursError with a message naming the offending index (``hours[2]: ...``) for a missing key, a
    weekday that is not an integer 1-7, a time that is not "HH:MM" ("24:00" is allowed only as an
    end), an end not after its start, or two intervals that overlap on the same weekday
    (intervals that merely touch, 08:00-12:00 and 12:00-17:00, are fine).
    """
    if not isinstance(items, list | tuple):
        raise HoursError(None, "hours must be a list of {weekday, start, end} objects")
    triples = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise HoursError(index, "must be an object with weekday, start and end")
        for key in ("weekday", "start", "end"):
            if key not in item:
                raise HoursError(index, f"{key} is required")
        unknown = sorted(set(item) - {"weekday", "start", "end"})
        if unknown:
            raise HoursError(index, f"unknown key(s) {', '.join(map(str, unknown))}")
        triples.append((item["weekday"], item["start"], item["end"]))
    return _check_hours(triples)


class UnknownTimeZone(ValueError):
    """A time zone this machine's time zone database (tzdata) does not have."""

    def __init__(self, zone) -> None:
        self.zone = zone
        super().__init__(f"unknown time zone {zone!r}")


@dataclass(frozen=True)
class CalendarSpec:
    """A business-hours calendar: what `compile_calendar` compiles and caches.

    ``hours`` are ``(iso_weekday, "HH:MM", "HH:MM")`` triples in local wall time of ``time_zone``;
    ``holidays`` whole local dates (`date` objects or ISO strings). The spec is validated,
    normalised (hours sorted, holidays as dates) and hashable, so two equal calendars share one
    compiled form and a changed calendar is a different cache key.
    """

    time_zone: str
    hours: tuple[tuple[int, str, str], ...] = ()
    holidays: frozenset[date] = field(default_factory=frozenset)
    country: str | None = None
    subdivision: str | None = None
    working_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise UnknownTimeZone(self.time_zone) from None
        try:
            triples = [tuple(item) for item in self.hours]
        except TypeError:
            raise ValueError("hours must be a sequence of (weekday, start, end) triples") from None
        for index, triple in enumerate(triples):
            if len(triple) != 3:
                raise ValueError(f"hours[{index}]: must be a (weekday, start, end) triple")
        check_region(self.country, self.subdivision)
        object.__setattr__(self, "hours", _check_hours(triples))
        object.__setattr__(self, "holidays", _dates(self.holidays, "holiday"))
        object.__setattr__(self, "working_days", _dates(self.working_days, "working day"))

    def holidays_in(self, year: int) -> frozenset[date]:
        """The dates of `year` (and the calendar's own of any year) on which nothing is worked: its
        own holidays and the public holidays of its country that are not working days."""
        if self.country is None:
            return self.holidays
        return self.holidays | (public_holidays(self.country, self.subdivision, year) - self.working_days)

    def is_business_day(self, day: date) -> bool:
        """Whether a local date has working hours: its weekday has some, and it is no holiday."""
        weekday = day.isoweekday()
        return any(slot[0] == weekday for slot in self.hours) and day not in self.holidays_in(day.year)


def _dates(values: Iterable[object], what: str) -> frozenset[date]:
    days = set()
    for day in values:
        if isinstance(day, str):
            try:
                day = date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"{what} {day!r} is not a date YYYY-MM-DD") from None
        if type(day) is not date:
            raise ValueError(f"{what} {day!r} is not a date")
        days.add(day)
    return frozenset(days)


# --------------------------------------------------------------------------- public holidays


@lru_cache(maxsize=1)
def supported_countries() -> dict[str, tuple[str, ...]]:
    """The countries (ISO 3166-1 alpha-2) the `holidays` package knows, with their subdivisions."""
    return {
        country: tuple(subdivisions) for country, subdivisions in holidays_package.list_supported_countries().items()
    }


def check_region(country: str | None, subdivision: str | None) -> None:
    """ValueError unless the package supports the country (and the subdivision within it)."""
    if country is None:
        if subdivision is not None:
            raise ValueError("a holiday subdivision needs a holiday country")
        return
    known = supported_countries()
    if country not in known:
        raise ValueError(f"holiday country {country!r} is not supported (an ISO 3166-1 alpha-2 code the package knows)")
    if subdivision is not None and subdivision not in known[country]:
        raise ValueError(
            f"holiday subdivision {subdivision!r} is not one of {country}'s: {', '.join(known[country]) or 'none'}"
        )


@lru_cache(maxsize=4096)
def public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of a country (and subdivision) in one year, from the `holidays` package."""
    return frozenset(holidays_package.country_holidays(country, subdiv=subdivision, years=year))


# --------------------------------------------------------------------------- compiled form


class _OutOfRange(Exception):
    """A lookup fell outside the compiled span: `instant` must be covered (None: grow forward)."""

    def __init__(self, instant: int | None) -> None:
        self.instant = instant


class _Span:
    """An immutable compiled stretch of a calendar, local years [lo_year, hi_year).

    ``starts``/``ends``: merged working intervals as UTC epoch seconds; ``cumend[i]``: business
    seconds from ``lo`` (local midnight starting lo_year) to ``ends[i]``. Valid for instants in
    [lo, hi].
    """

    __slots__ = ("cumend", "ends", "hi", "hi_year", "lo", "lo_year", "starts")

    def __init__(self, lo_year, hi_year, lo, hi, starts, ends, cumend) -> None:
        self.lo_year, self.hi_year, self.lo, self.hi = lo_year, hi_year, lo, hi
        self.starts, self.ends, self.cumend = starts, ends, cumend

    def at(self, t: int) -> int:
        """B(t): business seconds in [lo, t)."""
        if t < self.lo or t > self.hi:
            raise _OutOfRange(t)
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        over = self.ends[i] - t
        return self.cumend[i] - over if over > 0 else self.cumend[i]

    def when(self, c: int) -> int:
        """The earliest t with B(t) >= c, for c > 0: inside or at the end of a working interval."""
        cumend = self.cumend
        k = bisect_left(cumend, c)
        if k == len(cumend):
            raise _OutOfRange(None)
        return self.ends[k] - (cumend[k] - c)


_UNBUILT = _Span(None, None, 1, 0, [], [], [])  # lo > hi: every lookup asks for a build


class _Identity:
    """The 24x7 clock: every second is business time, B(t) = t."""

    __slots__ = ()

    @staticmethod
    def at(t: int) -> int:
        return t

    @staticmethod
    def when(c: int) -> int:
        return c


def _at_many(span: _Span, t: np.ndarray) -> np.ndarray:
    """`span.at` over an array of instants inside the span."""
    starts = np.frombuffer(span.starts, dtype=np.int64)
    ends = np.frombuffer(span.ends, dtype=np.int64)
    cumend = np.frombuffer(span.cumend, dtype=np.int64)
    i = np.searchsorted(starts, t, side="right") - 1
    inside = np.maximum(i, 0)
    over = ends[inside] - t
    value = np.where(over > 0, cumend[inside] - over, cumend[inside])
    return np.where(i < 0, 0, value)


def _local_epoch(zone: ZoneInfo, day: date, minute: int) -> int:
    """UTC epoch seconds of local wall time `minute` (0-1440) on `day` in `zone`, fold=0."""
    if minute == _DAY_MINUTES:
        day, minute = day + timedelta(days=1), 0
    return int(datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone).timestamp())


def _year_intervals(zone: ZoneInfo, by_weekday: list[list[tuple[int, int]]], spec: CalendarSpec, year: int) -> array:
    """The working intervals of the local dates of `year`: UTC epoch seconds, unmerged, flat
    (start, end, start, end, ...)."""
    holidays = spec.holidays_in(year)
    raw = array("q")
    for ordinal in range(date(year, 1, 1).toordinal(), date(year + 1, 1, 1).toordinal()):
        day = date.fromordinal(ordinal)
        slots = by_weekday[day.isoweekday()]
        if not slots or day in holidays:
            continue
        for start, end in slots:
            s, e = _local_epoch(zone, day, start), _local_epoch(zone, day, end)
            if e > s:  # empty after DST conversion: counts nothing
                raw.append(s)
                raw.append(e)
    return raw


def _span(zone: ZoneInfo, lo_year: int, hi_year: int, flat: array) -> _Span:
    """Merge the raw intervals of local years [lo_year, hi_year) and sum them into a `_Span`."""
    pairs = sorted(zip(flat[::2], flat[1::2], strict=True))  # sorted but where a DST gap folds one back
    starts = array("q")
    ends = array("q")
    for s, e in pairs:
        if ends and s <= ends[-1]:
            ends[-1] = max(ends[-1], e)
        else:
            starts.append(s)
            ends.append(e)
    cumend = array("q")
    total = 0
    for s, e in zip(starts, ends, strict=True):
        total += e - s
        cumend.append(total)
    lo = _local_epoch(zone, date(lo_year, 1, 1), 0)
    hi = _local_epoch(zone, date(hi_year - 1, 12, 31), _DAY_MINUTES)
    return _Span(lo_year, hi_year, lo, hi, starts, ends, cumend)


def _merge_pauses(pauses: Iterable[Pause]) -> list[Pause]:
    """Sort and merge pause intervals (epoch seconds); drop empty ones; an open pause ends the list."""
    items = []
    for start, end in pauses:
        if end is None:
            items.append((start, math.inf))
        elif end < start:
            raise ValueError(f"a pause ends ({end}) before it starts ({start})")
        elif end > start:
            items.append((start, end))
    items.sort()
    merged: list[list] = []
    for start, end in items:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, None if end == math.inf else end) for start, end in merged]


def _check_target(target_seconds: object) -> int:
    if type(target_seconds) is not int or target_seconds < 1:
        raise ValueError(f"a target must be a whole number of seconds, at least 1, not {target_seconds!r}")
    return target_seconds


class Calendar(ABC):
    """Business time on epoch seconds; `CompiledCalendar` and `TWENTY_FOUR_SEVEN` are the two kinds.

    Subclasses provide ``_snapshot()`` (an object with ``at``/``when``, see `_Span`) and
    ``_grow(instant)`` (cover `instant`, or grow forward when None; False when it cannot).
    """

    spec: CalendarSpec | None = None

    @abstractmethod
    def _snapshot(self): ...

    @abstractmethod
    def _grow(self, instant: int | None) -> bool: ...

    def business_seconds(self, a: int, b: int, pauses: Iterable[Pause] = ()) -> int:
        """Business seconds in [a, b) (epoch seconds) outside `pauses`; 0 when b <= a."""
        if b <= a:
            return 0
        merged = _merge_pauses(pauses) if pauses else ()
        while True:
            span = self._snapshot()
            try:
                total = span.at(b) - span.at(a)
                for pause_start, pause_end in merged:
                    lo = a if pause_start < a else pause_start
                    hi = b if pause_end is None or pause_end > b else pause_end
                    if hi > lo:
                        total -= span.at(hi) - span.at(lo)
                return total
            except _OutOfRange as exc:
                self._grow(exc.instant)

    def due(self, start: int, target_seconds: int, pauses: Iterable[Pause] = ()) -> int | None:
        """The earliest epoch second t with business_seconds(start, t, pauses) == target_seconds.

        None when the clock never gets there: an open pause begins first, the calendar has no
        working time, or t would be after the compiled horizon.
        """
        target = _check_target(target_seconds)
        merged = _merge_pauses(pauses) if pauses else ()
        while True:
            span = self._snapshot()
            try:
                goal = span.at(start) + target
                for pause_start, pause_end in merged:
                    if pause_end is not None and pause_end <= start:
                        continue
                    reached_by_pause = span.at(pause_start if pause_start > start else start)
                    if goal <= reached_by_pause:
                        break  # reached before (or just as) this pause begins
                    if pause_end is None:
                        return None  # on hold with no end in sight
                    goal += span.at(pause_end) - reached_by_pause
                return span.when(goal)
            except _OutOfRange as exc:
                if not self._grow(exc.instant):
                    return None

    def figures(
        self, start: int, target_seconds: int, end: int, pauses: Iterable[Pause] = (), level_seconds: int | None = None
    ) -> tuple[int | None, int, int | None]:
        """A clock's figures in one call: ``(due(start, target_seconds, pauses), business_seconds(start,
        end, pauses), due(start, level_seconds, pauses) or None when level_seconds is None)``.

        The same answers as the three calls; the kinds of calendar answer the common case (no
        pauses) reading the business time at `start` once rather than once per answer.
        """
        due = self.due(start, target_seconds, pauses)
        elapsed = self.business_seconds(start, end, pauses)
        return due, elapsed, None if level_seconds is None else self.due(start, level_seconds, pauses)

    # --- many clocks at once (numpy int64 arrays of epoch seconds, no pauses) ----------------
    # The same answers as `due` and `business_seconds` element by element, for a batch such as a
    # backtest's hundred thousand jobs: two `searchsorted` over the compiled span instead of two
    # bisects per clock in Python.

    def _covering(self, low: int, high: int):
        """A snapshot whose span covers [low, high] (grown as needed)."""
        for instant in (low, high):
            while True:
                span = self._snapshot()
                try:
                    span.at(instant)
                    break
                except _OutOfRange as exc:
                    self._grow(exc.instant)
        return self._snapshot()

    def due_many(self, starts: np.ndarray, target_seconds: int) -> np.ndarray:
        """`due(start, target_seconds)` for each start; -1 where that is None."""
        target = _check_target(target_seconds)
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size == 0:
            return starts.copy()
        span = self._covering(int(starts.min()), int(starts.max()))
        if isinstance(span, _Identity):
            return starts + target
        cumend = np.frombuffer(span.cumend, dtype=np.int64)
        ends = np.frombuffer(span.ends, dtype=np.int64)
        goal = _at_many(span, starts) + target
        k = np.searchsorted(cumend, goal, side="left")
        reached = k < cumend.size
        due = np.full(starts.shape, -1, dtype=np.int64)
        due[reached] = ends[k[reached]] - (cumend[k[reached]] - goal[reached])
        for index in np.flatnonzero(~reached):  # past the compiled span: the scalar path grows it
            value = self.due(int(starts[index]), target)
            due[index] = -1 if value is None else value
        return due

    def business_seconds_many(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`business_seconds(a, b)` element by element (0 where b <= a)."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        if a.size == 0:
            return np.zeros(a.shape, dtype=np.int64)
        forward = b > a
        span = self._covering(int(a.min()), int(b.max()))
        if isinstance(span, _Identity):
            return np.where(forward, b - a, 0)
        return np.where(forward, _at_many(span, b) - _at_many(span, a), 0)

    def intervals(self, a: int, b: int) -> list[tuple[int, int]]:
        """The working intervals (epoch seconds, merged, holidays removed) clipped to [a, b)."""
        if b <= a:
            return []
        while True:
            span = self._snapshot()
            if isinstance(span, _Identity):
                return [(a, b)]
            try:
                span.at(a)  # make sure [a, b] is compiled
                span.at(b)
            except _OutOfRange as exc:
                self._grow(exc.instant)
                continue
            result = []
            for i in range(bisect_right(span.ends, a), len(span.starts)):
                s, e = span.starts[i], span.ends[i]
                if s >= b:
                    break
                result.append((max(s, a), min(e, b)))
            return result


class _TwentyFourSeven(Calendar):
    """No calendar: 24x7, every second counts. Nothing to compile, no horizon."""

    _IDENTITY = _Identity()

    def _snapshot(self):
        return self._IDENTITY

    def _grow(self, instant: int | None) -> bool:
        return True  # the identity covers every instant: never called

    def business_seconds(self, a: int, b: int, pauses: Iterable[Pause] = ()) -> int:
        if not pauses:  # fast path
            return b - a if b > a else 0
        return super().business_seconds(a, b, pauses)

    def due(self, start: int, target_seconds: int, pauses: Iterable[Pause] = ()) -> int | None:
        if not pauses:  # fast path
            return start + _check_target(target_seconds)
        return super().due(start, target_seconds, pauses)

    def figures(
        self, start: int, target_seconds: int, end: int, pauses: Iterable[Pause] = (), level_seconds: int | None = None
    ) -> tuple[int | None, int, int | None]:
        if not pauses:  # fast path: the three answers above, in one call
            due = start + _check_target(target_seconds)
            level = None if level_seconds is None else start + _check_target(level_seconds)
            return due, end - start if end > start else 0, level
        return super().figures(start, target_seconds, end, pauses, level_seconds)

    def __repr__(self) -> str:
        return "TWENTY_FOUR_SEVEN"


TWENTY_FOUR_SEVEN: Calendar = _TwentyFourSeven()


class CompiledCalendar(Calendar):
    """A `CalendarSpec` compiled to UTC interval boundaries with cumulative sums.

    Get one with `compile_calendar` (cached). The covered span of years grows on demand.
    """

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self._span = _UNBUILT
        self._lock = threading.Lock()
        self._has_hours = bool(spec.hours)
        self._zone = ZoneInfo(spec.time_zone)
        self._by_weekday: list[list[tuple[int, int]]] = [[] for _ in range(8)]
        for weekday, start, end in spec.hours:
            self._by_weekday[weekday].append((_minutes(start, is_end=False), _minutes(end, is_end=True)))
        self._years: dict[int, array] = {}  # local year -> its raw intervals, flat

    def _build(self, lo_year: int, hi_year: int) -> _Span:
        """Compile local years [lo_year, hi_year); each year is converted from wall time only once."""
        raw = array("q")
        for year in range(lo_year, hi_year):
            intervals = self._years.get(year)
            if intervals is None:
                intervals = self._years[year] = _year_intervals(self._zone, self._by_weekday, self.spec, year)
            raw += intervals
        return _span(self._zone, lo_year, hi_year, raw)

    @property
    def years(self) -> tuple[int, int] | None:
        """The local years compiled so far, ``(first, last)`` inclusive; None before the first use."""
        span = self._span
        return None if span.lo_year is None else (span.lo_year, span.hi_year - 1)

    def __repr__(self) -> str:
        covered = "{}-{}".format(*self.years) if self.years else "nothing yet"
        span = self._span
        return f"<CompiledCalendar {self.spec.time_zone}, {len(span.starts)} intervals, years {covered}>"

    def _snapshot(self) -> _Span:
        return self._span

    def _grow(self, instant: int | None) -> bool:
        with self._lock:
            span = self._span
            if instant is not None:
                if span.lo <= instant <= span.hi:
                    return True  # another thread got there first
                try:
                    year = datetime.fromtimestamp(instant, UTC).year
                except (OverflowError, OSError, ValueError):
                    year = None
                if year is None or not HORIZON_START_YEAR <= year < HORIZON_END_YEAR:
                    raise ValueError(
                        f"instant {instant} is outside the calendar horizon {HORIZON_START_YEAR}-{HORIZON_END_YEAR - 1}"
                    )
                # Only the local year of the instant (each year costs a conversion of its every
                # working day), within the horizon, joined to what is already compiled.
                year = datetime.fromtimestamp(instant, self._zone).year
                lo_year = hi_year = min(max(year, HORIZON_START_YEAR), HORIZON_END_YEAR - 1)
                hi_year += 1
                if span.lo_year is not None:
                    lo_year, hi_year = min(lo_year, span.lo_year), max(hi_year, span.hi_year)
                new = self._build(lo_year, hi_year)
                # A local year runs from its first local midnight to its last, each read with fold=0:
                # an instant in a repeated hour across New Year's midnight can lie outside its own
                # year's span; the neighbouring year covers it.
                while not new.lo <= instant <= new.hi:
                    if instant < new.lo and lo_year > HORIZON_START_YEAR:
                        lo_year -= 1
                    elif instant > new.hi and hi_year < HORIZON_END_YEAR:
                        hi_year += 1
                    else:  # a local year just past the horizon
                        raise ValueError(f"instant {instant} is outside the calendar horizon")
                    new = self._build(lo_year, hi_year)
            else:
                if span.hi_year >= HORIZON_END_YEAR:
                    return False
                grow = max(2, span.hi_year - span.lo_year)
                new = self._build(span.lo_year, min(HORIZON_END_YEAR, span.hi_year + grow))
            self._span = new
            return True

    def business_seconds(self, a: int, b: int, pauses: Iterable[Pause] = ()) -> int:
        if not self._has_hours:
            return 0
        return super().business_seconds(a, b, pauses)

    def due(self, start: int, target_seconds: int, pauses: Iterable[Pause] = ()) -> int | None:
        span = self._span
        if not pauses and type(target_seconds) is int and target_seconds > 0 and span.lo <= start <= span.hi:
            # Fast path, `_Span.at` then `_Span.when` inlined: one bisect each way.
            ends, cumend = span.ends, span.cumend
            i = bisect_right(span.starts, start) - 1
            goal = target_seconds if i < 0 else cumend[i] - max(ends[i] - start, 0) + target_seconds
            k = bisect_left(cumend, goal)
            if k < len(cumend):
                return ends[k] - (cumend[k] - goal)
        if not self._has_hours:
            _check_target(target_seconds)
            return None
        return super().due(start, target_seconds, pauses)

    def figures(
        self, start: int, target_seconds: int, end: int, pauses: Iterable[Pause] = (), level_seconds: int | None = None
    ) -> tuple[int | None, int, int | None]:
        span = self._span
        if not pauses and type(target_seconds) is int and target_seconds > 0 and span.lo <= start <= span.hi:
            # Fast path (one clock of `evaluate`): `_Span.at(start)` once for the three answers, then one
            # bisect for each, as `due`'s fast path; anything it does not cover takes the general path.
            starts, ends, cumend = span.starts, span.ends, span.cumend
            i = bisect_right(starts, start) - 1
            at_start = 0 if i < 0 else cumend[i] - max(ends[i] - start, 0)
            goal = at_start + target_seconds
            k = bisect_left(cumend, goal)
            if k < len(cumend) and span.lo <= end <= span.hi:
                due = ends[k] - (cumend[k] - goal)
                elapsed = 0
                if end > start:
                    j = bisect_right(starts, end) - 1
                    elapsed = (0 if j < 0 else cumend[j] - max(ends[j] - end, 0)) - at_start
                if level_seconds is None:
                    return due, elapsed, None
                if type(level_seconds) is int and level_seconds > 0:
                    goal = at_start + level_seconds
                    k = bisect_left(cumend, goal)
                    if k < len(cumend):
                        return due, elapsed, ends[k] - (cumend[k] - goal)
                return due, elapsed, self.due(start, level_seconds)
        return super().figures(start, target_seconds, end, pauses, level_seconds)

    def intervals(self, a: int, b: int) -> list[tuple[int, int]]:
        if not self._has_hours:
            return []
        return super().intervals(a, b)

    def due_many(self, starts: np.ndarray, target_seconds: int) -> np.ndarray:
        if not self._has_hours:
            _check_target(target_seconds)
            return np.full(np.shape(starts), -1, dtype=np.int64)
        return super().due_many(starts, target_seconds)

    def business_seconds_many(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not self._has_hours:
            return np.zeros(np.shape(a), dtype=np.int64)
        return super().business_seconds_many(a, b)


# Equal specs share one compiled calendar while anything holds it (no size limit to thrash past).
_shared: weakref.WeakValueDictionary[CalendarSpec, CompiledCalendar] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()
# The caller's keys (a calendar row's id) -> (stamp, compiled): one entry per key, never evicted
# by other keys, replaced when the stamp changes.
_keyed: dict[object, tuple[object, Calendar]] = {}


@lru_cache(maxsize=512)  # keeps the most recent specs alive for callers that hold nothing
def _compile_cached(spec: CalendarSpec) -> CompiledCalendar:
    with _shared_lock:
        compiled = _shared.get(spec)
        if compiled is None:
            compiled = _shared[spec] = CompiledCalendar(spec)
        return compiled


def compile_calendar(spec: CalendarSpec | None) -> Calendar:
    """The compiled calendar of `spec` (cached; equal specs share one), or 24x7 for None."""
    if spec is None:
        return TWENTY_FOUR_SEVEN
    if isinstance(spec, Calendar):  # already compiled (e.g. a calendar row's cached one)
        return spec
    if not isinstance(spec, CalendarSpec):
        raise TypeError(f"expected a CalendarSpec or None, not {type(spec).__name__}")
    return _compile_cached(spec)


def compile_keyed(key: object, stamp: object, make_spec: Callable[[], CalendarSpec | None]) -> Calendar:
    """The compiled calendar cached under `key` while its `stamp` is unchanged.

    On a miss (a new key, or a new stamp: the calendar changed) `make_spec()` builds the spec
    and the entry is replaced; a hit costs one dict lookup and one comparison, so callers need
    not build (and hash) a spec per computation. Equal specs under different keys still share
    one compiled calendar.
    """
    entry = _keyed.get(key)
    if entry is not None and entry[0] == stamp:
        return entry[1]
    compiled = compile_calendar(make_spec())
    _keyed[key] = (stamp, compiled)
    return compiled


def clear_cache() -> None:
    """Forget every compiled calendar (they are rebuilt on the next use)."""
    _keyed.clear()
    _compile_cached.cache_clear()
    with _shared_lock:
        _shared.clear()


# --------------------------------------------------------------------------- datetime API


def _calendar(calendar: CalendarSpec | Calendar | None) -> Calendar:
    if isinstance(calendar, Calendar):
        return calendar
    return compile_calendar(calendar)


def epoch(value: datetime, name: str = "instant") -> int:
    """Whole UTC epoch seconds of an aware datetime (a fraction of a second is dropped), as the
    datetime API converts its arguments: for a caller that makes several computations on the same
    instants (convert once, then use a calendar's epoch-seconds `due` and `business_seconds`).
    `name` says which argument an error is about."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    zone = value.tzinfo
    if zone is None or (zone is not UTC and value.utcoffset() is None):
        raise ValueError(f"{name} is a naive datetime; give it a time zone")
    return math.floor(value.timestamp())


def epoch_pauses(pauses: Iterable[tuple[datetime, datetime | None]]) -> list[Pause]:
    """Pauses as datetimes to pauses in epoch seconds (see `epoch`)."""
    return [(epoch(start, "pause start"), None if end is None else epoch(end, "pause end")) for start, end in pauses]


def instant(t: int | None) -> datetime | None:
    """An epoch-seconds result (a due time) as the datetime API returns it: aware, UTC; None stays None."""
    return None if t is None else datetime.fromtimestamp(t, UTC)


def business_seconds(
    calendar: CalendarSpec | Calendar | None,
    a: datetime,
    b: datetime,
    pauses: Iterable[tuple[datetime, datetime | None]] = (),
) -> int:
    """Business seconds in [a, b) under `calendar` (None: 24x7), outside `pauses`; 0 when b <= a.

    `pauses` are ``(start, end)`` pairs of aware datetimes, ``end`` None for a hold still open.
    """
    cal = _calendar(calendar)
    return cal.business_seconds(epoch(a, "a"), epoch(b, "b"), epoch_pauses(pauses) if pauses else ())


def due(
    calendar: CalendarSpec | Calendar | None,
    start: datetime,
    target_minutes: int,
    pauses: Iterable[tuple[datetime, datetime | None]] = (),
) -> datetime | None:
    """The due time (aware, UTC) of a target of `target_minutes` business minutes from `start`.

    The earliest instant at which the business time since `start` (outside `pauses`) reaches
    the target; None when it never does (see the module docstring).
    """
    if type(target_minutes) is not int or target_minutes < 1:
        raise ValueError(f"a target must be a whole number of minutes, at least 1, not {target_minutes!r}")
    cal = calendar if isinstance(calendar, Calendar) else compile_calendar(calendar)
    t = cal.due(epoch(start, "start"), target_minutes * 60, epoch_pauses(pauses) if pauses else ())
    return None if t is None else datetime.fromtimestamp(t, UTC)

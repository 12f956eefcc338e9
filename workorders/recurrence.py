"""RFC 5545 recurrences of planned visits, in a contract's time zone (pure: no Django).

A plan's `recurrence` is one RRULE (with or without the `RRULE:` prefix), parsed by
python-dateutil, e.g. `FREQ=MONTHLY;BYDAY=3MO;BYHOUR=9;BYMINUTE=0` (every third Monday at
09:00) or `FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=8` (quarterly on the 1st). It is
anchored at local midnight of the plan's `active_from` (so times not given by BYHOUR/BYMINUTE
are 00:00, and INTERVAL and COUNT count from that day). `UNTIL` is a local date or date-time
without `Z`. FREQ is DAILY or coarser: a plan makes work orders, not a ticker.

At most one time of the minute and one minute of the hour, so at most one visit per hour of a day
("daily at 08:00 and 16:00": `FREQ=DAILY;BYHOUR=8,16`; `BYHOUR` may list any hours, `BYMINUTE`
one minute, `BYSECOND` only 0). A plan then has at most `MAX_PER_DAY` (24) occurrences on any
local date, a window of n days at most 24 x (n + 2) of them (`max_occurrences`), and no two of its
occurrences fall in the same local minute, which keeps the jobs' references
(VISIT-{plan}-{YYYYMMDD-HHMM}) unique. Only the parts RFC 5545 defines are read (not dateutil's
BYEASTER or BYWEEKDAY), each once; `INTERVAL` spans at most `MAX_INTERVAL_YEARS` (100) years and
`COUNT` is at least 1 (not with `UNTIL`). `refusal` says why a rule may not run (a stored rule
written before these checks is skipped by generation and lists no occurrences, never run).

The rule runs in local wall time; each occurrence becomes an instant for its own date, so
"09:00" stays 09:00 across DST changes. A wall time that does not exist (the spring-forward
gap) is read with the offset before the change (02:30 becomes 03:30 summer time); one that
happens twice (the autumn overlap) is the first of the two.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections.abc import Iterator

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrulestr

ALLOWED_FREQUENCIES = {YEARLY: "YEARLY", MONTHLY: "MONTHLY", WEEKLY: "WEEKLY", DAILY: "DAILY"}
# The parts of an RFC 5545 RECUR value (section 3.3.10); dateutil also reads BYEASTER and BYWEEKDAY.
RFC5545_PARTS = (
    "FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY",
    "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",
)  # fmt: skip
# One occurrence per hour of a local date at most (BYHOUR lists hours, BYMINUTE names one minute).
MAX_PER_DAY = 24
# The longest INTERVAL, in years (a 12-year hydrostatic test fits; INTERVAL=99999999999 does not).
MAX_INTERVAL_YEARS = 100
_MAX_INTERVAL = {YEARLY: MAX_INTERVAL_YEARS, MONTHLY: 12 * MAX_INTERVAL_YEARS, WEEKLY: 5218, DAILY: 36525}
# A wall time can move by at most a few hours between its local and UTC readings.
_MARGIN = dt.timedelta(hours=30)
# A plan's rule must recur within this many years of its start (a leap day recurs every 4).
PROBE_YEARS = 10
_LONGEST = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _body(text: str) -> str:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    return body


@functools.lru_cache(maxsize=4096)
def _rule(text: str, anchor: dt.date):
    return rrulestr(_body(text), dtstart=dt.datetime.combine(anchor, dt.time.min), cache=False)


@functools.lru_cache(maxsize=4096)
def refusal(text: str) -> str | None:
    """Why a plan may not run this rule, whatever its start (None: it may). Cached: generation and
    the visits listing ask it of every stored rule, which may predate a check."""
    if not isinstance(text, str) or not _body(text):
        return "Give an RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9."
    body = _body(text)
    if any(part in body.upper() for part in ("\n", "DTSTART", "RDATE", "EXDATE", "EXRULE")):
        return "Only one RRULE (no DTSTART, RDATE or EXDATE): the plan's active_from anchors it."
    if re.search(r"UNTIL=\d{8}(T\d{6})?Z", body.upper()):
        return "UNTIL is read in local time (a plan's: its contract's time zone): give it without the Z."
    names = [pair.split("=", 1)[0].strip().upper() for pair in body.split(";")]
    if "" in names:
        return "An RRULE's parts are NAME=VALUE separated by ';' (none empty, no ';' at the end)."
    unknown = [name for name in names if name not in RFC5545_PARTS]
    if unknown:
        parts = ", ".join(RFC5545_PARTS)
        return f"{unknown[0]} is not part of an RFC 5545 RRULE (its parts: {parts})."
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return f"{repeated[0]} is given twice: each part of an RRULE at most once."
    if "COUNT" in names and "UNTIL" in names:
        return "COUNT and UNTIL exclude each other (RFC 5545): give one."
    try:
        rule = _rule(body, dt.date(2000, 1, 1))  # every anchor is a local midnight
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        return f"Not a valid RRULE: {exc}"
    if rule._freq not in ALLOWED_FREQUENCIES:
        return "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY."
    if rule._interval < 1:  # dateutil takes INTERVAL=0 and then never moves forward
        return "INTERVAL must be at least 1."
    if rule._interval > _MAX_INTERVAL[rule._freq]:
        longest, freq = _MAX_INTERVAL[rule._freq], ALLOWED_FREQUENCIES[rule._freq]
        return f"INTERVAL may span at most {MAX_INTERVAL_YEARS} years: at most {longest} with FREQ={freq}."
    if rule._count is not None and rule._count < 1:
        return "COUNT must be at least 1."
    if set(rule._bysecond) != {0}:
        return "BYSECOND may only be 0: a plan makes work orders, not a ticker."
    if len(set(rule._byminute)) > 1:
        return "BYMINUTE takes one minute (a plan visits at most once an hour); list the hours in BYHOUR."
    return None


def max_occurrences(after: dt.datetime, until: dt.datetime) -> int:
    """The most occurrences a rule `refusal` passes can have in (after, until]: at most
    MAX_PER_DAY on each local date the span touches (its days, rounded up, and one more at each
    end for the time zone)."""
    days = -((after - until) // dt.timedelta(days=1))  # rounded up
    return MAX_PER_DAY * (max(days, 0) + 2)


def validate(text: str, anchor: dt.date | None = None, *, start: str = "the plan's start") -> str:
    """The normalised rule text, or ValueError saying what is wrong (`start`: what the anchor is
    called in the message; a calendar import's rule starts at its event's DTSTART)."""
    problem = refusal(text)
    if problem:
        raise ValueError(problem)
    body = _body(text)
    try:
        rule = _rule(body, anchor or dt.date(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ValueError(f"Not a valid RRULE: {exc}") from None
    # A rule no date satisfies (BYMONTH=2;BYMONTHDAY=30) sends dateutil searching up to year 9999,
    # seconds of CPU for every listing: refuse one that has no occurrence within PROBE_YEARS (the
    # month-and-day case, the usual one, at once; the probe itself is that search for the rest).
    months = rule._bymonth or range(1, 13)
    days = rule._bymonthday or ()
    if days and not rule._bynmonthday and all(day > _LONGEST[month] for month in months for day in days):
        raise ValueError("The rule names no date that exists (BYMONTHDAY beyond BYMONTH's days).")
    first = rule._dtstart
    if rule._until is not None and rule._until < first:
        raise ValueError(f"UNTIL is before {start} ({first.date().isoformat()}): the rule has no occurrence.")
    probe = rule.replace(count=None, until=first + relativedelta(years=PROBE_YEARS))  # from a 29 February too
    if probe.after(first, inc=True) is None:
        raise ValueError(f"The rule has no occurrence in the {PROBE_YEARS} years from {start}.")
    return body


_SHORTEST = {**_LONGEST, 2: 28}  # the days every year's month has
_DAY_PARTS = ("BYMONTHDAY", "BYDAY", "BYYEARDAY", "BYWEEKNO")


def anchor_skips(text: str, anchor: dt.date) -> str | None:
    """Why a MONTHLY or YEARLY rule that takes its day of the month from its anchor (no BYMONTHDAY,
    BYDAY, BYYEARDAY or BYWEEKNO) would skip months, or None. RFC 5545 (and dateutil) drop the
    dates that do not exist, so "monthly" from 31 January visited seven months a year and "yearly"
    from 29 February every fourth year, with nothing said. A plan's writer names the day instead:
    BYMONTHDAY=-1 for the month's last day, or the day itself to mean only the months that have it."""
    names = {pair.split("=", 1)[0].strip().upper() for pair in _body(text).split(";")}
    rule = _rule(_body(text), anchor)
    if rule._freq not in (MONTHLY, YEARLY) or names & set(_DAY_PARTS) or anchor.day <= 28:
        return None
    months = rule._bymonth or (range(1, 13) if rule._freq == MONTHLY else (anchor.month,))
    missing = sorted({month for month in months if anchor.day > _SHORTEST[month]})
    if not missing:
        return None
    month_names = {2: "February outside leap years" if anchor.day == 29 else "February", 4: "April", 6: "June"}
    month_names |= {9: "September", 11: "November"}
    skipped = ", ".join(month_names[month] for month in missing)
    freq = ALLOWED_FREQUENCIES[rule._freq]
    # YEARLY with a BYMONTHDAY but no BYMONTH recurs in every month: name the anchor's month too.
    month = f"BYMONTH={anchor.month};" if rule._freq == YEARLY and "BYMONTH" not in names else ""
    return (
        f"FREQ={freq} anchored on {anchor.isoformat()} (the plan's active_from) takes the day {anchor.day} from it, "
        f"and RFC 5545 skips the months without it ({skipped}): add {month}BYMONTHDAY=-1 for the last day of the "
        f"month, or {month}BYMONTHDAY={anchor.day} to visit only in the months that have that day."
    )


def wall_times(text: str, anchor: dt.date, horizon: dt.datetime) -> Iterator[dt.datetime]:
    """The occurrences (local wall times) of a rule `validate` passed, from its anchor up to
    `horizon`, lazily, COUNT still counting: dateutil stops at `horizon` rather than searching on
    to the next occurrence (up to year 9999 for a rule that has none left)."""
    rule = _rule(_body(text), anchor)
    end = horizon if rule._until is None else min(horizon, rule._until)
    for index, moment in enumerate(rule.replace(count=None, until=end), start=1):
        yield moment
        if rule._count is not None and index >= rule._count:
            return


def occurrences(
    text: str,
    *,
    time_zone: str,
    anchor: dt.date,
    after: dt.datetime,
    until: dt.datetime,
    limit: int | None = 10_000,
    walls: bool = False,
) -> list:
    """The occurrence starts in (after, until], as UTC instants, in order, at most `limit` (None:
    all of them, at most `max_occurrences(after, until)`). ValueError for a rule `refusal` refuses.
    `walls`: (instant, wall time) pairs, the local wall time the rule gave (02:30 for the 03:30
    summer-time instant of a spring-forward gap; the earlier of two that name one instant)."""
    problem = refusal(text)
    if problem:
        raise ValueError(problem)
    tz = zoneinfo.ZoneInfo(time_zone)
    rule = _rule(_body(text), anchor)
    low = after.astimezone(tz).replace(tzinfo=None) - _MARGIN
    high = until.astimezone(tz).replace(tzinfo=None) + _MARGIN
    found: dict[dt.datetime, dt.datetime] = {}
    for wall in rule.xafter(max(low, rule._dtstart), inc=True):
        if wall > high or (limit is not None and len(found) >= limit):
            break
        # Two wall times can name one instant (a gap time and the hour after it): one occurrence.
        instant = wall.replace(tzinfo=tz).astimezone(dt.UTC)
        if after < instant <= until:
            found.setdefault(instant, wall)
    return [(instant, found[instant]) for instant in sorted(found)] if walls else sorted(found)

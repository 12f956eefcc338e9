"""RFC 5545 recurrences of planned visits, in a contract's time zone (pure: no Django).

A plan's `recurrence` is one RRULE (with or without the `RRULE:` prefix), parsed by
python-dateutil, e.g. `FREQ=MONTHLY;BYDAY=3MO;BYHOUR=9;BYMINUTE=0` (every third Monday at
09:00) or `FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=8` (quarterly on the 1st). It is
anchored at local midnight of the plan's `active_from` (so times not given by BYHOUR/BYMINUTE
are 00:00, and INTERVAL and COUNT count from that day). `UNTIL` is a local date or date-time
without `Z`. FREQ is DAILY or coarser: a plan makes work orders, not a ticker.

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

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrulestr

ALLOWED_FREQUENCIES = {YEARLY: "YEARLY", MONTHLY: "MONTHLY", WEEKLY: "WEEKLY", DAILY: "DAILY"}
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


def validate(text: str, anchor: dt.date | None = None) -> str:
    """The normalised rule text, or ValueError saying what is wrong."""
    if not isinstance(text, str) or not _body(text):
        raise ValueError("Give an RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9.")
    body = _body(text)
    if any(part in body.upper() for part in ("\n", "DTSTART", "RDATE", "EXDATE", "EXRULE")):
        raise ValueError("Only one RRULE (no DTSTART, RDATE or EXDATE): the plan's active_from anchors it.")
    if re.search(r"UNTIL=\d{8}(T\d{6})?Z", body.upper()):
        raise ValueError("UNTIL is read in the contract's time zone: give it without the Z.")
    try:
        rule = _rule(body, anchor or dt.date(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"Not a valid RRULE: {exc}") from None
    if rule._freq not in ALLOWED_FREQUENCIES:
        raise ValueError("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY.")
    if rule._interval < 1:  # dateutil takes INTERVAL=0 and then never moves forward
        raise ValueError("INTERVAL must be at least 1.")
    # A rule no date satisfies (BYMONTH=2;BYMONTHDAY=30) sends dateutil searching up to year 9999,
    # seconds of CPU for every listing: refuse one that has no occurrence within PROBE_YEARS (the
    # month-and-day case, the usual one, at once; the probe itself is that search for the rest).
    months = rule._bymonth or range(1, 13)
    days = rule._bymonthday or ()
    if days and not rule._bynmonthday and all(day > _LONGEST[month] for month in months for day in days):
        raise ValueError("The rule names no date that exists (BYMONTHDAY beyond BYMONTH's days).")
    start = rule._dtstart
    if rule._until is not None and rule._until < start:
        raise ValueError(f"UNTIL is before the plan's start ({start.date().isoformat()}): the rule has no occurrence.")
    probe = rule.replace(count=None, until=start + relativedelta(years=PROBE_YEARS))  # from a 29 February too
    if probe.after(start, inc=True) is None:
        raise ValueError(f"The rule has no occurrence in the {PROBE_YEARS} years from the plan's start.")
    return body


def occurrences(
    text: str, *, time_zone: str, anchor: dt.date, after: dt.datetime, until: dt.datetime, limit: int = 10_000
) -> list[dt.datetime]:
    """The occurrence starts in (after, until], as UTC instants, in order, at most `limit`."""
    tz = zoneinfo.ZoneInfo(time_zone)
    rule = _rule(_body(text), anchor)
    low = after.astimezone(tz).replace(tzinfo=None) - _MARGIN
    high = until.astimezone(tz).replace(tzinfo=None) + _MARGIN
    found: set[dt.datetime] = set()
    for wall in rule.xafter(max(low, rule._dtstart), inc=True):
        if wall > high or len(found) >= limit:
            break
        # Two wall times can name one instant (a gap time and the hour after it): one occurrence.
        instant = wall.replace(tzinfo=tz).astimezone(dt.UTC)
        if after < instant <= until:
            found.add(instant)
    return sorted(found)

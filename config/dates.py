"""The dates and instants the service takes: from 2000-01-01 to 2999-12-31 (an instant by its UTC date).

Contracts, terms and reports have no business before 2000 (work orders already start there) nor
after 2999, and the bounds keep every computation on a date (billing periods, recurrences, windows
of days, a month's statement) well inside what Python's dates hold: a year 1 or 9999 (an instant
whose offset carries it past either end) gave 500s, and a contract starting in year 1 had
`run_lifecycle` open 24,000 monthly periods. Request bodies (`config.api.serializers`), the query
parameters that name a day or an instant, and GraphQL arguments all check here; filters, which only
compare, take any instant a database can hold (`representable`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo

from django.utils.dateparse import parse_datetime

from .errors import BadRequest

EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2999, 12, 31)
RANGE = f"from {EARLIEST} to {LATEST}"
# The range as the OpenAPI document states it on a date or instant: its year is 2xxx (change both together).
YEAR_PATTERN = "^2[0-9]{3}-"


def representable(value: dt.datetime) -> bool:
    """Whether an aware instant has a UTC form (9999-12-31T23:00-02:00 has none)."""
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        return False
    return True


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(raw: str) -> dt.date | None:
    """A date written YYYY-MM-DD, else None (an impossible one too, 2026-02-30). Never a locale's
    `12/20/2026` or `Dec 20 2026`, which Django's date form field also tries."""
    if not _ISO_DATE.fullmatch(raw):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def parse_instant(raw: str) -> dt.datetime | None:
    """An ISO 8601 instant as the API's bodies read one (`parse_datetime`: with or without an
    offset, `T` or a space, a date alone as its midnight), in ASCII digits; else None. The offset
    is the caller's business (a filter reads a naive one as UTC, a body refuses it)."""
    if not raw.isascii():
        return None
    try:
        return parse_datetime(raw)
    except ValueError:  # well formed but not a date (2026-02-30)
        return None


def in_range(value: dt.date | dt.datetime) -> bool:
    """Whether a date, or an aware instant by its UTC date, lies in the service's range."""
    if isinstance(value, dt.datetime):
        if not representable(value):
            return False
        value = value.astimezone(dt.UTC).date()
    return EARLIEST <= value <= LATEST


@functools.cache
def _time_zones() -> frozenset[str]:
    # Read from disk once per process; "localtime" is whatever the server's zone is and "Factory" a
    # placeholder: neither is a place a contract or a report can be in.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory", "posixrules"}


def is_time_zone(name) -> bool:
    """Whether `name` is an IANA time zone a contract, calendar or report can be in."""
    return name in _time_zones()


NAIVE = "An instant needs an offset: Z or ±HH:MM (e.g. 2026-03-01T09:00:00Z)."


def check(value, name: str):
    """`value` when it is an instant with an offset (or a date) in range, or None; else a 400
    naming the parameter. GraphQL's DateTime arguments arrive parsed, with or without an offset
    (found by an outside sweep: a naive one reached the services and failed there, a 500)."""
    if isinstance(value, dt.datetime) and value.utcoffset() is None:
        raise BadRequest(f"{name}: {NAIVE}", {name: [NAIVE]})
    if value is not None and not in_range(value):
        raise BadRequest(f"{name} must be {RANGE}.", {name: [f"Must be {RANGE}."]})
    return value

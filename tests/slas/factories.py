"""Factories for calendars and SLA rules, and the fixed instants the SLA tests are written in.

Every instant is a fixed one in 2026 (in the past), so no test depends on today. The office
calendar is Monday to Friday 08:00-17:00 in Europe/Amsterdam (UTC+1 in winter, +2 in summer).
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from slas.models import Calendar, SlaRule

AMS = ZoneInfo("Europe/Amsterdam")
UTC = dt.UTC
OFFICE_HOURS = [{"weekday": day, "start": "08:00", "end": "17:00"} for day in range(1, 6)]
# The start of 2026 in Amsterdam: rules in force for every job the tests report.
RULES_FROM = dt.datetime(2026, 1, 1, tzinfo=AMS)

_names = itertools.count(1)


def ams(*args: int) -> dt.datetime:
    """A wall time in Europe/Amsterdam."""
    return dt.datetime(*args, tzinfo=AMS)


def iso(instant: dt.datetime) -> str:
    """An instant as the API writes it: UTC with a Z."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_calendar(organization, **fields) -> Calendar:
    defaults = {"name": f"Office hours {next(_names)}", "time_zone": "Europe/Amsterdam", "hours": OFFICE_HOURS}
    return Calendar.objects.create(organization=organization, **{**defaults, **fields})


def make_rule(contract, **fields) -> SlaRule:
    """A rule saved as given (no overlap check, no recomputation: make rules before jobs)."""
    metric = fields.get("metric", SlaRule.Metric.RESPONSE)
    defaults = {
        "name": f"Rule {next(_names)}",
        "metric": metric,
        "priorities": ["critical", "high"],
        "target_minutes": 120,
        "pause_on_hold": metric == SlaRule.Metric.RESOLUTION,
        "effective_from": RULES_FROM,
    }
    return SlaRule.objects.create(organization=contract.organization, contract=contract, **{**defaults, **fields})

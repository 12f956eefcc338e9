"""Clocks at risk (issue 11): running clocks due within a window, those already past due first.

"Running" means still counting: not stopped, whether or not the scan has already recorded its
breach (a clock past due stays in the list until its job stops it). One query on the partial
index `clock_open_due` (organization, due_at) finds them; the figures of each listed clock
(business minutes remaining, percent of the target used, the next escalation level) come from
the pure clock, for the page being shown only.
"""

from __future__ import annotations

import datetime as dt
import math

from slas import clock
from workorders.clocks import calendar_of, pauses_for
from workorders.models import SlaClock

S = SlaClock.State


def at_risk_clocks(*, organization, now: dt.datetime, within_minutes: int):
    """Clocks still running whose due time is before now + window, in due order."""
    horizon = now + dt.timedelta(minutes=within_minutes)
    return (
        SlaClock.objects.filter(
            organization=organization,
            stopped_at__isnull=True,
            state__in=[S.RUNNING, S.BREACHED],
            due_at__lte=horizon,
        )
        .select_related("rule__contract", "rule__calendar", "work_order")
        .prefetch_related("work_order__holds")
    )


def remaining_seconds(clock_row: SlaClock, now: dt.datetime) -> int:
    """Business seconds from now to the due time; negative (the business time since) once past it."""
    rule = clock_row.rule
    calendar, pauses = calendar_of(rule), pauses_for(rule, list(clock_row.work_order.holds.all()))
    if clock_row.due_at >= now:
        return clock.business_seconds(calendar, now, clock_row.due_at, pauses)
    return -clock.business_seconds(calendar, clock_row.due_at, now, pauses)


def risk_figures(clock_row: SlaClock, now: dt.datetime) -> dict:
    remaining = remaining_seconds(clock_row, now)
    target = clock_row.target_minutes * 60
    levels = sorted(clock_row.rule.escalation or [], key=lambda level: level["at_percent"])
    upcoming = None
    if clock_row.escalations_sent < len(levels):
        level = levels[clock_row.escalations_sent]
        upcoming = {"name": level["name"], "at_percent": level["at_percent"], "at": clock_row.next_escalation_at}
    return {
        "remaining_minutes": math.floor(remaining / 60),
        "percent_used": round((target - remaining) * 100 / target, 1),
        "next_escalation": upcoming,
    }

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
from typing import NamedTuple

from slas import clock
from workorders.clocks import (
    calendar_of,
    compiled_calendars,
    holds_by_job,
    paused_by_holds,
    pauses_for,
)
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


def remaining_seconds(due_at: dt.datetime, now: dt.datetime, calendar, pauses) -> int:
    """Business seconds from now to the due time; negative (the business time since) once past it."""
    if due_at >= now:
        return clock.business_seconds(calendar, now, due_at, pauses)
    return -clock.business_seconds(calendar, due_at, now, pauses)


def figures(clock_row, rule, calendar, holds, now: dt.datetime) -> dict:
    """A clock's figures from its rule (pause terms, escalation levels), the rule's compiled
    calendar (None: 24x7) and its job's holds."""
    remaining = remaining_seconds(clock_row.due_at, now, calendar, pauses_for(rule, holds))
    target = clock_row.target_minutes * 60
    levels = sorted(rule.escalation or [], key=lambda level: level["at_percent"])
    upcoming = None
    if clock_row.escalations_sent < len(levels):
        level = levels[clock_row.escalations_sent]
        upcoming = {"name": level["name"], "at_percent": level["at_percent"], "at": clock_row.next_escalation_at}
    return {
        "remaining_minutes": math.floor(remaining / 60),
        "percent_used": round((target - remaining) * 100 / target, 1),
        "next_escalation": upcoming,
    }


def risk_figures(clock_row: SlaClock, now: dt.datetime) -> dict:
    """`figures` of a clock read with its rule, calendar, job and holds (`at_risk_clocks`)."""
    rule = clock_row.rule
    return figures(clock_row, rule, calendar_of(rule), list(clock_row.work_order.holds.all()), now)


# --- a page of the report as rows (issue 15) -----------------------------------------------------

# What a clock's figures read of its row, its rule and its job, as columns of the page's `values()`
# query (config.api.rows): the rule and its calendar's stamp come joined with the clock.
FIGURE_COLUMNS = (
    "due_at", "target_minutes", "escalations_sent", "next_escalation_at", "work_order_id", "rule_id",
    "rule__metric", "rule__pause_on_hold", "rule__escalation", "rule__calendar_id", "rule__calendar__updated_at",
)  # fmt: skip


class _ClockFigures(NamedTuple):
    """What `figures` reads of a clock."""

    due_at: dt.datetime
    target_minutes: int
    escalations_sent: int
    next_escalation_at: dt.datetime | None


class _RuleTerms(NamedTuple):
    """What `figures` and `pauses_for` read of a rule."""

    metric: str
    pause_on_hold: bool
    escalation: list | None
    calendar_id: int | None


def page_figures(rows: list[dict], now: dt.datetime) -> dict[int, dict]:
    """The figures of a page of clocks by id, from the page's rows (`FIGURE_COLUMNS`): their
    rules' calendars compiled (from this process's cache, else one query), and the jobs' holds
    when a hold may pause one of the rules (one query)."""
    rules: dict[int, _RuleTerms] = {}
    stamps: dict[int, dt.datetime] = {}
    for row in rows:
        rule_id = row["rule_id"]
        if rule_id not in rules:
            rule = rules[rule_id] = _RuleTerms(
                row["rule__metric"], row["rule__pause_on_hold"], row["rule__escalation"], row["rule__calendar_id"]
            )
            if rule.calendar_id is not None:
                stamps[rule.calendar_id] = row["rule__calendar__updated_at"]
    if any(paused_by_holds(rule) for rule in rules.values()):
        holds = holds_by_job({row["work_order_id"] for row in rows})
    else:
        holds = {}
    calendars = compiled_calendars(stamps)
    computed = {}
    for row in rows:
        rule = rules[row["rule_id"]]
        clock_row = _ClockFigures(
            row["due_at"], row["target_minutes"], row["escalations_sent"], row["next_escalation_at"]
        )
        job_holds = holds.get(row["work_order_id"], [])
        computed[row["id"]] = figures(clock_row, rule, calendars[rule.calendar_id], job_holds, now)
    return computed

"""Clocks at risk (issue 11): running clocks due within a window, those already past due first.

"Running" means still counting: not stopped, whether or not the scan has already recorded its
breach (a clock past due stays in the list until its job stops it). One query on the partial
index `clock_open_due_id` (organization, due_at, id) finds them; the figures of each listed clock
(business minutes remaining, percent of the target used, the next escalation level) come from
the pure clock, for the page being shown only.
"""

from __future__ import annotations

import datetime as dt
import math
from operator import itemgetter
from typing import NamedTuple

from slas import clock
from workorders.clocks import (
    calendar_of,
    compiled_calendars,
    holds_by_job,
    pauses_for,
)
from workorders.models import SlaClock

from .compliance import achieved

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


def remaining_seconds(due_at: dt.datetime, now: int, calendar: clock.Calendar, pauses) -> int:
    """Business seconds from `now` to the due time; negative (the business time since) once past
    it. `now` and `pauses` in epoch seconds (`clock.epoch`, converted once per page), the calendar
    compiled (24x7: `clock.TWENTY_FOUR_SEVEN`)."""
    due = clock.epoch(due_at)
    if due >= now:
        return calendar.business_seconds(now, due, pauses)
    return -calendar.business_seconds(due, now, pauses)


_AT_PERCENT = itemgetter("at_percent")


def escalation_levels(rule) -> list[dict]:
    """A rule's escalation levels in at_percent order."""
    return sorted(rule.escalation or (), key=_AT_PERCENT)


def figures(clock_row, levels: list[dict], calendar: clock.Calendar, pauses, now: int) -> dict:
    """A clock's figures from its rule's escalation levels (`escalation_levels`) and compiled
    calendar, the pauses of its job's holds (`pauses_for`, in epoch seconds) and `now` (epoch
    seconds)."""
    return _figures(
        clock_row.due_at, clock_row.target_minutes, clock_row.escalations_sent, clock_row.next_escalation_at,
        levels, calendar, pauses, now,
    )  # fmt: skip


def _figures(due_at, target_minutes: int, sent: int, next_at, levels, calendar, pauses, now: int) -> dict:
    # `figures` from the clock's columns (a page's row has them as values, an instance as attributes).
    remaining = remaining_seconds(due_at, now, calendar, pauses)
    target = target_minutes * 60
    upcoming = None
    if sent < len(levels):
        level = levels[sent]
        upcoming = {"name": level["name"], "at_percent": level["at_percent"], "at": next_at}
    return {
        "remaining_minutes": math.floor(remaining / 60),
        # Half up to one decimal, as every percentage of the reports (`round` on a float is half even:
        # 81 seconds of 60 minutes, 2.25 %, read 2.2).
        "percent_used": achieved(target - remaining, target),
        "next_escalation": upcoming,
    }


def risk_figures(clock_row: SlaClock, now: dt.datetime) -> dict:
    """`figures` of a clock read with its rule, calendar, job and holds (`at_risk_clocks`)."""
    rule = clock_row.rule
    pauses = clock.epoch_pauses(pauses_for(rule, list(clock_row.work_order.holds.all())))
    calendar = clock.compile_calendar(calendar_of(rule))
    return figures(clock_row, escalation_levels(rule), calendar, pauses, clock.epoch(now))


# --- a page of the report as rows (issue 15) -----------------------------------------------------

# What a clock's figures read of its row, its rule and its job, as columns of the page's `values()`
# query (config.api.rows): the rule and its calendar's stamp come joined with the clock. The job's
# and the rule's ids are the columns their references read too (`work_order`, `rule`).
FIGURE_COLUMNS = (
    "due_at", "target_minutes", "escalations_sent", "next_escalation_at", "work_order", "rule",
    "rule__pause_on_hold", "rule__escalation", "rule__calendar_id", "rule__calendar__updated_at",
)  # fmt: skip


class _RuleTerms(NamedTuple):
    """What `pauses_for` and `escalation_levels` read of a rule."""

    pause_on_hold: bool
    escalation: list | None
    calendar_id: int | None


def page_figures(rows: list[dict], now: dt.datetime) -> dict[int, dict]:
    """The figures of a page of clocks by id, from the page's rows (`FIGURE_COLUMNS`): their
    rules' calendars compiled (from this process's cache, else one query), and the jobs' holds
    (one query; a reopened job's hold pauses every clock). A rule's levels are sorted once."""
    rules: dict[int, tuple[_RuleTerms, list[dict]]] = {}
    stamps: dict[int, dt.datetime] = {}
    for row in rows:
        rule_id = row["rule"]
        if rule_id not in rules:
            rule = _RuleTerms(row["rule__pause_on_hold"], row["rule__escalation"], row["rule__calendar_id"])
            rules[rule_id] = rule, escalation_levels(rule)
            if rule.calendar_id is not None:
                stamps[rule.calendar_id] = row["rule__calendar__updated_at"]
    holds = holds_by_job({row["work_order"] for row in rows})
    calendars = compiled_calendars(stamps)
    now_seconds = clock.epoch(now)
    computed = {}
    for row in rows:
        rule, levels = rules[row["rule"]]
        job_holds = holds.get(row["work_order"]) if holds else None
        pauses = clock.epoch_pauses(pauses_for(rule, job_holds)) if job_holds else ()
        computed[row["id"]] = _figures(
            row["due_at"], row["target_minutes"], row["escalations_sent"], row["next_escalation_at"],
            levels, calendars[rule.calendar_id], pauses, now_seconds,
        )  # fmt: skip
    return computed

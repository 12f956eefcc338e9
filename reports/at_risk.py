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

from contracts.models import Contract
from slas import clock
from workorders.clocks import (
    RULE_COLUMNS,
    RuleRow,
    calendar_of,
    compiled_calendars,
    holds_by_job,
    paused_by_holds,
    pauses_for,
)
from workorders.models import SlaClock, WorkOrder

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


class JobRow(NamedTuple):
    pk: int
    reference: str
    source_id: str
    priority: str

    __str__ = WorkOrder.__str__  # reference_of falls back on it (jobs have no name)


class ContractRow(NamedTuple):
    pk: int
    name: str
    reference: str
    source_id: str

    __str__ = Contract.__str__


class Related(NamedTuple):
    """What a listed clock shows of its rule, contract and job."""

    rule: RuleRow
    contract: ContractRow
    job: JobRow


_RELATED_COLUMNS = (
    "id", "rule_id", "rule__escalation", "rule__calendar__updated_at", "rule__contract_id", "rule__contract__name",
    "rule__contract__reference", "rule__contract__source_id", "work_order_id", "work_order__reference",
    "work_order__source_id", "work_order__priority", *RULE_COLUMNS,
)  # fmt: skip


class Page(NamedTuple):
    related: dict[int, Related]
    holds: dict
    calendars: dict


def read_page(clock_rows, *, figures: bool = True) -> Page:
    """The rules, contracts and jobs of these clocks as rows (one query by the clocks' ids; a rule
    shared by several clocks is one row), their calendars compiled, and the jobs' holds when a
    figure is shown and a hold may pause one of the rules (one query)."""
    related: dict[int, Related] = {}
    rules: dict[int, RuleRow] = {}
    stamps: dict[int, dt.datetime] = {}
    rows = SlaClock.objects.filter(pk__in=[row.pk for row in clock_rows]).values_list(*_RELATED_COLUMNS)
    width = len(RULE_COLUMNS)
    for row in rows:
        pk, rule_id, escalation, stamp, contract_id, name, reference, source_id, job_id, *job = row[:-width]
        rule = rules.get(rule_id)
        if rule is None:
            rule = rules[rule_id] = RuleRow(rule_id, *row[-width:], escalation)
            if rule.calendar_id is not None:
                stamps[rule.calendar_id] = stamp
        related[pk] = Related(rule, ContractRow(contract_id, name, reference, source_id), JobRow(job_id, *job))
    job_ids = {row.job.pk for row in related.values()}
    paused = figures and any(paused_by_holds(rule) for rule in rules.values())
    holds = holds_by_job(job_ids) if paused else dict.fromkeys(job_ids, [])
    return Page(related, holds, compiled_calendars(stamps))

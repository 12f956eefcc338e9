"""Turning a job, its holds and a rule into the state of that rule's clock (DESIGN §6).

`evaluate` is a function of its inputs and `now` only; the services store what it returns, so
the scan can find due clocks with one indexed query on `due_at`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import NamedTuple

from slas import clock
from slas.models import SlaRule

from .models import Hold, SlaClock, WorkOrder

STOPS = {
    SlaRule.Metric.RESPONSE: "responded_at",
    SlaRule.Metric.ON_SITE: "on_site_at",
    SlaRule.Metric.RESOLUTION: "resolved_at",
}


class ClockState(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass (one per clock)
    started_at: dt.datetime
    due_at: dt.datetime | None
    stopped_at: dt.datetime | None
    state: str
    elapsed_seconds: int
    next_escalation_at: dt.datetime | None


def calendar_of(rule: SlaRule):
    """The clock's calendar for a rule: its calendar compiled (cached per row), or None for 24x7."""
    return rule.calendar.compiled if rule.calendar_id else None


def pauses_for(rule: SlaRule, holds: list[Hold]) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The holds that pause this rule's clock: on-hold time if the rule pauses on hold, and the
    time a job spent resolved before it was reopened (resolution clocks only)."""
    return [
        (hold.start, hold.end)
        for hold in holds
        if (hold.kind == Hold.Kind.ON_HOLD and rule.pause_on_hold)
        or (hold.kind == Hold.Kind.REOPENED and rule.metric == SlaRule.Metric.RESOLUTION)
    ]


def _clip(pauses, stop: dt.datetime):
    """Pauses as they stood at `stop`: later ones dropped, open ones ended there."""
    return [(start, stop if end is None or end > stop else end) for start, end in pauses if start < stop]


def _at_percent(level: dict):
    return level["at_percent"]


def _escalation_minutes(rule: SlaRule, sent: int) -> int | None:
    """Business minutes from the start to the next escalation level (levels in at_percent order)."""
    levels = rule.escalation
    if not levels or sent >= len(levels):
        return None
    if len(levels) > 1:
        levels = sorted(levels, key=_at_percent)
    return max(1, math.ceil(rule.target_minutes * levels[sent]["at_percent"] / 100))


def next_escalation(rule: SlaRule, start, pauses, sent: int) -> dt.datetime | None:
    """When the running clock reaches its next escalation level (levels in at_percent order)."""
    minutes = _escalation_minutes(rule, sent)
    return None if minutes is None else clock.due(calendar_of(rule), start, minutes, pauses)


def evaluate(
    rule: SlaRule,
    work_order: WorkOrder,
    holds: list[Hold],
    now: dt.datetime,
    sent: int = 0,
    was_breached: bool = False,
) -> ClockState:
    """The clock of `rule` on `work_order` as its timestamps and holds say, at `now`.

    - Stopped (the metric's timestamp is set): met at or before the due time, else breached.
    - Cancelled job, not stopped: the job's `status_changed_at` is the instant of cancellation.
      A clock already past due then is breached and stops there (its breach is final); any
      other is cancelled. The same holds for the response and on-site clocks of a job resolved
      (or closed) without a response or a site visit: they end at the resolution. Elapsed
      time counts up to that instant, not to `now`, so a replay gives the same clock as live.
    - Running after its due time: breached. Recording that breach is the scan's job (it finds
      running clocks with `due_at < now` in one indexed query), so the clock stays `running` in the
      database until the scan has recorded it (`was_breached`: it already was breached); the
      API shows it as breached meanwhile. This keeps a step-by-step replay of a job's history
      (each step sent after the fact, when every due time has long passed) from recording a
      breach for a clock that the next step stops in time.
    - Else paused while an open hold pauses it, running otherwise.
    """
    # The calendar compiled, the instants converted to epoch seconds, once for the two or three
    # computations below (the datetime API would convert them again for each).
    calendar = calendar_of(rule) or clock.TWENTY_FOUR_SEVEN
    target = rule.target_minutes
    if type(target) is not int or target < 1:
        raise ValueError(f"a target must be a whole number of minutes, at least 1, not {target!r}")
    start = work_order.reported_at
    t0 = clock.epoch(start)
    stop = getattr(work_order, STOPS[rule.metric])
    pauses = pauses_for(rule, holds)
    if stop is not None:
        pauses = _clip(pauses, stop)
        seconds = clock.epoch_pauses(pauses)
        due_at = clock.instant(calendar.due(t0, target * 60, seconds))
        elapsed = calendar.business_seconds(t0, clock.epoch(stop), seconds)
        met = due_at is None or stop <= due_at
        state = SlaClock.State.MET if met else SlaClock.State.BREACHED
        return ClockState(start, due_at, stop, state, elapsed, None)
    ended_at = _ended_without_stop(work_order, rule)
    if ended_at is not None:
        cancelled_at = max(ended_at, start)
        pauses = _clip(pauses, cancelled_at)
        seconds = clock.epoch_pauses(pauses)
        due_at = clock.instant(calendar.due(t0, target * 60, seconds))
        elapsed = calendar.business_seconds(t0, clock.epoch(cancelled_at), seconds)
        if due_at is not None and due_at < cancelled_at:
            return ClockState(start, due_at, cancelled_at, SlaClock.State.BREACHED, elapsed, None)
        return ClockState(start, due_at, None, SlaClock.State.CANCELLED, elapsed, None)
    seconds = clock.epoch_pauses(pauses)
    due_at = clock.instant(calendar.due(t0, target * 60, seconds))
    elapsed = calendar.business_seconds(t0, clock.epoch(max(now, start)), seconds)
    if due_at is not None and due_at < now:
        state = SlaClock.State.BREACHED if was_breached else SlaClock.State.RUNNING
    elif any(end is None and begin <= now for begin, end in pauses):
        state = SlaClock.State.PAUSED
    else:
        state = SlaClock.State.RUNNING
    minutes = _escalation_minutes(rule, sent)
    escalation = None if minutes is None else clock.instant(calendar.due(t0, minutes * 60, seconds))
    return ClockState(start, due_at, None, state, elapsed, escalation)


_CANCELLED = WorkOrder.Status.CANCELLED.value
_FINISHED = frozenset({WorkOrder.Status.RESOLVED.value, WorkOrder.Status.CLOSED.value})
_RESOLUTION = SlaRule.Metric.RESOLUTION.value


def _ended_without_stop(work_order: WorkOrder, rule: SlaRule) -> dt.datetime | None:
    """When a clock whose stop never came ended anyway: the job was cancelled, or resolved
    without the on-site visit (or response) this clock waits for."""
    status = work_order.status
    if status == _CANCELLED:
        return work_order.status_changed_at
    if status in _FINISHED and rule.metric != _RESOLUTION:
        return work_order.resolved_at or work_order.status_changed_at
    return None


def shown_state(clock_row: SlaClock, now: dt.datetime) -> str:
    """The state as the API shows it: a clock still running after its due time is breached
    (DESIGN §6), even before the scan has recorded its breach."""
    if clock_row.state == SlaClock.State.RUNNING and clock_row.due_at is not None and clock_row.due_at < now:
        return SlaClock.State.BREACHED
    return clock_row.state


def live_elapsed_seconds(clock_row: SlaClock, holds: list[Hold], now: dt.datetime) -> int:
    """Business seconds of a clock up to now (its stored figure once it has stopped)."""
    if clock_row.stopped_at is not None or clock_row.state == SlaClock.State.CANCELLED:
        return clock_row.elapsed_seconds
    rule = clock_row.rule
    return clock.business_seconds(calendar_of(rule), clock_row.started_at, now, pauses_for(rule, holds))

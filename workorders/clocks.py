"""Turning a job, its holds and a rule into the state of that rule's clock (DESIGN §6).

`evaluate` is a function of its inputs and `now` only; the services store what it returns, so
the scan can find due clocks with one indexed query on `due_at`.
"""

from __future__ import annotations

import datetime as dt
import math
from datetime import UTC
from operator import attrgetter
from typing import NamedTuple

from django.db import router
from django.db.models import F

from config.api.pagination import IdsQuery, ids_query
from config.lookups import InArray
from slas import clock
from slas.clock import TWENTY_FOUR_SEVEN, epoch, epoch_pauses
from slas.models import Calendar, SlaRule

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
    time a job spent resolved before it was reopened, whatever the rule (a done job's clocks
    never count: a response clock that ended unanswered at the resolution resumes where it was)."""
    return [
        (hold.start, hold.end)
        for hold in holds
        if hold.kind == Hold.Kind.REOPENED or (hold.kind == Hold.Kind.ON_HOLD and rule.pause_on_hold)
    ]


def _clip(pauses, stop: dt.datetime):
    """Pauses as they stood at `stop`: later ones dropped, open ones ended there."""
    return [(start, stop if end is None or end > stop else end) for start, end in pauses if start < stop]


def _escalation_minutes(rule: SlaRule, sent: int) -> int | None:
    """Business minutes from the start to the next escalation level (levels in at_percent order)."""
    levels = rule.escalation
    if not levels or sent >= len(levels):
        return None
    # Several levels: their percentages sorted (no key function called per level), the same figure.
    percent = levels[0]["at_percent"] if len(levels) == 1 else sorted([level["at_percent"] for level in levels])[sent]
    return max(1, math.ceil(rule.target_minutes * percent / 100))


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
    # One call per rule of every job recomputed (and of every job of a bulk import), so the model
    # path pays little beyond the pure clock's own work: the calendar compiled and the instants
    # converted to epoch seconds once, and the two or three answers asked of the calendar in one
    # call (`figures`: the datetime API would convert the start again for each, and the calendar
    # read the business time at the start again), no pauses to select, clip or convert when the
    # job has no hold (most jobs), the states and the result's tuple built without a call each.
    calendar = rule.calendar.compiled if rule.calendar_id else TWENTY_FOUR_SEVEN
    target = rule.target_minutes
    if type(target) is not int or target < 1:
        raise ValueError(f"a target must be a whole number of minutes, at least 1, not {target!r}")
    start = work_order.reported_at
    t0 = epoch(start)
    stop = getattr(work_order, STOPS[rule.metric])
    pauses = pauses_for(rule, holds) if holds else ()
    if stop is not None:
        seconds = epoch_pauses(_clip(pauses, stop)) if pauses else ()
        due, elapsed, _ = calendar.figures(t0, target * 60, epoch(stop), seconds)
        due_at = None if due is None else _from_epoch(due, UTC)
        state = _MET if due_at is None or stop <= due_at else _BREACHED
        return _clock_state(ClockState, (start, due_at, stop, state, elapsed, None))
    ended_at = _ended_without_stop(work_order, rule) if work_order.status in _ENDED else None
    if ended_at is not None:
        cancelled_at = max(ended_at, start)
        seconds = epoch_pauses(_clip(pauses, cancelled_at)) if pauses else ()
        due, elapsed, _ = calendar.figures(t0, target * 60, epoch(cancelled_at), seconds)
        due_at = None if due is None else _from_epoch(due, UTC)
        if due_at is not None and due_at < cancelled_at:
            return _clock_state(ClockState, (start, due_at, cancelled_at, _BREACHED, elapsed, None))
        return _clock_state(ClockState, (start, due_at, None, _CANCELLED_STATE, elapsed, None))
    seconds = epoch_pauses(pauses) if pauses else ()
    minutes = _escalation_minutes(rule, sent) if rule.escalation else None  # half the rules have no levels
    level = None if minutes is None else minutes * 60
    due, elapsed, at = calendar.figures(t0, target * 60, epoch(start if start > now else now), seconds, level)
    due_at = None if due is None else _from_epoch(due, UTC)
    if due_at is not None and due_at < now:
        state = _BREACHED if was_breached else _RUNNING
    elif pauses and any(end is None and begin <= now for begin, end in pauses):
        state = _PAUSED
    else:
        state = _RUNNING
    escalation_at = None if at is None else _from_epoch(at, UTC)
    return _clock_state(ClockState, (start, due_at, None, state, elapsed, escalation_at))


# What `evaluate` reads once per call, bound once: an enum member read through the model class costs
# ~60 ns, a NamedTuple's generated `__new__` a Python call (~120 ns more than `tuple.__new__`).
_MET = SlaClock.State.MET
_BREACHED = SlaClock.State.BREACHED
_RUNNING = SlaClock.State.RUNNING
_PAUSED = SlaClock.State.PAUSED
_CANCELLED_STATE = SlaClock.State.CANCELLED
_clock_state = tuple.__new__
_from_epoch = dt.datetime.fromtimestamp  # as `clock.instant` and the datetime API's `due` convert a due time
_CANCELLED = WorkOrder.Status.CANCELLED.value
_FINISHED = frozenset({WorkOrder.Status.RESOLVED.value, WorkOrder.Status.CLOSED.value})
_ENDED = _FINISHED | {_CANCELLED}  # the statuses `_ended_without_stop` can end a clock in
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


def clock_minutes(target_minutes: int, seconds: int) -> tuple[int, int]:
    """(elapsed, remaining) whole minutes of one reading of a clock: a started minute counts as a
    minute, as a breach's `actual_minutes` does, and both from that one figure, so that elapsed +
    remaining is always the target (remaining negative once past due)."""
    elapsed = math.ceil(seconds / 60)
    return elapsed, target_minutes - elapsed


def shown_state(clock_row: SlaClock, now: dt.datetime) -> str:
    """The state as the API shows it: a clock still running after its due time is breached
    (DESIGN §6), even before the scan has recorded its breach."""
    if clock_row.state == SlaClock.State.RUNNING and clock_row.due_at is not None and clock_row.due_at < now:
        return SlaClock.State.BREACHED
    return clock_row.state


def still_counting(clock_row: SlaClock) -> bool:
    """Not stopped nor cancelled: its elapsed time is live (else the stored figure)."""
    return clock_row.stopped_at is None and clock_row.state != SlaClock.State.CANCELLED


def live_elapsed_seconds(clock_row: SlaClock, holds: list[Hold], now: dt.datetime, calendar=None) -> int:
    """Business seconds of a clock up to now (its stored figure once it has stopped).

    `calendar`: the rule's compiled calendar when the caller already has it (a page of clock
    rows, `compiled_calendars`); by default the rule's own."""
    if not still_counting(clock_row):
        return clock_row.elapsed_seconds
    rule = clock_row.rule
    calendar = calendar_of(rule) if calendar is None else calendar
    return clock.business_seconds(calendar, clock_row.started_at, now, pauses_for(rule, holds))


# --- a page of clocks as rows (issue 15) ----------------------------------------------------------
# A list reads the clocks, holds and rules of a whole page with one query each, as plain rows
# (values_list), instead of a model instance per clock, rule, calendar and hold. The rows quack
# like the models for what the functions above read, so the figures are computed the same way.


class HoldRow(NamedTuple):
    kind: str
    start: dt.datetime
    end: dt.datetime | None
    reason: str


class RuleRow(NamedTuple):
    """What a clock's figures and its `{id, name}` reference read of its rule."""

    pk: int
    name: str
    metric: str
    target_minutes: int
    pause_on_hold: bool
    calendar_id: int | None
    escalation: list | None = None

    __str__ = SlaRule.__str__  # reference_of falls back on it when the name is blank


class ClockRow(NamedTuple):
    pk: int
    work_order_id: int
    rule: RuleRow
    metric: str
    target_minutes: int
    started_at: dt.datetime
    due_at: dt.datetime | None
    stopped_at: dt.datetime | None
    state: str
    elapsed_seconds: int


HOLD_COLUMNS = ("kind", "start", "end", "reason")
RULE_COLUMNS = ("rule__name", "rule__metric", "rule__target_minutes", "rule__pause_on_hold", "rule__calendar_id")
_CLOCK_COLUMNS = (
    "id", "work_order_id", "rule_id", *RULE_COLUMNS, "rule__calendar__updated_at", "metric", "target_minutes",
    "started_at", "due_at", "stopped_at", "state", "elapsed_seconds",
)  # fmt: skip


def holds_by_job(job_ids) -> dict[int, list[HoldRow]]:
    """The holds of these jobs, in their order (start, id), one query."""
    grouped: dict[int, list[HoldRow]] = {pk: [] for pk in job_ids}
    if not grouped:
        return grouped
    for job_id, *columns in _page_tuples("workorders.holds", Hold, ("work_order_id", *HOLD_COLUMNS), list(grouped)):
        grouped[job_id].append(HoldRow(*columns))
    return grouped


def _page_tuples(key: str, model, columns: tuple[str, ...], job_ids: list[int]):
    """The rows of `columns` of `model` for these jobs: the query built and compiled once per
    connection (and prepared on PostgreSQL, `config.api.pagination.IdsQuery`), the ids its one
    input, through Django's cursor (logged and counted). Compiling it per page cost a page of work
    orders more than the rows it reads (~0.4 ms for a holds query that found none)."""
    alias = router.db_for_read(model)

    def rows_of(ids):
        return model.objects.using(alias).filter(InArray(F("work_order_id"), ids)).values_list(*columns)

    size = len(job_ids)
    return ids_query(key, lambda: IdsQuery(rows_of, alias, size), alias, size).tuples(job_ids)


_BY_PK = attrgetter("pk")


def clocks_by_job(job_ids) -> tuple[dict[int, list[ClockRow]], dict[int | None, clock.Calendar]]:
    """The clocks of these jobs (in id order) as rows, one query, and the compiled calendars of
    the rules of those still counting, by calendar id (None: 24x7). A rule shared by several
    clocks is one `RuleRow`."""
    grouped: dict[int, list[ClockRow]] = {pk: [] for pk in job_ids}
    if not grouped:
        return grouped, compiled_calendars({})
    rules: dict[int, RuleRow] = {}
    stamps: dict[int, dt.datetime] = {}
    clock_rows = _page_tuples("workorders.clocks", SlaClock, _CLOCK_COLUMNS, list(grouped))
    for pk, job_id, rule_id, name, metric, target, pauses, calendar_id, stamp, *own in clock_rows:
        rule = rules.get(rule_id)
        if rule is None:
            rule = rules[rule_id] = RuleRow(rule_id, name, metric, target, pauses, calendar_id)
        row = ClockRow(pk, job_id, rule, *own)
        if calendar_id is not None and still_counting(row):  # a stopped clock's figure is stored
            stamps[calendar_id] = stamp
        grouped[job_id].append(row)
    for clocks in grouped.values():  # sorted here rather than by the database: most jobs have one
        if len(clocks) > 1:
            clocks.sort(key=_BY_PK)
    return grouped, compiled_calendars(stamps)


def page_elapsed_seconds(clock_row: ClockRow, holds, calendars, now_seconds: int) -> int:
    """`live_elapsed_seconds` of a clock of a page (`clocks_by_job`): `now` in epoch seconds,
    converted once per page, and the calendar looked up only for a clock still counting (a
    stopped one reads its stored figure)."""
    if not still_counting(clock_row):
        return clock_row.elapsed_seconds
    rule = clock_row.rule
    pauses = clock.epoch_pauses(pauses_for(rule, holds)) if holds else ()  # most jobs have none
    return calendars[rule.calendar_id].business_seconds(clock.epoch(clock_row.started_at), now_seconds, pauses)


class _NotCompiled(Exception):
    pass


def _not_compiled():
    raise _NotCompiled


class _CalendarRow(NamedTuple):
    """What `Calendar.spec` reads of a calendar row."""

    pk: int
    time_zone: str
    hours: list
    holidays: list
    holiday_country: str
    holiday_subdivision: str
    working_days: list


def compiled_calendars(stamps: dict[int, dt.datetime]) -> dict[int | None, clock.Calendar]:
    """The compiled calendars of these calendar rows (id: `updated_at`), plus None: 24x7.

    From the process's cache that `Calendar.compiled` fills (keyed by id, stamped with
    `updated_at`), without reading the rows; those it lacks at that stamp (new to this process,
    or edited since) are read in one query, as rows, and compiled through `Calendar.spec`."""
    compiled: dict[int | None, clock.Calendar] = {None: clock.TWENTY_FOUR_SEVEN}
    missing = []
    for pk, stamp in stamps.items():
        try:
            compiled[pk] = clock.compile_keyed(("calendar", pk), stamp, _not_compiled)  # Calendar.compiled's key
        except _NotCompiled:
            missing.append(pk)
    if missing:
        for stamp, pk, *columns in Calendar.objects.filter(pk__in=missing).values_list(
            "updated_at", "id", *_CalendarRow._fields[1:]
        ):
            row = _CalendarRow(pk, *columns)
            compiled[pk] = clock.compile_keyed(("calendar", pk), stamp, lambda row=row: Calendar.spec.fget(row))
    return compiled

"""What-if backtests of proposed SLA terms (issue 11). Read-only: nothing stored changes.

Every job of the window (reported in [from, to), tracked under its contract's SLA) that the
current or the proposed rule covers is replayed under both, with the same semantics as the live
clocks (`workorders.clocks.evaluate`): start at `reported_at`, stop at the metric's instant,
pauses from the holds (on-hold time when the rule pauses on hold, the time a job spent resolved
before a reopening for resolution clocks), a clock that ended without its stop (cancelled job,
job resolved without a response or visit) breached only if past due by then, and a clock still
running breached once now is past its due time. Each replayed clock is one of `met`,
`breached`, `open` (still running within its target), `cancelled` or `not_covered` (the
side's rule does not cover the job: priority band or effective period).

Penalties follow `breaches.penalties`: per breach (fixed, per started unit, per-breach cap),
then the monthly cap per rule and month of the decision in the contract's time zone, breaches
of a month taken in the order they were decided. Waivers are not replayed (a proposal has none).

Fast enough for a negotiation (100,000 jobs well under 2 s on PostgreSQL, `bench/reports_bench.py`):
the jobs are read in one query as columns of whole numbers (epoch seconds via `reports.sql.Epoch`,
priority and status as codes), packed by PostgreSQL into one bytea that numpy reads in place;
each side's clocks are then replayed together with the clock's batch epoch API
(`Calendar.due_many`, `business_seconds_many`: searchsorted over the compiled span), and only
the few jobs with holds go through the scalar `replay`. Per-breach penalties are priced once per
distinct overage; a month's cap leaves min(sum, cap), so capping needs no ordering.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property

import numpy as np
from django.db import connection
from django.db.models import BigIntegerField, Case, Value, When
from django.db.models.functions import Cast, Coalesce

from breaches.penalties import _cap, breach_penalty
from slas import clock
from slas.models import SlaRule
from tenancy.currencies import minor_unit, quantize
from workorders.models import Hold, WorkOrder

from .compliance import achieved
from .sql import Epoch

CHANGED_LISTED = 100
READ_BATCH = 20000
OUTCOMES = ("met", "breached", "open", "cancelled", "not_covered")
_FINISHED = (WorkOrder.Status.RESOLVED, WorkOrder.Status.CLOSED)
_FINISHED_VALUES = tuple(status.value for status in _FINISHED)


@dataclass(frozen=True)
class Terms:
    rule_id: int
    name: str
    metric: str
    priorities: frozenset
    target_minutes: int
    calendar: clock.Calendar
    pause_on_hold: bool
    penalty: dict | None
    monthly_cap: Decimal | None
    effective_from: int
    effective_to: int | None

    def covers(self, priority: str, reported: int) -> bool:
        return (
            priority in self.priorities
            and self.effective_from <= reported
            and (self.effective_to is None or reported < self.effective_to)
        )


def _ts(value: dt.datetime | None) -> int | None:
    return None if value is None else math.floor(value.timestamp())


def current_terms(rule: SlaRule) -> Terms:
    return Terms(
        rule_id=rule.pk,
        name=rule.name,
        metric=rule.metric,
        priorities=frozenset(rule.priorities),
        target_minutes=rule.target_minutes,
        calendar=rule.calendar.compiled if rule.calendar_id else clock.TWENTY_FOUR_SEVEN,
        pause_on_hold=rule.pause_on_hold,
        penalty=rule.penalty,
        monthly_cap=rule.monthly_penalty_cap,
        effective_from=_ts(rule.effective_from),
        effective_to=_ts(rule.effective_to),
    )


def proposed_terms(terms: Terms, proposed: dict) -> Terms:
    """The current terms with the proposal's changes (`calendar` is a CalendarSpec or None: 24x7)."""
    changes = {}
    for key in ("target_minutes", "pause_on_hold", "penalty"):
        if key in proposed:
            changes[key] = proposed[key]
    if "priorities" in proposed:
        changes["priorities"] = frozenset(proposed["priorities"])
    if "monthly_penalty_cap" in proposed:
        changes["monthly_cap"] = proposed["monthly_penalty_cap"]
    if "calendar" in proposed:
        changes["calendar"] = clock.compile_calendar(proposed["calendar"])
    return replace(terms, **changes)


class _Months:
    """Month labels ("YYYY-MM") of epoch seconds in one time zone, by bisect over month starts."""

    def __init__(self, zone, first: dt.datetime, last: dt.datetime):
        day = first.astimezone(zone).date().replace(day=1) - dt.timedelta(days=1)
        day = day.replace(day=1)
        end = last.astimezone(zone).date() + dt.timedelta(days=62)
        self.starts, self.labels = [], []
        while day <= end:
            self.starts.append(_ts(dt.datetime.combine(day, dt.time.min, tzinfo=zone)))
            self.labels.append(day.strftime("%Y-%m"))
            day = (day + dt.timedelta(days=32)).replace(day=1)

    def of(self, t: int) -> str:
        return self.labels[max(0, bisect_right(self.starts, t) - 1)]


_STOP_COLUMN = {"response": 4, "on_site": 5, "resolution": 6}  # the job tuple's index of each metric's stop
_CANCELLED, _RESOLUTION = WorkOrder.Status.CANCELLED.value, SlaRule.Metric.RESOLUTION.value
_ON_HOLD, _REOPENED = Hold.Kind.ON_HOLD.value, Hold.Kind.REOPENED.value


def replay(terms: Terms, job: tuple, holds, now: int) -> tuple[str, int | None, int | None, int]:
    """(outcome, due, decided_at, overage minutes) of one job (a `read_window` tuple) under `terms`.

    The same reading as `workorders.clocks.evaluate`, on epoch seconds; the hot loop of a backtest."""
    start, priority = job[3], job[1]
    if (
        priority not in terms.priorities
        or start < terms.effective_from
        or (terms.effective_to is not None and start >= terms.effective_to)
    ):
        return "not_covered", None, None, 0
    metric = terms.metric
    stop = job[_STOP_COLUMN[metric]]
    pauses = (
        [
            (s, e)
            for kind, s, e in holds
            if (kind == _ON_HOLD and terms.pause_on_hold) or (kind == _REOPENED and metric == _RESOLUTION)
        ]
        if holds
        else ()
    )
    calendar, target = terms.calendar, terms.target_minutes * 60
    stopped = stop is not None
    if not stopped:
        status = job[2]
        if status == _CANCELLED:
            ended = job[7]
        elif status in _FINISHED and metric != _RESOLUTION:
            ended = job[6] if job[6] is not None else job[7]
        else:
            due = calendar.due(start, target, pauses)
            if due is None or due >= now:
                return "open", due, None, 0
            seconds = calendar.business_seconds(start, now, pauses)
            return "breached", due, due, max(0, -(-seconds // 60) - terms.target_minutes)
        stop = ended if ended > start else start
    if pauses:
        pauses = [(s, stop if e is None or e > stop else e) for s, e in pauses if s < stop]
    due = calendar.due(start, target, pauses)
    if due is None or (stop <= due if stopped else due >= stop):
        return ("met" if stopped else "cancelled"), due, (stop if stopped else None), 0
    seconds = calendar.business_seconds(start, stop, pauses)
    return "breached", due, stop, max(0, -(-seconds // 60) - terms.target_minutes)


_CODE = {outcome: code for code, outcome in enumerate(OUTCOMES)}
MET, BREACHED, OPEN, CANCELLED, NOT_COVERED = range(len(OUTCOMES))
NULL = -1  # a NULL instant in the job arrays (epoch seconds of the window are positive)


PRIORITIES = tuple(SlaRule.Priority.values)  # job columns carry these as codes (their positions)
STATUSES = tuple(WorkOrder.Status.values)


def _codes(values, vocabulary: tuple) -> list[int]:
    return [vocabulary.index(value) for value in values if value in vocabulary]


@dataclass
class Jobs:
    """The window's jobs as columns (numpy int64 arrays, in id order): NULL instants are -1,
    priority and status are positions in PRIORITIES and STATUSES."""

    ids: np.ndarray
    priority: np.ndarray
    status: np.ndarray
    reported: np.ndarray
    stops: dict[str, np.ndarray]  # metric -> the instant that stops its clock
    resolved: np.ndarray
    status_changed: np.ndarray
    holds: dict[int, list]  # job id -> [(kind, start, end)]

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def held(self) -> list[tuple[int, int]]:
        """(position, id) of the jobs with holds."""
        positions = np.searchsorted(self.ids, list(self.holds)) if self.holds else []
        return [(int(p), j) for p, j in zip(positions, self.holds, strict=True) if p < len(self) and self.ids[p] == j]

    def row(self, index: int) -> tuple:
        """One job as the tuple `replay` reads."""

        def instant(column):
            value = int(column[index])
            return None if value == NULL else value

        return (
            int(self.ids[index]), PRIORITIES[self.priority[index]], STATUSES[self.status[index]],
            int(self.reported[index]), instant(self.stops["response"]), instant(self.stops["on_site"]),
            instant(self.resolved), instant(self.status_changed),
        )  # fmt: skip


def _code(field: str, vocabulary: tuple):
    """A text column as its position in `vocabulary` (-1 if absent), a bigint in SQL."""
    whens = [When(**{field: value}, then=Value(code)) for code, value in enumerate(vocabulary)]
    return Cast(Case(*whens, default=Value(NULL)), BigIntegerField())


def read_window(contract_id: int, window_from: dt.datetime, window_to: dt.datetime) -> Jobs:
    """The window's jobs as columns of whole numbers (epoch seconds, codes), and their holds by job
    (one query). On PostgreSQL the jobs come packed in one bytea that numpy reads in place (no
    Python object per value); elsewhere as plain tuples fetched in batches."""
    jobs = WorkOrder.objects.filter(
        contract_id=contract_id, sla_tracked=True, reported_at__gte=window_from, reported_at__lt=window_to
    )
    holds: dict[int, list] = defaultdict(list)
    for job_id, kind, start, end in (
        Hold.objects.filter(work_order__in=jobs.values("pk"))
        .values_list("work_order_id", "kind", Epoch("start"), Epoch("end"))
        .order_by("work_order_id", "start")
        .iterator(chunk_size=READ_BATCH)
    ):
        holds[job_id].append((kind, start, end))
    null = Value(NULL)
    columns = jobs.order_by("pk").values_list(
        Cast("pk", BigIntegerField()), _code("priority", PRIORITIES), _code("status", STATUSES),
        Epoch("reported_at"), Coalesce(Epoch("responded_at"), null), Coalesce(Epoch("on_site_at"), null),
        Coalesce(Epoch("resolved_at"), null), Epoch("status_changed_at"),
    )  # fmt: skip
    sql, params = columns.query.sql_with_params()
    table = _packed_bigints(sql, params, 8) if connection.vendor == "postgresql" else _fetch_bigints(sql, params, 8)
    ids, priority, status, reported, responded, on_site, resolved, changed = table.T
    return Jobs(
        ids=ids,
        priority=priority,
        status=status,
        reported=reported,
        stops={"response": responded, "on_site": on_site, "resolution": resolved},
        resolved=resolved,
        status_changed=changed,
        holds=holds,
    )


def _fetch_bigints(sql: str, params, width: int) -> np.ndarray:
    """A query's rows of whole numbers as an (n, width) int64 array, fetched `READ_BATCH` at a time."""
    parts = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(READ_BATCH):
            parts.append(np.array(batch, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)


def _packed_bigints(sql: str, params, width: int) -> np.ndarray:
    """A query's rows of non-NULL bigints as an (n, width) int64 array, packed by PostgreSQL into
    one bytea (`int8send`: 8 big-endian bytes per value, rows in the query's order) that numpy
    reads in place: one value over the wire, no Python object per row or per value."""
    names = ", ".join(f"c{index}" for index in range(width))
    packed = " || ".join(f"int8send(t.c{index})" for index in range(width))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT string_agg({packed}, ''::bytea ORDER BY t.c0) FROM ({sql}) AS t({names})",
            params,
        )
        data = cursor.fetchone()[0]
    if data is None:
        return np.zeros((0, width), dtype=np.int64)
    return np.frombuffer(data, dtype=">i8").astype(np.int64).reshape(-1, width)


@dataclass
class Replayed:
    """Every job of the window under one side's terms: outcome codes, due, decided, overage."""

    outcome: np.ndarray
    due: np.ndarray
    decided: np.ndarray
    overage: np.ndarray


def _overage(calendar, start, end, target_minutes: int) -> np.ndarray:
    seconds = calendar.business_seconds_many(start, end)
    return np.maximum(0, -((-seconds) // 60) - target_minutes)


def replay_all(terms: Terms, jobs: Jobs, now: int) -> Replayed:
    """`replay` for every job at once: the clock's batch API for the jobs without holds (nearly
    all), `replay` itself for the few with holds. Same reading, element by element."""
    count = len(jobs)
    outcome = np.full(count, NOT_COVERED, dtype=np.int8)
    due = np.full(count, NULL, dtype=np.int64)
    decided = np.full(count, NULL, dtype=np.int64)
    overage = np.zeros(count, dtype=np.int64)
    start = jobs.reported
    covered = np.isin(jobs.priority, _codes(terms.priorities, PRIORITIES)) & (start >= terms.effective_from)
    if terms.effective_to is not None:
        covered &= start < terms.effective_to
    if count == 0 or not covered.any():
        return Replayed(outcome, due, decided, overage)
    calendar, target_minutes = terms.calendar, terms.target_minutes
    metric = terms.metric
    stop = jobs.stops[metric]
    stopped = stop != NULL
    cancelled = ~stopped & (jobs.status == STATUSES.index(_CANCELLED))
    finished = np.isin(jobs.status, _codes(_FINISHED_VALUES, STATUSES)) & (metric != _RESOLUTION)
    ended = ~stopped & ~cancelled & finished
    running = ~stopped & ~cancelled & ~ended
    end = np.where(cancelled, jobs.status_changed, np.where(jobs.resolved != NULL, jobs.resolved, jobs.status_changed))
    end = np.maximum(end, start)  # a clock that ended without its stop: at that end, never before its start

    index = np.flatnonzero(covered)
    due[index] = calendar.due_many(start[index], target_minutes * 60)
    never = due == NULL
    # Stopped: met by the due time, else breached at the stop.
    late = covered & stopped & ~never & (stop > due)
    outcome[covered & stopped] = MET
    outcome[late] = BREACHED
    decided[covered & stopped] = stop[covered & stopped]
    # Ended without the stop: cancelled if within the target then, else breached at that end.
    late_end = covered & (cancelled | ended) & ~never & (due < end)
    outcome[covered & (cancelled | ended)] = CANCELLED
    outcome[late_end] = BREACHED
    decided[late_end] = end[late_end]
    # Still running: open until the due time, then breached at it (measured up to now).
    past_due = covered & running & ~never & (due < now)
    outcome[covered & running] = OPEN
    outcome[past_due] = BREACHED
    decided[past_due] = due[past_due]
    for mask, until in ((late, stop), (late_end, end), (past_due, np.full(count, now, dtype=np.int64))):
        if mask.any():
            overage[mask] = _overage(calendar, start[mask], until[mask], target_minutes)

    for position, job_id in jobs.held:  # the few jobs with holds: pauses, through the scalar replay
        if covered[position]:
            result, job_due, job_decided, job_overage = replay(terms, jobs.row(position), jobs.holds[job_id], now)
            outcome[position] = _CODE[result]
            due[position] = NULL if job_due is None else job_due
            decided[position] = NULL if job_decided is None else job_decided
            overage[position] = job_overage
    return Replayed(outcome, due, decided, overage)


def _penalties(breaches: list[tuple[Terms, np.ndarray, np.ndarray]], currency: str, months: _Months) -> int:
    """The side's penalties in whole minor units: per breach (fixed, per started unit, per-breach
    cap; priced once per distinct overage), then each rule's monthly cap per month of the decision.
    Capping a month's breaches one by one in decision order leaves that month min(sum, cap), so
    the total needs no ordering. The same arithmetic as `breaches.penalties`, in integers."""
    scale, total = 10 ** minor_unit(currency), 0
    month_starts = np.array(months.starts, dtype=np.int64)
    for terms, decided, overage in breaches:
        distinct, which = np.unique(overage, return_inverse=True)
        prices = np.array(
            [int(breach_penalty(terms.penalty, int(minutes), currency) * scale) for minutes in distinct],
            dtype=np.int64,
        )
        amounts = prices[which]
        if terms.monthly_cap is None:
            total += int(amounts.sum())
            continue
        cap = int(_cap(terms.monthly_cap, currency) * scale)
        month = np.maximum(0, np.searchsorted(month_starts, decided, side="right") - 1)
        per_month = np.bincount(month, weights=amounts, minlength=len(month_starts))
        total += int(np.minimum(per_month.astype(np.int64), cap).sum())
    return total


def _summary(counts: np.ndarray, breaches: list, currency: str, months: _Months) -> dict:
    met, breached, open_, cancelled = (int(counts[code]) for code in (MET, BREACHED, OPEN, CANCELLED))
    decided = met + breached
    total = _penalties(breaches, currency, months)
    return {
        "decided": decided,
        "met": met,
        "breached": breached,
        "open": open_,
        "cancelled": cancelled,
        "achieved_percent": achieved(met, decided),
        "penalties": {currency: str(quantize(Decimal(total) / 10 ** minor_unit(currency), currency))}
        if breached
        else {},
    }


def run_backtest(
    *, rules: list[SlaRule], window_from: dt.datetime, window_to: dt.datetime, proposed: dict, now: dt.datetime
) -> dict:
    """Replay the window under the rules' current terms and under the proposal; see the module docstring."""
    contract = rules[0].contract
    currency, zone = contract.currency, contract.start_of_day(dt.date(2000, 1, 1)).tzinfo
    pairs = [(current, proposed_terms(current, proposed)) for current in map(current_terms, rules)]
    now_ts = _ts(now)
    jobs = read_window(contract.pk, window_from, window_to)
    seen = np.zeros(len(jobs), dtype=bool)
    counts = {"current": np.zeros(len(OUTCOMES), np.int64), "proposed": np.zeros(len(OUTCOMES), np.int64)}
    breaches: dict[str, list] = {"current": [], "proposed": []}
    transitions: Counter = Counter()
    candidates = []  # (job position, pair position, current terms, before, after) of changed outcomes
    for pair_index, (current, new) in enumerate(pairs):
        before, after = replay_all(current, jobs, now_ts), replay_all(new, jobs, now_ts)
        relevant = (before.outcome != NOT_COVERED) | (after.outcome != NOT_COVERED)
        seen |= relevant
        for side, terms, result in (("current", current, before), ("proposed", new, after)):
            counts[side] += np.bincount(result.outcome[relevant], minlength=len(OUTCOMES))
            late = relevant & (result.outcome == BREACHED)
            if late.any():
                breaches[side].append((terms, result.decided[late], result.overage[late]))
        changed = np.flatnonzero(relevant & (before.outcome != after.outcome))
        pair_codes = before.outcome[changed].astype(np.int64) * len(OUTCOMES) + after.outcome[changed]
        for code, number in zip(*np.unique(pair_codes, return_counts=True), strict=True):
            transitions[f"{OUTCOMES[code // len(OUTCOMES)]}_to_{OUTCOMES[code % len(OUTCOMES)]}"] += int(number)
        candidates += [(int(position), pair_index, current, before, after) for position in changed[:CHANGED_LISTED]]
    # The first jobs that change, in job order (then rule order), as one loop over jobs would list them.
    candidates.sort(key=lambda item: (item[0], item[1]))
    listed = [
        {
            "work_order": int(jobs.ids[position]),
            "sla_rule": {"id": current.rule_id, "name": current.name},
            "current": OUTCOMES[before.outcome[position]],
            "proposed": OUTCOMES[after.outcome[position]],
            "current_due_at": _iso(int(before.due[position])),
            "proposed_due_at": _iso(int(after.due[position])),
        }
        for position, _, current, before, after in candidates[:CHANGED_LISTED]
    ]
    _name_jobs(listed)
    months = _Months(zone, window_from, max(now, window_to))
    return {
        "window": {"from": window_from, "to": window_to},
        "contract": {"id": contract.pk, "name": contract.name},
        "sla_rules": [{"id": rule.pk, "name": rule.name} for rule in rules],
        "jobs": int(seen.sum()),
        "current": _summary(counts["current"], breaches["current"], currency, months),
        "proposed": _summary(counts["proposed"], breaches["proposed"], currency, months),
        "changed": listed,
        "changed_counts": dict(sorted(transitions.items())),
        "changed_total": sum(transitions.values()),
    }


def _iso(t: int | None) -> str | None:
    if t is None or t == NULL:
        return None
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def _name_jobs(changed: list[dict]) -> None:
    """The listed jobs as references (one query for at most 100 jobs)."""
    names = dict(
        WorkOrder.objects.filter(pk__in={item["work_order"] for item in changed}).values_list("pk", "reference")
    )
    for item in changed:
        pk = item["work_order"]
        item["work_order"] = {"id": pk, "name": names.get(pk) or f"work order {pk}"}

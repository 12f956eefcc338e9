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

Fast enough for a negotiation: the jobs and holds are read in two queries as epoch seconds
(`reports.sql.Epoch`, in batches), and each clock is two bisects on a compiled calendar
(`slas.clock`'s epoch API); per-breach penalties are computed once per overage.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db import connection

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


def _ended_without_stop(metric, status, status_changed, resolved) -> int | None:
    if status == WorkOrder.Status.CANCELLED:
        return status_changed
    if status in _FINISHED and metric != SlaRule.Metric.RESOLUTION:
        return resolved if resolved is not None else status_changed
    return None


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


class _Side:
    """The tally of one side (current or proposed); penalties in whole minor units of the currency."""

    def __init__(self, currency: str):
        self.currency = currency
        self.scale = 10 ** minor_unit(currency)
        self.counts = Counter()  # outcome -> clocks
        self.breaches: list[tuple[int, int, Terms, int]] = []  # (decided_at, rule, terms, overage)

    def summary(self, months: _Months) -> dict:
        """Counts, and the penalties: per breach (cached per overage), then each rule's monthly cap
        in the order the breaches were decided. The same arithmetic as `breaches.penalties`, in
        integers of the minor unit (amounts and caps are whole minor units once rounded)."""
        currency, scale, priced, caps = self.currency, self.scale, {}, {}
        month_totals: dict[tuple, int] = defaultdict(int)
        total = 0
        for decided_at, rule_id, terms, overage in sorted(self.breaches, key=lambda b: (b[0], b[1])):
            key = (id(terms), overage)
            amount = priced.get(key)
            if amount is None:
                amount = priced[key] = int(breach_penalty(terms.penalty, overage, currency) * scale)
            if terms.monthly_cap is not None:
                cap = caps.get(id(terms))
                if cap is None:
                    cap = caps[id(terms)] = int(_cap(terms.monthly_cap, currency) * scale)
                bucket = (rule_id, months.of(decided_at))
                already = month_totals[bucket]
                amount = min(amount, max(0, cap - already))
                month_totals[bucket] = already + amount
            total += amount
        decided = self.counts["met"] + self.counts["breached"]
        return {
            "decided": decided,
            "met": self.counts["met"],
            "breached": self.counts["breached"],
            "open": self.counts["open"],
            "cancelled": self.counts["cancelled"],
            "achieved_percent": achieved(self.counts["met"], decided),
            "penalties": {currency: str(quantize(Decimal(total) / scale, currency))} if self.breaches else {},
        }


def read_window(contract_id: int, window_from: dt.datetime, window_to: dt.datetime):
    """The window's jobs as tuples of epoch seconds, read in batches from one cursor, and their
    holds by job (one query).

    Job tuple: (id, priority, status, reported, responded, on_site, resolved, status_changed).
    """
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
    columns = jobs.order_by("pk").values_list(
        "pk", "priority", "status", Epoch("reported_at"), Epoch("responded_at"), Epoch("on_site_at"),
        Epoch("resolved_at"), Epoch("status_changed_at"),
    )  # fmt: skip
    return _batches(*columns.query.sql_with_params()), holds


def _batches(sql: str, params) -> Iterator[tuple]:
    """Rows of one query, fetched `READ_BATCH` at a time (plain tuples: no per-row ORM work)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(READ_BATCH):
            yield from batch


def run_backtest(
    *, rules: list[SlaRule], window_from: dt.datetime, window_to: dt.datetime, proposed: dict, now: dt.datetime
) -> dict:
    """Replay the window under the rules' current terms and under the proposal; see the module docstring."""
    contract = rules[0].contract
    currency, zone = contract.currency, contract.start_of_day(dt.date(2000, 1, 1)).tzinfo
    pairs = [(current_terms(rule), None) for rule in rules]
    pairs = [(current, proposed_terms(current, proposed)) for current, _ in pairs]
    now_ts = _ts(now)
    sides = {"current": _Side(currency), "proposed": _Side(currency)}
    transitions: Counter = Counter()
    changed: list[dict] = []
    jobs_seen = 0
    rows, holds = read_window(contract.pk, window_from, window_to)
    # The rule pairs that may cover a job of each priority (either side's band holds it).
    by_priority = {
        priority: [(c, n) for c, n in pairs if priority in c.priorities or priority in n.priorities]
        for priority in SlaRule.Priority.values
    }
    # The hot loop (a hundred thousand jobs in a negotiation): the tallies are updated inline.
    counts_before, counts_after = sides["current"].counts, sides["proposed"].counts
    breaches_before, breaches_after = sides["current"].breaches, sides["proposed"].breaches
    for job in rows:
        covered = False
        job_holds = holds.get(job[0], ())
        for current, new in by_priority.get(job[1], ()):
            before = replay(current, job, job_holds, now_ts)
            after = replay(new, job, job_holds, now_ts)
            if before[0] == "not_covered" and after[0] == "not_covered":
                continue
            covered = True
            counts_before[before[0]] += 1
            counts_after[after[0]] += 1
            if before[0] == "breached":
                breaches_before.append((before[2], current.rule_id, current, before[3]))
            if after[0] == "breached":
                breaches_after.append((after[2], new.rule_id, new, after[3]))
            if before[0] != after[0]:
                transitions[f"{before[0]}_to_{after[0]}"] += 1
                if len(changed) < CHANGED_LISTED:
                    changed.append(
                        {
                            "work_order": job[0],
                            "sla_rule": {"id": current.rule_id, "name": current.name},
                            "current": before[0],
                            "proposed": after[0],
                            "current_due_at": _iso(before[1]),
                            "proposed_due_at": _iso(after[1]),
                        }
                    )
        jobs_seen += covered
    _name_jobs(changed)
    months = _Months(zone, window_from, max(now, window_to))
    return {
        "window": {"from": window_from, "to": window_to},
        "contract": {"id": contract.pk, "name": contract.name},
        "sla_rules": [{"id": rule.pk, "name": rule.name} for rule in rules],
        "jobs": jobs_seen,
        "current": sides["current"].summary(months),
        "proposed": sides["proposed"].summary(months),
        "changed": changed,
        "changed_counts": dict(sorted(transitions.items())),
        "changed_total": sum(transitions.values()),
    }


def _iso(t: int | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def _name_jobs(changed: list[dict]) -> None:
    """The listed jobs as references (one query for at most 100 jobs)."""
    names = dict(
        WorkOrder.objects.filter(pk__in={item["work_order"] for item in changed}).values_list("pk", "reference")
    )
    for item in changed:
        pk = item["work_order"]
        item["work_order"] = {"id": pk, "name": names.get(pk) or f"work order {pk}"}

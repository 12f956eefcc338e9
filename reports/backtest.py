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
from dataclasses import dataclass, replace
from decimal import Decimal

from breaches.penalties import ZERO, breach_penalty, within_monthly_cap
from slas import clock
from slas.models import SlaRule
from tenancy.currencies import quantize
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
        calendar=clock.compile_calendar(rule.calendar.spec if rule.calendar_id else None),
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


def replay(terms: Terms, job: tuple, holds: list, now: int) -> tuple[str, int | None, int | None, int]:
    """(outcome, due, decided_at, overage minutes) of one job under `terms`."""
    _, priority, status, start, responded, on_site, resolved, status_changed = job
    if not terms.covers(priority, start):
        return "not_covered", None, None, 0
    metric = terms.metric
    stop = responded if metric == "response" else on_site if metric == "on_site" else resolved
    pauses = [
        (s, e)
        for kind, s, e in holds
        if (kind == Hold.Kind.ON_HOLD and terms.pause_on_hold)
        or (kind == Hold.Kind.REOPENED and metric == SlaRule.Metric.RESOLUTION)
    ]
    calendar, target = terms.calendar, terms.target_minutes * 60
    if stop is None:
        ended = _ended_without_stop(metric, status, status_changed, resolved)
        if ended is not None:
            stop = max(ended, start)
            end_kind = "cancelled"
        else:
            due = calendar.due(start, target, pauses)
            if due is None or due >= now:
                return "open", due, None, 0
            seconds = calendar.business_seconds(start, now, pauses)
            return "breached", due, due, max(0, math.ceil(seconds / 60) - terms.target_minutes)
    else:
        end_kind = "stopped"
    if pauses:
        pauses = [(s, stop if e is None or e > stop else e) for s, e in pauses if s < stop]
    due = calendar.due(start, target, pauses)
    if end_kind == "stopped" and (due is None or stop <= due):
        return "met", due, stop, 0
    if end_kind == "cancelled" and (due is None or due >= stop):
        return "cancelled", due, None, 0
    seconds = calendar.business_seconds(start, stop, pauses)
    return "breached", due, stop, max(0, math.ceil(seconds / 60) - terms.target_minutes)


class _Side:
    """The tally of one side (current or proposed)."""

    def __init__(self, currency: str):
        self.currency = currency
        self.counts = Counter()
        self.breaches: list[tuple[int, int, Terms, int]] = []  # (decided_at, rule, terms, overage)

    def add(self, outcome: str, terms: Terms, decided_at, overage: int) -> None:
        self.counts[outcome] += 1
        if outcome == "breached":
            self.breaches.append((decided_at, terms.rule_id, terms, overage))

    def summary(self, months: _Months) -> dict:
        currency, priced, month_totals = self.currency, {}, defaultdict(lambda: ZERO)
        total = ZERO
        for decided_at, rule_id, terms, overage in sorted(self.breaches, key=lambda b: (b[0], b[1])):
            key = (id(terms), overage)
            amount = priced.get(key)
            if amount is None:
                amount = priced[key] = breach_penalty(terms.penalty, overage, currency)
            if terms.monthly_cap is not None:
                bucket = (rule_id, months.of(decided_at))
                amount = within_monthly_cap(amount, month_totals[bucket], terms.monthly_cap, currency)
                month_totals[bucket] += amount
            total += amount
        decided = self.counts["met"] + self.counts["breached"]
        return {
            "decided": decided,
            "met": self.counts["met"],
            "breached": self.counts["breached"],
            "open": self.counts["open"],
            "cancelled": self.counts["cancelled"],
            "achieved_percent": achieved(self.counts["met"], decided),
            "penalties": {currency: str(quantize(total, currency))} if self.breaches else {},
        }


def _jobs(contract_id: int, window_from: dt.datetime, window_to: dt.datetime):
    jobs = WorkOrder.objects.filter(
        contract_id=contract_id, sla_tracked=True, reported_at__gte=window_from, reported_at__lt=window_to
    )
    return jobs


def read_window(contract_id: int, window_from: dt.datetime, window_to: dt.datetime):
    """The window's jobs as tuples of epoch seconds (in batches), and their holds by job."""
    jobs = _jobs(contract_id, window_from, window_to)
    holds: dict[int, list] = defaultdict(list)
    for job_id, kind, start, end in (
        Hold.objects.filter(work_order__in=jobs.values("pk"))
        .values_list("work_order_id", "kind", Epoch("start"), Epoch("end"))
        .order_by("work_order_id", "start")
        .iterator(chunk_size=READ_BATCH)
    ):
        holds[job_id].append((kind, start, end))
    rows = (
        jobs.order_by("pk")
        .values_list(
            "pk",
            "priority",
            "status",
            Epoch("reported_at"),
            Epoch("responded_at"),
            Epoch("on_site_at"),
            Epoch("resolved_at"),
            Epoch("status_changed_at"),
        )  # fmt: skip
        .iterator(chunk_size=READ_BATCH)
    )
    return rows, holds


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
    for job in rows:
        covered = False
        job_holds = holds.get(job[0], ())
        for current, new in pairs:
            before = replay(current, job, job_holds, now_ts)
            after = replay(new, job, job_holds, now_ts)
            if before[0] == "not_covered" and after[0] == "not_covered":
                continue
            covered = True
            sides["current"].add(before[0], current, before[2], before[3])
            sides["proposed"].add(after[0], new, after[2], after[3])
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

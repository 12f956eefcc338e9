"""The visits of a contract (issue 13): each occurrence of its plans, past and coming, with its
state, its job, and the hours allocated against the hours logged in the ledger for that job.

- `scheduled`: not generated yet (after the plan's `generated_until`, by the plan's current rule);
- `generated`: its job exists and is not resolved, and the occurrence's end plus the plan's
  tolerance has not passed;
- `completed`: its job was resolved by the occurrence's end plus the plan's tolerance;
- `missed`: its job was not resolved by then (resolved later, or still open);
- `cancelled`: its job was cancelled (by a suspension, a termination, an expiry brought forward,
  or the dispatcher): owed no more, so neither pending nor missed.

Occurrences that were never generated because they were settled before (before the plan was
created, or while the contract was suspended) are not listed: they were never owed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum, prefetch_related_objects

from config.errors import BadRequest
from contracts.models import Contract
from ledger.models import LedgerEntry
from workorders.models import VisitPlan, WorkOrder
from workorders.visits import CLOSED, upcoming

STATES = ("scheduled", "generated", "completed", "missed", "cancelled")
_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Visit:
    plan: VisitPlan
    occurrence: dt.datetime
    ends_at: dt.datetime
    state: str
    work_order: WorkOrder | None
    hours_logged: Decimal


def visit_state(plan: VisitPlan, occurrence: dt.datetime, job: WorkOrder | None, now: dt.datetime) -> str:
    if job is None:
        return "scheduled"
    if job.status == WorkOrder.Status.CANCELLED:
        return "cancelled"
    deadline = occurrence + dt.timedelta(minutes=plan.duration_minutes + plan.tolerance_minutes)
    if job.resolved_at is not None and job.resolved_at <= deadline:
        return "completed"
    return "missed" if now > deadline or job.resolved_at is not None else "generated"


# The most visits one listing computes (REST's pages and CSV, GraphQL's `contractVisits`; a page
# is cut from the whole window): every occurrence of every plan in the window is computed before one is shown, so
# a contract with many hourly plans made one request a minute's work (found by an outside sweep:
# eleven plans, 58,092 visits a year, 97 MB for one GraphQL request of 15 aliases). A year of one
# hourly plan (at most 8,832 visits, `recurrence.max_occurrences`) always fits.
MAX_VISITS = 10_000


def contract_visits(
    contract: Contract, *, start: dt.datetime, end: dt.datetime, now: dt.datetime, plan_ids=None, states=None
) -> list[Visit]:
    """Occurrences in [start, end), in time order (then by plan). Four queries: the plans, their
    jobs in the window, the hours logged against those jobs, and the contract's term versions
    (where its term ends as agreed); the rest is the plans' rules."""
    plans = contract.visit_plans.select_related("asset", "calendar").order_by("id")
    if plan_ids is not None:
        plans = plans.filter(pk__in=plan_ids)
    plans = list(plans)
    prefetch_related_objects([contract], "term_versions")  # read once for every plan's window
    for plan in plans:
        plan.contract = contract
    jobs = list(
        WorkOrder.objects.filter(visit_plan__in=plans, occurrence__gte=start, occurrence__lt=end).order_by("id")[
            : MAX_VISITS + 1
        ]
    )
    if len(jobs) > MAX_VISITS:
        _too_many()
    # A visit a suspension cancelled and the resumption made again is one visit: its live job's.
    live = {(job.visit_plan_id, job.occurrence) for job in jobs if job.status != WorkOrder.Status.CANCELLED}
    jobs = [j for j in jobs if j.status != WorkOrder.Status.CANCELLED or (j.visit_plan_id, j.occurrence) not in live]
    logged = (
        dict(
            LedgerEntry.objects.filter(work_order__in=jobs, entry_type=LedgerEntry.Type.WORK)
            .values("work_order_id")
            .annotate(hours=Sum("hours"))
            .values_list("work_order_id", "hours")
        )
        if jobs
        else {}
    )
    by_plan = {plan.pk: plan for plan in plans}
    visits = []
    generated = {(job.visit_plan_id, job.occurrence) for job in jobs}
    for job in jobs:
        plan = by_plan[job.visit_plan_id]
        visits.append(_visit(plan, job.occurrence, job, logged.get(job.pk), now))
    if contract.status not in CLOSED:
        for plan in plans:
            # Every occurrence in the window, not generation's cap of 1,000 a run, up to MAX_VISITS
            # in all (a rule has at most 24 a day, but a contract any number of plans): read one
            # more than that, to tell a window that holds too many.
            room = MAX_VISITS + 1 - len(visits)
            for occurrence in upcoming(plan, after=start - _TICK, until=end - _TICK, limit=room):
                # A visit moved onto an instant that has its job already (the next business day's own
                # occurrence at the same time) is that job's visit, listed once.
                if (plan.pk, occurrence) not in generated:
                    visits.append(_visit(plan, occurrence, None, None, now))
            if len(visits) > MAX_VISITS:
                _too_many()
    if states is not None:
        visits = [v for v in visits if v.state in states]
    visits.sort(key=lambda v: (v.occurrence, v.plan.pk))
    return visits


def _too_many():
    raise BadRequest(
        f"The window holds more than {MAX_VISITS} visits: ask a shorter one (to), or those of some plans "
        "(visit_plan_id).",
        {"to": [f"At most {MAX_VISITS} visits in a window."]},
    )


def _visit(plan, occurrence, job, hours, now) -> Visit:
    return Visit(
        plan=plan,
        occurrence=occurrence,
        ends_at=occurrence + dt.timedelta(minutes=plan.duration_minutes),
        state=visit_state(plan, occurrence, job, now),
        work_order=job,
        hours_logged=hours or Decimal("0.00"),
    )

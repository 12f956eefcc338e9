"""A random but realistic data set for the reports' tests, written through the real services.

Two active contracts (EUR in Amsterdam, GBP in London), rules on 24x7 and on an office calendar
with holidays (Good Friday and Easter Monday 2026) and a DST change (29 March 2026) inside the
window, penalty clauses with per-breach and monthly caps. Jobs are reported between 2 March and
20 April 2026; each goes through a random life (response, holds, a site visit, resolution, a
reopening, a cancellation, or nothing yet). Every step of every job is applied in global time
order through `workorders.services`, each at its own `now`, as a dispatch system would have sent
them live; then `scan_breaches` runs at `NOW` and some breaches are waived. So the clocks and
breaches are exactly what the product would have stored.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from breaches.models import Breach
from breaches.services import scan_breaches, waive_breach
from contracts.models import Contract
from slas.models import SlaRule
from slas.services import create_calendar
from tests.breaches.factories import make_rule
from tests.contracts.factories import make_contract
from workorders.models import WorkOrder
from workorders.services import create_work_order, update_work_order

UTC = dt.UTC
FIRST = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
LAST = dt.datetime(2026, 4, 20, 18, 0, tzinfo=UTC)
NOW = dt.datetime(2026, 4, 22, 12, 0, tzinfo=UTC)
OFFICE = [
    {"weekday": day, "start": start, "end": end}
    for day in range(1, 6)
    for start, end in (("08:00", "12:00"), ("13:00", "17:00"))
]
HOLIDAYS = [{"date": "2026-04-03", "name": "Good Friday"}, {"date": "2026-04-06", "name": "Easter Monday"}]


@dataclass
class DataSet:
    contracts: list[Contract]
    rules: list[SlaRule]
    jobs: list[WorkOrder]


def build_dataset(org, *, seed: int, jobs: int = 40) -> DataSet:
    rng = random.Random(seed)
    euro = make_contract(org, status="active", currency="EUR", time_zone="Europe/Amsterdam")
    pound = make_contract(org, status="active", currency="GBP", time_zone="Europe/London")
    office = create_calendar(
        organization=org,
        actor=None,
        data={"name": "Office", "time_zone": "Europe/Amsterdam", "hours": OFFICE, "holidays": HOLIDAYS},
    )
    bands = ["critical", "high"]
    every = ["critical", "high", "medium", "low", "planned"]
    respond_penalty = {"fixed_amount": "100", "per_unit_amount": "25", "unit_minutes": 30, "per_breach_cap": "300"}
    resolve_penalty = {"fixed_amount": "50", "per_unit_amount": "10", "unit_minutes": 60}
    rules = [
        make_rule(euro, name="Respond", metric="response", priorities=bands, target_minutes=60,
                  penalty=respond_penalty, monthly_penalty_cap="1000",
                  escalation=[{"at_percent": 50, "name": "Dispatcher"}]),
        make_rule(euro, name="On site", metric="on_site", priorities=bands, target_minutes=240),
        make_rule(euro, name="Resolve", metric="resolution", priorities=every[:4], target_minutes=480,
                  calendar=office, pause_on_hold=True, penalty=resolve_penalty, monthly_penalty_cap="400"),
        make_rule(pound, name="Quick response", metric="response", priorities=every, target_minutes=30,
                  penalty={"fixed_amount": "20"}),
    ]  # fmt: skip
    steps = []
    for index in range(jobs):
        contract = euro if rng.random() < 0.7 else pound
        reported = FIRST + dt.timedelta(seconds=rng.randrange(int((LAST - FIRST).total_seconds())))
        steps += _life(rng, index, contract, reported)
    steps.sort(key=lambda step: (step[0], step[1]))
    made: dict[int, WorkOrder] = {}
    for at, index, kind, data in steps:
        if kind == "create":
            made[index] = create_work_order(organization=org, actor=None, data=data, now=at)
        elif index in made:
            update_work_order(instance=made[index], actor=None, data=data, now=at)
    scan_breaches(now=NOW)
    waiver = get_user_model().objects.create_user(username=f"waiver-{seed}-{org.slug}")
    for breach in Breach.objects.filter(organization=org).order_by("pk"):
        if rng.random() < 0.15:
            waive_breach(
                breach=breach, actor=waiver, reason="Goodwill: access road closed", now=NOW + dt.timedelta(hours=1)
            )
    return DataSet([euro, pound], rules, list(WorkOrder.objects.filter(organization=org).order_by("pk")))


def _hold(at: dt.datetime, reason: str) -> dict:
    return {"status": "on_hold", "status_changed_at": at, "hold_reason": reason}


def _life(rng: random.Random, index: int, contract, reported: dt.datetime) -> list[tuple]:
    """The steps of one job: (at, index, kind, data)."""
    priority = rng.choice(["critical", "high", "medium", "low"])
    create = {"contract": contract, "reported_at": reported, "priority": priority, "reference": f"JOB-{index:04d}"}
    steps = [(reported, index, "create", create)]
    t = reported

    def later(low_minutes: int, high_minutes: int) -> dt.datetime:
        nonlocal t
        t = t + dt.timedelta(minutes=rng.randint(low_minutes, high_minutes), seconds=rng.randrange(60))
        return t

    fate = rng.random()
    if fate < 0.1:
        return steps  # nothing yet: running (and maybe long past due)
    if fate < 0.15:
        at = later(5, 300)
        steps.append((at, index, "update", {"status": "cancelled", "status_changed_at": at}))
        return steps
    if rng.random() < 0.3:  # on hold before anyone responds (pauses resolution clocks that pause on hold)
        at = later(5, 90)
        steps.append(
            (at, index, "update", {"status": "on_hold", "status_changed_at": at, "hold_reason": "Waiting for parts"})
        )
    at = later(5, 120)
    steps.append((at, index, "update", {"status": "in_progress", "status_changed_at": at}))
    if priority in ("critical", "high") and rng.random() < 0.8:
        at = later(20, 300)
        steps.append((at, index, "update", {"on_site_at": at}))
    if rng.random() < 0.25:
        at = later(10, 200)
        steps.append(
            (at, index, "update", {"status": "on_hold", "status_changed_at": at, "hold_reason": "Customer away"})
        )
        at = later(30, 1500)
        steps.append((at, index, "update", {"status": "in_progress", "status_changed_at": at}))
    if rng.random() < 0.85:
        at = later(30, 2400)
        steps.append((at, index, "update", {"status": "resolved", "status_changed_at": at}))
        if rng.random() < 0.1:
            at = later(60, 600)
            steps.append((at, index, "update", {"status": "in_progress", "status_changed_at": at}))
            at = later(30, 600)
            steps.append((at, index, "update", {"status": "resolved", "status_changed_at": at}))
    return [step for step in steps if step[0] < NOW]

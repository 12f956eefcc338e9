"""Real data for breach tests: an active contract, rules through `slas.services.create_rule`, and
jobs through `workorders.services`, so the clocks (and the breaches recorded from them) are real.

Every write takes a fixed `now`; the instants below are in March 2026 (Europe/Amsterdam is UTC+1
until 29 March), long before the machine's clock, so nothing depends on when the tests run.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools

from django.core.management import call_command

from slas.models import SlaRule
from slas.services import create_rule
from tests.contracts.factories import make_contract
from workorders.models import WorkOrder
from workorders.services import create_work_order, update_work_order

UTC = dt.UTC
EFFECTIVE = dt.datetime(2026, 1, 1, tzinfo=UTC)
T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Amsterdam
ALL_PRIORITIES = ["critical", "high", "medium", "low", "planned"]

_names = itertools.count(1)


def minutes(n: float, start: dt.datetime = T0) -> dt.datetime:
    return start + dt.timedelta(minutes=n)


def active_contract(org, **fields):
    return make_contract(org, status="active", **fields)


def make_rule(contract, **data) -> SlaRule:
    """A rule of `contract` in force since 1 January 2026, for every priority (override any term)."""
    defaults = {
        "contract": contract,
        "name": f"Rule {next(_names)}",
        "metric": "response",
        "priorities": ALL_PRIORITIES,
        "target_minutes": 60,
        "effective_from": EFFECTIVE,
    }
    return create_rule(organization=contract.organization, actor=None, data={**defaults, **data})


def make_job(contract, reported_at: dt.datetime = T0, *, now: dt.datetime | None = None, **data) -> WorkOrder:
    """A job reported at `reported_at`, written at `now` (default: the moment it was reported)."""
    data = {"contract": contract, "reported_at": reported_at, "priority": "high", **data}
    return create_work_order(organization=contract.organization, actor=None, data=data, now=now or reported_at)


def update_job(job: WorkOrder, now: dt.datetime, **data) -> WorkOrder:
    return update_work_order(instance=job, actor=None, data=data, now=now)


def scan(now: dt.datetime | str, **options) -> str:
    """Run `scan_breaches --now ...` and return what it printed."""
    out = io.StringIO()
    call_command("scan_breaches", now=now if isinstance(now, str) else now.isoformat(), stdout=out, **options)
    return out.getvalue()

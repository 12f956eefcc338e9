"""Plain helpers for the ledger's tests: fixed instants, postings through the service, breaches
built through the real services (a rule with a penalty clause, a job answered late)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

from django.db import connection

from breaches.models import Breach
from contracts.models import Contract
from ledger import services
from ledger.models import LedgerEntry
from slas.services import create_rule
from tests.contracts.factories import make_contract
from workorders.services import create_work_order

UTC = dt.UTC
# A Monday in March 2026: every instant the tests post at is fixed and in the past.
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def h(value) -> Decimal:
    """Hours as the ledger keeps them (two places)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def active_contract(org, **fields) -> Contract:
    return make_contract(org, status=Contract.Status.ACTIVE, **fields)


def job(contract: Contract, reported_at: dt.datetime = T0, **fields):
    return create_work_order(
        organization=contract.organization,
        actor=None,
        data={"contract": contract, "reported_at": reported_at, **fields},
        now=max([reported_at, *(v for v in fields.values() if isinstance(v, dt.datetime))]),
    )


def post(contract: Contract, entry_type: str, hours=0, *, at: dt.datetime = T0, now=None, actor=None, **fields):
    """A hand-made posting through the service, at a fixed instant (`now` defaults to `at`)."""
    data = {"contract": contract, "entry_type": entry_type, "hours": h(hours), "occurred_at": at, **fields}
    if entry_type == LedgerEntry.Type.ADJUSTMENT:
        data.setdefault("description", "correction")
    return services.post_entry(organization=contract.organization, actor=actor, data=data, now=now or at)


def work(contract: Contract, hours, *, at: dt.datetime = T0, work_order=None, **fields) -> LedgerEntry:
    work_order = work_order or job(contract, reported_at=min(at, T0))
    return post(contract, LedgerEntry.Type.WORK, hours, at=at, work_order=work_order, **fields)


def credit(contract: Contract, hours, *, at: dt.datetime = T0, expires_at=None, **fields) -> LedgerEntry:
    return post(contract, LedgerEntry.Type.CREDIT, hours, at=at, expires_at=expires_at, **fields)


def fresh_sum(contract: Contract) -> Decimal:
    """The remaining hours summed from the entries, independently of the service's own sums."""
    total = Decimal(0)
    for entry in LedgerEntry.objects.filter(contract=contract):
        total += -entry.hours if entry.entry_type == LedgerEntry.Type.WORK else entry.hours
    return total


def running(contract: Contract) -> Decimal:
    return Contract.objects.values_list("remaining_hours", flat=True).get(pk=contract.pk)


def penalty_rule(contract: Contract, **penalty):
    """A one-hour response target for high-priority jobs, with a penalty clause, in force since January."""
    return create_rule(
        organization=contract.organization,
        actor=None,
        data={
            "contract": contract,
            "name": "Respond within an hour",
            "metric": "response",
            "priorities": ["high"],
            "target_minutes": 60,
            "effective_from": dt.datetime(2026, 1, 1, tzinfo=UTC),
            "penalty": penalty or {"fixed_amount": "150.00"},
        },
    )


def late_job(contract: Contract, reported_at: dt.datetime = T0):
    """A high-priority job answered 90 minutes after it was reported: its response breach is final at once."""
    return job(contract, reported_at=reported_at, priority="high", responded_at=reported_at + dt.timedelta(minutes=90))


def final_breach(contract: Contract, reported_at: dt.datetime = T0) -> Breach:
    breach = Breach.objects.get(work_order=late_job(contract, reported_at))
    assert breach.final and breach.penalty_amount > 0
    return breach


def run_at_once(target, count: int) -> list:
    """Run `target(i)` `count` times: in threads with a connection each on PostgreSQL (started
    together), one after the other on SQLite, which has one writer. Returns results or exceptions."""
    results: list = [None] * count
    if connection.vendor != "postgresql":
        for i in range(count):
            try:
                results[i] = target(i)
            except Exception as exc:  # collected, like the threads' below
                results[i] = exc
        return results
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a posting thread hung"
    return results

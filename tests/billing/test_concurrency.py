"""Exactly once under concurrency: top-ups under 20 concurrent postings, periods closed by
concurrent run_lifecycle runs, lines exported by concurrent exports. On PostgreSQL these run in
real threads with a connection each, started together; on SQLite (one writer) one after the other,
with the same totals."""

from decimal import Decimal

import pytest

from billing import services
from billing.models import BillingLine, BillingPeriod, ExportBatch
from events.models import Event
from ledger import services as ledger
from ledger.models import LedgerEntry
from tests.ledger.helpers import credit, job, post, run_at_once

from .helpers import d, lifecycle, local, plan_contract

pytestmark = pytest.mark.django_db(transaction=True)


def crossings(contract, threshold: Decimal) -> list[int]:
    """Replaying the entries in posting order: the postings that brought the balance from at or
    above the threshold to below it (independently of the service)."""
    remaining, found = Decimal(0), []
    for entry in LedgerEntry.objects.filter(contract=contract).order_by("id"):
        before = remaining
        remaining += -entry.charged_hours if entry.entry_type == "work" else entry.charged_hours
        if entry.entry_type == "work" and before >= threshold > remaining:
            found.append(entry.pk)
    return found


def test_twenty_concurrent_postings_top_up_once_per_crossing(org):
    top_up = {"threshold_hours": "15", "mode": "to", "hours": "16", "price_per_hour": "80.00"}
    contract = plan_contract(org, billing_period="none", auto_top_up=top_up)
    credit(contract, 30, at=local(2026, 3, 1))
    on_site = job(contract, reported_at=local(2026, 3, 1))

    def target(i):
        return post(contract, "work", 1, at=local(2026, 3, 2, 10), now=local(2026, 3, 3), work_order=on_site)

    results = run_at_once(target, 20)
    assert all(isinstance(r, LedgerEntry) for r in results), results
    # 30 -> 14 at the 16th posting (top up to 16), then 14 again at the 18th and the 20th.
    lots = list(LedgerEntry.objects.filter(contract=contract, reason_code="top_up").order_by("id"))
    assert [lot.hours for lot in lots] == [Decimal("2.00")] * 3
    triggers = crossings(contract, Decimal(15))
    assert len(triggers) == 3
    assert sorted(lot.system_key for lot in lots) == sorted(f"top_up:entry:{pk}" for pk in triggers)
    lines = BillingLine.objects.filter(contract=contract, kind="top_up")
    assert sorted(line.amount for line in lines) == [Decimal("160.0000")] * 3
    assert Event.objects.filter(type="ledger.topped_up").count() == 3
    contract.refresh_from_db()
    assert contract.remaining_hours == Decimal("16.00") and ledger.running_balance_errors() == []


def test_concurrent_run_lifecycle_closes_each_period_once(org):
    contracts = [
        plan_contract(
            org, hours_per_period=d(10), rollover_percent=50, overage_rate=d(100), period_charge=d(500),
            invoice_timing="in_arrears",
        )
        for _ in range(4)
    ]  # fmt: skip
    lifecycle(local(2026, 1, 1, 1))
    for n, contract in enumerate(contracts):
        post(
            contract, "work", 4 + 5 * n, at=local(2026, 1, 15), work_order=job(contract, reported_at=local(2026, 1, 14))
        )
    results = run_at_once(lambda i: lifecycle(local(2026, 3, 1, 1)).more["billing periods closed"], 6)
    assert sum(results) == 8, results  # January and February of each contract
    for n, contract in enumerate(contracts):
        assert BillingPeriod.objects.filter(contract=contract, status="closed").count() == 2
        # 4 or 9 hours in January leave included hours to roll over; 14 or 19 do not (and are overage).
        rollovers = LedgerEntry.objects.filter(contract=contract, reason_code="rollover")
        assert rollovers.count() == (2 if n < 2 else 1)
        expiries = LedgerEntry.objects.filter(contract=contract, reason_code="lot_expired")
        assert expiries.count() == (3 if n < 2 else 2)
        kinds = sorted(BillingLine.objects.filter(contract=contract).values_list("kind", flat=True))
        assert kinds == ["overage"] * (n >= 2) + ["period_charge"] * 2
    assert Event.objects.filter(type="billing.period_closed").count() == 8
    assert ledger.running_balance_errors() == []


def test_concurrent_exports_take_each_line_once(org):
    contract = plan_contract(org, period_charge=d(100))
    lifecycle(local(2026, 7, 1, 1))
    assert BillingLine.objects.count() == 7
    batches = run_at_once(lambda i: services.export_pending(organization=org, actor=None), 5)
    assert all(isinstance(b, ExportBatch) for b in batches), batches
    assert sorted(b.line_count for b in batches) == [0, 0, 0, 0, 7]
    assert not BillingLine.objects.filter(status="pending").exists()
    assert BillingLine.objects.filter(contract=contract, batch__isnull=True).count() == 0

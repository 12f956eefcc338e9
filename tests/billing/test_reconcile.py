"""A finance controller's reconciliation (eleventh round): the billing lines exported, the ledger
and the periods' figures tell the same story, with hand-computed figures."""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import periods
from billing.models import BillingLine, BillingPeriod
from config.errors import Unprocessable
from contracts.models import Contract
from ledger.models import LedgerEntry

from .helpers import d, lifecycle, local, plan_contract, work_at
from .test_amended_plans import amend, approved

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org, make_member):
    return [make_member("admin", org).user for _ in range(3)]


def line_amounts(contract, kind) -> dict[dt.date, str]:
    found = BillingLine.objects.filter(contract=contract, kind=kind).values_list("date", "amount")
    return {date: str(amount.quantize(d("0.01"))) for date, amount in found}


class TestATermChangeInsideAnOpenedPeriod:
    """March is opened at 01:00 on the 1st: 10 included hours and the in-advance charge of 100.00
    are written. An amendment effective that same day (a manager may date one today) changed
    March's plan afterwards: `/periods` said 120.00 and 20 included hours (a total of 370.00 with
    5 h overage at 50.00), while the exported line said 100.00 and the ledger 10 hours."""

    def test_an_amendment_of_the_opening_terms_on_its_first_day_is_refused(self, org, people):
        contract = approved(org, period_charge=d(100), hours_per_period=d(10), overage_rate=d(50), allow_overrun=True)
        lifecycle(local(2026, 3, 1, 1))
        with pytest.raises(Unprocessable) as raised:
            amend(contract, people, dt.date(2026, 3, 1), {"period_charge": "120.00", "hours_per_period": "20.00"},
                  now=local(2026, 3, 1, 10))  # fmt: skip
        message = raised.value.errors["effective_date"][0]
        assert "2026-03-01 to 2026-03-31 was opened" in message
        assert "hours_per_period, period_charge" in message

    def test_dated_inside_the_period_it_bills_from_the_next_and_lines_equal_figures(self, org, people):
        contract = approved(org, period_charge=d(100), hours_per_period=d(10), overage_rate=d(50), allow_overrun=True)
        lifecycle(local(2026, 3, 1, 1))
        amend(contract, people, dt.date(2026, 3, 15), {"period_charge": "120.00", "hours_per_period": "20.00"},
              now=local(2026, 3, 1, 10))  # fmt: skip
        work_at(contract, 15, local(2026, 3, 20, 11))  # 5 over March's 10
        lifecycle(local(2026, 4, 1, 1))
        march, april = periods.compute(Contract.objects.get(pk=contract.pk), now=local(2026, 4, 1, 2))[2:4]
        # Hand figures: March 100.00 + 5 h x 50.00 = 350.00; April 120.00 with 20 included hours.
        assert (march.money["period_charge"], march.money["overage_charge"], march.money["total"]) == (
            d("100.00"), d("250.00"), d("350.00"),
        )  # fmt: skip
        assert (march.included_hours, april.included_hours, april.money["period_charge"]) == (d(10), d(20), d(120))
        charges = line_amounts(contract, "period_charge")
        assert (charges[dt.date(2026, 3, 1)], charges[dt.date(2026, 4, 1)]) == ("100.00", "120.00")
        assert line_amounts(contract, "overage") == {dt.date(2026, 3, 31): "250.00"}
        included = LedgerEntry.objects.filter(contract=contract, reason_code="included_hours").order_by("occurred_at")
        assert [e.hours for e in included][2:] == [d(10), d(20)]

    def test_terms_opening_does_not_use_may_change_on_the_first_day(self, org, people):
        contract = approved(org, period_charge=d(100), overage_rate=d(50), allow_overrun=True)
        lifecycle(local(2026, 3, 1, 1))
        amend(contract, people, dt.date(2026, 3, 1), {"overage_rate": "60.00"}, now=local(2026, 3, 1, 10))
        work_at(contract, 2, local(2026, 3, 20, 11))
        lifecycle(local(2026, 4, 1, 1))
        march = periods.compute(Contract.objects.get(pk=contract.pk), now=local(2026, 4, 1, 2))[2]
        assert march.money["overage_charge"] == d("120.00")  # read at the close: 2 h x 60.00
        assert line_amounts(contract, "overage") == {dt.date(2026, 3, 31): "120.00"}

    def test_through_the_api_it_is_a_422_naming_effective_date(self, api, org):
        contract = approved(
            org, period_charge=d(100), start_date=dt.date(2025, 1, 1), expiry_date=dt.date(2030, 12, 31)
        )
        lifecycle(local(2025, 3, 1, 1))
        admin = api("admin")
        url = f"/api/v1/contracts/{contract.pk}/amendments"
        body = {"effective_date": "2025-03-01", "changes": {"period_charge": "90.00"}, "reason": "Price cut"}
        response = admin.post(url, body, format="json")
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["effective_date"]
        assert "period_charge" in response.json()["errors"]["effective_date"][0]
        body = {"effective_date": "2025-03-02", "changes": {"period_charge": "90.00"}, "reason": "Price cut"}
        assert admin.post(url, body, format="json").status_code == 201


def test_a_terminated_contracts_periods_end_with_the_last_one_begun_and_roll_nothing_over(org, make_member):
    """Terminated in its fourth month: the four months begun are billed (100.00 each, in advance),
    and the periods say the same, 400.00. Before, `/periods` (and `compute`) went on listing every
    month of the term after it, each with its charge of 100.00 that no line will ever bill, and the
    last close rolled 5 hours over into a period that never opens."""
    from django.utils import timezone

    from contracts.services import add_months, terminate_contract

    zone = "Europe/Amsterdam"  # today where the contract counts its months (see test_periods)
    today = timezone.localdate(timezone=ZoneInfo(zone))
    start = add_months(today.replace(day=1), -3)
    contract = plan_contract(
        org, period_charge=d(100), hours_per_period=d(10), rollover_percent=50,
        start_date=start, expiry_date=add_months(start, 24), time_zone=zone,
    )  # fmt: skip
    lifecycle(timezone.now())
    terminate_contract(contract=contract, actor=make_member("manager", org).user, reason="Customer left")
    later = timezone.now() + dt.timedelta(days=150)
    lifecycle(later)
    terminated = Contract.objects.get(pk=contract.pk)
    with CaptureQueriesContext(connection) as queries:
        found = periods.compute(terminated, now=later)
    as_running = Contract.objects.get(pk=contract.pk)
    as_running.status = Contract.Status.ACTIVE  # in memory: what a running contract's read costs
    with CaptureQueriesContext(connection) as running_queries:
        assert len(periods.compute(as_running, now=later)) > 4
    # One query more, the termination's instant (its event); none for a running contract.
    assert len(queries) == len(running_queries) + 1
    assert [(p.span.index, p.status) for p in found] == [(0, "closed"), (1, "closed"), (2, "closed"), (3, "closed")]
    lines = BillingLine.objects.filter(contract=contract)
    assert sum(p.money["total"] for p in found) == sum(line.amount for line in lines) == d("400.00")
    # 50% of 10 unused hours rolls over at the first three closes, not at the last one.
    rolled = LedgerEntry.objects.filter(contract=contract, reason_code="rollover").order_by("occurred_at")
    assert [e.hours for e in rolled] == [d(5)] * 3
    last = found[-1]
    assert (last.rolled_over_in, last.rolled_over_out, last.expired_hours) == (d(5), d(0), d(15))


def test_an_expiry_that_would_cut_an_opened_period_is_refused(api, org, people):
    """March is opened (10 included hours expiring at its end) and then the expiry was amended to
    20 March: the period closed on the 21st with expired hours 0.00 in its stored figures, and the
    included lot's expiry at the end of March then made the closed period read 7.00 expired hours
    (3 of 10 worked). A date on or after its last day is fine (an extension too)."""
    contract = approved(org, period_charge=d(100), hours_per_period=d(10))
    lifecycle(local(2026, 3, 1, 1))
    with pytest.raises(Unprocessable) as raised:
        amend(contract, people, dt.date(2026, 3, 10), {"expiry_date": "2026-03-20"}, now=local(2026, 3, 2, 10))
    assert list(raised.value.errors) == ["changes.expiry_date"]
    assert "Must not be before 2026-03-31" in raised.value.errors["changes.expiry_date"][0]
    amend(contract, people, dt.date(2026, 3, 10), {"expiry_date": "2026-03-31"}, now=local(2026, 3, 2, 10))
    work_at(contract, 3, local(2026, 3, 5, 11))
    lifecycle(local(2026, 4, 2, 1))
    [march] = BillingPeriod.objects.filter(contract=contract, index=2).values_list("figures", flat=True)
    found = periods.compute(Contract.objects.get(pk=contract.pk), now=local(2026, 4, 2, 2))[2].as_dict("EUR")
    assert march == found and (found["end_date"], found["expired_hours"], found["total"]) == (
        "2026-03-31", "7.00", "100.00",
    )  # fmt: skip


def test_an_anniversary_inside_a_period_raises_the_charge_from_the_next_period(org, people):
    """Quarters from 15 June (a plan amended from `none`) on an agreement started 1 January: the
    anniversary of 1 January 2027 falls inside the quarter from 15 December, which keeps 300.00
    (the plan of its first day); the quarter from 15 March is 300.00 x 1.10 = 330.00. No proration."""
    contract = approved(org, billing_period="none", expiry_date=dt.date(2027, 12, 31))
    changes = {"billing_period": "quarterly", "period_charge": "300.00", "annual_increase_percent": "10"}
    amend(contract, people, dt.date(2026, 6, 15), changes, now=local(2026, 1, 5))
    contract = Contract.objects.get(pk=contract.pk)
    found = periods.spans(contract)
    charges = [(s.start_date.isoformat(), str(periods.period_charge(contract, s))) for s in found][:4]
    assert charges == [
        ("2026-06-15", "300.00"), ("2026-09-15", "300.00"), ("2026-12-15", "300.00"), ("2027-03-15", "330.00"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "currency, charge, penalty, total",
    [("KWD", "100.000", "150.125", "-50.125"), ("JPY", "10000", "15000", "-5000")],
)
def test_a_credit_larger_than_the_charge_exports_as_it_reads_in_the_period(api, org, currency, charge, penalty, total):
    """A penalty posted by hand in March (to a customer: a service credit) larger than March's
    charge: the period's total is negative, the service credit line is minus the penalty, the batch
    total is the signed sum of the lines in the currency's minor unit, and the CSV says what the JSON says."""
    contract = plan_contract(org, currency=currency, period_charge=d(charge), invoice_timing="in_arrears")
    client = api("manager")
    lifecycle(local(2026, 3, 1, 1))
    posted = client.post(
        "/api/v1/ledger_entries",
        {"contract_id": contract.pk, "entry_type": "penalty", "amount": penalty, "currency": currency,
         "occurred_at": "2026-03-10T10:00:00Z"},
        format="json",
    )  # fmt: skip
    assert posted.status_code == 201, posted.content
    lifecycle(local(2026, 4, 1, 1))
    [march] = [p for p in client.get(f"/api/v1/contracts/{contract.pk}/periods").json() if p["number"] == 3]
    assert (march["period_charge"], march["service_credits"], march["total"]) == (charge, f"-{penalty}", total)
    body = {"contract_id": contract.pk, "date_from": "2026-03-01", "date_to": "2026-03-31"}
    exported = client.post("/api/v1/billing_exports", body, format="json", HTTP_IDEMPOTENCY_KEY=f"march-{currency}")
    assert exported.status_code == 201, exported.content
    batch = exported.json()
    assert sorted((line["kind"], line["amount"]) for line in batch["lines"]) == [
        ("period_charge", charge), ("service_credit", f"-{penalty}"),
    ]  # fmt: skip
    assert batch["totals"] == {currency: total} and batch["line_count"] == 2
    again = client.post("/api/v1/billing_exports", body, format="json", HTTP_IDEMPOTENCY_KEY=f"march-{currency}")
    assert again.json() == batch  # the same batch, no second one
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/api/v1/billing_exports/{batch['id']}", HTTP_ACCEPT="text/csv").content.decode())
        )
    )
    assert [(r["line"], r["amount"], r["quantity"], r["unit_price"]) for r in rows] == [
        (str(line["id"]), line["amount"], line["quantity"], line["unit_price"]) for line in batch["lines"]
    ]

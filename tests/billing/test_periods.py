"""Worked cases of periods, rollover, overage, prepay, annual increase and the lines they write."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing import periods
from billing.models import BillingLine, BillingPeriod
from config.api.exceptions import Conflict
from contracts.models import Contract
from ledger import services as ledger
from ledger.models import LedgerEntry

from .helpers import d, lifecycle, local, office_calendar, plan_contract, work_at

pytestmark = pytest.mark.django_db


def figures(contract, now):
    contract.refresh_from_db()
    return [f.as_dict(contract.currency) for f in periods.compute(contract, now=now)]


def test_included_hours_roll_over_and_overage_is_billed_and_settled(org):
    contract = plan_contract(
        org, hours_per_period=d(10), rollover_percent=50, overage_rate=d(100), period_charge=d(1000)
    )
    lifecycle(local(2026, 1, 1, 0, 5))
    work_at(contract, 4, local(2026, 1, 10, 11))
    lifecycle(local(2026, 2, 1, 0, 5))
    work_at(contract, 15, local(2026, 2, 10, 11))
    lifecycle(local(2026, 3, 1, 0, 5))
    jan, feb, mar = figures(contract, local(2026, 3, 1, 12))
    assert (jan["status"], feb["status"], mar["status"]) == ("closed", "closed", "open")
    assert jan["start_date"] == "2026-01-01" and jan["end_date"] == "2026-01-31"
    assert (jan["included_hours"], jan["charged_hours"], jan["overage_hours"]) == ("10.00", "4.00", "0.00")
    # 6 unused: half (3) rolls into February as a lot that expires with February, the rest expires.
    assert (jan["expired_hours"], jan["rolled_over_out"]) == ("3.00", "3.00")
    assert (feb["rolled_over_in"], feb["included_hours"], feb["charged_hours"]) == ("3.00", "10.00", "15.00")
    assert (feb["overage_hours"], feb["overage_charge"], feb["expired_hours"]) == ("2.00", "200.00", "0.00")
    assert (feb["period_charge"], feb["total"]) == ("1000.00", "1200.00")
    assert mar["overage_hours"] == "0.00"  # the settlement paid February's overrun
    lines = list(
        BillingLine.objects.filter(contract=contract).order_by("date", "kind").values_list("kind", "amount", "date")
    )
    assert lines == [
        ("period_charge", Decimal("1000.0000"), dt.date(2026, 1, 1)),
        ("period_charge", Decimal("1000.0000"), dt.date(2026, 2, 1)),
        ("overage", Decimal("200.0000"), dt.date(2026, 2, 28)),
        ("period_charge", Decimal("1000.0000"), dt.date(2026, 3, 1)),
    ]
    overage = BillingLine.objects.get(kind="overage")
    assert {e.entry_type for e in overage.entries.all()} == {"work", "credit"}  # the work and its settlement
    assert ledger.running_balance_errors() == []


def test_closing_again_writes_nothing(org):
    contract = plan_contract(org, hours_per_period=d(5), rollover_percent=100, period_charge=d(50))
    for _ in range(3):
        lifecycle(local(2026, 3, 1, 1))
    assert BillingPeriod.objects.filter(contract=contract, status="closed").count() == 2
    assert LedgerEntry.objects.filter(contract=contract, reason_code="rollover").count() == 2
    assert BillingLine.objects.filter(contract=contract).count() == 3


def test_in_arrears_charges_at_the_close_with_the_annual_increase(org):
    contract = plan_contract(
        org,
        billing_period="quarterly",
        period_charge=d("1000.00"),
        annual_increase_percent=d("3.5"),
        invoice_timing="in_arrears",
        start_date=dt.date(2025, 1, 1),
        expiry_date=dt.date(2027, 12, 31),
    )
    lifecycle(local(2026, 4, 1, 1))
    lines = list(BillingLine.objects.filter(contract=contract).order_by("date").values_list("date", "amount"))
    assert lines == [
        (dt.date(2025, 3, 31), Decimal("1000.0000")),
        (dt.date(2025, 6, 30), Decimal("1000.0000")),
        (dt.date(2025, 9, 30), Decimal("1000.0000")),
        (dt.date(2025, 12, 31), Decimal("1000.0000")),
        (dt.date(2026, 3, 31), Decimal("1035.0000")),
    ]


def test_prepay_lot_expires_after_its_months_and_is_bought_each_period(org):
    contract = plan_contract(
        org, prepay_hours_per_period=d(8), prepay_expiry_months=2, prepay_price_per_hour=d("75.50")
    )
    lifecycle(local(2026, 1, 1, 1))
    lot = LedgerEntry.objects.get(contract=contract, reason_code="prepay")
    assert lot.expires_at == local(2026, 3, 1)
    work_at(contract, 3, local(2026, 1, 20, 10))
    lifecycle(local(2026, 3, 1, 1))
    jan, feb, mar = figures(contract, local(2026, 3, 1, 2))
    assert jan["prepaid_hours_added"] == feb["prepaid_hours_added"] == "8.00"
    assert jan["prepay_purchases"] == "604.00"
    # January's lot (5 left) expired at the end of February, February's lot is untouched until April.
    assert (jan["expired_hours"], feb["expired_hours"]) == ("0.00", "5.00")
    kinds = list(BillingLine.objects.filter(contract=contract).values_list("kind", flat=True))
    assert kinds == ["prepay_purchase"] * 3


def test_charged_hours_apply_minimum_rounding_and_the_out_of_hours_multiplier(org):
    calendar = office_calendar(org)
    contract = plan_contract(
        org,
        minimum_charge_minutes=60,
        rounding_minutes=15,
        out_of_hours_multiplier=d("1.5"),
        billing_calendar=calendar,
        allow_overrun=True,
    )
    # 20 minutes on a Tuesday afternoon: the minimum hour.
    assert work_at(contract, "0.33", local(2026, 3, 3, 15)).charged_hours == Decimal("1.00")
    # 70 minutes rounds up to 75.
    assert work_at(contract, "1.17", local(2026, 3, 3, 15)).charged_hours == Decimal("1.25")
    # Two hours ending at 18:00: one inside, one outside -> 2 x (0.5 + 0.5 x 1.5) = 2.5.
    assert work_at(contract, 2, local(2026, 3, 3, 18)).charged_hours == Decimal("2.50")
    # A Saturday: all outside.
    entry = work_at(contract, 2, local(2026, 3, 7, 12))
    assert (entry.hours, entry.charged_hours) == (Decimal("2.00"), Decimal("3.00"))
    contract.refresh_from_db()
    assert contract.remaining_hours == Decimal("-7.75")
    assert ledger.balance(contract, as_of=local(2026, 3, 8))["consumed_hours"] == Decimal("7.75")


def test_existing_entries_keep_charged_equal_to_hours(org):
    contract = plan_contract(org, billing_period="none", allow_overrun=True)
    entry = work_at(contract, "0.10", local(2026, 3, 3, 15))
    assert entry.charged_hours == entry.hours == Decimal("0.10")


def test_a_closed_period_refuses_postings_into_it_and_late_penalties_date_into_the_open_one(org):
    contract = plan_contract(org, period_charge=d(10), allow_overrun=True)  # no lot expires: the close alone
    lifecycle(local(2026, 2, 1, 1))

    with pytest.raises(Conflict, match="billing period closed"):
        work_at(contract, 1, local(2026, 1, 31, 12))
    contract.refresh_from_db()
    entry = ledger.post_system_entry(
        contract=contract,
        system_key="test:late",
        entry_type="penalty",
        amount=d(10),
        currency="EUR",
        occurred_at=local(2026, 1, 20),
    )
    assert entry.occurred_at == local(2026, 2, 1)


def test_the_contracts_periods_follow_month_ends(org):
    contract = plan_contract(org, start_date=dt.date(2026, 1, 31), expiry_date=dt.date(2026, 5, 15))
    spans = periods.spans(contract)
    assert [(s.start_date, s.last_day) for s in spans] == [
        (dt.date(2026, 1, 31), dt.date(2026, 2, 27)),
        (dt.date(2026, 2, 28), dt.date(2026, 3, 30)),
        (dt.date(2026, 3, 31), dt.date(2026, 4, 29)),
        (dt.date(2026, 4, 30), dt.date(2026, 5, 15)),
    ]
    assert Contract.objects.get(pk=contract.pk).billing_period == "monthly"


def test_service_credits_come_from_the_periods_final_penalties_and_a_late_waiver_is_a_new_line(org, make_member):
    from breaches.services import waive_breach
    from tests.ledger.helpers import T0, final_breach, penalty_rule

    contract = plan_contract(org, counterparty_role="vendor", period_charge=d(300))
    penalty_rule(contract)
    lifecycle(local(2026, 3, 1, 1))
    breach = final_breach(contract, reported_at=T0)  # 2 March: a 150.00 penalty
    lifecycle(local(2026, 4, 1, 1))
    credit = BillingLine.objects.get(kind="service_credit")
    assert (credit.amount, credit.date, credit.period.index) == (Decimal("-150.0000"), dt.date(2026, 3, 31), 2)
    assert "claim on the vendor" in credit.description
    assert list(credit.breaches.all()) == [breach]
    assert list(credit.entries.values_list("entry_type", flat=True)) == ["penalty"]
    # Waived after March closed: the reversal is dated into April and April's close corrects it.
    waive_breach(breach=breach, actor=make_member("manager", org).user, reason="Road closed", now=local(2026, 4, 2))
    lifecycle(local(2026, 5, 1, 1))
    correction = BillingLine.objects.get(kind="service_credit", period__index=3)
    assert correction.amount == Decimal("150.0000")
    credit.refresh_from_db()
    assert credit.amount == Decimal("-150.0000")
    mar, apr = figures(contract, local(2026, 5, 1, 2))[2:4]
    assert (mar["service_credits"], mar["total"]) == ("-150.00", "150.00")
    assert (apr["service_credits"], apr["total"]) == ("150.00", "450.00")


def test_a_terminated_contract_bills_only_the_periods_begun_before_it_ended(org, make_member):
    from django.utils import timezone

    from contracts.services import add_months, terminate_contract

    # Today in the contract's time zone (Europe/Amsterdam): the UTC date was a month behind from
    # 23:00 or 22:00 UTC on a month's last day, when the termination falls in the next local month.
    today = timezone.localdate(timezone.now(), ZoneInfo("Europe/Amsterdam"))
    start = add_months(today.replace(day=1), -3)
    contract = plan_contract(
        org, period_charge=d(100), invoice_timing="in_arrears", start_date=start, expiry_date=add_months(start, 24)
    )
    lifecycle(timezone.now())
    terminate_contract(contract=contract, actor=make_member("manager", org).user, reason="Customer left")  # now
    lifecycle(timezone.now() + dt.timedelta(days=150))
    # Three whole months and the one in which it was terminated; none after.
    assert list(BillingPeriod.objects.filter(contract=contract).values_list("index", "status")) == [
        (0, "closed"),
        (1, "closed"),
        (2, "closed"),
        (3, "closed"),
    ]
    assert BillingLine.objects.filter(contract=contract).count() == 4


def test_work_summed_between_events_gives_the_same_periods_as_row_by_row(org, monkeypatch):
    contract = plan_contract(
        org, hours_per_period=d(6), rollover_percent=30, overage_rate=d(10), prepay_hours_per_period=d(2),
        prepay_expiry_months=1, prepay_price_per_hour=d(5),
        auto_top_up={"threshold_hours": "1", "mode": "by", "hours": "2", "price_per_hour": "7"},
    )  # fmt: skip
    for month in (1, 2, 3, 4):
        lifecycle(local(2026, month, 1, 0, 1))
        for day in (3, 9, 15, 21, 27):
            work_at(contract, "2.50", local(2026, month, day, 10))
        work_at(contract, "6.00", local(2026, month, 27, 10))  # two at one instant
    lifecycle(local(2026, 5, 1, 0, 1))
    now = local(2026, 5, 10)
    summed = figures(contract, now)
    monkeypatch.setattr(ledger, "MAX_SEGMENTS", 0)
    assert figures(contract, now) == summed
    assert any(p["overage_hours"] != "0.00" for p in summed) and any(p["topped_up_hours"] != "0.00" for p in summed)


def test_an_ended_periods_overage_is_not_counted_again_before_its_close(org):
    """Cron late: January ended with 2 h of overage, not billed yet. January shows it; February,
    open, does not show it again (found by an outside sweep: 2.00 h and 100.00 in both), before
    and after the close."""
    contract = plan_contract(org, hours_per_period=d(1), overage_rate=d(50))
    lifecycle(local(2026, 1, 1, 0, 5))
    work_at(contract, 3, local(2026, 1, 10, 11))
    before = figures(contract, local(2026, 2, 1, 0, 30))
    assert [(f["status"], f["overage_hours"], f["overage_charge"]) for f in before] == [
        ("open", "2.00", "100.00"),
        ("open", "0.00", "0.00"),
    ]
    work_at(contract, d("0.5"), local(2026, 2, 1, 0, 40))  # February's own, before its included hours
    assert figures(contract, local(2026, 2, 1, 0, 50))[1]["overage_hours"] == "0.50"
    lifecycle(local(2026, 2, 1, 0, 55))
    after = figures(contract, local(2026, 2, 1, 1))
    assert [(f["status"], f["overage_hours"]) for f in after] == [("closed", "2.00"), ("open", "0.00")]
    assert BillingLine.objects.get(contract=contract, kind="overage").amount == Decimal("100.0000")


def test_a_service_credit_is_named_by_what_it_holds(org, make_member):
    # Found by an outside tester: a penalty posted by hand (no breach) was billed as a service
    # credit "for SLA breaches". The line says what it holds.
    from tests.ledger.helpers import T0, final_breach, penalty_rule, post

    contract = plan_contract(org, period_charge=d(300))
    penalty_rule(contract)
    lifecycle(local(2026, 3, 1, 1))
    final_breach(contract, reported_at=T0)  # 2 March: a 150.00 penalty
    manager = make_member("manager", org).user
    for day in (local(2026, 3, 20, 9), local(2026, 4, 20, 9)):
        post(contract, "penalty", at=day, amount=d(25), currency="EUR", description="Goodwill", actor=manager)
    lifecycle(local(2026, 5, 1, 1))
    lines = BillingLine.objects.filter(kind="service_credit").order_by("period__index")
    assert [(line.period.index, line.amount, line.description) for line in lines] == [
        (2, Decimal("-175.0000"), f"{contract.reference}: service credit to the customer for SLA breaches and "
         "penalties posted by hand in period 3"),
        (3, Decimal("-25.0000"), f"{contract.reference}: service credit to the customer for penalties posted by "
         "hand in period 4"),
    ]  # fmt: skip

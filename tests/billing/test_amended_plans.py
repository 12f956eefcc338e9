"""Billing under amended terms (issue 14): every period, charge, rate and lot follows the billing
plan in force on the period's first day, not the plan of today; work is charged by the plan in
force when it was done; and no amendment may take effect inside or before a closed period."""

from __future__ import annotations

import datetime as dt

import pytest

from billing import periods
from billing.models import BillingLine
from config.errors import Unprocessable
from contracts import amendments, terms
from contracts.models import Contract
from ledger.models import LedgerEntry

from .helpers import d, lifecycle, local, plan_contract, work_at

pytestmark = pytest.mark.django_db


def approved(org, **plan) -> Contract:
    contract = plan_contract(org, **plan)
    contract.refresh_from_db()
    terms.start_versions(contract, origin="creation", now=local(2025, 12, 20))
    return contract


def amend(contract, people, effective: dt.date, changes: dict, *, now: dt.datetime, allow_past=False):
    author, first, second = people
    amendment = amendments.create_amendment(
        contract=contract,
        actor=author,
        data={"effective_date": effective, "changes": changes, "reason": "test"},
        allow_past=allow_past,
        now=now,
    )
    amendments.submit_amendment(amendment=amendment, actor=author)
    amendments.approve_amendment(amendment=amendment, actor=first, allow_past=allow_past, now=now)
    amendments.approve_amendment(amendment=amendment, actor=second, allow_past=allow_past, now=now)
    contract.refresh_from_db()
    return amendment


def lines(contract, kind):
    return list(BillingLine.objects.filter(contract=contract, kind=kind).order_by("date").values_list("date", "amount"))


def test_a_new_rate_from_april_charges_the_old_rate_before_and_the_new_one_after(org, people):
    contract = approved(
        org, period_charge=d(1000), hours_per_period=d(10), overage_rate=d(100), allow_overrun=True,
        expiry_date=dt.date(2026, 6, 30),
    )  # fmt: skip
    lifecycle(local(2026, 1, 1, 1))
    amend(contract, people, dt.date(2026, 4, 1),
          {"period_charge": "1500.00", "hours_per_period": "20.00", "overage_rate": "150.00"},
          now=local(2026, 2, 10))  # fmt: skip
    assert contract.period_charge == d(1000)  # not in force yet: the row holds today's terms
    work_at(contract, 12, local(2026, 3, 10, 11))  # 2 over March's 10
    work_at(contract, 23, local(2026, 4, 10, 11))  # 3 over April's 20
    lifecycle(local(2026, 5, 1, 1))
    contract.refresh_from_db()
    assert contract.period_charge == d(1500)  # in force since April
    charges = lines(contract, "period_charge")
    assert [amount for _, amount in charges] == [d("1000.0000")] * 3 + [d("1500.0000")] * 2
    assert lines(contract, "overage") == [(dt.date(2026, 3, 31), d("200.0000")), (dt.date(2026, 4, 30), d("450.0000"))]
    included = LedgerEntry.objects.filter(contract=contract, reason_code="included_hours").order_by("occurred_at")
    assert [e.hours for e in included] == [d(10)] * 3 + [d(20)] * 2
    # The figures read the same: March at the old rates, April at the new.
    found = periods.compute(Contract.objects.get(pk=contract.pk), now=local(2026, 5, 1, 2))
    march, april = found[2].as_dict("EUR"), found[3].as_dict("EUR")
    assert (march["period_charge"], march["overage_charge"], march["included_hours"]) == ("1000.00", "200.00", "10.00")
    assert (april["period_charge"], april["overage_charge"], april["included_hours"]) == ("1500.00", "450.00", "20.00")


def test_the_annual_increase_applies_to_an_amended_charge_from_its_next_anniversary(org, people):
    contract = approved(
        org, billing_period="quarterly", period_charge=d(1000), annual_increase_percent=d(10),
        start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2027, 12, 31),
    )  # fmt: skip
    amend(contract, people, dt.date(2026, 7, 1), {"period_charge": "2000.00"}, now=local(2026, 1, 5))
    lifecycle(local(2027, 7, 1, 1))
    assert [amount for _, amount in lines(contract, "period_charge")] == [
        d(1000), d(1000), d(2000), d(2000),  # 2026: the old charge, then the new one as agreed
        d(2200), d(2200), d(2200),  # 2027: the anniversary raises the amended charge
    ]  # fmt: skip


def test_an_amended_annual_increase_applies_from_the_next_anniversary_only(api, org):
    """Found by an outside test: 10% instead of 3% from December re-priced every past anniversary
    with 10% (December 1100.00, January 1210.00). Each anniversary takes the percentage in force
    on it: 1000.00 in 2025; 2026-01-01 at 3%: 1030.00, December too (no anniversary in between);
    2027-01-01 at 10%: 1030.00 x 1.10 = 1133.00."""
    contract = approved(
        org, period_charge=d(1000), annual_increase_percent=d(3), hours_per_period=d(5),
        start_date=dt.date(2025, 1, 1), expiry_date=dt.date(2027, 12, 31),
    )  # fmt: skip
    admins = [api("admin") for _ in range(3)]  # an admin may date it (here, tomorrow) whatever today is
    url = f"/api/v1/contracts/{contract.pk}/amendments"
    body = {"effective_date": "2026-12-01", "changes": {"annual_increase_percent": "10"}, "reason": "new escalator"}
    created = admins[0].post(url, body, format="json")
    assert created.status_code == 201, created.content
    url = f"{url}/{created.json()['id']}"
    assert admins[0].post(f"{url}/submit", {}, format="json").status_code == 200
    assert admins[1].post(f"{url}/approve", {}, format="json").status_code == 200
    assert admins[2].post(f"{url}/approve", {}, format="json").json()["status"] == "approved"
    lifecycle(local(2027, 1, 2, 6))
    response = admins[0].get(
        "/api/v1/billing_lines", {"contract_id": contract.pk, "kind": "period_charge", "sort": "date", "per_page": 100}
    )
    assert response.status_code == 200, response.content
    charges = {line["date"]: line["amount"] for line in response.json()}
    assert len(charges) == 25
    assert {charges["2025-01-01"], charges["2025-12-01"]} == {"1000.00"}
    assert {charges["2026-01-01"], charges["2026-11-01"], charges["2026-12-01"]} == {"1030.00"}
    assert charges["2027-01-01"] == "1133.00"


def test_periods_change_length_and_end_where_the_amended_terms_say(org, people):
    contract = approved(org, period_charge=d(100), expiry_date=dt.date(2026, 12, 31))
    amend(contract, people, dt.date(2026, 4, 1), {"billing_period": "quarterly", "period_charge": "250.00"},
          now=local(2026, 1, 5))  # fmt: skip
    amend(contract, people, dt.date(2026, 9, 15), {"expiry_date": "2026-11-15"}, now=local(2026, 1, 6))
    found = periods.spans(Contract.objects.get(pk=contract.pk))
    assert [(s.start_date, s.last_day) for s in found] == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
        (dt.date(2026, 4, 1), dt.date(2026, 6, 30)),
        (dt.date(2026, 7, 1), dt.date(2026, 9, 30)),
        (dt.date(2026, 10, 1), dt.date(2026, 11, 15)),  # cut by the amended expiry
    ]
    lifecycle(local(2026, 11, 16, 1))
    assert [amount for _, amount in lines(contract, "period_charge")] == [d(100)] * 3 + [d(250)] * 3


def test_an_extended_term_goes_on_billing(org, people):
    contract = approved(org, period_charge=d(100), expiry_date=dt.date(2026, 3, 31))
    amend(contract, people, dt.date(2026, 3, 1), {"expiry_date": "2026-05-31"}, now=local(2026, 1, 5))
    lifecycle(local(2026, 6, 1, 1))
    assert len(lines(contract, "period_charge")) == 5


def test_work_is_charged_by_the_plan_in_force_when_it_was_done(org, people):
    contract = approved(org, allow_overrun=True)
    amend(contract, people, dt.date(2026, 4, 1), {"rounding_minutes": 60}, now=local(2026, 3, 20))
    march = work_at(contract, "0.25", local(2026, 3, 31, 12))  # posted after the approval, done before
    april = work_at(contract, "0.25", local(2026, 4, 1, 12))
    assert (march.charged_hours, april.charged_hours) == (d("0.25"), d("1.00"))


def test_a_top_up_is_bought_at_the_price_in_force_when_it_happened(org, people):
    plan = {"threshold_hours": "2", "mode": "by", "hours": "10", "price_per_hour": "50"}
    contract = approved(org, hours_per_period=d(5), auto_top_up=plan, allow_overrun=True)
    lifecycle(local(2026, 1, 1, 1))
    amend(contract, people, dt.date(2026, 2, 1), {"auto_top_up": {**plan, "price_per_hour": "80"}},
          now=local(2026, 1, 5))  # fmt: skip
    work_at(contract, 4, local(2026, 1, 10, 10))
    lifecycle(local(2026, 2, 1, 1))
    work_at(contract, 14, local(2026, 2, 10, 10))  # 5 included + 10 left of the top-up: 1 left
    assert [amount for _, amount in lines(contract, "top_up")] == [d(500), d(800)]
    jan, feb = periods.compute(Contract.objects.get(pk=contract.pk), now=local(2026, 2, 11))
    assert (jan.money["top_up_purchases"], feb.money["top_up_purchases"]) == (d("500.00"), d("800.00"))


class TestNeverBeforeAClosedPeriod:
    def test_an_admin_cannot_backdate_into_a_closed_period(self, org, people):
        contract = approved(org, period_charge=d(100))
        lifecycle(local(2026, 3, 1, 1))  # January and February closed
        for day in (dt.date(2026, 2, 28), dt.date(2026, 1, 1)):
            with pytest.raises(Unprocessable) as raised:
                amend(contract, people, day, {"period_charge": "120.00"}, now=local(2026, 3, 2), allow_past=True)
            assert "effective_date" in raised.value.errors
            assert "2026-02-28" in " ".join(raised.value.errors["effective_date"])
        # The first day after the closed books is March's first day, and March was opened (its
        # charge line written) with the old charge: refused too (eleventh round). Inside March is
        # fine; the plan changes from April, the next period.
        with pytest.raises(Unprocessable) as raised:
            amend(contract, people, dt.date(2026, 3, 1), {"period_charge": "120.00"},
                  now=local(2026, 3, 2), allow_past=True)  # fmt: skip
        assert "2026-03-01 to 2026-03-31 was opened" in raised.value.errors["effective_date"][0]
        amend(contract, people, dt.date(2026, 3, 2), {"period_charge": "120.00"},
              now=local(2026, 3, 2), allow_past=True)  # fmt: skip
        assert contract.period_charge == d(120)

    def test_an_approval_after_the_close_is_refused_too(self, org, people):
        contract = approved(org, period_charge=d(100))
        author, first, second = people
        amendment = amendments.create_amendment(
            contract=contract, actor=author, allow_past=True, now=local(2026, 1, 20),
            data={"effective_date": dt.date(2026, 1, 15), "changes": {"period_charge": "90.00"}, "reason": "x"},
        )  # fmt: skip
        amendments.submit_amendment(amendment=amendment, actor=author)
        amendments.approve_amendment(amendment=amendment, actor=first, allow_past=True, now=local(2026, 1, 21))
        lifecycle(local(2026, 2, 1, 1))  # January closes while the amendment waits for its second approval
        with pytest.raises(Unprocessable) as raised:
            amendments.approve_amendment(amendment=amendment, actor=second, allow_past=True, now=local(2026, 2, 2))
        assert "effective_date" in raised.value.errors
        amendment.refresh_from_db()
        assert amendment.status == "pending_approval"
        assert terms.Timeline(contract).on(dt.date(2026, 1, 20)).period_charge == d(100)

    def test_through_the_api_it_is_a_422_naming_effective_date(self, api, org):
        contract = approved(
            org, period_charge=d(100), start_date=dt.date(2025, 1, 1), expiry_date=dt.date(2030, 12, 31)
        )
        lifecycle(local(2025, 3, 1, 1))
        response = api("admin").post(
            f"/api/v1/contracts/{contract.pk}/amendments",
            {"effective_date": "2025-02-10", "changes": {"period_charge": "90.00"}, "reason": "Backdated"},
            format="json",
        )
        assert response.status_code == 422, response.content
        assert "closed billing period" in response.json()["errors"]["effective_date"][0]


def test_a_plan_amended_to_none_and_back_bills_only_while_it_has_periods(org, people):
    contract = approved(org, period_charge=d(100), expiry_date=dt.date(2026, 12, 31))
    amend(contract, people, dt.date(2026, 3, 1), {"billing_period": "none", "period_charge": None},
          now=local(2026, 1, 5))  # fmt: skip
    amend(contract, people, dt.date(2026, 6, 15), {"billing_period": "quarterly", "period_charge": "300.00"},
          now=local(2026, 1, 6))  # fmt: skip
    lifecycle(local(2026, 4, 1, 1))  # the row's plan is `none` now: billing still closes February
    assert Contract.objects.get(pk=contract.pk).billing_period == "none"
    assert [amount for _, amount in lines(contract, "period_charge")] == [d(100), d(100)]
    lifecycle(local(2027, 1, 1, 1))
    found = periods.spans(Contract.objects.get(pk=contract.pk))
    assert [(s.start_date, s.last_day) for s in found] == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        (dt.date(2026, 6, 15), dt.date(2026, 9, 14)),  # quarters from where the periodic plan begins
        (dt.date(2026, 9, 15), dt.date(2026, 12, 14)),
        (dt.date(2026, 12, 15), dt.date(2026, 12, 31)),
    ]
    assert [amount for _, amount in lines(contract, "period_charge")] == [d(100), d(100), d(300), d(300), d(300)]


def test_a_plan_amended_from_none_starts_its_periods_on_the_date(org, people):
    contract = approved(org, billing_period="none", expiry_date=dt.date(2026, 12, 31))
    amend(contract, people, dt.date(2026, 10, 1), {"billing_period": "monthly", "period_charge": "50.00"},
          now=local(2026, 1, 5))  # fmt: skip
    lifecycle(local(2026, 12, 1, 1))
    assert lines(contract, "period_charge") == [(dt.date(2026, 10, 1), d(50)), (dt.date(2026, 11, 1), d(50)),
                                                (dt.date(2026, 12, 1), d(50))]  # fmt: skip

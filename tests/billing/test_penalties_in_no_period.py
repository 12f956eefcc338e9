"""Thirteenth round, known gaps: a penalty dated in no billing period of a contract billed by
periods (before its first period, in a stretch under a plan without periods) was billed by no
line, while the statement and the balance counted it. It now gets a `service_credit` line of its
own, as one after the last period does; exactly once, never also in a period's line."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import BillingLine
from breaches.models import Breach
from tests.breaches.factories import make_job, make_rule, update_job

from .helpers import d, lifecycle, local
from .test_amended_plans import amend, approved
from .test_money_adds_up import hand_penalty

pytestmark = pytest.mark.django_db


def credit_lines(contract) -> list[tuple[str, str, int | None, str]]:
    rows = BillingLine.objects.filter(contract=contract, kind="service_credit").order_by("date", "pk")
    return [(line.date.isoformat(), str(line.amount), line.period_id, line.description) for line in rows]


def test_a_penalty_in_a_stretch_without_periods_is_billed_by_a_line_of_its_own(org, people, api):
    """Monthly at 100.00 from January, amended to `none` from 1 March and to quarterly from 15 June
    (the periods are January, February, then quarters from 15 June). A breach settled on 14 April
    (its penalty 25.00) and a goodwill penalty posted by hand on 20 May fall in no period: each
    gets a line of its own on its day, and the quarters' closes do not take them again."""
    contract = approved(org, period_charge=d(100), expiry_date=dt.date(2026, 12, 31))
    amend(contract, people, dt.date(2026, 3, 1), {"billing_period": "none", "period_charge": None},
          now=local(2026, 1, 5))  # fmt: skip
    amend(contract, people, dt.date(2026, 6, 15), {"billing_period": "quarterly", "period_charge": "300.00"},
          now=local(2026, 1, 6))  # fmt: skip
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "25.00"})
    job = make_job(contract, local(2026, 4, 14, 9))
    lifecycle(local(2026, 4, 1, 1))
    update_job(job, local(2026, 4, 14, 12), responded_at=local(2026, 4, 14, 12))
    breach = Breach.objects.get(work_order=job)
    assert (breach.final, str(breach.penalty_amount)) == (True, "25.0000")
    assert hand_penalty(api("manager"), contract, "2026-05-20T09:00:00Z", "12.50").status_code == 201
    lifecycle(local(2027, 1, 1, 1))
    shown = [(date, amount, period) for date, amount, period, _ in credit_lines(contract)]
    assert shown == [("2026-04-14", "-25.0000", None), ("2026-05-20", "-12.5000", None)]
    wheres = [description.rpartition(", ")[2] for *_, description in credit_lines(contract)]
    assert wheres == ["between billing periods"] * 2
    assert BillingLine.objects.get(kind="service_credit", date=dt.date(2026, 4, 14)).breaches.get() == breach


def test_a_penalty_after_the_periods_of_a_plan_amended_to_none_is_billed(org, people, api):
    """Monthly from January, amended to `none` from 1 March for the rest of the year: a goodwill
    penalty on 10 April is after the last period, though not after the term."""
    contract = approved(org, period_charge=d(100), expiry_date=dt.date(2026, 12, 31))
    amend(contract, people, dt.date(2026, 3, 1), {"billing_period": "none", "period_charge": None},
          now=local(2026, 1, 5))  # fmt: skip
    lifecycle(local(2026, 3, 1, 1))
    assert hand_penalty(api("manager"), contract, "2026-04-10T09:00:00Z", "40.00").status_code == 201
    assert [(date, amount, period) for date, amount, period, _ in credit_lines(contract)] == [
        ("2026-04-10", "-40.0000", None)
    ]


def test_a_penalty_before_the_first_period_is_billed_when_the_contract_gets_periods(org, people, api):
    """Without periods from January (no plan bills it), a goodwill penalty on 10 March; an amendment
    approved in April gives it monthly periods from 1 October. The penalty is before the first
    period: the first period's opening bills it by a line of its own (once: the next runs write
    nothing more). A penalty posted once the amendment is approved gets its line when posted."""
    contract = approved(org, billing_period="none", expiry_date=dt.date(2026, 12, 31))
    client = api("manager")
    assert hand_penalty(client, contract, "2026-03-10T09:00:00Z", "30.00").status_code == 201
    assert credit_lines(contract) == []  # no periods at all yet: nothing of it is billed here
    amend(contract, people, dt.date(2026, 10, 1), {"billing_period": "monthly", "period_charge": "50.00"},
          now=local(2026, 4, 5))  # fmt: skip
    assert hand_penalty(client, contract, "2026-05-10T09:00:00Z", "5.00").status_code == 201
    lifecycle(local(2026, 10, 1, 1))
    lifecycle(local(2026, 11, 1, 1))
    shown = [(date, amount, period) for date, amount, period, _ in credit_lines(contract)]
    assert shown == [("2026-03-10", "-30.0000", None), ("2026-05-10", "-5.0000", None)]

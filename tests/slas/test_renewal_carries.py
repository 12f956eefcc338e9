"""A renewal carries on the SLA rules and the visit plans in force at the end of its original's
term, from its own start (found by an outside sweep: an evergreen contract renewed with no rules
and no plans, and so stopped being monitored at its first renewal)."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts import services as contract_services
from contracts.models import Contract
from events.models import Event
from slas import services as sla_services
from slas.models import SlaRule
from tests.contracts.factories import make_contract
from tests.slas.factories import ams, make_calendar, make_rule
from tests.workorders.factories import make_job
from workorders import rules as plan_services
from workorders.models import VisitPlan

# The original's term: 2026 in Amsterdam; it ends at 2027-01-01 00:00 local (23:00 UTC the day before).
END = ams(2027, 1, 1)


@pytest.fixture
def original(org):
    return make_contract(
        org,
        status="active",
        start_date=dt.date(2026, 1, 1),
        expiry_date=dt.date(2026, 12, 31),
        auto_renew=True,
        renewal_term_months=12,
    )


def auto_renew(contract) -> Contract:
    contract_services.expire_due(now=END + dt.timedelta(hours=1))
    return Contract.objects.get(renewed_from=contract)


def rules_of(contract) -> list[tuple]:
    rows = SlaRule.objects.filter(contract=contract).order_by("id")
    return [(r.name, r.metric, r.target_minutes, r.effective_from, r.effective_to) for r in rows]


@pytest.mark.django_db
class TestRules:
    def test_the_rules_in_force_at_the_end_carry_on_from_the_renewals_start(self, org, original):
        calendar = make_calendar(org)
        response = make_rule(original, name="Response", target_minutes=60, calendar=calendar)
        resolution = make_rule(original, name="Resolution", metric="resolution", target_minutes=480)
        # amended in the term: its successor, with the new target, is what is in force at the end
        successor = sla_services.amend_rule(
            rule=resolution, actor=None, data={"target_minutes": 240}, effective_from=ams(2026, 6, 1)
        )
        make_rule(original, name="Ended", metric="on_site", effective_to=ams(2026, 9, 1))
        make_rule(original, name="Switched off", metric="on_site", priorities=["low"], active=False)
        make_rule(original, name="Until next spring", metric="on_site", effective_to=ams(2027, 4, 1))

        renewal = auto_renew(original)

        assert renewal.status == "active"
        assert rules_of(renewal) == [
            ("Response", "response", 60, END, None),
            ("Resolution", "resolution", 240, END, None),
            ("Until next spring", "on_site", 120, END, ams(2027, 4, 1)),
        ]
        carried = SlaRule.objects.get(contract=renewal, name="Response")
        assert (carried.calendar_id, carried.priorities, carried.pause_on_hold) == (
            calendar.pk,
            ["critical", "high"],
            False,
        )
        assert SlaRule.objects.get(contract=renewal, name="Resolution").pause_on_hold == successor.pause_on_hold
        created = Event.objects.filter(type="sla_rule.created", payload__contract_id=renewal.pk)
        assert created.count() == 3
        # the originals are untouched, and the renewal's jobs are measured by its own rules
        assert rules_of(original)[0] == ("Response", "response", 60, response.effective_from, None)
        job = make_job(org, contract=renewal, reported_at=ams(2027, 1, 4, 9, 0), now=ams(2027, 1, 4, 10, 0))
        assert sorted(c.rule.contract_id for c in job.sla_clocks.all()) == [renewal.pk] * 3

    def test_a_renewal_by_hand_drafts_them_from_its_start(self, org, original):
        make_rule(original, name="Response", target_minutes=60)
        renewal = contract_services.renew_contract(
            contract=original, actor=None, start_date=dt.date(2027, 2, 1), now=ams(2026, 11, 1)
        )
        assert renewal.status == "draft"
        assert rules_of(renewal) == [("Response", "response", 60, ams(2027, 2, 1), None)]

    def test_a_contract_that_is_not_a_renewal_gets_none(self, org, original):
        make_rule(original, name="Response")
        contract = contract_services.create_contract(
            organization=org,
            actor=None,
            data={"reference": "NEW-1", "name": "New", "contract_type": "maintenance_agreement",
                  "counterparty": original.counterparty, "counterparty_role": "customer"},
        )  # fmt: skip
        assert rules_of(contract) == []


@pytest.mark.django_db
class TestVisitPlans:
    def test_the_plans_that_ran_to_the_end_carry_on(self, org, original):
        now = ams(2026, 2, 1)
        monthly = "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0"
        data = {"summary": "Monthly inspection", "recurrence": monthly, "duration_minutes": 90, "site": "Depot"}
        plan_services.create_visit_plan(contract=original, actor=None, data=data, now=now)
        for summary, more in (
            ("To the last day", {"active_to": dt.date(2026, 12, 31)}),
            ("Spring only", {"active_to": dt.date(2026, 5, 31)}),
            ("Rule over", {"recurrence": f"{monthly};UNTIL=20260601"}),
        ):
            plan_services.create_visit_plan(
                contract=original, actor=None, data={**data, "summary": summary, **more}, now=now
            )

        renewal = auto_renew(original)

        plans = VisitPlan.objects.filter(contract=renewal).order_by("id")
        assert [(p.summary, p.active_from, p.active_to) for p in plans] == [
            ("Monthly inspection", dt.date(2027, 1, 1), None),
            ("To the last day", dt.date(2027, 1, 1), None),
        ]
        first = plans[0]
        assert (first.recurrence, first.duration_minutes, first.site) == (monthly, 90, "Depot")
        # nothing before the renewal's start is owed by it; its first visit is its first day's
        assert first.generated_until == END
        assert plan_services.VisitPlan.objects.filter(contract=original).count() == 4

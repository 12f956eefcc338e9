"""Visits on days that are no business day (eleventh round): a plan's `on_holiday` keeps them
(default, as before), moves them to the next business day of its `calendar` or skips them, in
generation, the plan's `next_occurrences`, the visits listing, REST, GraphQL and the admin.

The calendar is the office calendar (Monday to Friday 08:00-17:00, Europe/Amsterdam) with the Dutch
public holidays: Easter Monday 2026-04-06 and King's Day Monday 2026-04-27.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.contracts.factories import make_contract
from tests.slas.factories import AMS, ams, iso, make_calendar, make_rule
from workorders import rules
from workorders.models import SlaClock, VisitPlan, WorkOrder
from workorders.visits import generate_visits, next_occurrences

UTC = dt.UTC
MONDAYS_9 = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"


@pytest.fixture
def contract(org):
    return make_contract(org, status="active")  # 2026-01-01 .. 2026-12-31, Europe/Amsterdam


@pytest.fixture
def office(org):
    return make_calendar(org, name="Office NL", holiday_country="NL")


NOON = ams(2026, 3, 30, 12)  # Monday 30 March 2026, after that day's visit


def make_plan(contract, *, now=NOON, **data) -> VisitPlan:
    data = {"summary": "Pump inspection", "recurrence": MONDAYS_9, "generate_days_in_advance": 30, **data}
    return rules.create_visit_plan(contract=contract, actor=None, data=data, now=now)


def visited(plan) -> list[dt.datetime]:
    return list(WorkOrder.objects.filter(visit_plan=plan).order_by("occurrence").values_list("occurrence", flat=True))


@pytest.mark.django_db
class TestGeneration:
    def test_keep_is_the_default_and_visits_a_holiday(self, contract, office):
        plan = make_plan(contract, calendar=office)
        assert plan.on_holiday == "keep"
        generate_visits(now=ams(2026, 3, 30, 12))
        assert visited(plan) == [ams(2026, 4, 6, 9), ams(2026, 4, 13, 9), ams(2026, 4, 20, 9), ams(2026, 4, 27, 9)]

    def test_next_business_day_moves_the_visit_and_its_clocks(self, contract, office):
        make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
        plan = make_plan(contract, on_holiday="next_business_day", calendar=office)
        assert next_occurrences(plan, after=ams(2026, 3, 30)) == [
            ams(2026, 4, 7, 9), ams(2026, 4, 13, 9), ams(2026, 4, 20, 9), ams(2026, 4, 28, 9), ams(2026, 5, 4, 9),
        ]  # fmt: skip
        generate_visits(now=ams(2026, 3, 30, 12))
        assert visited(plan) == [ams(2026, 4, 7, 9), ams(2026, 4, 13, 9), ams(2026, 4, 20, 9), ams(2026, 4, 28, 9)]
        job = WorkOrder.objects.get(visit_plan=plan, occurrence=ams(2026, 4, 7, 9))
        assert job.reported_at == ams(2026, 4, 7, 9) and job.reference == f"VISIT-{plan.pk}-20260407-0900"
        clock = SlaClock.objects.get(work_order=job)
        assert (clock.started_at, clock.due_at) == (ams(2026, 4, 7, 9), ams(2026, 4, 7, 10))
        assert generate_visits(now=ams(2026, 3, 30, 12)) == 0  # once

    def test_skip_leaves_the_holiday_out(self, contract, office):
        plan = make_plan(contract, on_holiday="skip", calendar=office)
        generate_visits(now=ams(2026, 3, 30, 12))
        assert visited(plan) == [ams(2026, 4, 13, 9), ams(2026, 4, 20, 9)]
        plan.refresh_from_db()
        # King's Day (Monday 27 April) is skipped too, after the generated horizon.
        assert next_occurrences(plan, after=ams(2026, 4, 20), count=2) == [ams(2026, 5, 4, 9), ams(2026, 5, 11, 9)]

    def test_a_weekend_date_is_no_business_day_either(self, contract, office):
        # The 1st of August 2026 is a Saturday: "on the 1st, or the next business day" is Monday the 3rd.
        plan = make_plan(
            contract, recurrence="FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8", on_holiday="next_business_day", calendar=office
        )
        assert next_occurrences(plan, after=ams(2026, 7, 15), count=2) == [ams(2026, 8, 3, 8), ams(2026, 9, 1, 8)]

    def test_a_moved_visit_keeps_the_rule_s_wall_time_on_a_spring_forward_day(self, contract, office):
        # Twelfth round: Sundays at 02:30, visited on the next business day. The spring-forward Sunday
        # (29 March 2026) has no 02:30 (the rule reads it with the offset before the gap: 03:30 CEST)
        # but its Monday has: the moved visit was made at 03:30, the local time of the instant.
        plan = make_plan(
            contract, recurrence="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30", on_holiday="next_business_day",
            calendar=office, now=ams(2026, 3, 20, 12),
        )  # fmt: skip
        # 6 April is Easter Monday: the 5th's visit moves to Tuesday.
        assert next_occurrences(plan, after=ams(2026, 3, 20), count=3) == [
            ams(2026, 3, 23, 2, 30), ams(2026, 3, 30, 2, 30), ams(2026, 4, 7, 2, 30),
        ]  # fmt: skip
        generate_visits(now=ams(2026, 3, 20, 12))
        job = WorkOrder.objects.get(visit_plan=plan, occurrence=ams(2026, 3, 30, 2, 30))
        assert job.reference == f"VISIT-{plan.pk}-20260330-0230"

    def test_a_visit_moved_onto_another_is_one_visit(self, contract, office):
        plan = make_plan(contract, recurrence="FREQ=DAILY;BYHOUR=9", on_holiday="next_business_day", calendar=office)
        assert generate_visits(now=ams(2026, 3, 30, 12)) > 0
        days = [instant.astimezone(AMS).date() for instant in visited(plan)]
        # Saturday, Sunday and Easter Monday all move to Tuesday 7 April: one visit that day.
        assert dt.date(2026, 4, 7) in days and len(days) == len(set(days))
        assert not {dt.date(2026, 4, 4), dt.date(2026, 4, 5), dt.date(2026, 4, 6)} & set(days)

    def test_a_move_past_the_horizon_is_generated_by_its_occurrences_run_once(self, contract, office):
        # The horizon ends on Easter Monday at noon: the Monday's occurrence is due, its visit is on
        # Tuesday, past the horizon. It is generated now (settled by its occurrence), not lost nor twice.
        plan = make_plan(contract, on_holiday="next_business_day", calendar=office, generate_days_in_advance=7)
        generate_visits(now=ams(2026, 3, 30, 12))
        assert visited(plan) == [ams(2026, 4, 7, 9)]
        generate_visits(now=ams(2026, 4, 1, 12))
        generate_visits(now=ams(2026, 4, 6, 12))
        assert visited(plan) == [ams(2026, 4, 7, 9), ams(2026, 4, 13, 9)]

    def test_changing_the_holiday_rule_does_not_owe_a_settled_visit_again(self, contract, office):
        plan = make_plan(contract, calendar=office, generate_days_in_advance=10)
        generate_visits(now=ams(2026, 3, 30, 12))
        assert visited(plan) == [ams(2026, 4, 6, 9)]
        rules.update_visit_plan(
            instance=plan, actor=None, data={"on_holiday": "next_business_day"}, now=ams(2026, 3, 31)
        )
        plan.refresh_from_db()
        # Easter Monday's occurrence is settled (its visit kept): no second visit on Tuesday.
        assert next_occurrences(plan, after=ams(2026, 3, 31), count=1) == [ams(2026, 4, 13, 9)]
        generate_visits(now=ams(2026, 4, 20))
        assert visited(plan) == [ams(2026, 4, 6, 9), ams(2026, 4, 13, 9), ams(2026, 4, 20, 9), ams(2026, 4, 28, 9)]

    def test_a_visit_moved_beyond_the_term_is_not_made(self, org, office):
        contract = make_contract(org, status="active", expiry_date=dt.date(2026, 4, 6))
        plan = make_plan(contract, on_holiday="next_business_day", calendar=office)
        generate_visits(now=ams(2026, 3, 30, 12))
        assert visited(plan) == []  # Easter Monday's visit would be on 7 April, after the term


@pytest.mark.django_db
class TestTheFaces:
    def url(self, contract) -> str:
        return f"/api/v1/contracts/{contract.pk}/visit_plans"

    def test_rest_validates_and_shows_the_option(self, api, contract, office, org):
        client = api("manager")
        body = {"summary": "Monthly", "recurrence": MONDAYS_9, "active_from": "2026-03-30"}
        missing = client.post(self.url(contract), {**body, "on_holiday": "skip"}, format="json")
        assert missing.status_code == 422 and "calendar_id" in missing.json()["errors"]
        wrong = client.post(self.url(contract), {**body, "on_holiday": "sometimes"}, format="json")
        assert wrong.status_code == 422 and "on_holiday" in wrong.json()["errors"]
        closed = make_calendar(org, name="No hours", hours=[])
        empty = client.post(self.url(contract), {**body, "on_holiday": "skip", "calendar_id": closed.pk}, format="json")
        assert empty.status_code == 422 and "no working hours" in empty.json()["errors"]["calendar_id"][0]
        made = client.post(
            self.url(contract), {**body, "on_holiday": "next_business_day", "calendar_id": office.pk}, format="json"
        )
        assert made.status_code == 201, made.json()
        data = made.json()
        assert data["on_holiday"] == "next_business_day" and data["calendar"] == {"id": office.pk, "name": "Office NL"}
        back = client.patch(f"{self.url(contract)}/{data['id']}", {"on_holiday": "keep"}, format="json")
        assert back.status_code == 200 and back.json()["on_holiday"] == "keep"

    def test_another_organizations_calendar_is_a_422_naming_it(self, api, contract, other_org):
        theirs = make_calendar(other_org, name="Theirs")
        response = api("manager").post(
            self.url(contract),
            {"summary": "M", "recurrence": MONDAYS_9, "on_holiday": "skip", "calendar_id": theirs.pk},
            format="json",
        )
        assert response.status_code == 422 and "calendar_id" in response.json()["errors"]

    def test_the_visits_listing_shows_the_moved_visit(self, api, contract, office):
        plan = make_plan(contract, on_holiday="next_business_day", calendar=office, generate_days_in_advance=1)
        response = api("operator").get(
            f"/api/v1/contracts/{contract.pk}/visits", {"from": "2026-04-01", "to": "2026-04-15"}
        )
        assert response.status_code == 200
        assert [(v["occurrence"], v["state"]) for v in response.json()] == [
            (iso(ams(2026, 4, 7, 9)), "scheduled"),
            (iso(ams(2026, 4, 13, 9)), "scheduled"),
        ]
        assert plan.pk == response.json()[0]["visit_plan"]["id"]

    def test_graphql_writes_and_reads_the_option(self, api, org):
        # Dated far ahead (nextOccurrences counts from the present): Monday 3 December 2035 is a closure.
        contract = make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31))
        closure = make_calendar(org, name="Closures", holidays=[{"date": "2035-12-03", "name": "Closure"}])
        client = api("manager")
        query = (
            f'mutation {{ createVisitPlan(contractId: {contract.pk}, input: {{summary: "Check", '
            f'recurrence: "{MONDAYS_9}", activeFrom: "2035-12-03", onHoliday: "skip"}}) '
            "{ __typename ... on VisitPlan { id } ... on OperationError { message fields { path messages } } } }"
        )
        refused = client.post("/api/graphql", {"query": query}, format="json").json()["data"]["createVisitPlan"]
        assert refused["__typename"] == "OperationError"
        assert [f["path"] for f in refused["fields"]] == ["calendarId"]
        query = query.replace('onHoliday: "skip"', f'onHoliday: "next_business_day", calendarId: {closure.pk}')
        made = client.post("/api/graphql", {"query": query}, format="json").json()["data"]["createVisitPlan"]
        read = client.post(
            "/api/graphql",
            {"query": f"{{ visitPlan(id: {made['id']}) {{ onHoliday calendar {{ id name }} nextOccurrences }} }}"},
            format="json",
        ).json()["data"]["visitPlan"]
        assert read["onHoliday"] == "next_business_day"
        assert read["calendar"] == {"id": str(closure.pk), "name": "Closures"}
        assert read["nextOccurrences"][:2] == ["2035-12-04T08:00:00Z", "2035-12-10T08:00:00Z"]

    def test_the_openapi_document_states_the_choices(self, api):
        schema = api("viewer").get("/api/v1/schema", {"format": "json"}).json()
        plan = schema["components"]["schemas"]["VisitPlan"]["properties"]
        assert set(plan["on_holiday"].get("enum") or schema["components"]["schemas"]["OnHolidayEnum"]["enum"]) == {
            "keep", "next_business_day", "skip",
        }  # fmt: skip
        assert "calendar_id" in schema["components"]["schemas"]["VisitPlanRequest"]["properties"]


@pytest.mark.django_db
def test_a_visit_a_missed_run_owes_is_generated_late_with_its_real_due_time_and_says_so(contract):
    # Cron was down from Monday 30 March to Wednesday 8 April noon: Easter Monday's visit is owed.
    make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
    plan = make_plan(contract, generate_days_in_advance=6)
    logged: list[str] = []
    generate_visits(now=ams(2026, 4, 8, 12), log=logged.append)
    late, ahead = WorkOrder.objects.filter(visit_plan=plan).order_by("occurrence")
    assert late.occurrence == late.reported_at == ams(2026, 4, 6, 9)
    assert "Generated late, 3060 minutes after its occurrence" in late.contract_match["explanation"]
    assert "late" not in ahead.contract_match["explanation"]
    clock = SlaClock.objects.get(work_order=late)
    assert (clock.started_at, clock.due_at) == (ams(2026, 4, 6, 9), ams(2026, 4, 6, 10))  # its real due time
    assert any("2 visits generated (1 late" in line for line in logged), logged


@pytest.mark.django_db
def test_a_renewal_carries_the_holiday_rule_and_its_calendar(org, office):
    from tests.slas.test_renewal_carries import auto_renew

    original = make_contract(org, status="active", auto_renew=True, renewal_term_months=12)  # 2026
    make_plan(
        original, recurrence="FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9", on_holiday="next_business_day", calendar=office
    )
    renewal = auto_renew(original)
    plan = VisitPlan.objects.get(contract=renewal)
    assert (plan.on_holiday, plan.calendar) == ("next_business_day", office)
    # New Year's Day 2027 is a Friday and a holiday: the renewal's first visit is Monday 4 January.
    assert next_occurrences(plan, after=ams(2026, 12, 31), count=1) == [ams(2027, 1, 4, 9)]


@pytest.mark.django_db
def test_a_calendar_a_plan_reads_is_not_deleted(api, contract, office):
    make_plan(contract, on_holiday="skip", calendar=office)
    response = api("manager").delete(f"/api/v1/calendars/{office.pk}")
    assert response.status_code == 409 and "visit plans" in response.json()["message"]
    assert VisitPlan.objects.get().calendar_id == office.pk

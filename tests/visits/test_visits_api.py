"""`/api/v1/contracts/{id}/visit_plans` and `/api/v1/contracts/{id}/visits` (issue 13)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from model_bakery import baker

from contracts.models import Asset, Counterparty
from events.models import Event
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract
from tests.ledger.helpers import credit, post
from tests.slas.factories import ams, make_calendar
from tests.workorders.factories import change
from workorders import rules
from workorders.models import VisitPlan, WorkOrder
from workorders.visits import generate_visits

QUARTERLY = "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=8"


def plans_url(contract) -> str:
    return f"/api/v1/contracts/{contract.pk}/visit_plans"


def long_contract(org, **fields):
    """Active from 2026 for decades, so plans made through the API (dated today) fit its term."""
    return make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31), **fields)


def make_plan(contract, now=None, **data) -> VisitPlan:
    data = {"summary": "Inspection", "recurrence": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", **data}
    return rules.create_visit_plan(contract=contract, actor=None, data=data, now=now or ams(2026, 3, 1))


class TestVisitPlansAPI(WritableResourceAPITests):
    read_role = "operator"
    write_role = "manager"
    update_data = {"summary": "Half-yearly inspection", "duration_minutes": 120, "hours_allocated": "3.50"}
    default_fields = [
        "id", "summary", "recurrence", "priority", "asset", "active_from", "active_to", "generated_until",
        "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = ["summary", "priority", "active_from", "created_at", "updated_at"]
    default_sort = "id"
    deletable = True
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with asset (the route's contract: only
    # for an empty list).
    list_queries = 3
    filter_cases = [
        ("priority", "planned", ["pumps", "hydrants"]),
        ("priority", "high", ["urgent"]),
        ("asset_id", lambda objs: str(objs["pumps"].asset_id), ["pumps"]),
        ("asset_id", "", ["hydrants", "urgent"]),
        ("active_from", ">=2026-06-01", ["hydrants"]),
        ("active_to", "!", ["urgent"]),
        ("created_at", ">2000-01-01", ["pumps", "hydrants", "urgent"]),
        ("updated_at", "<2000-01-01", []),
        ("ids", "pumps", ["pumps"]),
        ("on_holiday", "skip", ["hydrants"]),
        ("on_holiday", "!keep", ["hydrants"]),
        ("calendar_id", lambda objs: str(objs["hydrants"].calendar_id), ["hydrants"]),
        ("calendar_id", "", ["pumps", "urgent"]),
    ]
    malformed_filters = [("priority", "whenever"), ("active_from", ">someday"), ("on_holiday", "sometimes")]

    @pytest.fixture(autouse=True)
    def _contract(self, org):
        self.contract = long_contract(org)
        self.asset = baker.make(Asset, organization=org, counterparty=self.contract.counterparty, name="Pump")
        self.url = plans_url(self.contract)
        self.create_data = {
            "summary": "Quarterly inspection",
            "recurrence": QUARTERLY,
            "duration_minutes": 90,
            "hours_allocated": "2.00",
            "asset_id": self.asset.pk,
            "site": "Station 1",
            "generate_days_in_advance": 14,
            "tolerance_minutes": 60,
        }

    def factory(self, org, **overrides):
        contract = self.contract if org == self.contract.organization else long_contract(org)
        return make_plan(contract, **overrides)

    def detail(self, obj):
        return f"{plans_url(obj.contract)}/{obj.pk}"

    def filter_objects(self, org):
        contract = self.contract if org == self.contract.organization else long_contract(org)
        asset = baker.make(Asset, organization=org, counterparty=contract.counterparty)
        return {
            "pumps": make_plan(contract, asset=asset, active_from=dt.date(2026, 3, 1)),
            "hydrants": make_plan(
                contract, active_from=dt.date(2026, 7, 1), on_holiday="skip", calendar=make_calendar(org, name="Office")
            ),
            "urgent": make_plan(
                contract, priority="high", active_from=dt.date(2026, 3, 1), active_to=dt.date(2026, 9, 30)
            ),
        }

    def check_created(self, body, data):
        assert body["priority"] == "planned" and body["asset"] == {"id": self.asset.pk, "name": "Pump"}
        plan = VisitPlan.objects.get(pk=body["id"])
        assert plan.active_from == self.contract.local_today(plan.created_at)  # defaults to today
        assert len(body["next_occurrences"]) == 5
        assert all(occurrence.endswith(("T07:00:00Z", "T06:00:00Z")) for occurrence in body["next_occurrences"])
        assert Event.objects.filter(type="visit_plan.created", object_id=body["id"]).count() == 1


@pytest.mark.django_db
class TestVisitPlanRules:
    def test_bad_input_is_a_422_naming_the_field(self, api, org, other_org):
        contract = make_contract(org, status="active")  # 2026-01-01 .. 2026-12-31
        client = api("manager")
        stranger = baker.make(Asset, organization=org, counterparty=baker.make(Counterparty, organization=org))
        theirs = baker.make(
            Asset, organization=other_org, counterparty=baker.make(Counterparty, organization=other_org)
        )
        base = {"summary": "S", "recurrence": "FREQ=WEEKLY", "active_from": "2026-03-01"}
        for extra, field in [
            ({"recurrence": "every monday"}, "recurrence"),
            ({"recurrence": "FREQ=MINUTELY"}, "recurrence"),
            ({"recurrence": "FREQ=DAILY;UNTIL=20260601T000000Z"}, "recurrence"),
            ({"recurrence": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"}, "recurrence"),
            # dateutil never moves forward on INTERVAL=0 (the request hung), and searches to year
            # 9999 for a date that does not exist (seconds per listing).
            ({"recurrence": "FREQ=DAILY;INTERVAL=0"}, "recurrence"),
            ({"recurrence": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "recurrence"),
            ({"recurrence": "FREQ=YEARLY;BYMONTH=4,6,9,11;BYMONTHDAY=31"}, "recurrence"),
            ({"asset_id": stranger.pk}, "asset_id"),
            ({"asset_id": theirs.pk}, "asset_id"),
            ({"active_from": "2025-12-31"}, "active_from"),
            ({"active_to": "2027-01-01"}, "active_to"),
            ({"active_to": "2026-02-01"}, "active_to"),
            ({"priority": "someday"}, "priority"),
            ({"duration_minutes": 0}, "duration_minutes"),
            ({"generated_until": "2026-01-01T00:00:00Z"}, "generated_until"),
        ]:
            response = client.post(plans_url(contract), {**base, **extra}, format="json")
            assert response.status_code == 422, (extra, response.content)
            assert set(response.json()["errors"]) == {field}, (extra, response.json())

    def test_a_month_end_day_taken_from_active_from_must_be_named(self, api, org):
        # Eleventh round: "monthly from 31 January" visited seven months a year and "yearly from
        # 29 February 2028" every fourth year (RFC 5545 skips dates that do not exist), nothing
        # said. The day is named instead: BYMONTHDAY=-1 (the last day), or the day itself.
        contract = long_contract(org)
        client = api("manager")
        cases = [  # recurrence, active_from -> the months RFC 5545 would skip, named in the 422
            ("FREQ=MONTHLY;BYHOUR=9", "2027-01-31", "(February, April, June, September, November): add BYMONTHDAY=-1"),
            ("FREQ=MONTHLY;INTERVAL=2", "2027-03-30", "(February): add BYMONTHDAY=-1"),
            ("FREQ=YEARLY", "2028-02-29", "(February outside leap years): add BYMONTH=2;BYMONTHDAY=-1"),
        ]
        for rule, start, named in cases:
            response = client.post(
                plans_url(contract), {"summary": "S", "recurrence": rule, "active_from": start}, format="json"
            )
            assert response.status_code == 422, (rule, response.content)
            assert set(response.json()["errors"]) == {"recurrence"}, response.json()
            assert named in response.json()["errors"]["recurrence"][0], response.json()
        made = {}
        for rule, start in [
            ("FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=9", "2027-01-31"),  # the last day of every month
            ("FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=9", "2027-01-31"),  # the 31st where there is one (said so)
            ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1;BYHOUR=9", "2028-02-29"),  # 29 Feb, then 28 Feb
            ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=9", "2027-01-31"),  # the last weekday
            ("FREQ=MONTHLY;BYHOUR=9", "2027-01-28"),  # every month has a 28th
        ]:
            body = {"summary": "S", "recurrence": rule, "active_from": start}
            response = client.post(plans_url(contract), body, format="json")
            assert response.status_code == 201, (rule, response.content)
            made[rule] = response.json()
        days = {rule: [o[:10] for o in body["next_occurrences"]][:4] for rule, body in made.items()}
        assert days["FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=9"] == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
        assert days["FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=9"] == ["2027-01-31", "2027-03-31", "2027-05-31", "2027-07-31"]
        assert days["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1;BYHOUR=9"] == [
            "2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28",
        ]  # fmt: skip
        # The last weekday: Friday 26 February 2027 (the last of January came before active_from).
        assert days["FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=9"] == [
            "2027-02-26", "2027-03-31", "2027-04-30", "2027-05-31",
        ]  # fmt: skip
        plan = VisitPlan.objects.get(pk=made["FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=9"]["id"])
        # A stored plan anchored so (made before this check) is not refused an edit of its summary.
        VisitPlan.objects.filter(pk=plan.pk).update(recurrence="FREQ=MONTHLY;BYHOUR=9")
        response = client.patch(f"{plans_url(contract)}/{plan.pk}", {"summary": "Renamed"}, format="json")
        assert response.status_code == 200, response.content
        response = client.patch(f"{plans_url(contract)}/{plan.pk}", {"recurrence": "FREQ=MONTHLY"}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"recurrence"}

    def test_closed_contracts_plan_nothing_and_other_organizations_are_404(self, api, org, other_org):
        client = api("manager")
        body = {"summary": "S", "recurrence": "FREQ=WEEKLY"}
        expired = make_contract(org, status="expired")
        assert client.post(plans_url(expired), body, format="json").status_code == 409
        theirs = long_contract(other_org)
        assert client.post(plans_url(theirs), body, format="json").status_code == 404
        assert client.get(plans_url(theirs)).status_code == 404
        assert client.get(f"/api/v1/contracts/{theirs.pk}/visits").status_code == 404

    def test_next_occurrences_of_a_page_read_the_terms_once(self, api, org, django_assert_num_queries):
        contract = long_contract(org)
        client = api("operator")
        url = plans_url(contract) + "?fields=id,next_occurrences"
        assert client.get(url).status_code == 200  # caches the token's membership
        for plans in (1, 4):
            while contract.visit_plans.count() < plans:
                make_plan(contract)
            # 1 count, 2 the page's ids, 3 the page, 4 the contract's term versions (where its term ends)
            with django_assert_num_queries(4):
                assert all(len(plan["next_occurrences"]) == 5 for plan in client.get(url).json())

    def test_a_plan_with_jobs_is_ended_not_deleted(self, api, org):
        contract = make_contract(org, status="active")
        plan = make_plan(contract)
        generate_visits(now=ams(2026, 3, 1))
        response = api("manager").delete(f"{plans_url(contract)}/{plan.pk}")
        assert response.status_code == 409 and "active_to" in response.json()["message"]
        response = api("manager").patch(f"{plans_url(contract)}/{plan.pk}", {"active_to": "2026-04-30"}, format="json")
        assert response.status_code == 200 and response.json()["active_to"] == "2026-04-30"


@pytest.mark.django_db
class TestVisitsListing:
    @pytest.fixture
    def contract(self, org):
        return make_contract(org, status="active", allow_overrun=True)

    @pytest.fixture
    def plan(self, contract):
        """Weekly on Mondays 09:00-10:00, generated up to 2026-03-15 12:00 (Amsterdam)."""
        plan = make_plan(contract, duration_minutes=60, tolerance_minutes=30, hours_allocated="1.50",
                         generate_days_in_advance=14)  # fmt: skip
        generate_visits(now=ams(2026, 3, 1, 12))
        return plan

    def url(self, contract, **params) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"/api/v1/contracts/{contract.pk}/visits?{query}"

    def test_states_jobs_and_hours(self, api, contract, plan):
        first, second = WorkOrder.objects.filter(visit_plan=plan).order_by("occurrence")
        change(first, status="resolved", status_changed_at=ams(2026, 3, 2, 10, 20), now=ams(2026, 3, 2, 11))
        credit(contract, 10, at=ams(2026, 3, 1))
        post(contract, "work", "1.25", at=ams(2026, 3, 2, 10), work_order=first)
        post(contract, "work", "0.50", at=ams(2026, 3, 2, 10, 15), work_order=first)
        response = api("operator").get(self.url(contract, **{"from": "2026-03-01", "to": "2026-03-20"}))
        assert response.status_code == 200, response.content
        body = response.json()
        assert response["X-Pagination-Total-Entries"] == "3"
        assert [(v["occurrence"], v["state"]) for v in body] == [
            ("2026-03-02T08:00:00Z", "completed"),  # resolved 10:20, within the end (10:00) + 30 minutes
            ("2026-03-09T08:00:00Z", "missed"),  # never resolved, and that was long ago
            ("2026-03-16T08:00:00Z", "scheduled"),  # after the generated horizon
        ]
        assert body[0]["work_order"] == {
            "id": first.pk, "name": first.reference, "status": "resolved", "resolved_at": "2026-03-02T09:20:00Z",
        }  # fmt: skip
        assert (body[0]["hours_allocated"], body[0]["hours_logged"]) == ("1.50", "1.75")
        assert body[1]["work_order"]["id"] == second.pk and body[1]["hours_logged"] == "0.00"
        assert body[2]["work_order"] is None and body[2]["ends_at"] == "2026-03-16T09:00:00Z"
        assert body[0]["visit_plan"] == {"id": plan.pk, "name": "Inspection"}
        # The job itself says which plan and occurrence it is, and how its contract was set.
        job = api("operator").get(f"/api/v1/work_orders/{first.pk}").json()
        assert job["visit_plan"] == {"id": plan.pk, "name": "Inspection"}
        assert job["occurrence"] == job["reported_at"] == "2026-03-02T08:00:00Z"
        assert job["priority"] == "planned" and job["contract_match"]["method"] == "manual"
        listed = api("operator").get(f"/api/v1/work_orders?visit_plan_id={plan.pk}&fields=reference").json()
        assert sorted(j["id"] for j in listed) == sorted([first.pk, second.pk])

    def test_resolved_after_the_tolerance_is_missed(self, api, contract, plan):
        first = WorkOrder.objects.filter(visit_plan=plan).earliest("occurrence")
        change(first, status="resolved", status_changed_at=ams(2026, 3, 2, 10, 31), now=ams(2026, 3, 2, 11))
        body = api("operator").get(self.url(contract, **{"from": "2026-03-02", "to": "2026-03-03"})).json()
        assert [v["state"] for v in body] == ["missed"]

    def test_filters_pagination_and_bad_parameters(self, api, contract, plan):
        other = make_plan(contract, summary="Hydrants", recurrence="FREQ=WEEKLY;BYDAY=TU;BYHOUR=9")
        client = api("operator")
        window = {"from": "2026-03-01T00:00:00%2B01:00", "to": "2026-04-01T00:00:00Z"}
        everything = client.get(self.url(contract, **window)).json()
        assert {v["visit_plan"]["id"] for v in everything} == {plan.pk, other.pk}
        only = client.get(self.url(contract, **window, visit_plan_id=other.pk)).json()
        assert only and {v["visit_plan"]["id"] for v in only} == {other.pk}
        scheduled = client.get(self.url(contract, **window, state="scheduled")).json()
        assert scheduled and {v["state"] for v in scheduled} == {"scheduled"}
        page = client.get(self.url(contract, **window, per_page=2, page=2))
        assert page.json() == everything[2:4] and page["X-Pagination-Current-Page"] == "2"
        for params in (
            {"from": "yesterday"},
            {"from": "2026-03-01T00:00:00"},  # no offset
            {"from": "2026-03-10", "to": "2026-03-01"},
            {"from": "2026-01-01", "to": "2027-06-01"},
            {"state": "lost"},
            {"visit_plan_id": "x"},
            # `int()` read these as plans 30, 1 and 1 (found by an outside sweep)
            {"visit_plan_id": "3_0"},
            {"visit_plan_id": "\u0661"},
            {"visit_plan_id": "%2B1"},
            {"colour": "red"},
            {"per_page": "0"},
        ):
            response = client.get(self.url(contract, **params))
            assert response.status_code == 400, (params, response.content)
            assert response.json()["message"]

    def test_a_blank_or_non_iso_parameter_is_400_naming_it(self, api, contract, plan):
        """Found by an outside sweep: a blank one was left out (every visit, the default window), as
        `within_days=` is not; an Arabic-Indic year was read as a date."""
        client = api("operator")
        for name, value in [
            ("from", ""), ("to", ""), ("state", ""), ("visit_plan_id", ""),
            ("from", "\u0662\u0660\u0662\u0666-03-01"), ("to", "2026-03-01T1\u0660:00Z"),
        ]:  # fmt: skip
            response = client.get(self.url(contract, **{name: value}))
            assert response.status_code == 400, (name, value, response.content)
            assert name in response.json()["errors"], (name, value)

    def test_fields_and_sort_as_every_collection_takes_them(self, api, contract, plan):
        """`?fields=` and `?sort=` were a 400 ("Unknown filter") here, while every other collection
        takes them (DESIGN §5)."""
        other = make_plan(contract, summary="Hydrants", recurrence="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9")
        client = api("operator")
        window = {"from": "2026-03-01", "to": "2026-03-24"}
        everything = client.get(self.url(contract, **window)).json()
        assert [(v["occurrence"], v["visit_plan"]["id"]) for v in everything] == sorted(
            (v["occurrence"], v["visit_plan"]["id"]) for v in everything
        )  # by default: time order, then the plan's
        picked = client.get(self.url(contract, **window, fields="occurrence,state")).json()
        assert picked == [{"occurrence": v["occurrence"], "state": v["state"]} for v in everything]
        by_plan = client.get(self.url(contract, **window, sort="-visit_plan,-occurrence")).json()
        expected = sorted(everything, key=lambda v: (v["visit_plan"]["id"], v["occurrence"]), reverse=True)
        assert by_plan == expected and by_plan[0]["visit_plan"]["id"] == other.pk
        by_state = client.get(self.url(contract, **window, sort="state", fields="state,occurrence")).json()
        assert [v["state"] for v in by_state] == sorted(v["state"] for v in everything)
        # Ties keep time order, then the plan's.
        assert by_state == sorted(by_state, key=lambda v: (v["state"], v["occurrence"]))
        response = client.get(self.url(contract, **window, fields="state,occurrence", sort="-occurrence", format="csv"))
        table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        latest_first = sorted(everything, key=lambda v: v["occurrence"], reverse=True)  # ties: the plan's order
        assert table == [{"occurrence": v["occurrence"], "state": v["state"]} for v in latest_first]
        for params, message in (
            ({"fields": "colour"}, "Unknown field: colour"),
            ({"fields": ","}, "fields names no field: give field names, or leave fields out."),
            ({"sort": "colour"}, "Sorting not allowed on fields: colour"),
            ({"sort": "state,-state"}, "Sorting on a field twice: state"),
        ):
            for extra in ({}, {"format": "csv"}):
                refused = client.get(self.url(contract, **params, **extra))
                assert refused.status_code == 400 and refused.json()["message"] == message, (params, extra)

    def test_csv_has_the_json_rows_and_filters_without_the_page_limit(self, api, contract, plan):
        """`?format=csv` was a 404 and `?format=json` a 400 ("Unknown filter: format"), while every
        other collection streams CSV (config.api.csv)."""
        make_plan(contract, summary="Hydrants", recurrence="FREQ=WEEKLY;BYDAY=TU;BYHOUR=9")
        client = api("operator")
        window = {"from": "2026-03-01", "to": "2026-05-01"}
        body = client.get(self.url(contract, **window, per_page=100)).json()
        assert client.get(self.url(contract, **window, per_page=100, format="json")).json() == body
        response = client.get(self.url(contract, **window, per_page=2, format="csv"))
        assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == 'attachment; filename="visits.csv"'
        table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(body) > 2 and len(table) == len(body)  # not the two rows of a page
        assert list(table[0])[:5] == ["visit_plan_id", "visit_plan_name", "occurrence", "ends_at", "state"]
        assert [(r["visit_plan_id"], r["occurrence"], r["state"]) for r in table] == [
            (str(v["visit_plan"]["id"]), v["occurrence"], v["state"]) for v in body
        ]
        assert table[0]["visit_plan_name"] == "Inspection" and table[0]["hours_allocated"] == "1.50"
        job = next(v["work_order"] for v in body if v["work_order"])
        row = next(r for r in table if r["work_order_id"] == str(job["id"]))
        assert (row["work_order_name"], row["work_order_status"]) == (job["name"], job["status"])
        assert "work_order" not in row and "work_order_resolved_at" in row
        by_accept = client.get(self.url(contract, **window, state="scheduled"), HTTP_ACCEPT="text/csv")
        scheduled = list(csv.DictReader(io.StringIO(b"".join(by_accept.streaming_content).decode())))
        assert scheduled and {r["state"] for r in scheduled} == {"scheduled"}
        for params in ({"state": "lost"}, {"per_page": "0"}, {"colour": "red"}):
            refused = client.get(self.url(contract, **params, format="csv"))
            assert refused.status_code == 400 and refused["Content-Type"] == "application/json", params
        unknown = client.get(self.url(contract, format="xml"))
        assert unknown.status_code == 400 and "format" in unknown.json()["errors"]
        assert api("operator").get("/api/v1/contracts/999999/visits?format=csv").status_code == 404

    def test_auth_and_roles(self, api, anon, contract, plan):
        assert anon.get(self.url(contract)).status_code == 401
        assert api("viewer").get(self.url(contract)).status_code == 403
        assert api("operator").get(self.url(contract)).status_code == 200

    def test_the_query_count_does_not_grow_with_the_visits(self, api, contract, plan, django_assert_num_queries):
        client = api("operator")
        assert client.get(self.url(contract)).status_code == 200  # caches the token's membership
        # 1 the contract, 2 the plans, 3 their jobs in the window, 4 the hours logged, 5 its term versions.
        with django_assert_num_queries(5):
            assert len(client.get(self.url(contract, **{"from": "2026-03-01", "to": "2026-03-10"})).json()) == 2
        make_plan(contract, summary="Daily", recurrence="FREQ=DAILY;BYHOUR=7")
        generate_visits(now=ams(2026, 3, 1, 12))
        with django_assert_num_queries(5):
            assert len(client.get(self.url(contract, **{"from": "2026-03-01", "to": "2026-03-10"})).json()) > 2


def test_visit_state_follows_the_end_plus_tolerance():
    from visits.selectors import visit_state

    plan = VisitPlan(duration_minutes=60, tolerance_minutes=0)
    assert visit_state(plan, ams(2026, 3, 2, 9), None, ams(2026, 3, 3)) == "scheduled"
    job = WorkOrder(resolved_at=None)
    assert visit_state(plan, ams(2026, 3, 2, 9), job, ams(2026, 3, 2, 9, 30)) == "generated"
    assert visit_state(plan, ams(2026, 3, 2, 9), job, ams(2026, 3, 2, 10, 1)) == "missed"


@pytest.mark.django_db
def test_a_draft_with_visit_plans_or_rules_is_a_409_to_delete_not_a_500(api, org):
    from workorders.models import ContractRule

    draft = make_contract(org)
    plan = make_plan(draft, active_from=dt.date(2026, 3, 1))
    ContractRule.objects.create(organization=org, name="To the draft", contract=draft)
    response = api("manager").delete(f"/api/v1/contracts/{draft.pk}")
    assert response.status_code == 409
    # Twelfth round: a draft's visit plans go with it; the rule assigning it holds it (and the
    # plans, deleted in the same transaction, are back).
    assert "still used by contract rules" in response.json()["message"]
    assert VisitPlan.objects.filter(pk=plan.pk).exists()
    assert not Event.objects.filter(type__in=["visit_plan.deleted", "contract.deleted"]).exists()


@pytest.mark.django_db
def test_an_approved_extension_effective_later_counts_for_plans_and_visits(api, org):
    # Found in review: plans and the visits listing read the expiry of today's row, so an extension
    # approved now but effective next month refused a plan into the extended term and listed no
    # visits there.
    from contracts import terms
    from tests.ledger.test_amended_terms import amend_and_approve

    today = dt.date.today()
    contract = make_contract(
        org, status="active", start_date=today - dt.timedelta(days=30), expiry_date=today + dt.timedelta(days=90)
    )
    terms.start_versions(contract, origin="creation", now=contract.start_of_day(contract.start_date))
    extended = today + dt.timedelta(days=400)
    managers = (api("manager"), api("manager"), api("manager"))
    amend_and_approve(
        managers, contract, {"expiry_date": extended.isoformat()}, effective_date=str(today + dt.timedelta(days=60))
    )
    contract.refresh_from_db()
    assert contract.expiry_date == today + dt.timedelta(days=90)  # the row: today's terms

    manager = managers[0]
    body = {"summary": "Monthly", "recurrence": "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9", "active_to": str(extended)}
    response = manager.post(plans_url(contract), body, format="json")
    assert response.status_code == 201, response.content
    body["active_to"] = str(extended + dt.timedelta(days=1))
    response = manager.post(plans_url(contract), body, format="json")
    assert response.status_code == 422 and str(extended) in response.json()["errors"]["active_to"][0]

    start, end = today + dt.timedelta(days=100), today + dt.timedelta(days=300)  # past the row's expiry
    visits = manager.get(f"/api/v1/contracts/{contract.pk}/visits?from={start}&to={end}").json()
    assert len(visits) >= 6 and all(visit["state"] == "scheduled" for visit in visits)


# --- what a plan's rule may say (found by an outside tester) -------------------------------------------

EVERY_SECOND = "FREQ=DAILY;BYHOUR={};BYMINUTE={};BYSECOND={}".format(
    ",".join(map(str, range(24))), ",".join(map(str, range(60))), ",".join(map(str, range(60)))
)
EVERY_HOUR = "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "message"),
    [
        # A plan makes work orders, not a ticker: it was accepted, and each run made 1,000 jobs one second
        # apart, sixty of them under one reference (VISIT-{plan}-{YYYYMMDD-HHMM}).
        (EVERY_SECOND, "BYSECOND may only be 0"),
        ("FREQ=DAILY;BYHOUR=8;BYSECOND=30", "BYSECOND may only be 0"),
        ("FREQ=DAILY;BYHOUR=8;BYMINUTE=0,30", "BYMINUTE takes one minute"),
        ("FREQ=WEEKLY;BYDAY=MO;COUNT=0", "COUNT must be at least 1"),
        ("FREQ=DAILY;INTERVAL=99999999999", "INTERVAL may span at most 100 years"),
        ("FREQ=YEARLY;INTERVAL=101", "INTERVAL may span at most 100 years"),
        ("FREQ=YEARLY;BYEASTER=0", "BYEASTER is not part of an RFC 5545 RRULE"),  # a dateutil extension
        ("FREQ=WEEKLY;BYWEEKDAY=MO", "BYWEEKDAY is not part of an RFC 5545 RRULE"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20261231", "COUNT and UNTIL exclude each other"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
    ],
)
def test_a_rule_finer_than_an_hour_or_outside_rfc_5545_is_a_422_naming_recurrence(api, org, rule, message):
    contract = long_contract(org)
    client = api("manager")
    response = client.post(plans_url(contract), {"summary": "S", "recurrence": rule}, format="json")
    assert response.status_code == 422, response.content
    assert set(response.json()["errors"]) == {"recurrence"} and message in response.json()["errors"]["recurrence"][0]
    plan = make_plan(contract)
    response = client.patch(f"{plans_url(contract)}/{plan.pk}", {"recurrence": rule}, format="json")
    assert response.status_code == 422 and set(response.json()["errors"]) == {"recurrence"}, response.content
    assert not VisitPlan.objects.filter(recurrence=rule).exists()


@pytest.mark.django_db
def test_several_visits_a_day_at_whole_minutes_are_a_plan(api, org):
    contract = long_contract(org)  # Europe/Amsterdam
    client = api("manager")
    for rule, local_times in [
        ("FREQ=DAILY;BYHOUR=8,16", {"08:00", "16:00"}),
        ("FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=7,12,17;BYMINUTE=30;BYSECOND=0", {"07:30", "12:30", "17:30"}),
        (EVERY_HOUR + ";BYMINUTE=15", {f"{hour:02}:15" for hour in range(24)}),
        ("FREQ=YEARLY;INTERVAL=5;BYHOUR=9", {"09:00"}),  # a 5-yearly test from active_from (a 12-yearly: below)
        ("FREQ=WEEKLY;COUNT=3", {"00:00"}),  # from active_from (today), whose first is past
    ]:
        response = client.post(plans_url(contract), {"summary": "S", "recurrence": rule}, format="json")
        assert response.status_code == 201, (rule, response.content)
        upcoming = [
            dt.datetime.fromisoformat(o).astimezone(ams(2026, 1, 1).tzinfo) for o in response.json()["next_occurrences"]
        ]
        assert upcoming and {f"{o:%H:%M}" for o in upcoming} <= local_times, (rule, upcoming)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stored",
    [EVERY_SECOND, "FREQ=DAILY;INTERVAL=99999999999", "FREQ=YEARLY;BYEASTER=0", "FREQ=DAILY;COUNT=0"],
)
def test_a_stored_rule_refused_since_is_skipped_not_run(api, org, stored):
    # Plans written before the checks above may hold such rules: generation skips them with a line in its
    # log (each run, generating nothing, leaving generated_until) and they list no occurrences; once the
    # rule is corrected, the plan generates from where it stood, one job per reference.
    import io

    from django.core.management import call_command

    contract = make_contract(org, status="active", allow_overrun=True)  # 2026, Europe/Amsterdam
    plan = make_plan(contract, now=ams(2026, 3, 1), generate_days_in_advance=2)
    VisitPlan.objects.filter(pk=plan.pk).update(recurrence=stored, next_run_at=None)
    for _ in range(2):
        out = io.StringIO()
        call_command("generate_visits", now=ams(2026, 3, 2, 12).isoformat(), stdout=out)
        assert f"visit plan {plan.pk} ({contract.reference}) skipped, its recurrence is refused" in out.getvalue()
        assert "Summary: 0 visits generated" in out.getvalue()
    assert not WorkOrder.objects.filter(visit_plan=plan).exists()
    plan.refresh_from_db()
    assert plan.generated_until == ams(2026, 3, 1)

    client = api("manager")
    detail = client.get(f"{plans_url(contract)}/{plan.pk}")
    assert detail.status_code == 200 and detail.json()["next_occurrences"] == []
    visits = client.get(f"/api/v1/contracts/{contract.pk}/visits?from=2026-03-01&to=2027-01-01")
    assert visits.status_code == 200 and visits.json() == []

    fixed = client.patch(f"{plans_url(contract)}/{plan.pk}", {"recurrence": EVERY_HOUR}, format="json")
    assert fixed.status_code == 200, fixed.content
    generate_visits(now=ams(2026, 3, 2, 12))
    references = list(WorkOrder.objects.filter(visit_plan=plan).values_list("reference", flat=True))
    # (2026-03-01 00:00, 2026-03-04 12:00]: the whole hours from 01:00 to 12:00 three days later, each one
    # visit and one reference
    assert len(references) == len(set(references)) == 23 + 24 + 24 + 13


# --- the visits listing is complete for any window it takes ----------------------------------------------


@pytest.mark.django_db
def test_the_listing_holds_every_occurrence_of_a_busy_plan(api, org, django_assert_num_queries):
    # Found by an outside tester: the listing took a plan's first 1,000 occurrences (generation's cap per
    # run), so an hourly plan lost everything after 41 days, and the total said 1,000.
    contract = long_contract(org)  # Europe/Amsterdam
    plan = make_plan(contract, summary="Standby rota", recurrence=EVERY_HOUR + ";BYMINUTE=30")
    make_plan(contract, summary="Weekly", recurrence="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9")
    client = api("operator")
    window = "from=2026-04-01&to=2027-04-01"  # 365 days, an autumn overlap and a spring gap
    assert client.get(f"/api/v1/contracts/{contract.pk}/visits?{window}").status_code == 200  # the membership
    # 1 the contract, 2 the plans, 3 their jobs in the window (none: no hours logged to read), 4 its term
    # versions; whatever the number of occurrences.
    with django_assert_num_queries(4):
        first = client.get(f"/api/v1/contracts/{contract.pk}/visits?{window}&visit_plan_id={plan.pk}&per_page=100")
    # Every hour of 365 days at :30, but 2027-03-28 02:30, which does not exist (it is 03:30, listed once).
    hourly = 365 * 24 - 1
    assert first.status_code == 200 and first["X-Pagination-Total-Entries"] == str(hourly)
    last_page = -(-hourly // 100)
    last = client.get(
        f"/api/v1/contracts/{contract.pk}/visits?{window}&visit_plan_id={plan.pk}&per_page=100&page={last_page}"
    ).json()
    assert last[-1]["occurrence"] == "2027-03-31T21:30:00Z"  # 23:30 summer time, the window's last hour
    both = client.get(f"/api/v1/contracts/{contract.pk}/visits?{window}&state=scheduled")
    assert both["X-Pagination-Total-Entries"] == str(hourly + 52)

    # GraphQL's contractVisits is the same list, in pages: 91 days of it, 2,184 hours.
    query = (
        '{ contractVisits(contractId: %s, from: "2026-04-01T00:00:00+02:00", to: "2026-07-01T00:00:00+02:00", '
        "visitPlanIds: [%s], pagination: {offset: 2100, limit: 100}) { totalCount results { occurrence } } }"
    )
    response = client.post("/api/graphql", {"query": query % (contract.pk, plan.pk)}, format="json")
    page = response.json()["data"]["contractVisits"]
    assert page["totalCount"] == 91 * 24 and len(page["results"]) == 84
    assert page["results"][-1]["occurrence"] == "2026-06-30T21:30:00Z"


@pytest.mark.django_db
def test_a_window_holding_more_than_max_visits_is_a_400_not_a_minute_of_work(api, org):
    # Found by an outside sweep: eleven hourly plans made 58,092 visits a year, computed whole for
    # each request (GraphQL's contractVisits, which has no pages: 97 MB for 15 aliases).
    from visits.selectors import MAX_VISITS

    contract = long_contract(org)
    for minute in (0, 20, 40):
        make_plan(contract, summary=f"Rota {minute}", recurrence=f"{EVERY_HOUR};BYMINUTE={minute}")
    client = api("operator")
    url = f"/api/v1/contracts/{contract.pk}/visits"
    response = client.get(url + "?from=2026-04-01&to=2027-04-01")  # 3 x 8,759 visits
    assert response.status_code == 400 and set(response.json()["errors"]) == {"to"}
    assert str(MAX_VISITS) in response.json()["message"]
    response = client.get(url + "?from=2026-04-01&to=2026-06-01&per_page=1")  # 3 x 1,464: within
    assert response.status_code == 200 and response["X-Pagination-Total-Entries"] == str(3 * 61 * 24)
    plan = contract.visit_plans.order_by("id").first()
    response = client.get(url + f"?from=2026-04-01&to=2027-04-01&visit_plan_id={plan.pk}&per_page=1")
    assert response.status_code == 200 and response["X-Pagination-Total-Entries"] == "8759"


@pytest.mark.django_db
def test_a_plan_left_outside_a_drafts_moved_term_can_still_be_edited(api, org):
    # Found by an outside sweep: after a draft's dates moved, every edit of its plan was a 422 on
    # active_from and active_to, which the edit did not send.
    draft = make_contract(org, status="draft", start_date=dt.date(2027, 1, 1), expiry_date=dt.date(2027, 12, 31))
    manager = api("manager")
    body = {"summary": "Quarterly", "recurrence": QUARTERLY, "active_from": "2027-01-01", "active_to": "2027-12-31"}
    plan = manager.post(plans_url(draft), body, format="json").json()
    moved = {"start_date": "2027-02-01", "expiry_date": "2027-10-31"}
    assert manager.patch(f"/api/v1/contracts/{draft.pk}", moved, format="json").status_code == 200
    response = manager.patch(f"{plans_url(draft)}/{plan['id']}", {"summary": "Q"}, format="json")
    assert response.status_code == 200, response.content
    # Dates an edit sets are still held to the term.
    response = manager.patch(f"{plans_url(draft)}/{plan['id']}", {"active_to": "2027-11-30"}, format="json")
    assert response.status_code == 422 and "active_to" in response.json()["errors"]


@pytest.mark.django_db
def test_a_plan_whose_next_visit_is_beyond_the_lookahead_is_due_again_in_time(org):
    """Found in review: a plan with no occurrence in the next ten years (a 12-yearly hydrostatic
    test, after its first) was never due again (`next_run_at` 9999), so its next visit was never
    generated. It is looked at again before that visit can enter its horizon."""
    contract = long_contract(org)
    rule = "FREQ=YEARLY;INTERVAL=12;BYMONTH=3;BYMONTHDAY=10;BYHOUR=9"
    plan = make_plan(contract, recurrence=rule, active_from=dt.date(2026, 3, 1))
    generate_visits(now=ams(2026, 3, 5))
    assert [job.occurrence for job in WorkOrder.objects.filter(visit_plan=plan)] == [ams(2026, 3, 10, 9)]
    plan.refresh_from_db()
    assert plan.next_run_at < ams(2038, 3, 3)
    generate_visits(now=ams(2036, 6, 1))  # looked at again: nothing in its horizon yet
    generate_visits(now=ams(2038, 3, 5))
    occurrences = sorted(job.occurrence for job in WorkOrder.objects.filter(visit_plan=plan))
    assert occurrences == [ams(2026, 3, 10, 9), ams(2038, 3, 10, 9)]
    ended = make_plan(contract, recurrence=rule, active_from=dt.date(2026, 3, 1), active_to=dt.date(2030, 1, 1))
    generate_visits(now=ams(2026, 3, 5))
    ended.refresh_from_db()
    assert ended.next_run_at.year == 9999  # its window closes before another visit: never due again


@pytest.mark.parametrize("closed_by", ["terminated", "expired", "renewed"])
def test_a_closed_contracts_plans_announce_no_more_visits(api, org, closed_by, django_assert_num_queries):
    # Found by an outside tester: after the termination the listing had no scheduled visits and
    # generation made no jobs, but the plan still announced the next five up to the old expiry.
    contract = long_contract(org)
    plan, _other = make_plan(contract, now=ams(2026, 3, 1)), make_plan(contract, now=ams(2026, 3, 1))
    client = api("manager")
    detail = f"{plans_url(contract)}/{plan.pk}"
    assert len(client.get(detail).json()["next_occurrences"]) == 5
    if closed_by == "terminated":
        response = client.post(f"/api/v1/contracts/{contract.pk}/terminate", {"reason": "gone"}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "terminated"
    else:
        contract.status = closed_by
        contract.save(update_fields=["status"])
    assert client.get(detail).json()["next_occurrences"] == []
    url = plans_url(contract) + "?fields=id,next_occurrences"
    # 1 count, 2 the page's ids, 3 the page, 4 the contract's term versions: as for an active contract
    with django_assert_num_queries(4):
        assert [plan["next_occurrences"] for plan in client.get(url).json()] == [[], []]
    visits = client.get(f"/api/v1/contracts/{contract.pk}/visits?from=2026-12-01&to=2027-01-01")
    assert visits.status_code == 200 and visits.json() == []


@pytest.mark.django_db
def test_a_plan_paused_with_active_to_and_resumed_owes_no_visit_of_its_pause(api, org):
    """Tenth round: a plan ended by `active_to` and resumed two weeks later (PATCH `active_to: null`)
    generated every visit of its pause at the next run, reported in the past with their response
    clocks breached at once (and the PATCH's `next_occurrences` did not show them). The resumed
    plan now starts at the edit, as a new plan does; its next visits are the ones it shows."""
    from django.utils import timezone

    from tests.slas.factories import make_rule

    now = timezone.now()
    contract = long_contract(org)
    make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
    start = now - dt.timedelta(days=20)
    plan = make_plan(contract, now=start, recurrence="FREQ=DAILY;BYHOUR=9", generate_days_in_advance=2)
    client = api("manager")
    paused_on = contract.local_today(start + dt.timedelta(days=3))
    paused = client.patch(f"{plans_url(contract)}/{plan.pk}", {"active_to": paused_on.isoformat()}, format="json")
    assert paused.status_code == 200, paused.content
    for day in range(20):  # the daily runs of the 20 days since
        generate_visits(now=start + dt.timedelta(days=day))
    before = set(WorkOrder.objects.filter(visit_plan=plan).values_list("occurrence", flat=True))
    assert before and all(contract.local_today(o) <= paused_on for o in before)

    resumed = client.patch(f"{plans_url(contract)}/{plan.pk}", {"active_to": None}, format="json")
    assert resumed.status_code == 200, resumed.content
    shown = [dt.datetime.fromisoformat(o) for o in resumed.json()["next_occurrences"]]
    generate_visits(now=timezone.now())
    made = set(WorkOrder.objects.filter(visit_plan=plan).values_list("occurrence", flat=True)) - before
    assert made and all(o > now for o in made), sorted(o for o in made if o <= now)
    assert sorted(made) == shown[: len(made)]  # what the plan showed next is what was generated
    listing = client.get(f"/api/v1/contracts/{contract.pk}/visits?from={start.date()}&fields=occurrence,state").json()
    assert not [
        v
        for v in listing
        if v["state"] == "missed" and contract.local_today(dt.datetime.fromisoformat(v["occurrence"])) > paused_on
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rule, window, expected",
    [
        # Spring forward (2027-03-14, 02:00 -> 03:00): 02:30 does not exist and is 03:30 EDT, once.
        (
            "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
            ("2027-03-13", "2027-03-16"),
            ["2027-03-13T07:30:00Z", "2027-03-14T07:30:00Z", "2027-03-15T06:30:00Z"],
        ),
        # Fall back (2027-11-07, 02:00 -> 01:00): 01:30 happens twice and is the first (EDT).
        (
            "FREQ=DAILY;BYHOUR=1,2;BYMINUTE=30",
            ("2027-11-06", "2027-11-08"),
            ["2027-11-06T05:30:00Z", "2027-11-06T06:30:00Z", "2027-11-07T05:30:00Z", "2027-11-07T07:30:00Z"],
        ),
    ],
)
def test_new_york_wall_times_across_its_dst_changes(api, org, rule, window, expected):
    """Worked by hand (tenth round): America/New_York is UTC-5 in winter, UTC-4 in summer."""
    contract = long_contract(org, time_zone="America/New_York")
    client = api("manager")
    created = client.post(plans_url(contract), {"summary": "Night round", "recurrence": rule}, format="json")
    assert created.status_code == 201, created.content
    start, end = window
    listing = client.get(f"/api/v1/contracts/{contract.pk}/visits?from={start}&to={end}&fields=occurrence,state")
    assert listing.status_code == 200, listing.content
    assert [(v["occurrence"], v["state"]) for v in listing.json()] == [(o, "scheduled") for o in expected]

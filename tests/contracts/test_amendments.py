"""Amendments (dual approval like a contract), effective-dated term versions and `as_of` reads."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from model_bakery import baker

from contracts import terms
from contracts.models import Amendment, Contract, Counterparty, LineItem, TermVersion
from events.models import Event
from tests.api_base import ResourceAPITests, WritableResourceAPITests
from tests.contracts.factories import make_contract

_numbers = itertools.count(1)


def lifecycle(now: str) -> None:
    call_command("run_lifecycle", "--now", now, stdout=io.StringIO())


def approved_contract(org, line_items=(), **fields) -> Contract:
    """An active contract with its first term version, as approval leaves it."""
    defaults = {
        "status": "active",
        "start_date": dt.date(2026, 1, 1),
        "expiry_date": dt.date(2028, 12, 31),
        "hours_budget": "100.00",
        "notice_period_days": 30,
    }
    contract = make_contract(org, **{**defaults, **fields})
    contract.refresh_from_db()
    for description in line_items:
        baker.make(LineItem, organization=org, contract=contract, description=description)
    terms.start_versions(contract, origin="creation", now=contract.start_of_day(contract.start_date))
    return contract


def make_amendment(contract, **fields) -> Amendment:
    defaults = {"effective_date": dt.date(2027, 3, 1), "changes": {"hours_budget": "150.00"}, "reason": "Rate"}
    return Amendment.objects.create(
        organization=contract.organization, contract=contract, number=next(_numbers), **{**defaults, **fields}
    )


class TestAmendmentsAPI(WritableResourceAPITests):
    create_data = {
        "effective_date": "2027-03-01",
        "changes": {"hours_budget": "300.00", "notice_period_days": 90},
        "reason": "New rate from March",
    }
    update_data = {"reason": "Revised rate", "effective_date": "2027-04-01"}
    write_role = "manager"
    default_fields = ["id", "number", "status", "effective_date", "reason", "created_at", "updated_at"]
    sort_keys = ["number", "effective_date", "created_at"]
    default_sort = "number"
    # 1 count, 2 the page's ids (issue 15), 3 the page's rows (the default fields show no approvals,
    # which took a prefetch while pages were written from instances). The route's contract is looked
    # up only for an empty list (ContractChild).
    list_queries = 3
    detail_actions = [("submit", {}), ("approve", {}), ("reject", {"reason": "x"})]
    filter_cases = [
        ("number", "1", ["first"]),
        ("status", "pending_approval", ["second"]),
        ("status", "!draft", ["second"]),
        ("effective_date", ">2027-06-01", ["second"]),
        ("created_at", ">2000-01-01", ["first", "second"]),
        ("ids", "second", ["second"]),
    ]
    malformed_filters = [("status", "flying"), ("effective_date", ">2027-13-01")]

    @pytest.fixture(autouse=True)
    def _contract(self, org):
        self.contract = approved_contract(org)
        self.url = f"/api/v1/contracts/{self.contract.pk}/amendments"

    def factory(self, org, **overrides):
        contract = self.contract if org == self.contract.organization else approved_contract(org)
        return make_amendment(contract, **overrides)

    def detail(self, obj):
        return f"/api/v1/contracts/{obj.contract_id}/amendments/{obj.pk}"

    def filter_objects(self, org):
        contract = self.contract if org == self.contract.organization else approved_contract(org)
        return {
            "first": Amendment.objects.create(organization=org, contract=contract, number=1,
                                              effective_date=dt.date(2027, 2, 1), changes={}, reason="a"),
            "second": Amendment.objects.create(organization=org, contract=contract, number=2, status="pending_approval",
                                               effective_date=dt.date(2027, 7, 1), changes={}, reason="b"),
        }  # fmt: skip

    def check_created(self, body, data):
        assert body["status"] == "draft" and body["number"] == 1
        assert body["changes"] == {"hours_budget": "300.00", "notice_period_days": 90}
        assert body["effective_at"] == "2027-02-28T23:00:00Z"  # midnight in Amsterdam
        assert Event.objects.filter(type="amendment.created", object_id=body["id"]).exists()


class TestTermsAPI(ResourceAPITests):
    default_fields = [
        "id",
        "effective_from",
        "effective_to",
        "origin",
        "amendment",
        "terms",
        "applied_at",
        "created_at",
    ]
    sort_keys = ["effective_from"]
    default_sort = "effective_from"
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with amendment (the route's contract:
    # only for an empty list).
    list_queries = 3
    filter_cases = [
        ("effective_from", ">=2027-01-01", ["later"]),
        ("effective_to", "", ["later"]),
        ("origin", "creation", ["first"]),
        ("ids", "first", ["first"]),
    ]
    malformed_filters = [("origin", "magic"), ("effective_from", ">x")]

    @pytest.fixture(autouse=True)
    def _contract(self, org):
        self.contract = make_contract(org, status="active")
        self.url = f"/api/v1/contracts/{self.contract.pk}/terms"
        self.days = itertools.count(1)

    def factory(self, org, **overrides):
        contract = self.contract if org == self.contract.organization else make_contract(org, status="active")
        start = dt.date(2026, 1, 1) + dt.timedelta(days=next(self.days))
        fields = {"effective_from": start, "terms": {}, "origin": "creation", **overrides}
        return TermVersion.objects.create(organization=org, contract=contract, **fields)

    def detail(self, obj):
        return f"/api/v1/contracts/{obj.contract_id}/terms/{obj.pk}"

    def filter_objects(self, org):
        return {
            "first": self.factory(org, effective_from=dt.date(2026, 1, 1), effective_to=dt.date(2027, 1, 1)),
            "later": self.factory(org, effective_from=dt.date(2027, 1, 1), origin="amendment"),
        }


# --- the flow -----------------------------------------------------------------------------------


@pytest.fixture
def managers(api):
    return api("manager"), api("manager"), api("manager")


def amend(client, contract, **body):
    body = {"effective_date": "2027-03-01", "reason": "Rate change", **body}
    return client.post(f"/api/v1/contracts/{contract.pk}/amendments", body, format="json")


def approve_fully(managers, contract, amendment_id):
    author, first, second = managers
    url = f"/api/v1/contracts/{contract.pk}/amendments/{amendment_id}"
    assert author.post(f"{url}/submit", {}, format="json").status_code == 200
    assert first.post(f"{url}/approve", {"comment": "ok"}, format="json").json()["status"] == "pending_approval"
    response = second.post(f"{url}/approve", {}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
class TestAmendmentFlow:
    def test_dual_approval_then_terms_change_from_the_date(self, api, org, managers):
        contract = approved_contract(org)
        author, first, second = managers
        created = amend(author, contract, changes={"hours_budget": "250.00", "expiry_date": "2029-06-30"})
        assert created.status_code == 201, created.content
        url = f"/api/v1/contracts/{contract.pk}/amendments/{created.json()['id']}"
        assert first.post(f"{url}/approve", {}, format="json").status_code == 409  # not submitted
        assert author.post(f"{url}/submit", {}, format="json").status_code == 200
        assert author.post(f"{url}/approve", {}, format="json").status_code == 403  # the submitter
        assert first.post(f"{url}/approve", {}, format="json").status_code == 200
        again = first.post(f"{url}/approve", {}, format="json")
        assert again.status_code == 403 and "already approved" in again.json()["message"]
        body = second.post(f"{url}/approve", {}, format="json").json()
        assert body["status"] == "approved" and len(body["approvals"]) == 2
        # Future-dated: the contract keeps its terms today ...
        contract.refresh_from_db()
        assert str(contract.hours_budget) == "100.00" and contract.expiry_date == dt.date(2028, 12, 31)
        # ... and answers as of any date.
        viewer = api("viewer")
        before = viewer.get(f"/api/v1/contracts/{contract.pk}?as_of=2027-02-28").json()
        after = viewer.get(f"/api/v1/contracts/{contract.pk}?as_of=2027-03-01").json()
        assert (before["hours_budget"], before["expiry_date"], before["notice_date"]) == (
            "100.00", "2028-12-31", "2028-12-01",
        )  # fmt: skip
        assert (after["hours_budget"], after["expiry_date"], after["notice_date"]) == (
            "250.00", "2029-06-30", "2029-05-31",
        )  # fmt: skip
        versions = viewer.get(f"/api/v1/contracts/{contract.pk}/terms").json()
        assert [(v["origin"], v["effective_from"], v["effective_to"]) for v in versions] == [
            ("creation", "2026-01-01", "2027-03-01"),
            ("amendment", "2027-03-01", None),
        ]
        assert versions[1]["amendment"]["id"] == created.json()["id"]
        assert versions[1]["terms"]["counterparty_id"] == contract.counterparty_id
        # The date comes: run_lifecycle brings the contract to its new terms, once.
        lifecycle("2027-03-01T00:30:00+01:00")
        lifecycle("2027-03-01T01:30:00+01:00")
        contract.refresh_from_db()
        assert str(contract.hours_budget) == "250.00" and contract.notice_date == dt.date(2029, 5, 31)
        changed = Event.objects.filter(type="contract.terms_changed", object_id=contract.pk)
        assert changed.count() == 1
        assert changed.get().payload["changes"]["hours_budget"] == {"before": "100.00", "after": "250.00"}
        types = list(Event.objects.filter(object_type="amendment").values_list("type", flat=True))
        assert types == ["amendment.created", "amendment.submitted", "amendment.approved", "amendment.approved"]

    def test_effective_today_applies_at_once_with_line_items(self, api, org, managers):
        contract = approved_contract(org, line_items=["Old labour"])
        today = contract.local_today(dt.datetime.now(dt.UTC)).isoformat()
        items = [{"description": "Labour", "quantity": "10", "unit_price": "80.00"}, {"description": "Parts"}]
        created = amend(managers[0], contract, effective_date=today, changes={"line_items": items, "auto_renew": True,
                                                                            "renewal_term_months": 12})  # fmt: skip
        assert created.status_code == 201, created.content
        approve_fully(managers, contract, created.json()["id"])
        contract.refresh_from_db()
        assert contract.auto_renew and contract.renewal_term_months == 12
        assert list(contract.line_items.values_list("description", "quantity")) == [
            ("Labour", 10), ("Parts", 1),
        ]  # fmt: skip
        yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
        past = api("viewer").get(f"/api/v1/contracts/{contract.pk}/terms").json()[0]["terms"]
        assert [i["description"] for i in past["line_items"]] == ["Old labour"]
        assert api("viewer").get(f"/api/v1/contracts/{contract.pk}?as_of={yesterday}").json()["auto_renew"] is False

    def test_reject_returns_to_draft_for_a_new_round(self, api, org, managers):
        contract = approved_contract(org)
        author, first, second = managers
        amendment = amend(author, contract, changes={"notice_period_days": 60}).json()
        url = f"/api/v1/contracts/{contract.pk}/amendments/{amendment['id']}"
        author.post(f"{url}/submit", {}, format="json")
        first.post(f"{url}/approve", {}, format="json")
        assert second.post(f"{url}/reject", {}, format="json").status_code == 422  # a reason is required
        rejected = second.post(f"{url}/reject", {"reason": "Wrong date"}, format="json").json()
        assert rejected["status"] == "draft" and rejected["approvals"][-1]["decision"] == "rejected"
        assert author.patch(url, {"effective_date": "2027-05-01"}, format="json").status_code == 200
        resubmitted = author.post(f"{url}/submit", {}, format="json").json()
        assert resubmitted["approval_round"] == 2 and resubmitted["approvals"] == []
        first.post(f"{url}/approve", {}, format="json")  # the round-1 approver may approve again
        assert second.post(f"{url}/approve", {}, format="json").json()["status"] == "approved"
        assert author.patch(url, {"reason": "late"}, format="json").status_code == 409

    def test_contract_approvals_are_not_mixed_with_amendment_approvals(self, api, org, managers):
        contract = approved_contract(org, approval_round=1)
        amendment = amend(managers[0], contract, changes={"notice_period_days": 60}).json()
        approve_fully(managers, contract, amendment["id"])
        assert api("viewer").get(f"/api/v1/contracts/{contract.pk}").json()["approvals"] == []

    @pytest.mark.parametrize(
        "body, field, fragment",
        [
            ({"changes": {}}, "changes", "at least one term"),
            ({"changes": {"name": "x"}}, "changes.name", "Not an amendable term"),
            ({"changes": {"currency": "USD"}}, "changes.currency", "cannot be amended"),
            ({"changes": {"hours_budget": "-1"}}, "changes.hours_budget", "greater than or equal to 0"),
            ({"changes": {"start_date": "2026-02-01"}}, "changes.start_date", "cannot move"),
            (
                {"changes": {"contract_value": "10.005"}},
                "changes.contract_value",
                "no more than 2 decimal places for EUR",
            ),
            ({"changes": {"line_items": [{"quantity": "1"}]}}, "changes.line_items[0].description", "required"),
            ({"effective_date": "2026-01-01"}, "effective_date", "only an admin may backdate"),
            ({"effective_date": "2029-01-01"}, "effective_date", "after the contract's expiry date"),
            ({"changes": {"expiry_date": "2027-01-31"}}, "effective_date", "after the contract's expiry date"),
            ({"reason": ""}, "reason", "blank"),
        ],
    )
    def test_invalid_amendments_are_422_naming_the_field(self, org, managers, body, field, fragment):
        contract = approved_contract(org)
        response = amend(managers[0], contract, **{"changes": {"hours_budget": "1.00"}, **body})
        assert response.status_code == 422, response.content
        errors = response.json()["errors"]
        assert fragment in " ".join(errors.get(field, [])), errors

    @pytest.mark.parametrize("status", ["active", "scheduled"])
    def test_an_unknown_term_is_told_only_the_terms_it_may_amend(self, org, managers, status):
        # Found by an outside integrator: the list named currency, time_zone and start_date, each
        # then refused. The start date may move until the contract starts.
        contract = approved_contract(org, status=status, start_date=dt.date(2027, 1, 1))
        response = amend(managers[0], contract, changes={"name": "x"})
        assert response.status_code == 422, response.content
        (message,) = response.json()["errors"]["changes.name"]
        named = set(message.split("one of: ")[1].rstrip(".").split(", "))
        assert {"counterparty_id", "covered_asset_ids", "contract_value", "line_items", "sla_rules"} <= named
        assert not named & {"currency", "time_zone", "name"}
        assert ("start_date" in named) is (status == "scheduled")
        valid = {"currency": "USD", "time_zone": "UTC", "start_date": "2027-02-01"}
        for term in set(valid) - named:  # each refused as a term that cannot change, not as a bad value
            refused = amend(managers[0], contract, changes={term: valid[term]}).json()["errors"]
            assert "cannot" in " ".join(refused[f"changes.{term}"]), refused
        if "start_date" in named:  # from the amendment's date (a start before it: next test)
            body = {"effective_date": valid["start_date"], "changes": {"start_date": valid["start_date"]}}
            moved = amend(managers[0], contract, **body)
            assert moved.status_code == 201, moved.content

    def test_an_approved_postponement_moves_the_start_at_once(self, api, org, managers):
        # Found by an outside tester: a postponed start is dated on the new start, so run_lifecycle
        # activated the contract on the old one and rewrote its start a month later while it ran.
        # The start is the contract's first day, not a term from a date: approved, it holds at once.
        contract = approved_contract(
            org, status="scheduled", start_date=dt.date(2099, 1, 1), expiry_date=dt.date(2099, 12, 31)
        )
        created = amend(managers[0], contract, effective_date="2099-02-01", changes={"start_date": "2099-02-01"})
        assert created.status_code == 201, created.content
        approve_fully(managers, contract, created.json()["id"])
        url = f"/api/v1/contracts/{contract.pk}"
        shown = managers[0].get(url, {"fields": "status,start_date,notice_date"}).json()
        assert (shown["status"], shown["start_date"]) == ("scheduled", "2099-02-01")
        lifecycle("2099-01-01T12:00:00Z")
        as_of = managers[0].get(url, {"as_of": "2099-01-15", "fields": "status,start_date"}).json()
        assert (as_of["status"], as_of["start_date"]) == ("scheduled", "2099-02-01")
        query = f"{{ contract(id: {contract.pk}) {{ status startDate }} }}"
        body = managers[0].post("/api/graphql", {"query": query}, format="json").json()
        assert body["data"]["contract"] == {"status": "scheduled", "startDate": "2099-02-01"}, body
        lifecycle("2099-02-01T12:00:00Z")
        shown = managers[0].get(url, {"fields": "status,start_date"}).json()
        assert (shown["status"], shown["start_date"]) == ("active", "2099-02-01")
        activated = Event.objects.get(type="contract.state_changed", object_id=str(contract.pk))
        assert activated.occurred_at == dt.datetime(2099, 2, 1, 12, tzinfo=dt.UTC)

    def test_a_postponed_contracts_terms_begin_on_its_new_start(self, api, org, managers):
        # Tenth round: after an approved postponement /terms still listed the versions before the
        # new start (the approval's from 1 January, an earlier amendment's from 15 January), dates
        # on which the contract was never in force, and `as_of` a day before the start read the
        # approval's terms rather than those it starts with. Hand-worked: the contract starts on 1
        # February with 120 hours (the January amendment laid over the approval), one version.
        contract = approved_contract(
            org, status="scheduled", start_date=dt.date(2099, 1, 1), expiry_date=dt.date(2099, 12, 31)
        )
        raised = amend(managers[0], contract, effective_date="2099-01-15", changes={"hours_budget": "120.00"})
        approve_fully(managers, contract, raised.json()["id"])
        moved = amend(managers[0], contract, effective_date="2099-02-01", changes={"start_date": "2099-02-01"})
        assert moved.status_code == 201, moved.content
        approve_fully(managers, contract, moved.json()["id"])
        viewer = api("viewer")
        versions = viewer.get(f"/api/v1/contracts/{contract.pk}/terms").json()
        shown = [
            (v["origin"], v["effective_from"], v["effective_to"], (v["amendment"] or {}).get("id")) for v in versions
        ]
        assert shown == [("amendment", "2099-02-01", None, moved.json()["id"])], shown
        assert (versions[0]["terms"]["start_date"], versions[0]["terms"]["hours_budget"]) == ("2099-02-01", "120.00")
        for day in ("2099-01-10", "2099-01-20", "2099-02-01"):  # before the start: the terms it starts with
            as_of = viewer.get(f"/api/v1/contracts/{contract.pk}", {"as_of": day, "fields": "start_date,hours_budget"})
            assert (as_of.json()["start_date"], as_of.json()["hours_budget"]) == ("2099-02-01", "120.00"), day
        query = f"{{ contract(id: {contract.pk}) {{ termVersions {{ effectiveFrom effectiveTo origin }} }} }}"
        body = viewer.post("/api/graphql", {"query": query}, format="json").json()
        assert body["data"]["contract"]["termVersions"] == [
            {"effectiveFrom": "2099-02-01", "effectiveTo": None, "origin": "amendment"}
        ], body
        lifecycle("2099-02-01T12:00:00Z")
        contract.refresh_from_db()
        assert (contract.status, contract.start_date, str(contract.hours_budget)) == (
            "active", dt.date(2099, 2, 1), "120.00",
        )  # fmt: skip

    def test_a_start_brought_forward_begins_the_terms_there(self, api, org, managers):
        # The other way (dated at the new start, before the old one): a version from the new start.
        contract = approved_contract(
            org, status="scheduled", start_date=dt.date(2099, 3, 1), expiry_date=dt.date(2099, 12, 31)
        )
        moved = amend(managers[0], contract, effective_date="2099-02-01", changes={"start_date": "2099-02-01"})
        approve_fully(managers, contract, moved.json()["id"])
        versions = api("viewer").get(f"/api/v1/contracts/{contract.pk}/terms").json()
        assert [(v["origin"], v["effective_from"], v["effective_to"], v["terms"]["start_date"]) for v in versions] == [
            ("amendment", "2099-02-01", "2099-03-01", "2099-02-01"),
            ("creation", "2099-03-01", None, "2099-02-01"),
        ]

    def test_a_moved_start_is_not_before_the_amendments_date_nor_for_a_manager_today(self, api, org, managers):
        # Found by an outside tester: a manager's amendment dated tomorrow moved a scheduled
        # contract's start six months back; activation then billed those months, which no term
        # version covered. The start moves no earlier than the amendment's date (and, like that
        # date, not into the past but by an admin).
        contract = approved_contract(
            org, status="scheduled", start_date=dt.date(2099, 1, 1), expiry_date=dt.date(2099, 12, 31)
        )
        today = contract.local_today(timezone.now())

        def day(n: int) -> str:
            return (today + dt.timedelta(days=n)).isoformat()

        manager, admin = managers[0], api("admin")
        cases = [  # who, effective date, new start -> the errors named (None: accepted)
            (manager, day(1), day(-180), {"changes.start_date": "before the amendment's effective date"}),
            (manager, day(10), day(5), {"changes.start_date": "before the amendment's effective date"}),
            (admin, day(-30), day(-60), {"changes.start_date": "before the amendment's effective date"}),
            (manager, day(-5), day(-5), {"changes.start_date": "only an admin", "effective_date": "only an admin"}),
            (manager, day(10), day(10), None),
            (admin, day(-5), day(-5), None),
        ]
        for who, effective, start, expected in cases:
            response = amend(who, contract, effective_date=effective, changes={"start_date": start})
            if expected is None:
                assert response.status_code == 201, (effective, start, response.content)
                continue
            assert response.status_code == 422, (effective, start, response.content)
            errors = response.json()["errors"]
            assert set(errors) == set(expected), (effective, start, errors)
            for field, fragment in expected.items():
                assert fragment in " ".join(errors[field]), (effective, start, errors)

    def test_another_organizations_counterparty_is_a_422(self, org, other_org, managers):
        contract = approved_contract(org)
        theirs = baker.make(Counterparty, organization=other_org)
        response = amend(managers[0], contract, changes={"counterparty_id": theirs.pk})
        assert response.status_code == 422
        assert "changes.counterparty_id" in response.json()["errors"]

    @pytest.mark.parametrize("status", ["draft", "pending_approval", "expired", "terminated", "renewed"])
    def test_only_a_live_contract_is_amended(self, org, managers, status):
        contract = make_contract(org, status=status)
        assert amend(managers[0], contract, changes={"notice_period_days": 5}).status_code == 409

    def test_an_admin_may_backdate_and_history_changes_from_then(self, api, org, managers):
        contract = approved_contract(org)
        admin = api("admin")
        created = amend(admin, contract, effective_date="2026-06-01", changes={"notice_period_days": 45})
        assert created.status_code == 201, created.content
        url = f"/api/v1/contracts/{contract.pk}/amendments/{created.json()['id']}"
        admin.post(f"{url}/submit", {}, format="json")
        assert managers[1].post(f"{url}/approve", {}, format="json").status_code == 200
        # A manager cannot complete a backdated amendment; an admin can.
        assert managers[2].post(f"{url}/approve", {}, format="json").status_code == 422
        assert api("admin").post(f"{url}/approve", {}, format="json").json()["status"] == "approved"
        viewer = api("viewer")
        assert viewer.get(f"/api/v1/contracts/{contract.pk}?as_of=2026-05-31").json()["notice_period_days"] == 30
        assert viewer.get(f"/api/v1/contracts/{contract.pk}?as_of=2026-06-01").json()["notice_period_days"] == 45
        contract.refresh_from_db()
        assert contract.notice_period_days == 45  # in force today as well

    def test_list_filters_accept_as_of(self, api, org, managers):
        amended = approved_contract(org)
        plain = approved_contract(org)
        draft = make_contract(org, expiry_date=dt.date(2028, 12, 31))
        amendment = amend(
            managers[0], amended, effective_date="2027-06-01", changes={"expiry_date": "2029-12-31", "auto_renew": True,
                                                                        "renewal_term_months": 6}
        )  # fmt: skip
        approve_fully(managers, amended, amendment.json()["id"])
        viewer = api("viewer")

        def ids(**params):
            response = viewer.get("/api/v1/contracts", params)
            assert response.status_code == 200, response.content
            return {c["id"] for c in response.json()}

        assert ids(expiry_date="2028-12-31") == {amended.pk, plain.pk, draft.pk}
        assert ids(as_of="2027-07-01", expiry_date="2028-12-31") == {plain.pk, draft.pk}
        assert ids(as_of="2027-07-01", expiry_date="2029-12-31") == {amended.pk}
        assert ids(as_of="2027-05-31", expiry_date=">=2029-01-01") == set()
        assert ids(as_of="2027-07-01", notice_date="2029-12-01") == {amended.pk}
        assert ids(as_of="2027-07-01", auto_renew="true") == {amended.pk}
        assert ids(as_of="2027-05-01", auto_renew="true") == set()
        assert ids(as_of="2027-07-01", auto_renew="false") == {plain.pk, draft.pk}
        assert ids(as_of="2027-07-01", counterparty_id=str(amended.counterparty_id)) == {amended.pk}
        listed = viewer.get("/api/v1/contracts", {"as_of": "2027-07-01", "fields": "expiry_date"}).json()
        assert {c["id"]: c["expiry_date"] for c in listed}[amended.pk] == "2029-12-31"
        bad = viewer.get("/api/v1/contracts", {"as_of": "tomorrow"})
        assert bad.status_code == 400 and "as_of" in bad.json()["errors"]
        assert viewer.get(f"/api/v1/contracts/{amended.pk}?as_of=2027-02-30").status_code == 400

    def test_as_of_sorts_by_the_terms_in_force_on_that_date(self, api, org, managers):
        amended = approved_contract(org, expiry_date=dt.date(2028, 12, 31))
        later = approved_contract(org, expiry_date=dt.date(2029, 6, 30))
        draft = make_contract(org, expiry_date=dt.date(2029, 1, 31), notice_period_days=0)
        response = amend(managers[0], amended, effective_date="2027-06-01",
                         changes={"expiry_date": "2029-12-31", "notice_period_days": 10})  # fmt: skip
        approve_fully(managers, amended, response.json()["id"])
        viewer = api("viewer")

        def order(**params):
            response = viewer.get("/api/v1/contracts", params)
            assert response.status_code == 200, response.content
            return [c["id"] for c in response.json()]

        assert order(sort="expiry_date") == [amended.pk, draft.pk, later.pk]  # today's terms
        assert order(sort="expiry_date", as_of="2027-05-31") == [amended.pk, draft.pk, later.pk]
        assert order(sort="expiry_date", as_of="2027-06-01") == [draft.pk, later.pk, amended.pk]
        assert order(sort="-expiry_date", as_of="2027-06-01") == [amended.pk, later.pk, draft.pk]
        # notice_date (derived): 2029-12-21 for the amended one, 2029-05-31 and 2029-01-31 for the others.
        assert order(sort="notice_date,name", as_of="2027-07-01") == [draft.pk, later.pk, amended.pk]
        assert order(sort="notice_date", as_of="2027-01-01") == [amended.pk, draft.pk, later.pk]
        # Filters and sort together, on the same date.
        assert order(sort="-expiry_date", as_of="2027-07-01", expiry_date=">=2029-06-01") == [amended.pk, later.pk]
        assert order(sort="-expiry_date", as_of="2027-01-01", expiry_date=">=2029-06-01") == [later.pk]

    def test_as_of_lists_take_a_constant_number_of_queries(self, api, org, managers):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        for _ in range(12):
            contract = approved_contract(org)
            approve_fully(
                managers, contract, amend(managers[0], contract, changes={"notice_period_days": 9}).json()["id"]
            )
        viewer = api("viewer")
        assert viewer.get("/api/v1/contracts").status_code == 200  # caches the token's membership
        counts = []
        for per_page in (2, 12):
            with CaptureQueriesContext(connection) as queries:
                response = viewer.get("/api/v1/contracts", {"as_of": "2027-06-01", "per_page": per_page})
            assert response.status_code == 200
            counts.append(len(queries))
        # 1 count, 2 the page's ids, 3 the page, 4 the term versions (prefetched)
        assert counts == [4, 4], counts

    def test_as_of_lists_read_the_covered_assets_of_a_page_at_once(self, api, org, managers):
        # Found in review: one query per contract read the assets of its terms of that day.
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from contracts.models import Asset

        covered = {}
        for n in range(6):
            contract = approved_contract(org)
            pump = baker.make(Asset, organization=org, counterparty=contract.counterparty, name=f"Pump {n}")
            change = {"covered_asset_ids": [pump.pk]}
            approve_fully(managers, contract, amend(managers[0], contract, changes=change).json()["id"])
            covered[contract.pk] = [{"id": pump.pk, "name": pump.name}]
        viewer = api("viewer")
        assert viewer.get("/api/v1/contracts").status_code == 200  # caches the token's membership
        counts, shown = [], []
        for per_page in (2, 6):
            params = {"as_of": "2027-06-01", "per_page": per_page, "fields": "id,covered_assets"}
            with CaptureQueriesContext(connection) as queries:
                response = viewer.get("/api/v1/contracts", params)
            assert response.status_code == 200
            counts.append(len(queries))
            shown.append({contract["id"]: contract["covered_assets"] for contract in response.json()})
        # 1 count, 2 the page's ids, 3 the page, 4 today's assets, 5 the term versions, 6 their assets
        assert counts == [6, 6], counts
        assert shown[1] == covered
        assert [c["covered_assets"] for c in viewer.get("/api/v1/contracts?fields=covered_assets").json()] == [[]] * 6

    def test_as_of_on_a_draft_reads_the_row(self, api, org):
        draft = make_contract(org, notice_period_days=7)
        assert api("viewer").get(f"/api/v1/contracts/{draft.pk}?as_of=2020-01-01").json()["notice_period_days"] == 7

    def test_other_organizations_routes_are_404(self, api, other_org):
        theirs = approved_contract(other_org)
        client = api("admin")
        assert client.get(f"/api/v1/contracts/{theirs.pk}/amendments").status_code == 404
        assert client.get(f"/api/v1/contracts/{theirs.pk}/terms").status_code == 404
        assert amend(client, theirs, changes={"notice_period_days": 1}).status_code == 404


@pytest.mark.django_db
class TestLifecycleReadsTheVersionInForce:
    def test_expiry_and_auto_renewal_follow_an_amendment(self, org, managers, make_member):
        from contracts import amendments

        contract = approved_contract(
            org, expiry_date=dt.date(2027, 3, 31), auto_renew=True, renewal_term_months=12, notice_period_days=0
        )
        now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        users = [make_member("manager", org).user for _ in range(3)]
        amendment = amendments.create_amendment(
            contract=contract,
            actor=users[0],
            data={"effective_date": dt.date(2027, 3, 1), "changes": {"expiry_date": "2027-06-30", "auto_renew": False},
                  "reason": "Extended, no renewal"},
            now=now,
        )  # fmt: skip
        amendments.submit_amendment(amendment=amendment, actor=users[0])
        amendments.approve_amendment(amendment=amendment, actor=users[1], now=now)
        amendments.approve_amendment(amendment=amendment, actor=users[2], now=now)
        # Without the amendment it would auto-renew at the end of 31 March 2027.
        lifecycle("2027-04-01T12:00:00Z")
        contract.refresh_from_db()
        assert contract.status == "active" and contract.expiry_date == dt.date(2027, 6, 30)
        assert not Contract.objects.filter(renewed_from=contract).exists()
        lifecycle("2027-07-01T12:00:00Z")
        contract.refresh_from_db()
        assert contract.status == "expired"  # auto_renew was amended away

    def test_a_late_run_renews_on_the_terms_in_force_on_the_last_day(self, org, make_member):
        """A version that would begin after an amended (earlier) expiry never took effect: a run
        after a gap renews on the terms of the expiry date, not on today's row."""
        from contracts import amendments

        contract = approved_contract(org, line_items=["Inspection"], expiry_date=dt.date(2026, 12, 31),
                                     auto_renew=True, renewal_term_months=12, notice_period_days=0)  # fmt: skip
        now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
        users = [make_member("manager", org).user for _ in range(3)]
        changes = [
            (dt.date(2026, 9, 1), {"renewal_term_months": 24, "line_items": [{"description": "Later"}]}),
            (dt.date(2026, 6, 1), {"expiry_date": "2026-08-31"}),
        ]
        for day, change in changes:
            amendment = amendments.create_amendment(
                contract=contract, actor=users[0], data={"effective_date": day, "changes": change, "reason": "x"},
                now=now,
            )  # fmt: skip
            amendments.submit_amendment(amendment=amendment, actor=users[0])
            amendments.approve_amendment(amendment=amendment, actor=users[1], now=now)
            amendments.approve_amendment(amendment=amendment, actor=users[2], now=now)
        lifecycle("2026-09-20T12:00:00Z")  # cron was down from before the expiry until after 1 September
        renewal = Contract.objects.get(renewed_from=contract)
        assert (renewal.start_date, renewal.expiry_date) == (dt.date(2026, 9, 1), dt.date(2027, 8, 31))
        assert renewal.renewal_term_months == 12
        assert list(renewal.line_items.values_list("description", flat=True)) == ["Inspection"]

    def test_activation_allocates_the_hours_of_the_version_in_force(self, org, make_member):
        from contracts import amendments
        from ledger.models import LedgerEntry

        contract = make_contract(org, status="scheduled", start_date=dt.date(2027, 1, 1),
                                 expiry_date=dt.date(2027, 12, 31), hours_budget="100.00")  # fmt: skip
        terms.start_versions(contract, origin="creation", now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
        users = [make_member("manager", org).user for _ in range(3)]
        now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        amendment = amendments.create_amendment(
            contract=contract,
            actor=users[0],
            data={"effective_date": dt.date(2027, 1, 1), "changes": {"hours_budget": "160.00"}, "reason": "More"},
            now=now,
        )
        amendments.submit_amendment(amendment=amendment, actor=users[0])
        amendments.approve_amendment(amendment=amendment, actor=users[1], now=now)
        amendments.approve_amendment(amendment=amendment, actor=users[2], now=now)
        assert [(v.effective_from, v.origin) for v in contract.term_versions.all()] == [
            (dt.date(2027, 1, 1), "creation")
        ]  # the same date: laid over the creation version
        lifecycle("2027-01-01T08:00:00Z")
        contract.refresh_from_db()
        assert contract.status == "active"
        allocation = LedgerEntry.objects.get(contract=contract, entry_type="initial_allocation")
        assert str(allocation.hours) == "160.00"

    def test_an_amended_budget_of_an_active_contract_posts_the_difference(self, api, org, managers):
        from ledger.models import LedgerEntry

        contract = make_contract(org, status="pending_approval", approval_round=1, hours_budget="100.00",
                                 expiry_date=dt.date(2028, 12, 31))  # fmt: skip
        for _ in range(2):
            api("manager").post(f"/api/v1/contracts/{contract.pk}/approve", {}, format="json")
        contract.refresh_from_db()
        assert contract.status == "active" and contract.remaining_hours == 100
        today = contract.local_today(dt.datetime.now(dt.UTC)).isoformat()
        created = amend(managers[0], contract, effective_date=today, changes={"hours_budget": "130.00"})
        approve_fully(managers, contract, created.json()["id"])
        contract.refresh_from_db()
        adjustment = LedgerEntry.objects.get(contract=contract, entry_type="adjustment")
        assert str(adjustment.hours) == "30.00" and contract.remaining_hours == 130
        # A later amendment down again posts the (negative) difference, once.
        later = amend(managers[0], contract, effective_date="2027-06-01", changes={"hours_budget": "90.00"})
        approve_fully(managers, contract, later.json()["id"])
        lifecycle("2027-06-01T08:00:00Z")
        lifecycle("2027-06-02T08:00:00Z")
        contract.refresh_from_db()
        assert contract.remaining_hours == 90
        assert LedgerEntry.objects.filter(contract=contract, entry_type="adjustment").count() == 2


@pytest.mark.django_db
class TestAmendingSlaRules:
    def test_rules_are_amended_from_the_same_instant(self, api, org, managers):
        from slas.models import SlaRule
        from tests.slas.factories import make_calendar, make_rule

        contract = approved_contract(org)
        rule = make_rule(contract, metric="response", target_minutes=120)
        calendar = make_calendar(org)
        created = amend(managers[0], contract, effective_date="2027-03-01", changes={
            "hours_budget": "120.00", "sla_rules": [{"id": rule.pk, "target_minutes": 60, "calendar_id": calendar.pk}],
        })  # fmt: skip
        assert created.status_code == 201, created.content
        assert created.json()["changes"]["sla_rules"] == [
            {"id": rule.pk, "target_minutes": 60, "calendar_id": calendar.pk}
        ]
        rule.refresh_from_db()
        assert not hasattr(rule, "next_version")  # nothing changes before approval
        body = approve_fully(managers, contract, created.json()["id"])
        successor = SlaRule.objects.get(previous_version=rule)
        assert (successor.target_minutes, successor.calendar_id) == (60, calendar.pk)
        assert successor.effective_from.isoformat().replace("+00:00", "Z") == body["effective_at"]
        rule.refresh_from_db()
        assert rule.effective_to == successor.effective_from

    def test_a_rule_that_begins_on_or_after_the_amendments_date_changes_in_place(self, org, managers):
        # Found by an outside sweep: there was no earlier part to keep as a version, so the final
        # approval failed with a 422 on an effective_from nobody sent, and the amendment was stuck.
        from events.models import Event
        from slas.models import SlaRule
        from tests.slas.factories import make_rule

        contract = approved_contract(org)
        at_the_date = make_rule(contract, metric="response", effective_from=contract.start_of_day(dt.date(2027, 3, 1)))
        later = make_rule(contract, metric="resolution", effective_from=contract.start_of_day(dt.date(2027, 5, 1)))
        changes = {"sla_rules": [{"id": at_the_date.pk, "target_minutes": 30}, {"id": later.pk, "target_minutes": 45}]}
        created = amend(managers[0], contract, effective_date="2027-03-01", changes=changes)
        assert created.status_code == 201, created.content
        approve_fully(managers, contract, created.json()["id"])
        assert SlaRule.objects.filter(contract=contract).count() == 2  # no successors
        at_the_date.refresh_from_db()
        later.refresh_from_db()
        assert (at_the_date.target_minutes, later.target_minutes) == (30, 45)
        assert at_the_date.effective_from == contract.start_of_day(dt.date(2027, 3, 1))
        updated = Event.objects.get(type="sla_rule.updated", object_id=later.pk)
        assert updated.payload["changes"]["target_minutes"] == {"before": 120, "after": 45}

    @pytest.mark.parametrize(
        "item, field",
        [
            ({"id": 999999, "target_minutes": 30}, "changes.sla_rules[0].id"),
            ({"target_minutes": 30}, "changes.sla_rules[0].id"),
            ({"id": "RULE", "target_minutes": 0}, "changes.sla_rules[0].target_minutes"),
            ({"id": "RULE", "effective_from": "2027-01-01T00:00:00Z"}, "changes.sla_rules[0].effective_from"),
            ({"id": "RULE", "no_such_field": 1}, "changes.sla_rules[0].no_such_field"),
            ({"id": "RULE"}, "changes.sla_rules[0]"),
        ],
    )
    def test_invalid_rule_changes_are_422_naming_the_field(self, org, managers, item, field):
        from tests.slas.factories import make_rule

        contract = approved_contract(org)
        rule = make_rule(contract)
        item = {k: (rule.pk if v == "RULE" else v) for k, v in item.items()}
        response = amend(managers[0], contract, changes={"sla_rules": [item]})
        assert response.status_code == 422, response.content
        assert field in response.json()["errors"], response.json()

    def test_another_contracts_rule_is_refused(self, org, other_org, managers):
        from tests.slas.factories import make_rule

        contract = approved_contract(org)
        theirs = make_rule(approved_contract(other_org))
        response = amend(managers[0], contract, changes={"sla_rules": [{"id": theirs.pk, "target_minutes": 30}]})
        assert response.status_code == 422 and "changes.sla_rules[0].id" in response.json()["errors"]


# --- reminders read the terms in force on the date they announce (issue 14) -------------------


def reminders(contract) -> list[tuple[str, str, int]]:
    events = Event.objects.filter(object_id=contract.pk, type__in=["contract.expiring", "contract.notice_due"])
    return [(e.type, e.payload["date"], e.payload["window_days"]) for e in events.order_by("id")]


@pytest.mark.django_db
class TestRemindersFollowAmendments:
    def test_a_future_extension_and_longer_notice_move_both_reminders(self, org, managers):
        contract = approved_contract(org, expiry_date=dt.date(2027, 12, 31), auto_renew=True, renewal_term_months=12)
        assert contract.notice_date == dt.date(2027, 12, 1)
        created = amend(managers[0], contract, effective_date="2027-11-15",
                        changes={"expiry_date": "2028-06-30", "notice_period_days": 60})  # fmt: skip
        approve_fully(managers, contract, created.json()["id"])
        # 90 days before the old expiry, 30 before the old notice date: the row still holds the old
        # terms, but from 15 November they are gone: no reminder of dates that will not come.
        lifecycle("2027-10-02T09:00:00+02:00")
        lifecycle("2027-11-01T09:00:00+01:00")
        assert reminders(contract) == []
        contract.refresh_from_db()
        assert contract.expiry_date == dt.date(2027, 12, 31)  # not yet in force
        # The amended dates: notice 2028-05-01 (60 days before 2028-06-30), expiry 2028-06-30.
        lifecycle("2028-04-01T09:00:00+02:00")
        assert reminders(contract) == [
            ("contract.expiring", "2028-06-30", 90), ("contract.notice_due", "2028-05-01", 30),
        ]  # fmt: skip

    def test_a_future_shortening_brings_the_reminder_forward(self, org, managers):
        contract = approved_contract(org, expiry_date=dt.date(2027, 12, 31))
        created = amend(managers[0], contract, effective_date="2027-03-01", changes={"expiry_date": "2027-04-30"})
        approve_fully(managers, contract, created.json()["id"])
        # 89 days before the amended expiry, which is still a month from taking effect.
        lifecycle("2027-01-31T09:00:00+01:00")
        assert reminders(contract) == [("contract.expiring", "2027-04-30", 90)]
        contract.refresh_from_db()
        assert contract.expiry_date == dt.date(2027, 12, 31)

    def test_an_amendment_after_the_date_does_not_move_it(self, org, managers):
        """Notice 2027-12-01 comes before a longer notice period takes effect on 2027-12-15."""
        contract = approved_contract(org, expiry_date=dt.date(2027, 12, 31), auto_renew=True, renewal_term_months=12)
        created = amend(managers[0], contract, effective_date="2027-12-15", changes={"notice_period_days": 10})
        approve_fully(managers, contract, created.json()["id"])
        lifecycle("2027-11-01T09:00:00+01:00")
        assert reminders(contract) == [
            ("contract.expiring", "2027-12-31", 60), ("contract.notice_due", "2027-12-01", 30),
        ]  # fmt: skip


@pytest.mark.django_db
class TestExpiringAsOf:
    """`GET /contracts/expiring?as_of=`: the window starts that day, on the terms in force that day."""

    def test_the_window_reads_the_terms_in_force_on_the_date(self, api, org, managers):
        contract = approved_contract(org, expiry_date=dt.date(2027, 12, 31))  # notice 2027-12-01
        created = amend(managers[0], contract, effective_date="2027-06-01", changes={"expiry_date": "2028-03-31"})
        approve_fully(managers, contract, created.json()["id"])
        viewer = api("viewer")
        url = "/api/v1/contracts/expiring"

        def listed(**params):
            response = viewer.get(url, params)
            assert response.status_code == 200, response.content
            return [(c["id"], c["expiry_date"], c["notice_date"], c["days_to_notice"]) for c in response.json()]

        # Before the amendment's date: the original dates.
        assert listed(as_of="2027-05-01", within_days=240) == [(contract.pk, "2027-12-31", "2027-12-01", 214)]
        # From 1 June the term runs to 2028-03-31: nothing falls due in the autumn of 2027 ...
        assert listed(as_of="2027-10-01", within_days=90) == []
        # ... the amended notice date does, counted from the as_of date.
        assert listed(as_of="2028-01-15", within_days=60) == [(contract.pk, "2028-03-31", "2028-03-01", 46)]
        assert viewer.get(url, {"as_of": "2028-01-15", "within_days": 60, "fields": "id,days_to_expiry"}).json() == [
            {"id": contract.pk, "days_to_expiry": 76}
        ]
        # Without as_of: today's row (the amendment is not in force yet).
        assert listed(within_days=3650)[0][:3] == (contract.pk, "2027-12-31", "2027-12-01")
        bad = viewer.get(url, {"as_of": "2027-13-01"})
        assert bad.status_code == 400 and "as_of" in bad.json()["errors"]


@pytest.mark.django_db
class TestTheTermsAnAmendmentLeaves:
    """An amendment is held to what a contract's own edits and its submission require, of the terms
    it would leave in force (each found by an outside sweep, which got them approved)."""

    def test_covered_assets_stay_the_counterpartys(self, api, org, managers):
        from contracts.models import Asset

        contract = approved_contract(org)
        theirs = baker.make(Asset, organization=org, counterparty=baker.make(Counterparty, organization=org))
        ours = baker.make(Asset, organization=org, counterparty=contract.counterparty)
        response = amend(managers[0], contract, changes={"covered_asset_ids": [ours.pk, theirs.pk]})
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {
            "changes.covered_asset_ids": [
                f"Asset {theirs.pk} is not an asset of counterparty {contract.counterparty_id}."
            ]
        }
        assert amend(managers[0], contract, changes={"covered_asset_ids": [ours.pk]}).status_code == 201

    def test_a_new_counterparty_does_not_keep_the_old_ones_assets(self, api, org, managers):
        from contracts.models import Asset

        contract = approved_contract(org)
        asset = baker.make(Asset, organization=org, counterparty=contract.counterparty)
        approve_fully(
            managers, contract, amend(managers[0], contract, changes={"covered_asset_ids": [asset.pk]}).json()["id"]
        )
        other = baker.make(Counterparty, organization=org, kind="both")
        response = amend(managers[0], contract, effective_date="2027-06-01", changes={"counterparty_id": other.pk})
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["changes.counterparty_id"]
        both = {"counterparty_id": other.pk, "covered_asset_ids": []}
        assert amend(managers[0], contract, effective_date="2027-06-01", changes=both).status_code == 201

    def test_auto_renew_needs_its_term_and_an_expiry(self, api, org, managers):
        contract = approved_contract(org)  # auto_renew off, no renewal term
        response = amend(managers[0], contract, changes={"auto_renew": True})
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["changes.renewal_term_months"]
        assert amend(managers[0], contract, changes={"auto_renew": True, "renewal_term_months": 12}).status_code == 201
        renewing = approved_contract(org, auto_renew=True, renewal_term_months=12)
        response = amend(managers[0], renewing, changes={"renewal_term_months": None})
        assert response.status_code == 422 and list(response.json()["errors"]) == ["changes.renewal_term_months"]
        response = amend(managers[0], renewing, changes={"expiry_date": None})
        assert response.status_code == 422 and list(response.json()["errors"]) == ["changes.expiry_date"]
        stopping = {"auto_renew": False, "renewal_term_months": None}
        assert amend(managers[0], renewing, changes=stopping).status_code == 201

    def test_notice_is_due_within_the_term(self, api, org, managers):
        contract = approved_contract(org)  # 2026-01-01 to 2028-12-31: 1,095 days
        response = amend(managers[0], contract, changes={"notice_period_days": 1200})
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["changes.notice_period_days"]
        assert amend(managers[0], contract, changes={"notice_period_days": 90}).status_code == 201

    def test_the_term_cannot_reach_over_its_renewal(self, api, org, managers):
        from contracts import services

        contract = approved_contract(org, expiry_date=dt.date(2027, 12, 31))
        renewal = services.renew_contract(contract=contract, actor=None)
        assert renewal.start_date == dt.date(2028, 1, 1)
        response = amend(managers[0], contract, changes={"expiry_date": "2028-06-30"})
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {
            "changes.expiry_date": [f"Must be before 2028-01-01, when its renewal {renewal.reference} starts."]
        }
        assert amend(managers[0], contract, changes={"expiry_date": "2027-10-31"}).status_code == 201


@pytest.mark.django_db
def test_a_draft_is_not_submitted_once_its_contract_has_ended(org, managers):
    # Found by an outside sweep: it went pending for an approval that could never come.
    contract = approved_contract(org)
    draft = amend(managers[0], contract, changes={"notice_period_days": 60}).json()
    response = managers[0].post(f"/api/v1/contracts/{contract.pk}/terminate", {"reason": "End"}, format="json")
    assert response.status_code == 200, response.content
    response = managers[0].post(f"/api/v1/contracts/{contract.pk}/amendments/{draft['id']}/submit", {}, format="json")
    assert response.status_code == 409 and "terminated" in response.json()["message"]
    assert Amendment.objects.get(pk=draft["id"]).status == "draft"


@pytest.mark.django_db
def test_a_renewal_by_hand_takes_the_terms_in_force_on_the_last_day(org, managers):
    """As auto-renewal does (found by an outside sweep: it took today's row)."""
    contract = approved_contract(org, expiry_date=dt.date(2027, 12, 31))
    changes = {"hours_budget": "150.00", "notice_period_days": 45}
    approve_fully(managers, contract, amend(managers[0], contract, changes=changes).json()["id"])
    response = managers[0].post(f"/api/v1/contracts/{contract.pk}/renew", {}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["hours_budget"], response.json()["notice_period_days"]) == ("150.00", 45)


@pytest.mark.django_db
def test_as_of_shows_the_assets_covered_that_day(api, org, managers):
    # Found by an outside sweep: the covered assets came from today's row on every date.
    from contracts.models import Asset

    contract = approved_contract(org)
    pump = baker.make(Asset, organization=org, counterparty=contract.counterparty, name="Pump")
    change = amend(managers[0], contract, effective_date="2027-03-01", changes={"covered_asset_ids": [pump.pk]})
    approve_fully(managers, contract, change.json()["id"])
    url = f"/api/v1/contracts/{contract.pk}?fields=covered_assets&as_of="
    assert managers[0].get(url + "2027-02-28").json()["covered_assets"] == []
    assert managers[0].get(url + "2027-03-01").json()["covered_assets"] == [{"id": pump.pk, "name": "Pump"}]
    listed = managers[0].get("/api/v1/contracts?fields=covered_assets&as_of=2027-03-01").json()
    assert listed == [{"id": contract.pk, "covered_assets": [{"id": pump.pk, "name": "Pump"}]}]


# --- money in the terms, as the contract resource writes it --------------------------------------


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
@pytest.mark.parametrize("currency, cents", [("EUR", ".00"), ("JPY", ""), ("KWD", ".000")])
def test_term_versions_write_money_as_the_contract_does(api, org, currency, cents):
    # Found by an outside integrator: /terms showed the column's four places ("2400.0000") where
    # the contract shows "2400.00", in JSON and in CSV.
    contract = approved_contract(
        org, currency=currency, contract_value=Decimal("12000"), billing_period="monthly",
        period_charge=Decimal("2400"), overage_rate=Decimal("110.125"),
    )  # fmt: skip
    item = baker.make(LineItem, organization=org, contract=contract, description="Labour", unit_price=Decimal("95"))
    TermVersion.objects.filter(contract=contract).update(terms=terms.read_terms(contract))
    viewer = api("viewer")
    shown = viewer.get(f"/api/v1/contracts/{contract.pk}").json()
    expected = {
        "contract_value": f"12000{cents}", "period_charge": f"2400{cents}", "overage_rate": "110.125",
        "prepay_price_per_hour": None,
    }  # fmt: skip
    assert {name: shown[name] for name in expected} == expected
    line_item = viewer.get(f"/api/v1/contracts/{contract.pk}/line_items/{item.pk}").json()
    assert line_item["unit_price"] == f"95{cents}"
    url = f"/api/v1/contracts/{contract.pk}/terms"
    (version,) = viewer.get(url).json()  # a page, written from rows
    alone = viewer.get(f"{url}/{version['id']}").json()  # one, written from its instance
    (row,) = csv_rows(viewer.get(url, {"format": "csv"}))
    for written in (version["terms"], alone["terms"], json.loads(row["terms"])):
        assert {name: written[name] for name in expected} == expected
        assert [i["unit_price"] for i in written["line_items"]] == [line_item["unit_price"]]


@pytest.mark.django_db
def test_an_amendment_writes_its_money_as_the_contract_does(api, org, managers):
    # Found by an outside integrator: a POST echoed "13000.5000" for "13000.5".
    contract = approved_contract(org, billing_period="monthly")  # an overage rate needs periods
    items = [{"description": "Labour", "unit_price": "80.125"}, {"description": "Parts", "unit_price": "12.5"}]
    changes = {"contract_value": "13000.5", "overage_rate": "95", "line_items": items}
    created = amend(managers[0], contract, changes=changes)
    assert created.status_code == 201, created.content
    url = f"/api/v1/contracts/{contract.pk}/amendments"
    (listed,) = managers[0].get(url, {"fields": "changes"}).json()  # from rows
    alone = managers[0].get(f"{url}/{created.json()['id']}").json()  # from its instance
    (row,) = csv_rows(managers[0].get(url, {"format": "csv", "fields": "changes"}))
    for written in (created.json()["changes"], listed["changes"], alone["changes"], json.loads(row["changes"])):
        assert (written["contract_value"], written["overage_rate"]) == ("13000.50", "95.00")
        assert [i["unit_price"] for i in written["line_items"]] == ["80.125", "12.50"]
    approve_fully(managers, contract, created.json()["id"])
    later = managers[0].get(f"/api/v1/contracts/{contract.pk}/terms").json()[-1]["terms"]
    assert (later["contract_value"], later["overage_rate"]) == ("13000.50", "95.00")
    assert [i["unit_price"] for i in later["line_items"]] == ["80.125", "12.50"]

"""Every lifecycle action from every state, dual approval, notice and renewal, through the API."""

import datetime as dt

import pytest

from contracts.models import Contract, ContractApproval
from events.models import Event

ALLOWED = {
    "submit": {"draft"},
    "approve": {"pending_approval"},
    "reject": {"pending_approval"},
    "suspend": {"active"},
    "resume": {"suspended"},
    "terminate": {"scheduled", "active", "suspended"},
    "give_notice": {"active"},
    "renew": {"active", "suspended", "expired"},
}
BODIES = {"reject": {"reason": "Wrong rates"}, "suspend": {"reason": "Unpaid"}, "terminate": {"reason": "Breach"}}
STATES = Contract.Status.values


def url(contract, action=None):
    return f"/api/v1/contracts/{contract.pk}" + (f"/{action}" if action else "")


@pytest.fixture
def submitter(make_member, org):
    return make_member("manager", org).user


@pytest.fixture
def live_contract(make_contract, submitter):
    def make(status):
        return make_contract(
            status=status,
            auto_renew=True,
            renewal_term_months=12,
            start_date=dt.date(2026, 1, 1),
            expiry_date=dt.date(2099, 12, 31),
            submitted_by=submitter,
            approval_round=1,
        )

    return make


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATES)
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_every_action_from_every_state(api, live_contract, status, action):
    contract = live_contract(status)
    response = api("manager").post(url(contract, action), BODIES.get(action, {}), format="json")
    if status in ALLOWED[action]:
        assert response.status_code == (201 if action == "renew" else 200), response.content
    else:
        assert response.status_code == 409, response.content
        message = response.json()["message"]
        assert f"Cannot {action} a contract that is {status}" in message
        assert "allowed now:" in message
        contract.refresh_from_db()
        assert contract.status == status


@pytest.mark.django_db
def test_illegal_action_message_lists_the_allowed_actions(api, live_contract):
    response = api("manager").post(url(live_contract("suspended"), "suspend"), {"reason": "x"}, format="json")
    assert response.json()["message"] == (
        "Cannot suspend a contract that is suspended; allowed now: resume, terminate, renew."
    )


@pytest.mark.django_db
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_actions_need_the_manager_role(api, live_contract, action):
    contract = live_contract(next(iter(ALLOWED[action])))
    response = api("operator").post(url(contract, action), BODIES.get(action, {}), format="json")
    assert response.status_code == 403


@pytest.mark.django_db
class TestSubmit:
    def test_needs_a_start_date(self, api, make_contract):
        contract = make_contract(start_date=None, expiry_date=None)
        response = api("manager").post(url(contract, "submit"), {}, format="json")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"start_date"}

    def test_auto_renew_needs_expiry_and_term(self, api, make_contract):
        contract = make_contract(auto_renew=True, expiry_date=None, renewal_term_months=None)
        response = api("manager").post(url(contract, "submit"), {}, format="json")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"expiry_date", "renewal_term_months"}

    def test_records_submitter_and_event(self, api, make_contract):
        client = api("manager")
        contract = make_contract()
        body = client.post(url(contract, "submit"), {}, format="json").json()
        assert body["status"] == "pending_approval"
        assert body["submitted_by"]["id"] == client.membership.user_id
        event = Event.objects.get(type="contract.state_changed", object_id=contract.pk)
        assert event.payload == {"from": "draft", "to": "pending_approval", "action": "submit", "reason": ""}
        assert event.actor_id == client.membership.user_id

    def test_unknown_body_field_is_422(self, api, make_contract):
        response = api("manager").post(url(make_contract(), "submit"), {"force": True}, format="json")
        assert response.status_code == 422 and "force" in response.json()["errors"]


@pytest.mark.django_db
class TestDualApproval:
    def submit(self, client, contract):
        assert client.post(url(contract, "submit"), {}, format="json").status_code == 200

    def test_two_different_approvers_activate_a_started_contract(self, api, make_contract):
        submitter, first, second = api("manager"), api("manager"), api("admin")
        contract = make_contract(start_date=dt.date(2026, 1, 1))
        self.submit(submitter, contract)
        body = first.post(url(contract, "approve"), {"comment": "Rates OK"}, format="json").json()
        assert body["status"] == "pending_approval"
        assert [a["comment"] for a in body["approvals"]] == ["Rates OK"]
        body = second.post(url(contract, "approve"), {}, format="json").json()
        assert body["status"] == "active"
        assert len(body["approvals"]) == 2
        assert Event.objects.filter(type="contract.approved", object_id=contract.pk).count() == 2
        final = Event.objects.get(type="contract.state_changed", object_id=contract.pk, payload__to="active")
        assert final.payload["from"] == "pending_approval" and final.actor_id == second.membership.user_id

    def test_future_start_makes_it_scheduled(self, api, make_contract):
        submitter, first, second = api("manager"), api("manager"), api("manager")
        contract = make_contract(start_date=dt.date.today() + dt.timedelta(days=30), expiry_date=None)
        self.submit(submitter, contract)
        first.post(url(contract, "approve"), {}, format="json")
        assert second.post(url(contract, "approve"), {}, format="json").json()["status"] == "scheduled"

    def test_submitter_cannot_approve(self, api, make_contract):
        submitter = api("manager")
        contract = make_contract()
        self.submit(submitter, contract)
        response = submitter.post(url(contract, "approve"), {}, format="json")
        assert response.status_code == 403
        assert "submitted" in response.json()["message"]

    def test_same_person_cannot_approve_twice(self, api, make_contract):
        submitter, first = api("manager"), api("manager")
        contract = make_contract()
        self.submit(submitter, contract)
        first.post(url(contract, "approve"), {}, format="json")
        response = first.post(url(contract, "approve"), {}, format="json")
        assert response.status_code == 403 and "already approved" in response.json()["message"]
        contract.refresh_from_db()
        assert contract.status == "pending_approval"

    def test_operators_and_viewers_cannot_approve(self, api, make_contract):
        submitter = api("manager")
        contract = make_contract()
        self.submit(submitter, contract)
        for role in ("viewer", "operator"):
            assert api(role).post(url(contract, "approve"), {}, format="json").status_code == 403

    def test_rejection_voids_earlier_approvals(self, api, make_contract):
        submitter, first, second, third = api("manager"), api("manager"), api("manager"), api("admin")
        contract = make_contract()
        self.submit(submitter, contract)
        first.post(url(contract, "approve"), {}, format="json")
        body = second.post(url(contract, "reject"), {"reason": "Wrong rates"}, format="json").json()
        assert body["status"] == "draft"
        self.submit(submitter, contract)
        # The first approver's earlier approval no longer counts: one more approval is not enough.
        body = third.post(url(contract, "approve"), {}, format="json").json()
        assert body["status"] == "pending_approval" and len(body["approvals"]) == 1
        assert first.post(url(contract, "approve"), {}, format="json").json()["status"] == "active"
        assert ContractApproval.objects.filter(contract=contract, decision="rejected").count() == 1

    def test_reject_needs_a_reason(self, api, make_contract):
        submitter = api("manager")
        contract = make_contract()
        self.submit(submitter, contract)
        for body in ({}, {"reason": ""}):
            response = api("manager").post(url(contract, "reject"), body, format="json")
            assert response.status_code == 422 and "reason" in response.json()["errors"]


@pytest.mark.django_db
class TestSuspendResumeTerminate:
    def test_reasons_are_required_and_recorded(self, api, live_contract):
        client = api("manager")
        contract = live_contract("active")
        assert client.post(url(contract, "suspend"), {}, format="json").status_code == 422
        assert client.post(url(contract, "suspend"), {"reason": "Unpaid invoice"}, format="json").status_code == 200
        assert client.post(url(contract, "resume"), {}, format="json").json()["status"] == "active"
        assert client.post(url(contract, "terminate"), {"reason": "Breach"}, format="json").json()["status"] == (
            "terminated"
        )
        moves = Event.objects.filter(type="contract.state_changed", object_id=contract.pk).order_by("id")
        assert [(e.payload["to"], e.payload["reason"]) for e in moves] == [
            ("suspended", "Unpaid invoice"),
            ("active", ""),
            ("terminated", "Breach"),
        ]


@pytest.mark.django_db
class TestNotice:
    def test_notice_on_time(self, api, make_contract):
        contract = make_contract(
            status="active", auto_renew=True, renewal_term_months=12, expiry_date=dt.date(2099, 1, 1)
        )
        body = api("manager").post(url(contract, "give_notice"), {"reason": "Moving on"}, format="json").json()
        assert body["notice_given_at"] is not None and body["notice_reason"] == "Moving on"
        again = api("manager").post(url(contract, "give_notice"), {}, format="json")
        assert again.status_code == 409 and "already" in again.json()["message"]

    def test_notice_after_the_notice_date_is_too_late(self, api, make_contract):
        expiry = dt.date.today() + dt.timedelta(days=10)
        contract = make_contract(
            status="active", auto_renew=True, renewal_term_months=12, expiry_date=expiry, notice_period_days=30
        )
        response = api("manager").post(url(contract, "give_notice"), {}, format="json")
        assert response.status_code == 409 and "Too late" in response.json()["message"]

    def test_notice_needs_auto_renew(self, api, make_contract):
        contract = make_contract(status="active", auto_renew=False, expiry_date=dt.date(2099, 1, 1))
        response = api("manager").post(url(contract, "give_notice"), {}, format="json")
        assert response.status_code == 409 and "auto_renew" in response.json()["message"]


@pytest.mark.django_db
class TestRenew:
    def test_renewal_is_a_draft_copy_linked_both_ways(self, api, make_contract):
        from contracts.models import LineItem

        original = make_contract(
            status="active",
            start_date=dt.date(2026, 1, 1),
            expiry_date=dt.date(2026, 12, 31),
            renewal_term_months=12,
            hours_budget="100.00",
            contract_value="5000",
        )
        LineItem.objects.create(organization=original.organization, contract=original, description="Seal", sku="S")
        client = api("manager")
        response = client.post(url(original, "renew"), {}, format="json")
        assert response.status_code == 201
        renewal = response.json()
        assert response["Location"].endswith(url(Contract(pk=renewal["id"])))
        assert renewal["status"] == "draft"
        assert (renewal["start_date"], renewal["expiry_date"]) == ("2027-01-01", "2027-12-31")
        assert renewal["renewed_from"]["id"] == original.pk
        assert renewal["hours_budget"] == "100.00" and renewal["contract_value"] == "5000.00"
        assert client.get(url(original)).json()["renewed_by"]["id"] == renewal["id"]
        items = client.get(f"/api/v1/contracts/{renewal['id']}/line_items").json()
        assert [(i["description"], i["sku"]) for i in items] == [("Seal", "S")]
        again = client.post(url(original, "renew"), {}, format="json")
        assert again.status_code == 409 and str(renewal["id"]) in again.json()["message"]

    @pytest.mark.django_db(transaction=True)
    def test_renew_runs_in_its_own_transaction(self, api, make_contract):
        # Outside a test's wrapping transaction, as a live server runs: renew locks the contract
        # (select_for_update), which PostgreSQL refused with a 500 when renew_contract had lost its
        # @transaction.atomic to the function inserted above it (found by the schema fuzz).
        original = make_contract(status="active", start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2026, 12, 31))
        response = api("manager").post(url(original, "renew"), {}, format="json")
        assert response.status_code == 201, response.content

    def test_explicit_dates_and_term(self, api, make_contract):
        client = api("manager")
        one = make_contract(status="expired")
        body = client.post(url(one, "renew"), {"start_date": "2027-02-01", "term_months": 6}, format="json").json()
        assert (body["start_date"], body["expiry_date"]) == ("2027-02-01", "2027-07-31")
        two = make_contract(status="suspended")
        body = client.post(url(two, "renew"), {"expiry_date": "2028-06-30"}, format="json").json()
        assert (body["start_date"], body["expiry_date"]) == ("2027-01-01", "2028-06-30")
        three = make_contract(status="active")
        response = client.post(url(three, "renew"), {"expiry_date": "2027-06-30", "term_months": 6}, format="json")
        assert response.status_code == 422
        response = client.post(url(three, "renew"), {"start_date": "2027-06-30", "expiry_date": "2027-01-01"})
        assert response.status_code == 422

    def test_renewal_becoming_active_marks_the_original_renewed(self, api, make_contract):
        # Ended on 1 January (the lifecycle has not expired it yet): its renewal starts the next day.
        original = make_contract(
            status="active", start_date=dt.date(2025, 1, 1), expiry_date=dt.date(2026, 1, 1), renewal_term_months=12
        )
        submitter, first, second = api("manager"), api("manager"), api("manager")
        renewal = submitter.post(url(original, "renew"), {"start_date": "2026-01-02"}, format="json").json()
        renewal_url = f"/api/v1/contracts/{renewal['id']}"
        submitter.post(f"{renewal_url}/submit", {}, format="json")
        first.post(f"{renewal_url}/approve", {}, format="json")
        assert second.post(f"{renewal_url}/approve", {}, format="json").json()["status"] == "active"
        original.refresh_from_db()
        assert original.status == "renewed"
        event = Event.objects.get(object_id=original.pk, type="contract.state_changed", payload__to="renewed")
        assert event.payload["from"] == "active"


@pytest.mark.django_db
def test_a_renewal_starts_after_its_original_began(api, make_contract):
    """Found by an outside sweep: a renewal could start before the contract it renews."""
    client = api("manager")
    original = make_contract(
        status="active", start_date=dt.date(2026, 3, 1), expiry_date=None, auto_renew=False, renewal_term_months=12
    )
    response = client.post(url(original, "renew"), {"start_date": "2026-03-01"}, format="json")
    assert response.status_code == 422 and set(response.json()["errors"]) == {"start_date"}
    renewal = client.post(url(original, "renew"), {}, format="json").json()
    moved = client.patch(url(Contract(pk=renewal["id"])), {"start_date": "2025-12-01"}, format="json")
    assert moved.status_code == 422 and "2026-03-01" in moved.json()["errors"]["start_date"][0]
    assert client.patch(url(Contract(pk=renewal["id"])), {"start_date": "2026-03-02"}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_renewal_starts_after_its_original_ends(api, make_contract):
    """Found by an outside sweep: a renewal starting within its original's term cut that term
    short when it activated (the original became `renewed` weeks early, without notice)."""
    client = api("manager")
    original = make_contract(status="active", expiry_date=dt.date(2026, 12, 20), renewal_term_months=12)
    response = client.post(url(original, "renew"), {"start_date": "2026-12-01"}, format="json")
    assert response.status_code == 422
    assert "2026-12-20" in response.json()["errors"]["start_date"][0]
    assert not Contract.objects.filter(renewed_from=original).exists()
    renewal = client.post(url(original, "renew"), {}, format="json").json()
    assert renewal["start_date"] == "2026-12-21"
    moved = client.patch(url(Contract(pk=renewal["id"])), {"start_date": "2026-12-20"}, format="json")
    assert moved.status_code == 422 and set(moved.json()["errors"]) == {"start_date"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "start, expiry, renewed",
    [
        ("2026-11-01", "2027-10-31", ("2027-11-01", "2028-10-31")),  # a year: across 29 February 2028 too
        ("2027-01-31", "2027-02-28", ("2027-03-01", "2027-03-31")),  # a month from the 31st
        ("2026-01-15", "2026-02-15", ("2026-02-16", "2026-03-19")),  # 32 days: not whole months, in days
    ],
)
def test_a_renewal_without_a_term_takes_the_originals_length_in_months_when_whole(
    api, make_contract, start, expiry, renewed
):
    """Found by an outside sweep: a year's contract without `renewal_term_months` renewed for
    365 days, so across a leap day its renewal ended on 30 October, a day short."""
    original = make_contract(
        status="active",
        start_date=dt.date.fromisoformat(start),
        expiry_date=dt.date.fromisoformat(expiry),
        auto_renew=False,
        renewal_term_months=None,
    )
    response = api("manager").post(url(original, "renew"), {}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["start_date"], response.json()["expiry_date"]) == renewed


@pytest.mark.django_db
def test_a_renewal_that_would_end_after_2999_is_a_422(api, make_contract):
    """Found by an outside sweep: a term added to a late start made an expiry in the year 3000."""
    client = api("manager")
    original = make_contract(status="active", expiry_date=dt.date(2999, 6, 30), renewal_term_months=12)
    response = client.post(url(original, "renew"), {}, format="json")
    assert response.status_code == 422 and set(response.json()["errors"]) == {"expiry_date"}
    response = client.post(url(original, "renew"), {"term_months": 6}, format="json")
    assert response.status_code == 201 and response.json()["expiry_date"] == "2999-12-31"


@pytest.mark.parametrize(
    ("start", "months", "last_day"),
    [
        (dt.date(2026, 1, 1), 12, dt.date(2026, 12, 31)),
        (dt.date(2026, 3, 1), 1, dt.date(2026, 3, 31)),
        (dt.date(2026, 1, 15), 1, dt.date(2026, 2, 14)),
        # the month a term ends in lacks its start's day: that month's last day, so the next term
        # starts on the 1st, not a day early (found by an outside sweep: 29 Feb 2028 + 12 ended 27 Feb)
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2028, 2, 29), 12, dt.date(2029, 2, 28)),
        (dt.date(2026, 8, 31), 6, dt.date(2027, 2, 28)),
    ],
)
def test_a_terms_last_day(start, months, last_day):
    from contracts.services import term_end

    assert term_end(start, months) == last_day


@pytest.mark.django_db
def test_notice_is_due_within_the_term(api, make_contract):
    # Found by an outside sweep: 400 days' notice on a one-year draft put the notice date before its start.
    contract = make_contract(status="draft", start_date=dt.date(2027, 1, 1), expiry_date=dt.date(2027, 12, 31))
    client = api("manager")
    response = client.patch(f"/api/v1/contracts/{contract.pk}", {"notice_period_days": 400}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"notice_period_days": ["At most 364 for this term."]}
    assert (
        client.patch(f"/api/v1/contracts/{contract.pk}", {"notice_period_days": 364}, format="json").status_code == 200
    )


@pytest.mark.django_db
def test_an_approved_renewal_is_called_off_before_it_starts(api, make_contract):
    # Twelfth round: a scheduled contract (approved, not started) allowed no action at all, so a
    # renewal the customer declined after its approval could only start, take its hours, bill its
    # periods and mark the original renewed, then be terminated. Now it is terminated before it
    # starts: run_lifecycle never activates it, and the original expires at its end (the renewal it
    # had was called off; the clause does not make another).
    import io

    from django.core.management import call_command

    from billing.models import BillingPeriod
    from ledger.models import LedgerEntry

    original = make_contract(
        status="active", start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2027, 6, 30), auto_renew=True,
        renewal_term_months=12, hours_budget="10.00",
    )  # fmt: skip
    author, first, second = api("manager"), api("manager"), api("manager")
    renewal = author.post(url(original, "renew"), {}, format="json").json()
    renewal_url = f"/api/v1/contracts/{renewal['id']}"
    assert author.post(f"{renewal_url}/submit", {}, format="json").status_code == 200
    first.post(f"{renewal_url}/approve", {}, format="json")
    assert second.post(f"{renewal_url}/approve", {}, format="json").json()["status"] == "scheduled"
    ended = author.post(f"{renewal_url}/terminate", {"reason": "Customer declined"}, format="json")
    assert ended.status_code == 200 and ended.json()["status"] == "terminated", ended.content
    event = Event.objects.filter(type="contract.state_changed", object_id=renewal["id"]).latest("id")
    assert event.payload == {
        "from": "scheduled",
        "to": "terminated",
        "action": "terminate",
        "reason": "Customer declined",
    }
    call_command("run_lifecycle", now="2027-07-01T12:00:00Z", stdout=io.StringIO())
    original.refresh_from_db()
    assert Contract.objects.get(pk=renewal["id"]).status == "terminated"
    assert original.status == "expired" and Contract.objects.filter(renewed_from=original).count() == 1
    assert not LedgerEntry.objects.filter(contract_id=renewal["id"]).exists()
    assert not BillingPeriod.objects.filter(contract_id=renewal["id"]).exists()


@pytest.mark.django_db
def test_a_draft_renewal_is_deleted_with_the_visit_plans_it_carried(api, make_contract):
    # Twelfth round: a renewal's draft carries its original's visit plans, and deleting it was a
    # 409 ("still used by visit plans") until each plan was deleted by hand; its SLA rules already
    # went with it. A draft's plans never generated a job: they go with it, each with its event.
    from django.contrib.auth import get_user_model
    from django.test import Client

    from workorders import rules
    from workorders.models import VisitPlan

    original = make_contract(status="active", start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2027, 6, 30))
    kept = rules.create_visit_plan(
        contract=original, actor=None, data={"summary": "Pump check", "recurrence": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"}
    )
    manager = api("manager")
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser(username="staff", password="pw"))
    for delete in ("api", "admin"):
        renewal = manager.post(url(original, "renew"), {}, format="json").json()
        carried = VisitPlan.objects.get(contract_id=renewal["id"])
        if delete == "api":
            response = manager.delete(f"/api/v1/contracts/{renewal['id']}")
            assert response.status_code == 204, response.content
        else:
            page = staff.post(f"/admin/contracts/contract/{renewal['id']}/delete/", {"post": "yes"}, follow=True)
            assert page.status_code == 200
        assert not Contract.objects.filter(pk=renewal["id"]).exists()
        assert not VisitPlan.objects.filter(pk=carried.pk).exists()
        assert Event.objects.filter(type="visit_plan.deleted", object_id=carried.pk).exists()
        assert Event.objects.filter(type="contract.deleted", object_id=renewal["id"]).exists()
    assert list(VisitPlan.objects.filter(contract=original)) == [kept]  # the original's plan stays

"""The admin screens: lifecycle buttons go through the services (dual approval and events hold)."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from contracts.models import Contract, Counterparty
from events.models import Event


@pytest.fixture
def staff(db):
    def make(username):
        user = get_user_model().objects.create_superuser(username=username, password="pw")
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


def form_data(response) -> dict:
    """The POST body the rendered admin change form would submit, unchanged."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value
    return data


def change_url(contract):
    return f"/admin/contracts/contract/{contract.pk}/change/"


@pytest.mark.django_db
class TestContractAdmin:
    def test_changelist_with_filters_and_search(self, staff, make_contract):
        make_contract(reference="ADM-1", status="active")
        client = staff("alice")
        for query in ("", "?status__exact=active", "?expiring=30", "?q=ADM-1", "?contract_type__exact=warranty"):
            response = client.get(f"/admin/contracts/contract/{query}")
            assert response.status_code == 200, query
        assert b"ADM-1" in client.get("/admin/contracts/contract/?q=ADM-1").content

    def test_a_malformed_expiring_value_is_the_lists_error_flag(self, staff, make_contract):
        # Found by an outside sweep: int() of the value, unchecked, was a 500 (and an overflow).
        today = timezone.now().date()
        soon = make_contract(reference="ADM-SOON", status="active", expiry_date=today + dt.timedelta(days=20))
        make_contract(reference="ADM-LATE", status="active", expiry_date=today + dt.timedelta(days=60))
        client = staff("alice")
        for value in ("abc", "", "99999999999", "-5", "31"):
            response = client.get(f"/admin/contracts/contract/?expiring={value}")
            assert (response.status_code, response["Location"]) == (302, "/admin/contracts/contract/?e=1"), value
        listed = client.get("/admin/contracts/contract/?expiring=30").content.decode()
        assert soon.reference in listed and "ADM-LATE" not in listed

    def test_change_page_shows_buttons_and_events(self, staff, make_contract, api):
        contract = make_contract(reference="ADM-2")
        api("manager").patch(f"/api/v1/contracts/{contract.pk}", {"name": "Renamed"}, format="json")
        response = staff("alice").get(change_url(contract))
        assert response.status_code == 200
        content = response.content.decode()
        assert 'name="_fsm_transition_to"' in content and 'value="submit"' in content
        assert "contract.updated" in content

    def test_dual_approval_holds_in_the_admin(self, staff, make_contract):
        contract = make_contract()
        submitter, first, second = staff("sub"), staff("first"), staff("second")
        form = {**form_data(submitter.get(change_url(contract))), "_fsm_transition_to": "submit"}
        response = submitter.post(change_url(contract), form)
        assert response.status_code == 302, response.context["adminform"].form.errors
        contract.refresh_from_db()
        assert contract.status == "pending_approval" and contract.submitted_by == submitter.user

        approve = f"/admin/contracts/contract/{contract.pk}/transition/approve/"
        submitter.post(approve, {"comment": "mine"})
        first.post(approve, {"comment": "ok"})
        first.post(approve, {"comment": "again"})
        contract.refresh_from_db()
        assert contract.status == "pending_approval"
        assert contract.approvals.count() == 1
        second.post(approve, {"comment": "ok too"})
        contract.refresh_from_db()
        assert contract.status == "active"
        types = list(Event.objects.filter(object_id=contract.pk).values_list("type", flat=True).order_by("id"))
        assert types.count("contract.approved") == 2 and types.count("contract.state_changed") == 2

    def test_renewal_action_and_draft_only_delete(self, staff, make_contract):
        active = make_contract(status="active", renewal_term_months=6)
        client = staff("alice")
        client.post("/admin/contracts/contract/", {"action": "draft_renewal", "_selected_action": [active.pk]})
        assert Contract.objects.filter(renewed_from=active, status="draft").exists()
        assert client.get(f"/admin/contracts/contract/{active.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_counterparty_admin_writes_events(staff, org):
    client = staff("alice")
    response = client.post(
        "/admin/contracts/counterparty/add/",
        {"organization": org.pk, "name": "Admin Co", "kind": "vendor", "source": "", "source_id": ""},
    )
    assert response.status_code == 302, response.content
    created = Counterparty.objects.get(name="Admin Co")
    assert Event.objects.filter(type="counterparty.created", object_id=created.pk).exists()


@pytest.mark.django_db
def test_amendment_admin_actions_go_through_dual_approval(staff, org):
    import datetime as dt

    from contracts import terms
    from contracts.models import Amendment
    from tests.contracts.factories import make_contract

    contract = make_contract(org, status="active", expiry_date=dt.date(2028, 12, 31))
    terms.start_versions(contract, origin="creation", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    amendment = Amendment.objects.create(
        organization=org,
        contract=contract,
        number=1,
        reason="Longer notice",
        effective_date=dt.date(2027, 6, 1),
        changes={"notice_period_days": 90},
    )
    submitter, first, second = staff("sub"), staff("first"), staff("second")
    url = "/admin/contracts/amendment/"
    submitter.post(url, {"action": "submit", "_selected_action": [amendment.pk]})
    submitter.post(url, {"action": "approve", "_selected_action": [amendment.pk]})  # refused: the submitter
    first.post(url, {"action": "approve", "_selected_action": [amendment.pk]})
    amendment.refresh_from_db()
    assert amendment.status == "pending_approval" and amendment.approvals.count() == 1
    second.post(url, {"action": "approve", "_selected_action": [amendment.pk]})
    amendment.refresh_from_db()
    assert amendment.status == "approved"
    assert terms.version_on(contract, dt.date(2027, 6, 1)).terms["notice_period_days"] == 90
    assert first.get(f"{url}{amendment.pk}/change/").status_code == 200
    assert b"term" in first.get(f"/admin/contracts/contract/{contract.pk}/change/").content


@pytest.mark.django_db
def test_a_plan_stored_with_an_overage_rate_without_periods_saves_unchanged(staff, make_contract):
    # An overage rate now needs periods (an outside test); a draft stored before the rule is not
    # refused for it when the admin saves other fields, only when the rate or period changes.
    contract = make_contract(overage_rate="100.00")
    client = staff("alice")
    form = {**form_data(client.get(change_url(contract))), "name": "Renamed"}
    response = client.post(change_url(contract), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    response = client.post(change_url(contract), {**form, "overage_rate": "90.00"})
    assert response.status_code == 200
    assert "Needs a billing_period other than none." in response.context["adminform"].form.errors["overage_rate"]


@pytest.mark.django_db
def test_rejecting_an_amendment_in_the_admin_asks_why(staff, org):
    # Found by an outside sweep: the action rejected at once with "Rejected in the admin." as the
    # reason the drafters, the audit trail and the notice got.
    import datetime as dt

    from contracts import terms
    from contracts.models import Amendment
    from tests.contracts.factories import make_contract

    contract = make_contract(org, status="active", expiry_date=dt.date(2028, 12, 31))
    terms.start_versions(contract, origin="creation", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    amendment = Amendment.objects.create(
        organization=org, contract=contract, number=1, reason="Longer notice", effective_date=dt.date(2027, 6, 1),
        changes={"notice_period_days": 90},
    )  # fmt: skip
    submitter, approver = staff("sub"), staff("approver")
    url = "/admin/contracts/amendment/"
    submitter.post(url, {"action": "submit", "_selected_action": [amendment.pk]})
    selected = {"action": "reject", "_selected_action": [amendment.pk]}
    page = approver.post(url, selected)
    assert page.status_code == 200 and b'name="reason"' in page.content and b'value="reject"' in page.content
    blank = approver.post(url, {**selected, "apply": "1", "reason": "   "})
    assert blank.status_code == 200 and b"This field is required." in blank.content
    amendment.refresh_from_db()
    assert amendment.status == "pending_approval" and not amendment.approvals.exists()
    done = approver.post(url, {**selected, "apply": "1", "reason": "The notice period needs legal's review"})
    assert done.status_code == 302
    amendment.refresh_from_db()
    assert amendment.status == "draft"
    assert amendment.approvals.get().comment == "The notice period needs legal's review"
    event = Event.objects.get(type="amendment.rejected", object_id=amendment.pk)
    assert event.payload == {"reason": "The notice period needs legal's review"}


@pytest.mark.django_db
@pytest.mark.parametrize("decided", ["accepted", "rejected", "pending"])
def test_a_draft_sent_for_signature_keeps_its_requests(api, staff, make_contract, decided):
    # Twelfth round: a contract sent for the counterparty's signature and sent back to draft (an
    # internal rejection) was deleted with its signature requests (CASCADE), the counterparty's
    # signature, its name, address and terms hash among them. The requests are kept: the draft is not
    # deleted (409; the admin's error message, nothing deleted, no event), through either face.
    import datetime as dt

    from signing.models import SignatureRequest

    contract = make_contract(status="pending_approval", approval_round=1)
    request = SignatureRequest.objects.create(
        organization=contract.organization, contract=contract, approval_round=1, name="Jo", email="jo@x.example",
        token_hash="1" * 64, terms_hash="0" * 64, expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC), status=decided,
        signer_name="Jo" if decided != "pending" else "", signature="Jo" if decided != "pending" else "",
    )  # fmt: skip
    manager = api("manager")
    rejected = manager.post(f"/api/v1/contracts/{contract.pk}/reject", {"reason": "Rates"}, format="json")
    assert rejected.json()["status"] == "draft"
    response = manager.delete(f"/api/v1/contracts/{contract.pk}")
    assert response.status_code == 409, response.content
    assert "signature requests" in response.json()["message"]
    client = staff("alice")
    page = client.post(f"/admin/contracts/contract/{contract.pk}/delete/", {"post": "yes"}, follow=True)
    assert page.status_code == 200
    bulk = client.post(
        "/admin/contracts/contract/",
        {"action": "delete_selected", "_selected_action": [contract.pk], "post": "yes"},
        follow=True,
    )
    assert bulk.status_code == 200
    assert Contract.objects.filter(pk=contract.pk).exists() and SignatureRequest.objects.filter(pk=request.pk).exists()
    assert not Event.objects.filter(type="contract.deleted").exists()

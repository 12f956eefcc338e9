"""The admin: entries are read-only, managers post through a form that calls the service, and the
contract page shows the balance and a burn-down chart."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from events.models import Event
from ledger.admin import LedgerEntryAdmin, burn_down_svg
from ledger.models import LedgerEntry
from tests.contracts.factories import make_contract

from .helpers import DAY, T0, active_contract, credit, job, running, work

ADD_URL = "/admin/ledger/ledgerentry/add/"
CHART = '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="200" role="img" aria-label="Burn-down">'


@pytest.fixture
def staff(db):
    user = get_user_model().objects.create_superuser(username="finance", password="pw")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def posting(contract, /, **fields) -> dict:
    return {
        "contract": contract.pk,
        "entry_type": "work",
        "hours": "2.00",
        "amount": "",
        "currency": "",
        "work_order": "",
        "description": "Posted by finance",
        "occurred_at_0": "2026-03-03",
        "occurred_at_1": "10:00:00",
        "expires_at_0": "",
        "expires_at_1": "",
        **fields,
    }


@pytest.mark.django_db
class TestEntries:
    def test_changelist_and_filters(self, staff, org):
        contract = active_contract(org)
        credit(contract, 5, description="Goodwill hours")
        for query in ("", "?entry_type__exact=credit", "?reason_code__exact=", "?q=Goodwill"):
            response = staff.get(f"/admin/ledger/ledgerentry/{query}")
            assert response.status_code == 200, query
        assert contract.reference in staff.get("/admin/ledger/ledgerentry/?q=Goodwill").content.decode()

    def test_an_entry_can_be_seen_but_not_changed_or_deleted(self, staff, org):
        entry = credit(active_contract(org), 5)
        url = f"/admin/ledger/ledgerentry/{entry.pk}/change/"
        page = staff.get(url)
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
        assert staff.post(url, posting(entry.contract, entry_type="credit", hours="50.00")).status_code == 403
        assert staff.get(f"/admin/ledger/ledgerentry/{entry.pk}/delete/").status_code == 403
        assert staff.post(f"/admin/ledger/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
        listing = staff.post(
            "/admin/ledger/ledgerentry/", {"action": "delete_selected", "_selected_action": [entry.pk]}
        )
        assert listing.status_code == 200  # no bulk delete action to run
        entry.refresh_from_db()
        assert entry.hours == 5
        assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db
class TestPostingForm:
    def test_the_form_posts_through_the_service(self, staff, org):
        contract = active_contract(org)
        credit(contract, 10)
        assert staff.get(ADD_URL).status_code == 200
        response = staff.post(ADD_URL, posting(contract, work_order=job(contract).pk))
        assert response.status_code == 302, response.context["adminform"].form.errors
        entry = LedgerEntry.objects.get(entry_type="work")
        assert entry.created_by == staff.user and entry.hours == 2
        assert running(contract) == 8
        event = Event.objects.get(type="ledger.entry_posted", object_id=entry.pk)
        assert event.actor == staff.user
        assert LogEntry.objects.filter(object_id=str(entry.pk)).exists()

    def test_a_blank_occurred_at_is_now_as_in_the_api(self, staff, org):
        # Found by an outside sweep: the admin required it; the API defaults it to now.
        contract = active_contract(org)
        page = staff.get(ADD_URL).content.decode()
        assert "Blank: now. Times are in UTC." in page
        before = timezone.now()
        data = posting(contract, entry_type="credit", hours="3.00", occurred_at_0="", occurred_at_1="")
        response = staff.post(ADD_URL, data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        entry = LedgerEntry.objects.get()
        assert before <= entry.occurred_at <= timezone.now()
        assert running(contract) == 3

    def test_a_credit_with_an_expiry(self, staff, org):
        contract = active_contract(org)
        data = posting(contract, entry_type="credit", hours="6.50", expires_at_0="2099-01-01", expires_at_1="00:00")
        assert staff.post(ADD_URL, data).status_code == 302
        assert LedgerEntry.objects.get().expires_at.year == 2099
        assert running(contract) == Decimal("6.50")

    @pytest.mark.parametrize(
        "fields, message",
        [
            ({}, "Required for work"),  # no work order
            ({"hours": "0"}, "positive number of hours"),
            ({"entry_type": "adjustment", "hours": "1.00", "description": ""}, "Say why"),
            ({"occurred_at_0": "2099-01-01"}, "Must not be in the future"),
            ({"contract": ""}, "This field is required"),
            # Thirteenth round: a hand posting is dated within the term (the contract runs 2026).
            (
                {
                    "entry_type": "penalty",
                    "hours": "0",
                    "amount": "5.00",
                    "currency": "EUR",
                    "occurred_at_0": "2025-12-30",
                },
                "Must not be before the contract&#x27;s start (2026-01-01)",
            ),
        ],
    )
    def test_what_the_service_would_refuse_is_a_form_error(self, staff, org, fields, message):
        contract = active_contract(org)
        credit(contract, 10)
        response = staff.post(ADD_URL, posting(contract, **fields))
        assert response.status_code == 200
        assert message in response.content.decode()
        assert LedgerEntry.objects.count() == 1 and running(contract) == 10

    def test_an_overdraw_is_a_form_error_and_posts_nothing(self, staff, org):
        contract = active_contract(org)
        credit(contract, 1)
        response = staff.post(ADD_URL, posting(contract, work_order=job(contract).pk))
        assert response.status_code == 200
        assert "Not enough hours" in response.content.decode()
        assert not [m for m in get_messages(response.wsgi_request) if "successfully" in str(m)]
        assert LedgerEntry.objects.count() == 1 and running(contract) == 1
        assert not LogEntry.objects.exists()

    def test_a_posting_that_loses_a_race_after_the_form_validated_posts_nothing(self, staff, org, monkeypatch):
        contract = active_contract(org)
        credit(contract, 3)
        rival_job = job(contract)
        save_form = LedgerEntryAdmin.save_form

        def another_writer_first(self, request, form, change):
            # Between the form's checks and its posting, another writer takes the hours.
            work(contract, 2, work_order=rival_job)
            return save_form(self, request, form, change)

        monkeypatch.setattr(LedgerEntryAdmin, "save_form", another_writer_first)
        response = staff.post(ADD_URL, posting(contract, work_order=job(contract).pk), follow=True)
        assert response.redirect_chain == [(ADD_URL, 302)]  # back to the form, not "added successfully"
        messages = [str(m) for m in response.context["messages"]]
        assert len(messages) == 1 and messages[0].startswith("Not posted: Not enough hours")
        assert list(LedgerEntry.objects.filter(entry_type="work").values_list("created_by", flat=True)) == [None]
        assert running(contract) == 1
        assert not LogEntry.objects.exists()

    def test_work_on_a_draft_is_a_form_error(self, staff, org):
        contract = make_contract(org)
        response = staff.post(ADD_URL, posting(contract, work_order=job(contract).pk))
        assert response.status_code == 200
        assert "active or suspended" in response.content.decode()
        assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
class TestContractPage:
    def test_the_contract_page_shows_the_balance_and_a_burn_down(self, staff, org):
        contract = active_contract(org)
        credit(contract, 40, at=T0)
        work(contract, "12.50", at=T0 + DAY)
        work(contract, 10, at=T0 + 2 * DAY)
        response = staff.get(f"/admin/contracts/contract/{contract.pk}/change/")
        assert response.status_code == 200
        content = response.content.decode()
        # Django's admin pages carry "<svg" icon sprites of their own: look for the chart itself.
        assert CHART in content and "<polyline" in content
        assert "<th>Remaining</th><td>17.50</td>" in content
        assert "<th>Total hours</th><td>40.00</td>" in content

    def test_one_entry_is_enough_for_a_chart(self, staff, org):
        contract = active_contract(org)
        credit(contract, 40, at=T0)
        assert CHART in staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()

    def test_a_contract_without_entries_and_the_add_page(self, staff, org):
        contract = active_contract(org)
        response = staff.get(f"/admin/contracts/contract/{contract.pk}/change/")
        assert response.status_code == 200
        assert "No entries yet." in response.content.decode() and CHART not in response.content.decode()
        assert staff.get("/admin/contracts/contract/add/").status_code == 200

    def test_the_chart_steps_down_with_the_remaining_hours(self, org):
        contract = active_contract(org, allow_overrun=True)
        credit(contract, 10, at=T0)
        work(contract, 4, at=T0 + DAY)
        work(contract, 10, at=T0 + 2 * DAY)  # 4 hours of overrun: the line goes below zero
        svg = str(burn_down_svg(contract, now=T0 + 3 * DAY))
        points = svg.split('points="')[1].split('"')[0].split()
        # The start, two points (across, then down) per later entry, and the run on to now.
        assert len(points) == 1 + 2 * 3
        heights = [float(p.split(",")[1]) for p in points]
        assert heights[0] < heights[2] < heights[4] and heights[4] == heights[6]  # lower on screen is larger y
        assert ">10 h</text>" in svg

"""Every admin form checks what the API checks, before it saves (found by an outside sweep of the
admin, after the SLA rule form's fix: config.admin_forms.ApiCheckedForm). Each case is a value
the REST API refuses with a 422, posted on the admin's own form as a staff user's browser sends
it: refused on the form, on its field, with nothing stored and no history entry."""

import pytest
from django.contrib.admin.models import LogEntry

from billing.models import ContractTemplate
from contracts.models import Contract, Counterparty, LineItem
from events.models import Event
from ledger.models import LedgerEntry
from slas.models import Calendar
from tests.admin_forms import form_values
from workorders.models import ContractRule, VisitPlan


@pytest.fixture
def staff(demo_staff):
    demo_staff.raise_request_exception = False  # a 500 is a defect to see, not an exception
    return demo_staff


def refused(client, url: str, changes: dict, field: str, text: str) -> None:
    data = {**form_values(client, url), **changes}
    logged, events = LogEntry.objects.count(), Event.objects.count()
    response = client.post(url, data)
    assert response.status_code == 200, response.status_code  # the form again, not a 500 or a redirect
    page = response.content.decode()
    error = page[page.find(f'id="id_{field}_error"') :][:600]
    assert "errornote" in page and f'id="id_{field}_error"' in page and text in error, page[:200]
    assert LogEntry.objects.count() == logged and Event.objects.count() == events  # nothing happened


def draft_url():
    return f"/admin/contracts/contract/{Contract.objects.filter(status='draft').order_by('pk').first().pk}/change/"


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"start_date": "1900-01-01"}, "start_date", "2000-01-01 to 2999-12-31"),
        ({"expiry_date": "3100-01-01"}, "expiry_date", "2000-01-01 to 2999-12-31"),
        ({"notice_period_days": "99999"}, "notice_period_days", "less than or equal to 3650"),
        ({"hours_budget": "-5"}, "hours_budget", "greater than or equal to 0"),
        ({"contract_value": "-5"}, "contract_value", "greater than or equal to 0"),
        ({"renewal_term_months": "0"}, "renewal_term_months", "greater than or equal to 1"),
        ({"coverage_areas": '{"foo": 1}'}, "coverage_areas", "Expected Polygon"),  # was a 500
    ],
)
def test_a_contract_the_api_refuses_is_refused_on_the_form(staff, changes, field, text):
    refused(staff, draft_url(), changes, field, text)


def test_a_line_item_the_api_refuses_is_refused_on_the_contract_form(staff):
    url = draft_url()
    index = form_values(staff, url)["line_items-TOTAL_FORMS"]
    item = {"kind": "service", "description": "Negative", "quantity": "-3", "unit": "hour", "unit_price": "10"}
    changes = {f"line_items-{index}-{name}": value for name, value in item.items()}
    refused(staff, url, {**changes, "line_items-TOTAL_FORMS": str(int(index) + 1)}, f"line_items-{index}-quantity", "0")
    assert not LineItem.objects.filter(description="Negative").exists()


def test_an_asset_move_the_service_refuses_is_an_error_on_the_form_not_a_500(staff):
    contract = Contract.objects.filter(covered_assets__isnull=False).first()
    asset = contract.covered_assets.first()
    other = Counterparty.objects.filter(organization=asset.organization).exclude(pk=asset.counterparty_id).first()
    refused(
        staff, f"/admin/contracts/asset/{asset.pk}/change/", {"counterparty": other.pk}, "counterparty", "Covered by"
    )
    asset.refresh_from_db()
    assert asset.counterparty_id != other.pk


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"hours": '[{"weekday": 9, "start": "x"}]'}, "hours", "hours[0]"),  # was a 500
        ({"holidays": '[{"date": "1800-01-01"}]'}, "holidays", "2000-01-01 to 2999-12-31"),  # was stored
        ({"holiday_country": "ZZ"}, "holiday_country", "not a country"),  # was a 500
        ({"working_days": '["abc"]'}, "working_days", "wrong format"),  # was a 500
    ],
)
def test_a_calendar_the_api_refuses_is_refused_on_the_form(staff, changes, field, text):
    calendar = Calendar.objects.filter(organization__slug="demo").order_by("pk").first()
    refused(staff, f"/admin/slas/calendar/{calendar.pk}/change/", changes, field, text)


def test_a_calendar_name_used_in_the_organization_is_refused_on_the_form(staff):
    # Found by an outside sweep: a second "UK office hours" was "added successfully", then
    # `make run` (seed_demo) crashed on it.
    from tests.slas.factories import make_calendar

    demo = Calendar.objects.get(organization__slug="demo", name="UK office hours")
    taken = f"name: Already used by calendar {demo.pk}."
    add = form_values(staff, "/admin/slas/calendar/add/")
    hours = '[{"weekday": 1, "start": "09:00", "end": "17:00"}]'
    data = {**add, "organization": str(demo.organization_id), "name": "UK office hours", "time_zone": "UTC"}
    before = Calendar.objects.count()
    response = staff.post("/admin/slas/calendar/add/", {**data, "hours": hours})
    error = response.content.decode().split('id="id_name_error"', 1)[-1][:300]
    assert response.status_code == 200 and taken in error
    assert Calendar.objects.count() == before
    other = make_calendar(demo.organization, name="NL office hours")
    refused(staff, f"/admin/slas/calendar/{other.pk}/change/", {"name": "UK office hours"}, "name", taken)


def test_a_contract_rule_the_api_refuses_is_refused_on_the_form(staff):
    rule = ContractRule.objects.filter(organization__slug="demo").order_by("pk").first()
    url = f"/admin/workorders/contractrule/{rule.pk}/change/"
    refused(staff, url, {"sequence": "999999999999"}, "sequence", "less than or equal to 1000000")


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"hours_allocated": "-1"}, "hours_allocated", "greater than or equal to 0"),
        ({"generate_days_in_advance": "9999"}, "generate_days_in_advance", "less than or equal to 366"),
        ({"tolerance_minutes": "99999999"}, "tolerance_minutes", "less than or equal to 129600"),
        ({"active_from": "1900-01-01"}, "active_from", "2000-01-01 to 2999-12-31"),
        ({"active_to": "3100-01-01"}, "active_to", "2000-01-01 to 2999-12-31"),
    ],
)
def test_a_visit_plan_the_api_refuses_is_refused_on_the_form(staff, changes, field, text):
    plan = VisitPlan.objects.filter(organization__slug="demo").order_by("pk").first()
    refused(staff, f"/admin/workorders/visitplan/{plan.pk}/change/", changes, field, text)


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"term_months": "0"}, "term_months", "greater than or equal to 1"),
        ({"term_months": "500"}, "term_months", "less than or equal to 120"),
        ({"period_charge": "-5"}, "period_charge", "greater than or equal to 0"),
    ],
)
def test_a_template_the_api_refuses_is_refused_on_the_form(staff, changes, field, text):
    template = ContractTemplate.objects.filter(organization__slug="demo").order_by("pk").first()
    refused(staff, f"/admin/billing/contracttemplate/{template.pk}/change/", changes, field, text)


def test_a_ledger_entry_dated_1900_is_refused_on_the_form(staff):
    contract = Contract.objects.filter(status="active").order_by("pk").first()
    before = LedgerEntry.objects.count()
    posting = {
        "contract": contract.pk, "entry_type": "adjustment", "hours": "5", "description": "Old",
        "occurred_at_0": "1900-01-01", "occurred_at_1": "00:00",
    }  # fmt: skip
    refused(staff, "/admin/ledger/ledgerentry/add/", posting, "occurred_at", "2000-01-01 to 2999-12-31")
    assert LedgerEntry.objects.count() == before


def test_good_changes_are_still_saved_through_the_services_once(staff):
    plan = VisitPlan.objects.filter(organization__slug="demo").order_by("pk").first()
    url = f"/admin/workorders/visitplan/{plan.pk}/change/"
    response = staff.post(url, {**form_values(staff, url), "tolerance_minutes": "45"})
    assert response.status_code == 302, response.content.decode()[:2000]
    plan.refresh_from_db()
    assert plan.tolerance_minutes == 45
    assert Event.objects.filter(type="visit_plan.updated", object_id=plan.pk).count() == 1  # the dry run left none
    calendar = Calendar.objects.filter(organization__slug="demo").order_by("pk").first()
    url = f"/admin/slas/calendar/{calendar.pk}/change/"
    response = staff.post(url, {**form_values(staff, url), "holidays": '[{"date": "2026-12-31", "name": "Eve"}]'})
    assert response.status_code == 302, response.content.decode()[:2000]
    calendar.refresh_from_db()
    assert calendar.holidays == [{"date": "2026-12-31", "name": "Eve"}]
    assert Event.objects.filter(type="calendar.updated", object_id=calendar.pk).count() == 1


def test_a_good_line_item_is_saved_once_on_a_draft_contract(staff):
    # The line item form dry-runs the service (rolled back) before the admin saves it for real.
    url = draft_url()
    index = form_values(staff, url)["line_items-TOTAL_FORMS"]
    item = {"kind": "service", "description": "Seal kit", "quantity": "3", "unit": "hour", "unit_price": "10"}
    changes = {f"line_items-{index}-{name}": value for name, value in item.items()}
    response = staff.post(url, {**form_values(staff, url), **changes, "line_items-TOTAL_FORMS": str(int(index) + 1)})
    assert response.status_code == 302, response.content.decode()[:3000]
    [saved] = LineItem.objects.filter(description="Seal kit")
    assert Event.objects.filter(type="line_item.created", object_id=saved.pk).count() == 1


def test_values_are_saved_as_the_api_stores_them(staff):
    # Found by an outside sweep: the admin checked through the serializer but saved its own values,
    # so a subdivision typed "gb-sct" was stored as typed, not as the API's "SCT".
    calendar = Calendar.objects.filter(organization__slug="demo").order_by("pk").first()
    url = f"/admin/slas/calendar/{calendar.pk}/change/"
    changes = {"holiday_country": "GB", "holiday_subdivision": "gb-sct"}
    response = staff.post(url, {**form_values(staff, url), **changes})
    assert response.status_code == 302, response.content.decode()[:2000]
    calendar.refresh_from_db()
    assert (calendar.holiday_country, calendar.holiday_subdivision) == ("GB", "SCT")

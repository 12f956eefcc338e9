"""The admin as a staff member meets it (tenth round): every screen, with the input a hurried or
careless operator gives it. Each case was a 500 or a wrong write before its fix."""

import pytest
from django.contrib import admin

from tests.admin_forms import form_values

# A pasted id that is no id, one beyond any integer column, and a control character.
NOT_AN_ID = ["abc", "9" * 30, "\x00", "1.5"]


@pytest.fixture
def staff(demo_staff):
    demo_staff.raise_request_exception = False  # a 500 is a defect to see, not an exception
    return demo_staff


def _autocomplete_pages():
    """(url, field name in the form, many) for every autocomplete select the admin shows."""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        for name in model_admin.autocomplete_fields:
            many = opts.get_field(name).many_to_many
            yield f"{opts.app_label}.{opts.model_name}", None, name, many
        for inline in model_admin.inlines:
            for name in inline.autocomplete_fields:
                many = inline.model._meta.get_field(name).many_to_many
                yield f"{opts.app_label}.{opts.model_name}", inline, name, many


@pytest.mark.parametrize("label, inline, name, many", list(_autocomplete_pages()))
@pytest.mark.parametrize("value", NOT_AN_ID)
def test_an_autocomplete_select_given_no_id_is_an_error_on_the_form(staff, label, inline, name, many, value):
    # Found by going through every form: Django's autocomplete widget looked the typed value up to
    # show it again beside the form's error, and "abc" (or a number beyond the column) was a 500.
    from django.apps import apps

    model = apps.get_model(label)
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    extra = {}
    if inline is None:
        url, field = f"{base}add/", name
    else:
        # A new row of the inline (an existing membership's user is shown, not chosen: tenancy.admin).
        url = f"{base}{model.objects.order_by('pk').first().pk}/change/"
        prefix = next(k for k in form_values(staff, url) if k.endswith("-TOTAL_FORMS")).removesuffix("-TOTAL_FORMS")
        index = int(form_values(staff, url)[f"{prefix}-TOTAL_FORMS"])
        field, extra = f"{prefix}-{index}-{name}", {f"{prefix}-TOTAL_FORMS": str(index + 1)}
    values = form_values(staff, url)
    response = staff.post(url, {**values, **extra, field: [value] if many else value})
    assert response.status_code == 200, response.status_code
    assert b"errornote" in response.content


def test_an_external_identity_is_made_by_its_sign_in_not_on_an_empty_add_page(staff):
    # Found by going through every add page: every field of an external identity is read-only,
    # so "Add external identity" was an empty form and its "Save" a 500 (no user to link).
    from tenancy.models import ExternalIdentity

    assert staff.get("/admin/tenancy/externalidentity/add/").status_code == 403
    assert staff.post("/admin/tenancy/externalidentity/add/", {}).status_code == 403
    assert b"/admin/tenancy/externalidentity/add/" not in staff.get("/admin/tenancy/externalidentity/").content
    assert not ExternalIdentity.objects.exists()


def test_notification_emails_changed_in_the_admin_go_through_the_service(staff):
    # Found on the organization's page: a new list of notification e-mails was saved as typed,
    # with no `organization.updated` event (the API's PATCH /notification_settings records one),
    # and an address repeated in another case was kept twice (the API keeps the first).
    from events.models import Event
    from tenancy.models import Organization

    organization = Organization.objects.order_by("pk").first()
    url = f"/admin/tenancy/organization/{organization.pk}/change/"
    values = form_values(staff, url)
    response = staff.post(url, {**values, "notification_emails": "Ops@example.com\r\nops@example.com\r\nb@example.com"})
    assert response.status_code == 302, response.content.decode()[:2000]
    organization.refresh_from_db()
    assert organization.notification_emails == ["Ops@example.com", "b@example.com"]
    event = Event.objects.filter(type="organization.updated", object_id=organization.pk).latest("pk")
    assert event.payload["changes"]["notification_emails"]["after"] == ["Ops@example.com", "b@example.com"]
    assert event.actor_id is not None
    count = Event.objects.count()
    assert staff.post(url, form_values(staff, url)).status_code == 302  # nothing changed: no event
    assert Event.objects.count() == count


def test_a_notification_address_the_api_refuses_is_refused_on_the_organization_form(staff):
    from tenancy.models import Organization

    organization = Organization.objects.order_by("pk").first()
    url = f"/admin/tenancy/organization/{organization.pk}/change/"
    before = organization.notification_emails
    long_address = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"  # over the API's 254 characters
    response = staff.post(url, {**form_values(staff, url), "notification_emails": long_address})
    assert response.status_code == 200 and b'id="id_notification_emails_error"' in response.content
    organization.refresh_from_db()
    assert organization.notification_emails == before


def test_a_new_organization_s_notification_emails_are_recorded_too(staff):
    from events.models import Event
    from tenancy.models import Organization

    values = form_values(staff, "/admin/tenancy/organization/add/")
    values.update(slug="third", name="Third", default_currency="EUR", default_time_zone="Europe/Berlin")
    response = staff.post("/admin/tenancy/organization/add/", {**values, "notification_emails": "ops@example.com"})
    assert response.status_code == 302, response.content.decode()[:2000]
    organization = Organization.objects.get(slug="third")
    assert organization.notification_emails == ["ops@example.com"]
    assert Event.objects.filter(type="organization.updated", organization=organization).exists()


@pytest.mark.parametrize("name", ["Acme\x07", "Acme\u2028Ltd", "\u202eevil", "Acme\tLtd"])
def test_a_counterparty_name_the_api_refuses_is_refused_on_the_form(staff, name):
    # Found on the counterparty's page: its admin form was the model's own, not the API's, so a
    # name with a control character, a line separator or a bidi override (each a 422 from
    # POST/PATCH /counterparties) was saved and shown in every list, CSV and e-mail after.
    from contracts.models import Counterparty
    from events.models import Event

    counterparty = Counterparty.objects.order_by("pk").first()
    url = f"/admin/contracts/counterparty/{counterparty.pk}/change/"
    events = Event.objects.count()
    response = staff.post(url, {**form_values(staff, url), "name": name})
    assert response.status_code == 200 and b'id="id_name_error"' in response.content
    counterparty.refresh_from_db()
    assert counterparty.name != name and Event.objects.count() == events
    add = "/admin/contracts/counterparty/add/"
    values = {**form_values(staff, add), "organization": counterparty.organization_id, "kind": counterparty.kind}
    assert staff.post(add, {**values, "name": name}).status_code == 200
    assert not Counterparty.objects.filter(name=name).exists()


def test_a_counterparty_saved_in_the_admin_is_written_as_the_api_writes_it(staff):
    from contracts.models import Counterparty
    from events.models import Event

    counterparty = Counterparty.objects.order_by("pk").first()
    url = f"/admin/contracts/counterparty/{counterparty.pk}/change/"
    assert staff.post(url, {**form_values(staff, url), "name": "Acme Renamed"}).status_code == 302
    counterparty.refresh_from_db()
    assert counterparty.name == "Acme Renamed"
    assert Event.objects.filter(type="counterparty.updated", object_id=counterparty.pk).exists()


@pytest.mark.django_db
def test_the_contract_page_reads_its_approvals_and_terms_in_a_fixed_number_of_queries(demo_staff):
    # Found by the tenth round's admin sweep: each approval row looked its approver (and amendment)
    # up, each term version row its amendment.
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contracts.models import Contract, ContractApproval

    contract = Contract.objects.get(reference="DEMO-SC-001")
    url = f"/admin/contracts/contract/{contract.pk}/change/"

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert demo_staff.get(url).status_code == 200
        return len(captured)

    queries()  # the first request also fills caches (content types, the session)
    before = queries()
    users = get_user_model()
    for n in range(4):
        approver = users.objects.create_user(f"approver-{n}", password="x")
        ContractApproval.objects.create(
            organization=contract.organization,
            contract=contract,
            approval_round=90 + n,
            approver=approver,
            decision=ContractApproval.Decision.REJECTED,
            decided_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    assert queries() == before


@pytest.mark.parametrize("text", ["Demo\x07", "Demo\u2028Field", "\u202eDemo", "Demo\u2066x"])
def test_an_organization_name_and_a_webhook_description_refuse_what_one_line_text_refuses(staff, text):
    # Regression sweep of the tenth round: two admin forms that are no API's (the organization has no
    # REST write; the webhook's form checks url and event types only) saved a name or description
    # with a control character, a line separator or a bidi override, which every one-line field of
    # the API refuses; the organization's name is in every e-mail's subject and sender line.
    from notifications.models import WebhookEndpoint
    from tenancy.models import Organization
    from tests.notifications.test_webhooks_api import make_endpoint

    organization = Organization.objects.order_by("pk").first()
    url = f"/admin/tenancy/organization/{organization.pk}/change/"
    response = staff.post(url, {**form_values(staff, url), "name": text})
    assert response.status_code == 200 and b'id="id_name_error"' in response.content
    organization.refresh_from_db()
    assert organization.name != text

    endpoint = make_endpoint(organization)
    url = f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/"
    response = staff.post(url, {**form_values(staff, url), "description": text})
    assert response.status_code == 200 and b'id="id_description_error"' in response.content, response.content[:3000]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).description != text


@pytest.mark.parametrize(
    "hours",
    [
        '[{"weekday": 1, "start": "08:00", "end": "17:00", "end": "12:00"}]',  # in an array
        '[{"weekday": 1, "weekday": 2, "start": "08:00", "end": "17:00"}]',
    ],
)
def test_a_json_key_given_twice_on_an_admin_form_is_an_error_on_the_field(staff, hours):
    # Regression sweep of the tenth round: REST and GraphQL refuse a key twice in one object (a reader
    # taking the first value would judge another calendar), the admin's JSON fields kept the last.
    from events.models import Event
    from slas.models import Calendar

    calendar = Calendar.objects.order_by("pk").first()
    before, events = calendar.hours, Event.objects.count()
    url = f"/admin/slas/calendar/{calendar.pk}/change/"
    response = staff.post(url, {**form_values(staff, url), "hours": hours})
    assert response.status_code == 200 and b'id="id_hours_error"' in response.content
    assert b"appears twice in one object" in response.content
    calendar.refresh_from_db()
    assert calendar.hours == before and Event.objects.count() == events

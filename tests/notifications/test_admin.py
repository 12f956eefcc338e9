"""The admin screens for endpoints, deliveries and e-mails; the organization's notification
e-mails edited in the admin."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from contracts.services import create_counterparty
from events.models import Event
from notifications.models import EmailNotification, WebhookDelivery, WebhookEndpoint

from .conftest import PUBLIC_V4
from .test_webhooks_api import make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "secret-password")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outbox(org, dns):
    dns["hooks.example.com"] = [PUBLIC_V4]
    endpoint = make_endpoint(org)
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    event = Event.objects.get(type="counterparty.created")
    email = EmailNotification.objects.create(
        organization=org, event=event, kind="breach", recipients=["ops@example.com"], next_attempt_at=timezone.now()
    )
    return endpoint, WebhookDelivery.objects.get(), email


def test_list_and_change_pages_render_without_the_secret(staff, outbox):
    endpoint, delivery, email = outbox
    for url in (
        "/admin/notifications/webhookendpoint/",
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
        "/admin/notifications/webhookdelivery/",
        f"/admin/notifications/webhookdelivery/{delivery.pk}/change/",
        "/admin/notifications/emailnotification/",
        f"/admin/notifications/emailnotification/{email.pk}/change/",
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        assert endpoint.secret not in response.content.decode(), url
    page = staff.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert delivery.webhook_id in page  # the latest deliveries inline


def test_disable_and_enable_go_through_the_service(staff, outbox):
    endpoint, delivery, _ = outbox
    url = "/admin/notifications/webhookendpoint/"
    staff.post(url, {"action": "disable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.active is False and Event.objects.filter(type="webhook.disabled").exists()
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    staff.post(url, {"action": "enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.active is True


def test_editing_an_endpoint_records_an_event(staff, outbox):
    endpoint, _, _ = outbox
    response = staff.post(
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
        {
            "url": endpoint.url,
            "event_types": '["*"]',
            "description": "Dispatch",
            "active": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
            "deliveries-MIN_NUM_FORMS": "0",
            "deliveries-MAX_NUM_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint.refresh_from_db()
    assert endpoint.description == "Dispatch"
    event = Event.objects.get(type="webhook.updated")
    assert event.payload["changes"]["description"] == {"before": "", "after": "Dispatch"}


def test_adding_an_endpoint_checks_it_and_shows_the_secret_once(staff, org, dns):
    dns["hooks.example.com"] = [PUBLIC_V4]
    dns["intranet.example.com"] = ["10.1.1.1"]
    url = "/admin/notifications/webhookendpoint/add/"
    form = {"organization": org.pk, "description": "Dispatch", "active": "on"}
    bad = staff.post(url, {**form, "url": "https://intranet.example.com/", "event_types": '["Breach"]'})
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "10.1.1.1 is not a public address" in page and "Not an event type pattern" in page
    assert not WebhookEndpoint.objects.exists()
    good = staff.post(url, {**form, "url": "https://hooks.example.com/in", "event_types": '["breach.*"]'}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.organization, endpoint.event_types, endpoint.active) == (org, ["breach.*"], True)
    assert f"shown only now: {endpoint.secret}" in good.content.decode()
    assert Event.objects.get(type="webhook.created").object_id == endpoint.pk
    assert (
        endpoint.secret not in staff.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    )


def test_enable_refuses_a_url_that_is_no_longer_allowed(staff, outbox, dns):
    endpoint, _, _ = outbox
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    dns["hooks.example.com"] = ["192.168.0.9"]
    response = staff.post(
        "/admin/notifications/webhookendpoint/", {"action": "enable", "_selected_action": [endpoint.pk]}, follow=True
    )
    assert "192.168.0.9 is not a public address" in response.content.decode()
    assert WebhookEndpoint.objects.get().active is False


def test_rotate_and_redeliver_actions(staff, outbox):
    endpoint, delivery, _ = outbox
    old = endpoint.secret
    response = staff.post(
        "/admin/notifications/webhookendpoint/",
        {"action": "rotate_secrets", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert f"shown only now: {endpoint.secret}" in response.content.decode()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    staff.post("/admin/notifications/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_redeliver_says_why_a_delivery_was_refused_and_goes_on_but_never_hides_a_bug(staff, outbox, monkeypatch):
    """A refusal (a disabled endpoint, a delivery in flight) is a warning per delivery; anything else
    is a server error, as everywhere else. Before, every exception, a programming error or a lost
    database included, became a yellow line naming the exception's text."""
    endpoint, delivery, _ = outbox
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    page = staff.post(
        "/admin/notifications/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}, follow=True
    ).content.decode()
    assert "The endpoint is disabled: enable it" in page and "0 deliveries due again now." in page
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("notifications.services.redeliver", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        staff.post("/admin/notifications/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]})


def test_organization_notification_emails_in_the_admin(staff, org):
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    page = staff.get(url).content.decode()
    assert "notification_emails" in page
    form = {
        "slug": org.slug,
        "name": org.name,
        "default_currency": org.default_currency,
        "default_time_zone": org.default_time_zone,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    bad = staff.post(url, {**form, "notification_emails": "ops@example.com\nnot an address"})
    assert bad.status_code == 200 and "is not an e-mail address" in bad.content.decode()
    emptied = staff.post(url, {**form, "notification_emails": ""})
    assert emptied.status_code == 302, emptied.content.decode()[:3000]
    org.refresh_from_db()
    assert org.notification_emails == []
    good = staff.post(url, {**form, "notification_emails": "ops@example.com\r\nboss@example.com, ops@example.com"})
    assert good.status_code == 302, good.content.decode()[:3000]
    org.refresh_from_db()
    assert org.notification_emails == ["ops@example.com", "boss@example.com"]
    assert "ops@example.com\nboss@example.com</textarea>" in staff.get(url).content.decode()


def test_the_admin_takes_no_more_event_types_than_the_api(staff, org, dns):
    # Found by an outside sweep: the admin stored 51 patterns; the API refuses more than 50.
    dns["hooks.example.com"] = [PUBLIC_V4]
    url = "/admin/notifications/webhookendpoint/add/"
    form = {"organization": org.pk, "url": "https://hooks.example.com/in", "active": "on"}
    patterns = [f"breach.x{i}" for i in range(51)]
    response = staff.post(url, {**form, "event_types": json.dumps(patterns)})
    assert response.status_code == 200
    assert "Ensure this field has no more than 50 elements." in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    assert staff.post(url, {**form, "event_types": json.dumps(patterns[:50])}).status_code == 302
    assert len(WebhookEndpoint.objects.get().event_types) == 50

"""Webhook endpoints (create, update, delete, rotate the secret, ping), redeliveries, and the
organization's notification e-mails. Each write records one event in its transaction."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, Unprocessable
from events.services import apply_changes, record_event, snapshot
from tenancy.models import Organization

from .delivery import disable_endpoint
from .models import OutboxRow, WebhookDelivery, WebhookEndpoint
from .signing import new_secret
from .targets import UnsafeTarget, check_url

ROTATION_OVERLAP = dt.timedelta(hours=24)
SNAPSHOT = ["url", "description", "event_types", "active"]


def check_endpoint_url(url: str) -> None:
    """422 on `url` unless it may be delivered to (https, every address global)."""
    try:
        check_url(url)
    except UnsafeTarget as exc:
        raise Unprocessable("The webhook URL is not allowed.", {"url": [str(exc)]}) from None


@transaction.atomic
def create_endpoint(*, organization: Organization, actor, data: dict) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (read it once from `endpoint.secret`)."""
    check_endpoint_url(data["url"])
    endpoint = WebhookEndpoint.objects.create(organization=organization, secret=new_secret(), **data)
    record_event(type="webhook.created", obj=endpoint, actor=actor, payload=snapshot(endpoint, SNAPSHOT))
    return endpoint


@transaction.atomic
def update_endpoint(*, instance: WebhookEndpoint, actor, data: dict, now: dt.datetime | None = None) -> WebhookEndpoint:
    """Change the URL, description, event types; `active` false disables it (its pending
    deliveries fail), true enables it again (the failure window starts afresh)."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=instance.pk)
    if "url" in data and data["url"] != endpoint.url:
        check_endpoint_url(data["url"])
    data = dict(data)
    activate = data.pop("active", None)
    changes = apply_changes(endpoint, data)
    if activate is False and endpoint.active:
        # Its own event (`webhook.disabled`, with the actor), as when the worker disables it.
        disable_endpoint(endpoint, reason="Disabled by an administrator.", now=now, actor=actor)
    elif activate is True and not endpoint.active:
        check_endpoint_url(endpoint.url)  # enabling is a save: the URL must still be allowed
        endpoint.active, endpoint.failing_since = True, None
        endpoint.disabled_at, endpoint.disabled_reason = None, ""
        changes["active"] = {"before": False, "after": True}
    if changes:
        endpoint.save()
        record_event(type="webhook.updated", obj=endpoint, actor=actor, payload={"changes": changes}, occurred_at=now)
    return endpoint


@transaction.atomic
def delete_endpoint(*, instance: WebhookEndpoint, actor) -> None:
    """Delete an endpoint and its deliveries (the events stay in the log)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=instance.pk)
    record_event(type="webhook.deleted", obj=endpoint, actor=actor, payload=snapshot(endpoint, SNAPSHOT))
    endpoint.delete()


@transaction.atomic
def rotate_secret(*, endpoint: WebhookEndpoint, actor, now: dt.datetime | None = None) -> WebhookEndpoint:
    """A new secret; the one it replaces keeps signing beside it for 24 hours (a secret older
    than that is dropped at once)."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    record_event(
        type="webhook.secret_rotated",
        obj=endpoint,
        actor=actor,
        payload={"previous_secret_expires_at": endpoint.previous_secret_expires_at},
        occurred_at=now,
    )
    return endpoint


@transaction.atomic
def ping_endpoint(*, endpoint: WebhookEndpoint, actor, now: dt.datetime | None = None) -> WebhookDelivery:
    """A `webhook.ping` event and its delivery to this endpoint only, due at once."""
    now = now or timezone.now()
    event = record_event(type="webhook.ping", obj=endpoint, actor=actor, payload={"url": endpoint.url}, occurred_at=now)
    return WebhookDelivery.objects.create(
        organization_id=endpoint.organization_id, endpoint=endpoint, event=event, next_attempt_at=now
    )


@transaction.atomic
def redeliver(*, delivery: WebhookDelivery, actor, now: dt.datetime | None = None) -> WebhookDelivery:
    """Send a delivery again, at once, under the same `webhook-id`; the schedule starts afresh."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if not endpoint.active:
        raise Conflict("The endpoint is disabled: enable it (PATCH active) before redelivering.")
    if delivery.lease_until is not None and delivery.lease_until > now:
        raise Conflict("The delivery is being attempted right now; try again in a moment.")
    delivery.status = OutboxRow.Status.PENDING
    delivery.schedule_step = 0
    delivery.next_attempt_at = now
    delivery.save(update_fields=["status", "schedule_step", "next_attempt_at", "updated_at"])
    record_event(
        type="webhook.redelivery_requested",
        obj=delivery,
        actor=actor,
        payload={"webhook": endpoint.pk, "event": delivery.event_id},
        occurred_at=now,
    )
    return delivery


@transaction.atomic
def update_notification_settings(*, organization: Organization, actor, data: dict) -> Organization:
    """The organization's `notification_emails` (who hears about breaches and expiring contracts)."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    changes = apply_changes(organization, data)
    if changes:
        organization.save()
        # The organization is the tenant itself: the event is about it, in it.
        subject = SimpleNamespace(organization_id=organization.pk, pk=organization.pk)
        record_event(
            type="organization.updated",
            obj=subject,
            actor=actor,
            object_type="organization",
            payload={"changes": changes},
        )
    return organization

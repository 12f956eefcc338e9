"""Webhook endpoints (create, update, delete, rotate the secret, ping), redeliveries, and the
organization's notification e-mails. Each write records one event in its transaction."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, NotFound, Unprocessable
from events.feed import locked
from events.models import Event
from events.patterns import types_q
from events.services import apply_changes, record_event, snapshot
from tenancy.models import Organization

from .delivery import disable_endpoint
from .models import OutboxRow, WebhookDelivery, WebhookEndpoint
from .outbox import DIRECT_ONLY, collapse_stars
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
def create_endpoint(*, organization: Organization, actor, data: dict, url_checked: bool = True) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (read it once from `endpoint.secret`). `url_checked=False`:
    an operator's own URL, not a tenant's (the demo's receiver on 127.0.0.1); the worker still checks
    it before each attempt, as every endpoint's."""
    if url_checked:
        check_endpoint_url(data["url"])
    endpoint = WebhookEndpoint.objects.create(organization=organization, secret=new_secret(), **data)
    record_event(type="webhook.created", obj=endpoint, actor=actor, payload=snapshot(endpoint, SNAPSHOT))
    return endpoint


@transaction.atomic
def update_endpoint(*, instance: WebhookEndpoint, actor, data: dict, now: dt.datetime | None = None) -> WebhookEndpoint:
    """Change the URL, description, event types; `active` false disables it (its pending
    deliveries fail), true enables it again (the failure window starts afresh)."""
    now = now or timezone.now()
    endpoint = locked(WebhookEndpoint, instance, order=False, no_key=True)  # the worker's order: row, then event
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
    endpoint = locked(WebhookEndpoint, instance, order=False, no_key=True)  # the worker's order: row, then event
    record_event(type="webhook.deleted", obj=endpoint, actor=actor, payload=snapshot(endpoint, SNAPSHOT))
    endpoint.delete()


@transaction.atomic
def rotate_secret(*, endpoint: WebhookEndpoint, actor, now: dt.datetime | None = None) -> WebhookEndpoint:
    """A new secret; the one it replaces keeps signing beside it for 24 hours (a secret older
    than that is dropped at once)."""
    now = now or timezone.now()
    endpoint = locked(WebhookEndpoint, endpoint, order=False, no_key=True)
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
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=delivery.endpoint_id).first()
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
    if endpoint is None or delivery is None:  # deleted meanwhile (an endpoint takes its deliveries)
        raise NotFound()
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


# Events one call may queue: a day's worth for a busy endpoint; `until` pages through more.
MAX_REDELIVER_EVENTS = 1000


@transaction.atomic
def redeliver_events(
    *,
    endpoint: WebhookEndpoint,
    actor,
    since: int | None = None,
    until: int | None = None,
    event_ids: list[int] | None = None,
    now: dt.datetime | None = None,
) -> list[int]:
    """Queue the endpoint's events after `since` (up to `until`), or the events `event_ids`, due
    at once: what it missed while disabled (no delivery was written then) or what failed. An
    event of the endpoint's subscribed types, of its organization, not about the endpoint itself
    and not a ping. Events without a delivery get one; a failed delivery starts afresh under its
    `webhook-id`; a delivered or pending one is left as it is. The ids queued, oldest first."""
    now = now or timezone.now()
    endpoint = locked(WebhookEndpoint, endpoint, order=False, no_key=True)
    if not endpoint.active:
        raise Conflict("The endpoint is disabled: enable it (PATCH active) before redelivering.")
    events = (
        Event.objects.filter(organization_id=endpoint.organization_id)
        .filter(types_q([collapse_stars(p) for p in endpoint.event_types]))
        .exclude(type__in=DIRECT_ONLY)
        .exclude(object_type="webhookendpoint", object_id=endpoint.pk)
        .exclude(object_type="webhookdelivery", payload__webhook=endpoint.pk)
    )
    if event_ids is not None:
        wanted = set(event_ids)
        ids = list(events.filter(pk__in=wanted).order_by("id").values_list("id", flat=True))
        missing = sorted(wanted - set(ids))
        if missing:
            raise Unprocessable(
                "Not events of this endpoint.",
                {"event_ids": [f"No event of this endpoint's event types: {', '.join(map(str, missing))}."]},
            )
    else:
        events = events.filter(id__gt=since) if until is None else events.filter(id__gt=since, id__lte=until)
        ids = list(events.order_by("id").values_list("id", flat=True)[: MAX_REDELIVER_EVENTS + 1])
        if len(ids) > MAX_REDELIVER_EVENTS:
            last = ids[MAX_REDELIVER_EVENTS - 1]
            raise Unprocessable(
                f"More than {MAX_REDELIVER_EVENTS} events match; redeliver them in parts.",
                {"since": [f"At most {MAX_REDELIVER_EVENTS} events a call: send until={last}, then since={last}."]},
            )
    existing = dict(
        WebhookDelivery.objects.filter(endpoint=endpoint, event_id__in=ids).values_list("event_id", "status")
    )
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                organization_id=endpoint.organization_id, endpoint=endpoint, event_id=pk, next_attempt_at=now
            )
            for pk in ids
            if pk not in existing
        ],
        ignore_conflicts=True,  # a concurrent redelivery of the same events wrote them first
    )
    failed = [pk for pk, status in existing.items() if status == OutboxRow.Status.FAILED]
    WebhookDelivery.objects.filter(endpoint=endpoint, event_id__in=failed, status=OutboxRow.Status.FAILED).update(
        status=OutboxRow.Status.PENDING, schedule_step=0, next_attempt_at=now, updated_at=now
    )
    queued = [pk for pk in ids if pk not in existing or pk in set(failed)]
    if queued:
        record_event(
            type="webhook.redelivery_requested",
            obj=endpoint,
            actor=actor,
            payload={"webhook": endpoint.pk, "since": since, "until": until, "events": len(queued)},
            occurred_at=now,
        )
    return queued


@transaction.atomic
def update_notification_settings(*, organization: Organization, actor, data: dict) -> Organization:
    """The organization's `notification_emails` (who hears about breaches and expiring contracts)."""
    # FOR NO KEY UPDATE: every row written under the event order names its organization, and its
    # foreign-key check at commit would wait for this lock while this waits for the order (events.feed).
    organization = Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)
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


def prune_outbox(*, before: dt.datetime, batch_size: int = 1000, log=None) -> dict[str, int]:
    """Delete the webhook deliveries (with their attempts) and the e-mails that are done (succeeded or
    failed for good) and last changed before `before`; a pending row is never touched, nor an event (the
    audit trail, and what a stream resumes from and a redelivery reads). Walks each table by id, a batch
    per transaction, and stops at the first row created after `before` (a row changes only after it is
    created), so a run reads the old rows and not the whole table. Safe beside the worker and a second
    run: each batch locks its rows (skipping those another holds) and checks them again under the lock.
    Returns the counts deleted: `webhook_deliveries`, `webhook_attempts`, `emails`."""
    from .models import EmailNotification, WebhookAttempt

    done = [OutboxRow.Status.SUCCEEDED, OutboxRow.Status.FAILED]
    counts = {"webhook_deliveries": 0, "webhook_attempts": 0, "emails": 0}
    for model, name in ((WebhookDelivery, "webhook_deliveries"), (EmailNotification, "emails")):
        last = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model.objects.filter(pk__gt=last)
                    .order_by("pk")
                    .values_list("pk", "status", "updated_at", "created_at")[:batch_size]
                )
                if not rows:
                    break
                last = rows[-1][0]
                old = [pk for pk, status, updated_at, _ in rows if status in done and updated_at < before]
                if old:
                    locked = list(
                        model.objects.select_for_update(skip_locked=True)
                        .filter(pk__in=old, status__in=done, updated_at__lt=before)
                        .values_list("pk", flat=True)
                    )
                    _, deleted = model.objects.filter(pk__in=locked).delete()
                    counts[name] += deleted.get(model._meta.label, 0)
                    counts["webhook_attempts"] += deleted.get(WebhookAttempt._meta.label, 0)
            if log and old:
                log(f"{name.replace('_', ' ')}: {counts[name]} deleted (up to id {last})")
            if rows[-1][3] >= before:
                break
    return counts

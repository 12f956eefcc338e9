"""Writing the outbox: the reaction to every write of events (registered in NotificationsConfig).

Called with the events of one write (one, or a scan's whole batch), inside its transaction, so
the rows commit or roll back with the events. Set-based: one query reads the active endpoints of
the batch's organizations, one INSERT writes every delivery, and (only when the batch holds
breaches or reminders) one query reads the organizations' `notification_emails` and one INSERT
writes the e-mails. Nothing is sent here; `deliver_notifications` sends.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cache

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from config.bulk_insert import builder, bulk_insert
from tenancy.models import Organization

from .emails import REGISTERED
from .models import EmailNotification, WebhookDelivery, WebhookEndpoint

# Delivered only to the endpoint that asked (POST /webhooks/{id}/ping), never fanned out.
DIRECT_ONLY = frozenset({"webhook.ping"})

# An event type pattern: lower-case words joined by dots, `*` for any run of characters.
PATTERN = re.compile(r"^[a-z0-9_.*]{1,64}$")

EMAIL_KINDS = {
    "sla.escalation": EmailNotification.Kind.ESCALATION,
    "breach.detected": EmailNotification.Kind.BREACH,
    "contract.expiring": EmailNotification.Kind.CONTRACT_REMINDER,
    "contract.notice_due": EmailNotification.Kind.CONTRACT_REMINDER,
}


def invalid_patterns(patterns: list[str]) -> list[str]:
    """The entries of an endpoint's `event_types` that are not patterns (for a 422 or a form error)."""
    return [p for p in patterns if not isinstance(p, str) or not PATTERN.match(p)]


def pattern_error(patterns: list[str]) -> str:
    return f"Not an event type pattern (lower-case letters, digits, _, . and *): {', '.join(map(str, patterns))}"


_STARS = re.compile(r"\*{2,}")


def collapse_stars(pattern: str) -> str:
    """A pattern with each run of `*` as one `*` (the same match, less work for the database)."""
    return _STARS.sub("*", pattern)


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to `patterns` receives events of `event_type`."""
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def email_addresses(values) -> list[str]:
    """The valid e-mail addresses among `values`, in order, without repeats (an escalation
    level's `notify` may name people or channels too; only addresses are e-mailed)."""
    found = []
    for value in values or []:
        if not isinstance(value, str) or value in found:
            continue
        try:
            validate_email(value)
        except ValidationError:
            continue
        found.append(value)
    return found


def write_outbox(events: list) -> None:
    now = timezone.now()
    _write_deliveries(events, now)
    _write_emails(events, now)


def _write_deliveries(events, now) -> None:
    organizations = {event.organization_id for event in events}
    endpoints = list(
        WebhookEndpoint.objects.filter(organization_id__in=organizations, active=True).values_list(
            "pk", "organization_id", "event_types"
        )
    )
    if not endpoints:
        return
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(organization_id=event.organization_id, endpoint_id=pk, event_id=event.pk, next_attempt_at=now)
        for event in events
        if event.type not in DIRECT_ONLY
        for pk, organization_id, patterns in endpoints
        if organization_id == event.organization_id and matches(patterns, event.type) and not _about(event, pk)
    )


def _about(event, endpoint_id: int) -> bool:
    """An endpoint is not sent the events about itself (its creation, updates, rotations) or
    about its own deliveries (a redelivery asked for)."""
    if event.object_type == "webhookendpoint":
        return event.object_id == endpoint_id
    return event.object_type == "webhookdelivery" and event.payload.get("webhook") == endpoint_id


@cache
def _new_email():
    """`EmailNotification(organization_id=, event_id=, kind=, recipients=, next_attempt_at=)`, faster
    (a scan's batch writes one per escalation)."""
    return builder(EmailNotification, ("organization_id", "event_id", "kind", "recipients", "next_attempt_at"))


def _write_emails(events, now) -> None:
    rows = [
        EmailNotification(
            organization_id=event.organization_id,
            event_id=event.pk,
            kind=REGISTERED[event.type].kind,
            recipients=recipients,
            next_attempt_at=now,
        )
        for event in events
        if event.type in REGISTERED and (recipients := email_addresses(REGISTERED[event.type].recipients(event)))
    ]
    wanted = [event for event in events if event.type in EMAIL_KINDS]
    if not wanted:
        bulk_insert(EmailNotification, rows)
        return
    configured = {}
    if any(event.type != "sla.escalation" for event in wanted):
        configured = dict(
            Organization.objects.filter(pk__in={e.organization_id for e in wanted}).values_list(
                "pk", "notification_emails"
            )
        )
    new = _new_email()
    levels = {}  # a batch's escalations name the same few levels' `notify` lists: each checked once
    for event in wanted:
        if event.type == "sla.escalation":
            notify = event.payload.get("notify")
            key = tuple(notify) if isinstance(notify, list) and all(type(v) is str for v in notify) else None
            recipients = levels.get(key) if key is not None else None
            if recipients is None:
                recipients = email_addresses(notify)
                if key is not None:
                    levels[key] = recipients
        else:
            recipients = email_addresses(configured.get(event.organization_id))
        if recipients:
            rows.append(new(event.organization_id, event.pk, EMAIL_KINDS[event.type], recipients, now))
    bulk_insert(EmailNotification, rows)

"""Webhook endpoints and the outbox: webhook deliveries and e-mails, written in the same
transaction as the event they carry and sent by `deliver_notifications` (DESIGN §7a)."""

from __future__ import annotations

from django.db import models

from events.models import Event
from tenancy.models import TenantModel


class WebhookEndpoint(TenantModel):
    """A receiver of signed deliveries (Standard Webhooks) for the event types it subscribes to."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=255, blank=True, default="")
    # Event type patterns; `*` matches any run of characters ("breach.*", "*").
    event_types = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    # `whsec_` + base64 of the key. The previous key keeps signing (beside the new one) until
    # `previous_secret_expires_at` after a rotation.
    secret = models.CharField(max_length=128)
    previous_secret = models.CharField(max_length=128, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last success: failing for the whole window disables it.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "active"], name="webhook_org_active"),
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "id"], name="webhook_org_id"),
        ]

    def __str__(self) -> str:
        return self.url


class OutboxRow(TenantModel):
    """What the worker claims: a due time, a lease, a count of attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Index into the retry schedule of the next attempt (a redelivery starts the schedule again).
    schedule_step = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker's claim: nobody else attempts the row before `lease_until`.
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class WebhookDelivery(OutboxRow):
    """One event for one endpoint; retried on the schedule under one `webhook-id`."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The last response body, truncated to 1 KB.
    response_excerpt = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_endpoint")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_due"),
            # Issue 15: the list's filter (organization and endpoint) and default sort: its count and
            # a page's ids come off the index alone (no heap visit, no sort).
            models.Index(fields=["organization", "endpoint", "id"], name="delivery_org_endpoint"),
        ]

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` header: the same for every attempt of this event to this endpoint."""
        return self.webhook_id_of(self.event_id, self.endpoint_id)

    @staticmethod
    def webhook_id_of(event_id: int, endpoint_id: int) -> str:
        return f"msg_{event_id}_{endpoint_id}"

    def __str__(self) -> str:
        return f"{self.webhook_id} ({self.status})"


class WebhookAttempt(TenantModel):
    """One attempt of a delivery, as it went: what the receiver answered, or why it failed."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_once_per_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


class EmailNotification(OutboxRow):
    """One e-mail about one event (an escalation level reached, a breach, an expiry reminder, a
    request to the counterparty to sign)."""

    class Kind(models.TextChoices):
        ESCALATION = "escalation"
        BREACH = "breach"
        CONTRACT_REMINDER = "contract_reminder"
        SIGNATURE_REQUEST = "signature_request"

    # Its unique constraint `email_once_per_event` is the event's index (no second one to write).
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    recipients = models.JSONField(default=list)
    # What the mail server answered each recipient it is done with: "" took it, else its permanent
    # refusal ("550 ..."). A recipient it deferred (4xx) is not here: the retry goes to those only.
    recipient_outcomes = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=255, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Once per event: an escalation event is written once per clock and level by the scan.
        constraints = [models.UniqueConstraint(fields=["event"], name="email_once_per_event")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="email_due")]

    def __str__(self) -> str:
        return f"{self.kind} e-mail for event {self.event_id} ({self.status})"

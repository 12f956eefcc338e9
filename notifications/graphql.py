"""GraphQL type of webhook endpoints (read: managers; write: admins, as REST)."""

from __future__ import annotations

from typing import Annotated, Union

import strawberry
import strawberry_django
from strawberry import auto

from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    filter_id,
    filter_input,
    nested_list,
    paged_list,
    require_role,
    resource_get,
    resource_list,
)
from config.graphql.errors import OperationError
from config.graphql.mutations import (
    API,
    answer,
    body_of,
    call_rest,
    child_path,
    delete_mutation,
    input_from_serializer,
    operation_error,
    pk_of,
    result_union,
    update_mutation,
)
from events.graphql import Event

from . import models
from .api import (
    NotificationSettingsSerializer,
    NotificationSettingsView,
    RedeliverEventsSerializer,
    WebhookDeliveryFilterSet,
    WebhookDeliveryViewSet,
    WebhookEndpointSerializer,
    WebhookEndpointViewSet,
)


@strawberry_django.type(models.WebhookAttempt, name="WebhookAttempt")
class WebhookAttempt(TenantType):
    read_role = WebhookDeliveryViewSet.read_role

    id: strawberry.ID
    number: auto
    attempted_at: auto
    http_status: auto
    duration_ms: auto
    error: auto
    response_excerpt: auto


@strawberry_django.type(models.WebhookDelivery, name="WebhookDelivery")
class WebhookDelivery(TenantType):
    rest_view = WebhookDeliveryViewSet
    Filters = filter_input(
        "WebhookDeliveryFilter",
        WebhookDeliveryFilterSet,
        extra={"webhook_id": (strawberry.ID, "Only this webhook's (REST: /webhooks/{id}/deliveries).")},
    )

    id: strawberry.ID
    webhook: Webhook = strawberry_django.field(field_name="endpoint")
    event: Event
    status: auto
    attempts: auto
    last_http_status: auto
    duration_ms: int | None = strawberry_django.field(field_name="last_duration_ms")
    next_attempt_at: auto
    response_excerpt: auto
    last_error: auto
    last_attempt_at: auto
    delivered_at: auto
    created_at: auto
    attempt_log: list[WebhookAttempt] = paged_list(description="Oldest first.")

    @strawberry_django.field(
        only=["id", "event_id", "endpoint_id"], description="The `webhook-id` header, the same on every attempt."
    )
    def webhook_id(self) -> str:
        return self.webhook_id

    @classmethod
    def filter_extra(cls, queryset, filters):
        webhook_id = getattr(filters, "webhook_id", None)
        return queryset if webhook_id is None else queryset.filter(endpoint_id=filter_id(webhook_id, "webhookId"))


@strawberry.type(description="Who is e-mailed about breach detections and contract expiry reminders (managers).")
class NotificationSettings:
    notification_emails: list[str]


@strawberry_django.type(models.WebhookEndpoint, name="Webhook")
class Webhook(TenantType):
    rest_view = WebhookEndpointViewSet
    read_role = "manager"

    id: strawberry.ID
    url: auto
    description: auto
    event_types: Json
    active: auto
    created_at: auto
    updated_at: auto
    disabled_at: auto
    disabled_reason: auto
    deliveries: list[WebhookDelivery] = nested_list(description="Its deliveries, newest first by default.")

    @strawberry_django.field(
        only=["id"],
        description="The signing secret: only in the answer of createWebhook "
        "and rotateWebhookSecret, null everywhere else.",
    )
    def secret(self) -> str | None:
        return getattr(self, "shown_secret", None)


@strawberry.type
class Query:
    webhook: Webhook = resource_get()
    webhooks: OffsetPaginated[Webhook] = resource_list()
    webhook_delivery: WebhookDelivery = resource_get()
    webhook_deliveries: OffsetPaginated[WebhookDelivery] = resource_list()

    @strawberry.field(description="REST GET /api/v1/notification_settings.")
    def notification_settings(self, info: strawberry.Info) -> NotificationSettings:
        context = require_role(info, NotificationSettingsView.read_role)
        return NotificationSettings(notification_emails=list(context.organization.notification_emails or []))


@strawberry.type(description="What redeliverWebhookEvents queued.")
class RedeliveryQueued:
    queued: int = strawberry.field(description="How many deliveries were queued.")
    event_ids: list[strawberry.ID] = strawberry.field(
        description="The events queued, oldest first (delivered or pending ones are not)."
    )


WebhookInput = input_from_serializer("WebhookInput", WebhookEndpointSerializer)
RedeliverEventsInput = input_from_serializer("RedeliverEventsInput", RedeliverEventsSerializer)
RedeliveryQueuedResult = result_union(RedeliveryQueued)
WebhookResult = result_union(Webhook)
WebhookDeliveryResult = result_union(WebhookDelivery)
NotificationSettingsInput = input_from_serializer("NotificationSettingsInput", NotificationSettingsSerializer)
NotificationSettingsResult = Annotated[
    Union[NotificationSettings, OperationError],  # noqa: UP007 (Annotated needs one Union object)
    strawberry.union("NotificationSettingsResult"),
]


def _with_secret(status: int, data):
    result = answer(models.WebhookEndpoint, status, data)
    if isinstance(result, models.WebhookEndpoint):
        result.shown_secret = data.get("secret")
    return result


@strawberry.type
class Mutation:
    update_webhook = update_mutation(Webhook, "Webhook", lambda pk: f"{API}/webhooks/{pk}", WebhookInput)
    delete_webhook = delete_mutation("Webhook", lambda pk: f"{API}/webhooks/{pk}")

    @strawberry.mutation(description="REST POST /api/v1/webhooks: the answer carries the secret, shown only now.")
    def create_webhook(self, info: strawberry.Info, input: WebhookInput) -> WebhookResult:
        return _with_secret(*call_rest(info, "POST", f"{API}/webhooks", body_of(input)))

    @strawberry.mutation(description="REST POST /api/v1/webhooks/{id}/ping: a signed webhook.ping now.")
    def ping_webhook(self, info: strawberry.Info, id: strawberry.ID) -> WebhookDeliveryResult:
        return answer(models.WebhookDelivery, *call_rest(info, "POST", f"{API}/webhooks/{pk_of(id)}/ping", {}))

    @strawberry.mutation(description="REST POST /api/v1/webhooks/{webhookId}/deliveries/{id}/redeliver.")
    def redeliver_webhook_delivery(self, info: strawberry.Info, id: strawberry.ID) -> WebhookDeliveryResult:
        path = child_path(info, models.WebhookDelivery, id, "deliveries", parent="endpoint_id", prefix="webhooks")
        return answer(models.WebhookDelivery, *call_rest(info, "POST", f"{path}/redeliver", {}))

    @strawberry.mutation(
        description="REST POST /api/v1/webhooks/{id}/redeliver: queue the endpoint's events after `since` "
        "(up to `until`), or `eventIds`: what it missed while disabled, or what failed (admins)."
    )
    def redeliver_webhook_events(
        self, info: strawberry.Info, id: strawberry.ID, input: RedeliverEventsInput
    ) -> RedeliveryQueuedResult:
        status, data = call_rest(info, "POST", f"{API}/webhooks/{pk_of(id)}/redeliver", body_of(input))
        if status >= 400:
            return operation_error(status, data)
        return RedeliveryQueued(queued=data["queued"], event_ids=[str(pk) for pk in data["event_ids"]])

    @strawberry.mutation(description="REST PATCH /api/v1/notification_settings (admins).")
    def update_notification_settings(
        self, info: strawberry.Info, input: NotificationSettingsInput
    ) -> NotificationSettingsResult:
        status, data = call_rest(info, "PATCH", f"{API}/notification_settings", body_of(input))
        if status >= 400:
            return operation_error(status, data)
        return NotificationSettings(notification_emails=data["notification_emails"])

    @strawberry.mutation(description="REST POST /api/v1/webhooks/{id}/rotate_secret.")
    def rotate_webhook_secret(self, info: strawberry.Info, id: strawberry.ID) -> WebhookResult:
        return _with_secret(*call_rest(info, "POST", f"{API}/webhooks/{pk_of(id)}/rotate_secret", {}))

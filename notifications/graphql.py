"""GraphQL type of webhook endpoints (read: managers; write: admins, as REST)."""

from __future__ import annotations

import strawberry
import strawberry_django
from strawberry import auto

from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    filter_input,
    order_input,
    resource_get,
    resource_list,
)
from config.graphql.mutations import (
    API,
    answer,
    body_of,
    call_rest,
    delete_mutation,
    input_from_serializer,
    pk_of,
    result_union,
    update_mutation,
)

from . import models
from .api import WebhookEndpointFilterSet, WebhookEndpointSerializer, WebhookEndpointViewSet


@strawberry_django.type(models.WebhookEndpoint, name="Webhook")
class Webhook(TenantType):
    rest_view = WebhookEndpointViewSet
    read_role = "manager"
    Filters = filter_input("WebhookFilter", WebhookEndpointFilterSet)
    Order = order_input("WebhookOrder", list(WebhookEndpointViewSet.sort_fields))

    id: strawberry.ID
    url: auto
    description: auto
    event_types: Json
    active: auto
    created_at: auto
    updated_at: auto
    disabled_at: auto
    disabled_reason: auto

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


WebhookInput = input_from_serializer("WebhookInput", WebhookEndpointSerializer)
WebhookResult = result_union(Webhook)


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

    @strawberry.mutation(description="REST POST /api/v1/webhooks/{id}/rotate_secret.")
    def rotate_webhook_secret(self, info: strawberry.Info, id: strawberry.ID) -> WebhookResult:
        return _with_secret(*call_rest(info, "POST", f"{API}/webhooks/{pk_of(id)}/rotate_secret", {}))

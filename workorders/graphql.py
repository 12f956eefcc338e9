"""GraphQL types of work orders, their holds and SLA clocks (DESIGN §7b)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from django.utils import timezone
from strawberry import auto

from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    filter_input,
    nested_list,
    order_input,
    resource_get,
    resource_list,
)
from config.graphql.mutations import API, create_mutation, input_from_serializer, update_mutation
from contracts.graphql import Contract
from slas.graphql import SlaRule

from . import models
from .api import WorkOrderFilterSet, WorkOrderSerializer, WorkOrderViewSet
from .clocks import shown_state

if TYPE_CHECKING:
    from breaches.graphql import Breach

BreachRef = Annotated["Breach", strawberry.lazy("breaches.graphql")]


def _now(info) -> dt.datetime:
    # One instant per request, so every clock of a response is read at the same time (as REST).
    context = info.context
    if getattr(context, "now", None) is None:
        context.now = timezone.now()
    return context.now


@strawberry_django.type(models.Hold, name="Hold")
class Hold(TenantType):
    id: strawberry.ID
    kind: auto
    start: auto
    end: auto
    reason: auto


@strawberry_django.type(models.SlaClock, name="SlaClock")
class SlaClock(TenantType):
    id: strawberry.ID
    work_order: WorkOrder
    rule: SlaRule = strawberry_django.field(name="slaRule")
    metric: auto
    target_minutes: auto
    started_at: auto
    due_at: auto
    stopped_at: auto
    escalations_sent: auto
    updated_at: auto
    breach: BreachRef | None

    @strawberry_django.field(
        only=["state", "due_at", "stopped_at"],
        description="Running, met, breached or cancelled; "
        "a clock still running after its due time is breached, even before the scan recorded it.",
    )
    def state(self, info: strawberry.Info) -> str:
        return shown_state(self, _now(info))


@strawberry_django.type(models.WorkOrder, name="WorkOrder")
class WorkOrder(TenantType):
    rest_view = WorkOrderViewSet
    Filters = filter_input("WorkOrderFilter", WorkOrderFilterSet)
    Order = order_input("WorkOrderOrder", list(WorkOrderViewSet.sort_fields))

    id: strawberry.ID
    source: auto
    source_id: str = strawberry_django.field(name="sourceID")
    reference: auto
    summary: auto
    contract: Contract | None
    priority: auto
    status: auto
    reported_at: auto
    responded_at: auto
    on_site_at: auto
    resolved_at: auto
    status_changed_at: auto
    location: Json | None
    sla_tracked: auto
    created_at: auto
    updated_at: auto
    holds: list[Hold] = strawberry_django.field(pagination=True)
    sla_clocks: list[SlaClock] = strawberry_django.field(pagination=True)
    breaches: list[BreachRef] = nested_list()


@strawberry.type
class Query:
    work_order: WorkOrder = resource_get()
    work_orders: OffsetPaginated[WorkOrder] = resource_list()


# --- mutations: the REST endpoints, typed ---------------------------------------------------------

WorkOrderInput = input_from_serializer("WorkOrderInput", WorkOrderSerializer)


def _work_orders(pk: str = "") -> str:
    return f"{API}/work_orders/{pk}".rstrip("/")


@strawberry.type
class Mutation:
    create_work_order = create_mutation(WorkOrder, "WorkOrder", _work_orders(), WorkOrderInput)
    update_work_order = update_mutation(WorkOrder, "WorkOrder", _work_orders, WorkOrderInput)

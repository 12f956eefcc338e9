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
    nested_list,
    paged_list,
    resource_get,
    resource_list,
)
from config.graphql.enums import enum_of
from config.graphql.mutations import API, create_mutation, delete_mutation, input_from_serializer, update_mutation
from contracts.graphql import Asset, Contract, Counterparty
from slas.graphql import SlaRule
from slas.models import Calendar

from . import models
from .api import WorkOrderSerializer, WorkOrderViewSet
from .clocks import clock_minutes, live_elapsed_seconds, shown_state
from .rules_api import ContractRuleSerializer, ContractRuleViewSet

if TYPE_CHECKING:
    from breaches.graphql import Breach
    from visits.graphql import VisitPlan

BreachRef = Annotated["Breach", strawberry.lazy("breaches.graphql")]
VisitPlanRef = Annotated["VisitPlan", strawberry.lazy("visits.graphql")]


def _now(info) -> dt.datetime:
    # One instant per request, so every clock of a response is read at the same time (as REST).
    context = info.context
    if getattr(context, "now", None) is None:
        context.now = timezone.now()
    return context.now


SlaClockState = enum_of(models.SlaClock, "state")


def _elapsed_seconds(clock_row, info) -> int:
    # Once per clock and request (both minute fields read it), at the request's one instant.
    cache = info.context.__dict__.setdefault("clock_elapsed", {})
    if clock_row.pk not in cache:
        holds = list(clock_row.work_order.holds.all())
        cache[clock_row.pk] = live_elapsed_seconds(clock_row, holds, _now(info))
    return cache[clock_row.pk]


_FIGURE_HINTS = {
    # What `live_elapsed_seconds` reads: the clock, its rule's pause terms and its whole calendar.
    "only": [
        "state",
        "started_at",
        "stopped_at",
        "elapsed_seconds",
        "target_minutes",
        "rule_id",
        "work_order_id",
        "rule__metric",
        "rule__pause_on_hold",
        "rule__calendar_id",
        *(f"rule__calendar__{f.name}" for f in Calendar._meta.concrete_fields),
    ],  # fmt: skip
    "select_related": ["rule__calendar"],
    "prefetch_related": ["work_order__holds"],
}


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
    def state(self, info: strawberry.Info) -> SlaClockState:
        return shown_state(self, _now(info))

    @strawberry_django.field(
        **_FIGURE_HINTS, description="Business minutes counted so far (the stored figure once stopped), as REST."
    )
    def elapsed_minutes(self, info: strawberry.Info) -> int:
        return clock_minutes(self.target_minutes, _elapsed_seconds(self, info))[0]

    @strawberry_django.field(
        **_FIGURE_HINTS, description="Business minutes left before the due time; negative once it has passed."
    )
    def remaining_minutes(self, info: strawberry.Info) -> int:
        return clock_minutes(self.target_minutes, _elapsed_seconds(self, info))[1]


@strawberry_django.type(models.WorkOrder, name="WorkOrder")
class WorkOrder(TenantType):
    rest_view = WorkOrderViewSet

    id: strawberry.ID
    source: auto
    source_id: str = strawberry_django.field(name="sourceID")
    reference: auto
    summary: auto
    contract: Contract | None
    contract_match: Json | None = strawberry_django.field(
        description='How the contract was found: {"method": "manual" | "rule" | "entitlement" | "none", "rule", '
        '"score", "explanation"}.'
    )
    counterparty: Counterparty | None
    # Assets and visit plans are the operator's, as in REST's lists and events: a viewer asking is refused.
    asset: Asset | None = strawberry_django.field(description="The job's asset (operators and up).")
    priority: auto
    status: auto
    reported_at: auto
    responded_at: auto
    on_site_at: auto
    resolved_at: auto
    status_changed_at: auto
    location: Json | None
    visit_plan: VisitPlanRef | None = strawberry_django.field(
        description="The visit plan the job was generated from (operators and up)."
    )
    occurrence: auto = strawberry_django.field(description="The start of the plan's occurrence it visits.")
    sla_tracked: auto
    created_at: auto
    updated_at: auto
    holds: list[Hold] = paged_list()
    sla_clocks: list[SlaClock] = paged_list()
    breaches: list[BreachRef] = nested_list()


@strawberry_django.type(models.ContractRule, name="ContractRule")
class ContractRule(TenantType):
    rest_view = ContractRuleViewSet

    id: strawberry.ID
    name: auto
    sequence: auto
    enabled: auto
    criteria: Json
    outcome: auto
    contract: Contract | None
    created_at: auto
    updated_at: auto


@strawberry.type
class Query:
    work_order: WorkOrder = resource_get()
    work_orders: OffsetPaginated[WorkOrder] = resource_list()
    contract_rule: ContractRule = resource_get()
    contract_rules: OffsetPaginated[ContractRule] = resource_list()


# --- mutations: the REST endpoints, typed ---------------------------------------------------------

WorkOrderInput = input_from_serializer("WorkOrderInput", WorkOrderSerializer)
ContractRuleInput = input_from_serializer("ContractRuleInput", ContractRuleSerializer)


def _work_orders(pk: str = "") -> str:
    return f"{API}/work_orders/{pk}".rstrip("/")


@strawberry.type
class Mutation:
    create_work_order = create_mutation(WorkOrder, "WorkOrder", _work_orders(), WorkOrderInput)
    update_work_order = update_mutation(WorkOrder, "WorkOrder", _work_orders, WorkOrderInput)
    create_contract_rule = create_mutation(ContractRule, "ContractRule", f"{API}/contract_rules", ContractRuleInput)
    update_contract_rule = update_mutation(
        ContractRule, "ContractRule", lambda pk: f"{API}/contract_rules/{pk}", ContractRuleInput
    )
    delete_contract_rule = delete_mutation("ContractRule", lambda pk: f"{API}/contract_rules/{pk}")

"""GraphQL type of breaches (DESIGN §7b)."""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from strawberry import auto

from config.graphql.base import (
    OffsetPaginated,
    TenantType,
    UserRef,
    money_field,
    nested_list,
    resource_get,
    resource_list,
)
from config.graphql.mutations import API, action_mutation, input_from_serializer
from contracts.graphql import Contract
from slas.graphql import SlaRule
from workorders.graphql import SlaClock, WorkOrder

from . import models
from .api import BreachSerializer, BreachViewSet, WaiveSerializer

if TYPE_CHECKING:
    from ledger.graphql import LedgerEntry

LedgerEntryRef = Annotated["LedgerEntry", strawberry.lazy("ledger.graphql")]


@strawberry_django.type(models.Breach, name="Breach")
class Breach(TenantType):
    rest_view = BreachViewSet

    id: strawberry.ID
    clock: SlaClock
    contract: Contract
    sla_rule: SlaRule
    work_order: WorkOrder
    metric: auto
    target_minutes: auto
    actual_minutes: auto
    overage_minutes: auto
    currency: auto
    due_at: auto
    detected_at: auto
    clock_stopped_at: auto
    final: auto
    measured_at: auto
    state: auto
    acknowledged_by: UserRef | None
    acknowledged_at: auto
    waived_by: UserRef | None
    waived_at: auto
    waiver_reason: auto
    updated_at: auto
    ledger_entries: list[LedgerEntryRef] = nested_list()
    penalty_amount: decimal.Decimal = money_field(BreachSerializer, "penalty_amount")


@strawberry.type
class Query:
    breach: Breach = resource_get()
    breaches: OffsetPaginated[Breach] = resource_list()


# --- mutations: the REST endpoints, typed ---------------------------------------------------------

WaiveBreachInput = input_from_serializer("WaiveBreachInput", WaiveSerializer)


@strawberry.type
class Mutation:
    acknowledge_breach = action_mutation(Breach, "acknowledgeBreach", lambda pk: f"{API}/breaches/{pk}/acknowledge")
    waive_breach = action_mutation(Breach, "waiveBreach", lambda pk: f"{API}/breaches/{pk}/waive", WaiveBreachInput)

"""GraphQL types of SLA terms: calendars and SLA rules (DESIGN §7b)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from strawberry import auto

from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    money_field,
    nested_list,
    resource_get,
    resource_list,
)
from config.graphql.mutations import (
    API,
    action_mutation,
    create_mutation,
    delete_mutation,
    input_from_serializer,
    update_mutation,
)
from contracts.graphql import Contract

from . import models
from .api import (
    AmendSerializer,
    CalendarSerializer,
    CalendarViewSet,
    SlaRuleSerializer,
    SlaRuleViewSet,
)

if TYPE_CHECKING:
    from breaches.graphql import Breach
    from workorders.graphql import SlaClock

SlaClockRef = Annotated["SlaClock", strawberry.lazy("workorders.graphql")]
BreachRef = Annotated["Breach", strawberry.lazy("breaches.graphql")]


@strawberry_django.type(models.Calendar, name="Calendar")
class Calendar(TenantType):
    rest_view = CalendarViewSet

    id: strawberry.ID
    name: auto
    time_zone: auto
    hours: Json = strawberry_django.field(description="Weekly working intervals in local wall time.")
    holidays: Json = strawberry_django.field(description="Whole local dates: [{date, name}].")
    holiday_country: auto = strawberry_django.field(description="ISO 3166-1 alpha-2: its public holidays, every year.")
    holiday_subdivision: auto = strawberry_django.field(description='The part of ISO 3166-2 after the dash ("SCT").')
    created_at: auto
    updated_at: auto
    rules: list[SlaRule] = nested_list(name="slaRules")

    @strawberry_django.field(only=["working_days"], description="Dates worked despite a public holiday.")
    def working_days(self) -> list[dt.date]:
        return [dt.date.fromisoformat(day) for day in self.working_days]


@strawberry_django.type(models.SlaRule, name="SlaRule")
class SlaRule(TenantType):
    rest_view = SlaRuleViewSet

    id: strawberry.ID
    contract: Contract
    name: auto
    metric: auto
    priorities: Json
    target_minutes: auto
    calendar: Calendar | None
    pause_on_hold: auto
    escalation: Json
    penalty: Json | None
    monthly_penalty_cap: decimal.Decimal | None = money_field(SlaRuleSerializer, "monthly_penalty_cap")
    active: auto
    effective_from: auto
    effective_to: auto
    previous_version: SlaRule | None
    next_version: SlaRule | None = strawberry_django.field(description="The version that succeeded it.")
    created_at: auto
    updated_at: auto
    clocks: list[SlaClockRef] = nested_list()
    breaches: list[BreachRef] = nested_list()


@strawberry.type
class Query:
    calendar: Calendar = resource_get()
    calendars: OffsetPaginated[Calendar] = resource_list()
    sla_rule: SlaRule = resource_get()
    sla_rules: OffsetPaginated[SlaRule] = resource_list()


# --- mutations: the REST endpoints, typed ---------------------------------------------------------

CalendarInput = input_from_serializer("CalendarInput", CalendarSerializer)
SlaRuleInput = input_from_serializer("SlaRuleInput", SlaRuleSerializer)
AmendSlaRuleInput = input_from_serializer("AmendSlaRuleInput", AmendSerializer)


def _calendars(pk: str = "") -> str:
    return f"{API}/calendars/{pk}".rstrip("/")


def _rules(pk: str = "") -> str:
    return f"{API}/sla_rules/{pk}".rstrip("/")


@strawberry.type
class Mutation:
    create_calendar = create_mutation(Calendar, "Calendar", _calendars(), CalendarInput)
    update_calendar = update_mutation(Calendar, "Calendar", _calendars, CalendarInput)
    delete_calendar = delete_mutation("Calendar", _calendars)
    create_sla_rule = create_mutation(SlaRule, "SlaRule", _rules(), SlaRuleInput)
    update_sla_rule = update_mutation(SlaRule, "SlaRule", _rules, SlaRuleInput)
    amend_sla_rule = action_mutation(SlaRule, "amendSlaRule", lambda pk: f"{_rules(pk)}/amend", AmendSlaRuleInput)

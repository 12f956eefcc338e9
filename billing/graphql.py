"""GraphQL types of billing (issue 12; managers, as REST): periods, billing lines, export batches
and contract templates."""

from __future__ import annotations

import datetime as dt
import decimal

import strawberry
import strawberry_django
from strawberry import auto

from breaches.graphql import Breach
from config import dates
from config.errors import NotFound
from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    UserRef,
    money_field,
    nested_list,
    object_id,
    require_role,
    resource_get,
    resource_list,
)
from config.graphql.errors import OperationError  # noqa: F401  (a member of the result unions)
from config.graphql.mutations import (
    API,
    answer,
    body_of,
    call_rest_keyed,
    create_mutation,
    delete_mutation,
    input_from_serializer,
    result_union,
    update_mutation,
)
from contracts.graphql import Contract
from contracts.models import Contract as ContractModel
from ledger.graphql import LedgerEntry
from slas.graphql import Calendar

from . import models, periods
from .api import (
    PERIOD_HOURS,
    PERIOD_MONEY,
    BillingLineSerializer,
    BillingLineViewSet,
    ContractTemplateSerializer,
    ContractTemplateViewSet,
    ExportBatchSerializer,
    ExportBatchViewSet,
    PeriodsView,
)


@strawberry_django.type(models.ExportBatch, name="ExportBatch")
class ExportBatch(TenantType):
    rest_view = ExportBatchViewSet

    id: strawberry.ID
    contract: Contract | None
    date_from: auto
    date_to: auto
    line_count: auto
    totals: Json
    created_by: UserRef | None
    created_at: auto
    # Oldest first, as REST and the CSV list them (billing lines' own default is newest first).
    lines: list[BillingLine] = nested_list(default_sort="id")


@strawberry_django.type(models.BillingLine, name="BillingLine")
class BillingLine(TenantType):
    rest_view = BillingLineViewSet

    id: strawberry.ID
    contract: Contract
    period_index: int | None = strawberry_django.field(field_name="period__index", description="Its period's index.")
    kind: auto
    description: auto
    quantity: auto
    unit_price: decimal.Decimal = money_field(BillingLineSerializer, "unit_price")
    amount: decimal.Decimal = money_field(BillingLineSerializer, "amount")
    currency: auto
    date: auto
    status: auto
    batch: ExportBatch | None
    created_at: auto
    entries: list[LedgerEntry] = nested_list(description="The ledger entries it bills.")
    breaches: list[Breach] = nested_list(description="The breaches behind a service credit.")

    @strawberry_django.field(
        only=["period_id"], description="Its period (REST `period`, filter `periodId`); contractPeriods lists them."
    )
    def period_id(self) -> strawberry.ID | None:
        return self.period_id


@strawberry_django.type(models.ContractTemplate, name="ContractTemplate")
class ContractTemplate(TenantType):
    rest_view = ContractTemplateViewSet

    id: strawberry.ID
    name: auto
    contract_type: auto
    term_months: auto
    currency: auto
    billing_period: auto
    period_charge: decimal.Decimal | None = money_field(ContractTemplateSerializer, "period_charge")
    invoice_timing: auto
    hours_per_period: auto
    rollover_percent: auto
    overage_rate: decimal.Decimal | None = money_field(ContractTemplateSerializer, "overage_rate")
    rounding_minutes: auto
    minimum_charge_minutes: auto
    out_of_hours_multiplier: auto
    billing_calendar: Calendar | None
    annual_increase_percent: auto
    prepay_hours_per_period: auto
    prepay_expiry_months: auto
    prepay_price_per_hour: decimal.Decimal | None = money_field(ContractTemplateSerializer, "prepay_price_per_hour")
    auto_top_up: Json | None
    line_items: Json
    sla_rules: Json
    active: auto
    created_at: auto
    updated_at: auto

    @strawberry_django.field(prefetch_related=["uses"], description="Ids of the contracts made from it.")
    def contracts(self) -> list[strawberry.ID]:
        return sorted(use.contract_id for use in self.uses.all())


def _period_type():
    namespace: dict = {
        "__annotations__": {
            "id": strawberry.ID | None, "index": int, "number": int, "start_date": dt.date, "end_date": dt.date,
            "status": str,
        },
        "id": strawberry.field(
            description="The stored period's id (REST billing lines' `period.id` and `?period_id=`); null until "
            "run_lifecycle opens the period."
        ),
        "number": strawberry.field(description="index + 1: the number the period's name and descriptions give it."),
    }  # fmt: skip
    for name in PERIOD_HOURS:
        namespace["__annotations__"][name] = decimal.Decimal
    namespace["__annotations__"]["currency"] = str
    for name in PERIOD_MONEY:
        namespace["__annotations__"][name] = decimal.Decimal
    return strawberry.type(
        type("BillingPeriod", (), namespace),
        description="A period of a contract's billing plan begun so far, its hours and money computed from "
        "the ledger (REST GET /contracts/{id}/periods); endDate is its last day.",
    )


BillingPeriod = _period_type()


@strawberry.type
class Query:
    billing_line: BillingLine = resource_get()
    billing_lines: OffsetPaginated[BillingLine] = resource_list()
    billing_export: ExportBatch = resource_get()
    billing_exports: OffsetPaginated[ExportBatch] = resource_list()
    contract_template: ContractTemplate = resource_get()
    contract_templates: OffsetPaginated[ContractTemplate] = resource_list()

    @strawberry.field(description="A contract's billing periods begun so far (the same figures as REST).")
    def contract_periods(
        self, info: strawberry.Info, contract_id: strawberry.ID, as_of: dt.datetime | None = None
    ) -> list[BillingPeriod]:
        context = require_role(info, PeriodsView.read_role)
        pk = object_id(contract_id)
        contract = ContractModel.objects.for_organization(context.organization).filter(pk=pk).first() if pk else None
        if contract is None:
            raise NotFound(errors={"contractId": ["Not found."]})
        now = periods.check_as_of(dates.check(as_of, "asOf"), dt.datetime.now(dt.UTC), "asOf")
        shown = [f.as_dict(contract.currency) for f in periods.compute(contract, now=now)]  # REST's figures
        for row in shown:
            row["start_date"], row["end_date"] = map(dt.date.fromisoformat, (row["start_date"], row["end_date"]))
        return [BillingPeriod(**row) for row in shown]


ContractTemplateInput = input_from_serializer("ContractTemplateInput", ContractTemplateSerializer)
ExportBatchInput = input_from_serializer("BillingExportInput", ExportBatchSerializer)
ExportBatchResult = result_union(ExportBatch)


def _templates(pk: str = "") -> str:
    return f"{API}/contract_templates/{pk}".rstrip("/")


@strawberry.type
class Mutation:
    create_contract_template = create_mutation(
        ContractTemplate, "ContractTemplate", _templates(), ContractTemplateInput
    )
    update_contract_template = update_mutation(ContractTemplate, "ContractTemplate", _templates, ContractTemplateInput)
    delete_contract_template = delete_mutation("ContractTemplate", _templates)

    @strawberry.mutation(
        description="REST POST /api/v1/billing_exports: every pending billing line (optionally one contract's, "
        "dated from dateFrom to dateTo) into one batch. With an idempotency key, a retry returns the same batch."
    )
    def create_billing_export(
        self, info: strawberry.Info, input: ExportBatchInput, idempotency_key: str | None = None
    ) -> ExportBatchResult:
        status, data = call_rest_keyed(info, f"{API}/billing_exports", body_of(input), idempotency_key)
        return answer(models.ExportBatch, status, data)

"""GraphQL types of contracts: counterparties, contracts with line items and approvals (DESIGN §7b).

Relations to higher apps (a contract's SLA rules, work orders, breaches and ledger entries) are
lazy references resolved when config/graphql assembles the schema: no upward import.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from django.db.models import F
from strawberry import auto
from strawberry_django.optimizer import is_optimized_by_prefetching

from config.graphql.base import (
    ContractChildType,
    Json,
    OffsetPaginated,
    PagedListField,
    TenantType,
    UserRef,
    money_field,
    nested_list,
    resource_get,
    resource_list,
)
from config.graphql.errors import OperationError  # noqa: F401  (a member of every result union)
from config.graphql.mutations import (
    API,
    Deleted,
    DeleteResult,
    action_mutation,
    answer,
    body_of,
    call_rest,
    child_action_mutation,
    child_path,
    create_mutation,
    delete_mutation,
    input_from_serializer,
    operation_error,
    pk_of,
    result_union,
    update_mutation,
)

from . import models, services
from .api import (
    AmendmentSerializer,
    AmendmentViewSet,
    CommentSerializer,
    ContractSerializer,
    ContractViewSet,
    CounterpartySerializer,
    CounterpartyViewSet,
    LineItemSerializer,
    LineItemViewSet,
    OptionalReasonSerializer,
    ReasonSerializer,
    RenewSerializer,
    TermVersionViewSet,
    shown_terms,
)
from .assets_api import AssetSerializer, AssetViewSet

if TYPE_CHECKING:
    from breaches.graphql import Breach
    from ledger.graphql import LedgerEntry
    from slas.graphql import Calendar, SlaRule
    from workorders.graphql import WorkOrder

CalendarRef = Annotated["Calendar", strawberry.lazy("slas.graphql")]
SlaRuleRef = Annotated["SlaRule", strawberry.lazy("slas.graphql")]
WorkOrderRef = Annotated["WorkOrder", strawberry.lazy("workorders.graphql")]
BreachRef = Annotated["Breach", strawberry.lazy("breaches.graphql")]
LedgerEntryRef = Annotated["LedgerEntry", strawberry.lazy("ledger.graphql")]


@strawberry_django.type(models.Counterparty, name="Counterparty")
class Counterparty(TenantType):
    rest_view = CounterpartyViewSet

    id: strawberry.ID
    source: auto
    source_id: str = strawberry_django.field(name="sourceID")
    name: auto
    kind: auto
    reference: auto
    email: auto
    phone: auto
    address: auto
    remarks: auto
    created_at: auto
    updated_at: auto
    contracts: list[Contract] = nested_list()
    assets: list[Asset] = nested_list(description="The counterparty's assets (operators and up).")


class RoundApprovalsField(PagedListField):
    """A contract's or an amendment's `approvals` as REST shows them: the decisions of its current
    approval round (a contract's own, not those on its amendments, which have rounds of their own)."""

    parent: str  # "contract" or "amendment"

    def get_queryset(self, queryset, info, **kwargs):
        if not is_optimized_by_prefetching(queryset):  # the optimizer's prefetch ran this already
            own = {"amendment__isnull": True} if self.parent == "contract" else {}
            queryset = queryset.filter(approval_round=F(f"{self.parent}__approval_round"), **own)
        return super().get_queryset(queryset, info, **kwargs)


def round_approvals(parent: str):
    field = strawberry_django.field(
        field_cls=RoundApprovalsField,
        pagination=True,
        description=f"The decisions of the {parent}'s current approval round, as REST lists them.",
    )
    field.parent = parent
    return field


@strawberry_django.type(models.ContractApproval, name="ContractApproval")
class ContractApproval(TenantType):
    rest_view = ContractViewSet  # its roles; its lists take no filters or order of their own
    Filters = Order = None

    id: strawberry.ID
    approval_round: int
    approver: UserRef | None
    decision: str
    comment: str
    decided_at: dt.datetime


@strawberry_django.type(models.LineItem, name="LineItem")
class LineItem(ContractChildType):
    rest_view = LineItemViewSet

    id: strawberry.ID
    contract: Contract
    kind: auto
    description: auto
    sku: auto
    quantity: auto
    unit: auto
    unit_price: decimal.Decimal | None = money_field(LineItemSerializer, "unit_price")
    covered: auto
    notes: auto
    created_at: auto
    updated_at: auto


@strawberry_django.type(models.Contract, name="Contract")
class Contract(TenantType):
    rest_view = ContractViewSet

    id: strawberry.ID
    source: auto
    source_id: str = strawberry_django.field(name="sourceID")
    reference: auto
    name: auto
    description: auto
    remarks: auto
    contract_type: auto
    counterparty: Counterparty | None
    counterparty_role: auto
    status: auto
    start_date: auto
    expiry_date: auto
    time_zone: auto
    notice_period_days: auto
    notice_date: auto
    auto_renew: auto
    renewal_term_months: auto
    renewed_from: Contract | None
    renewed_by: Contract | None = strawberry_django.field(description="The renewal that replaced it.")
    currency: auto
    contract_value: decimal.Decimal | None = money_field(ContractSerializer, "contract_value")
    hours_budget: decimal.Decimal | None
    remaining_hours: decimal.Decimal | None
    low_balance_threshold_hours: decimal.Decimal | None
    allow_overrun: auto
    requires_counterparty_signature: auto
    coverage_areas: Json | None
    service_territory_id: auto
    dispatch_agreement_id: auto
    submitted_by: UserRef | None
    submitted_at: auto
    approval_round: auto
    notice_given_at: auto
    notice_reason: auto
    created_at: auto
    updated_at: auto
    # The billing plan (issue 12), as REST shows it (its prices as unit prices).
    billing_period: auto
    period_charge: decimal.Decimal | None = money_field(ContractSerializer, "period_charge")
    invoice_timing: auto
    hours_per_period: auto
    rollover_percent: auto
    overage_rate: decimal.Decimal | None = money_field(ContractSerializer, "overage_rate")
    rounding_minutes: auto
    minimum_charge_minutes: auto
    out_of_hours_multiplier: auto
    billing_calendar: CalendarRef | None
    annual_increase_percent: auto
    prepay_hours_per_period: auto
    prepay_expiry_months: auto
    prepay_price_per_hour: decimal.Decimal | None = money_field(ContractSerializer, "prepay_price_per_hour")
    auto_top_up: Json | None = strawberry_django.field(
        description='{"threshold_hours", "mode": "to" | "by", "hours", "price_per_hour"} (decimal strings), or null.'
    )
    approvals: list[ContractApproval] = round_approvals("contract")
    line_items: list[LineItem] = nested_list()
    sla_rules: list[SlaRuleRef] = nested_list()
    work_orders: list[WorkOrderRef] = nested_list()
    breaches: list[BreachRef] = nested_list()
    ledger_entries: list[LedgerEntryRef] = nested_list()
    amendments: list[Amendment] = nested_list()
    term_versions: list[TermVersion] = nested_list()
    covered_assets: list[Asset] = nested_list(description="The assets its terms cover (operators and up).")

    @strawberry_django.field(
        # The approval gates (a counterparty's signature) read the terms: the whole row, as REST.
        only=[field.name for field in models.Contract._meta.concrete_fields],
        prefetch_related=["approvals"],
        description="While pending approval: what the contract still waits for (internal approvals, the "
        "counterparty's signature where its terms require one).",
    )
    def waiting_for(self) -> list[str]:
        return services.waiting_for(self)


@strawberry_django.type(models.Asset, name="Asset")
class Asset(TenantType):
    rest_view = AssetViewSet

    id: strawberry.ID
    source: auto
    source_id: str = strawberry_django.field(name="sourceID")
    name: auto
    kind: auto
    serial_number: auto
    counterparty: Counterparty | None
    site: auto
    location: Json | None
    remarks: auto
    created_at: auto
    updated_at: auto
    covering_contracts: list[Contract] = nested_list(description="Contracts whose terms cover the asset.")


def terms_field(name: str, description: str):
    """An amendment's `changes` or a version's `terms` as REST writes them (`shown_terms`: the
    contract's input names, money in its currency's minor unit), not as stored."""

    def resolve(root):
        return shown_terms(getattr(root, name), root.contract.currency)

    return strawberry_django.field(
        resolver=resolve, only=[name, "contract__currency"], select_related=["contract"], description=description
    )


@strawberry_django.type(models.Amendment, name="Amendment")
class Amendment(ContractChildType):
    rest_view = AmendmentViewSet

    id: strawberry.ID
    contract: Contract
    number: auto
    status: auto
    effective_date: auto
    changes: Json = terms_field(
        "changes",
        "The terms that change, as REST shows them and as the input takes them (`counterparty_id`, "
        "`contract_value` in the currency's minor unit, ...), `line_items` and `sla_rules`.",
    )
    reason: auto
    created_by: UserRef | None
    submitted_by: UserRef | None
    submitted_at: auto
    approval_round: auto
    approvals: list[ContractApproval] = round_approvals("amendment")
    decided_at: auto
    created_at: auto
    updated_at: auto

    @strawberry_django.field(
        only=["effective_date", "contract__time_zone"],
        select_related=["contract"],
        description="The instant the terms change: the start of effectiveDate in the contract's time zone.",
    )
    def effective_at(self) -> dt.datetime:
        return self.contract.start_of_day(self.effective_date)


@strawberry_django.type(models.TermVersion, name="TermVersion")
class TermVersion(ContractChildType):
    rest_view = TermVersionViewSet

    id: strawberry.ID
    contract: Contract
    effective_from: auto
    effective_to: auto
    origin: auto
    amendment: Amendment | None
    terms: Json = terms_field(
        "terms",
        "The terms in force over the range, as REST shows them (`counterparty_id`, `covered_asset_ids`, money "
        "in the currency's minor unit, ...).",
    )
    applied_at: auto
    created_at: auto


@strawberry.type
class Query:
    counterparty: Counterparty = resource_get()
    counterparties: OffsetPaginated[Counterparty] = resource_list()
    contract: Contract = resource_get()
    contracts: OffsetPaginated[Contract] = resource_list()
    line_item: LineItem = resource_get()
    line_items: OffsetPaginated[LineItem] = resource_list()
    asset: Asset = resource_get()
    assets: OffsetPaginated[Asset] = resource_list()
    amendment: Amendment = resource_get()
    amendments: OffsetPaginated[Amendment] = resource_list()
    term_version: TermVersion = resource_get()
    term_versions: OffsetPaginated[TermVersion] = resource_list()


# --- mutations: the REST endpoints, typed ---------------------------------------------------------

CounterpartyInput = input_from_serializer("CounterpartyInput", CounterpartySerializer)
ContractInput = input_from_serializer("ContractInput", ContractSerializer)
LineItemInput = input_from_serializer("LineItemInput", LineItemSerializer)
ReasonInput = input_from_serializer("ReasonInput", ReasonSerializer)
OptionalReasonInput = input_from_serializer("OptionalReasonInput", OptionalReasonSerializer)
CommentInput = input_from_serializer("CommentInput", CommentSerializer)
RenewInput = input_from_serializer("RenewContractInput", RenewSerializer)
LineItemResult = result_union(LineItem)
AssetInput = input_from_serializer("AssetInput", AssetSerializer)
AmendmentInput = input_from_serializer("AmendmentInput", AmendmentSerializer)
AmendmentResult = result_union(Amendment)


def _amendment_path(info, pk) -> str:
    return child_path(info, models.Amendment, pk, "amendments")


def _contracts(pk: str = "") -> str:
    return f"{API}/contracts/{pk}".rstrip("/")


def _line_item_path(info, pk) -> str:
    # The REST route nests line items under their contract; one outside the caller's org is a 404.
    return child_path(info, models.LineItem, pk, "line_items")


@strawberry.type
class Mutation:
    create_counterparty = create_mutation(Counterparty, "Counterparty", f"{API}/counterparties", CounterpartyInput)
    update_counterparty = update_mutation(
        Counterparty, "Counterparty", lambda pk: f"{API}/counterparties/{pk}", CounterpartyInput
    )
    delete_counterparty = delete_mutation("Counterparty", lambda pk: f"{API}/counterparties/{pk}")
    create_contract = create_mutation(Contract, "Contract", _contracts(), ContractInput)
    update_contract = update_mutation(Contract, "Contract", _contracts, ContractInput)
    delete_contract = delete_mutation("Contract", _contracts)
    submit_contract = action_mutation(Contract, "submitContract", lambda pk: f"{_contracts(pk)}/submit")
    approve_contract = action_mutation(
        Contract, "approveContract", lambda pk: f"{_contracts(pk)}/approve", CommentInput
    )
    reject_contract = action_mutation(Contract, "rejectContract", lambda pk: f"{_contracts(pk)}/reject", ReasonInput)
    suspend_contract = action_mutation(Contract, "suspendContract", lambda pk: f"{_contracts(pk)}/suspend", ReasonInput)
    resume_contract = action_mutation(
        Contract, "resumeContract", lambda pk: f"{_contracts(pk)}/resume", OptionalReasonInput
    )
    terminate_contract = action_mutation(
        Contract, "terminateContract", lambda pk: f"{_contracts(pk)}/terminate", ReasonInput
    )
    give_contract_notice = action_mutation(
        Contract, "giveContractNotice", lambda pk: f"{_contracts(pk)}/give_notice", OptionalReasonInput
    )
    renew_contract = action_mutation(Contract, "renewContract", lambda pk: f"{_contracts(pk)}/renew", RenewInput)

    create_asset = create_mutation(Asset, "Asset", f"{API}/assets", AssetInput)
    update_asset = update_mutation(Asset, "Asset", lambda pk: f"{API}/assets/{pk}", AssetInput)
    delete_asset = delete_mutation("Asset", lambda pk: f"{API}/assets/{pk}")
    submit_amendment = child_action_mutation(Amendment, "submitAmendment", "amendments", "submit")
    approve_amendment = child_action_mutation(Amendment, "approveAmendment", "amendments", "approve", CommentInput)
    reject_amendment = child_action_mutation(Amendment, "rejectAmendment", "amendments", "reject", ReasonInput)

    @strawberry.mutation(description="REST POST /api/v1/contracts/{contractId}/amendments.")
    def create_amendment(
        self, info: strawberry.Info, contract_id: strawberry.ID, input: AmendmentInput
    ) -> AmendmentResult:
        path = f"{_contracts(pk_of(contract_id))}/amendments"
        return answer(models.Amendment, *call_rest(info, "POST", path, body_of(input)))

    @strawberry.mutation(description="REST PATCH /api/v1/contracts/{contractId}/amendments/{id}.")
    def update_amendment(self, info: strawberry.Info, id: strawberry.ID, input: AmendmentInput) -> AmendmentResult:
        return answer(models.Amendment, *call_rest(info, "PATCH", _amendment_path(info, id), body_of(input)))

    @strawberry.mutation(description="REST POST /api/v1/contracts/{contractId}/line_items.")
    def create_line_item(
        self, info: strawberry.Info, contract_id: strawberry.ID, input: LineItemInput
    ) -> LineItemResult:
        path = f"{_contracts(pk_of(contract_id))}/line_items"
        return answer(models.LineItem, *call_rest(info, "POST", path, body_of(input)))

    @strawberry.mutation(description="REST PATCH /api/v1/contracts/{contractId}/line_items/{id}.")
    def update_line_item(self, info: strawberry.Info, id: strawberry.ID, input: LineItemInput) -> LineItemResult:
        return answer(models.LineItem, *call_rest(info, "PATCH", _line_item_path(info, id), body_of(input)))

    @strawberry.mutation(description="REST DELETE /api/v1/contracts/{contractId}/line_items/{id}.")
    def delete_line_item(self, info: strawberry.Info, id: strawberry.ID) -> DeleteResult:
        status, data = call_rest(info, "DELETE", _line_item_path(info, id))
        return operation_error(status, data) if status >= 400 else Deleted(id=id)

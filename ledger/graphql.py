"""GraphQL types of the hour ledger: entries, a contract's balance and its lots (DESIGN §7b)."""

from __future__ import annotations

import datetime as dt
import decimal

import strawberry
import strawberry_django
from strawberry import auto

from breaches.graphql import Breach
from config import dates
from config.errors import BadRequest, NotFound
from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    UserRef,
    money_field,
    nested_list,
    object_id,
    resource_get,
    resource_list,
    tenant,
)
from config.graphql.mutations import (
    API,
    answer,
    body_of,
    call_rest_keyed,
    input_from_serializer,
    result_union,
)
from contracts.graphql import Contract
from contracts.models import Contract as ContractModel
from workorders.graphql import WorkOrder

from . import models, services
from .api import LedgerEntrySerializer, LedgerEntryViewSet


@strawberry_django.type(models.LedgerEntry, name="LedgerEntry")
class LedgerEntry(TenantType):
    rest_view = LedgerEntryViewSet

    id: strawberry.ID
    contract: Contract
    entry_type: auto
    reason_code: str  # a blank choice ("" for none): a string, as REST shows it
    hours: decimal.Decimal
    charged_hours: decimal.Decimal = strawberry_django.field(
        description="The hours billed for a work entry (its plan's rounding, minimum and out-of-hours rate)."
    )
    amount: decimal.Decimal | None = money_field(LedgerEntrySerializer, "amount")
    currency: auto
    work_order: WorkOrder | None
    breach: Breach | None
    lot: LedgerEntry | None
    reverses: LedgerEntry | None
    description: auto
    occurred_at: auto
    expires_at: auto
    created_by: UserRef | None
    created_at: auto
    expiries: list[LedgerEntry] = nested_list()


@strawberry.type(description="A contract's hours as of an instant (REST GET /contracts/{id}/balance).")
class Balance:
    contract_id: strawberry.ID
    as_of: dt.datetime
    total_hours: decimal.Decimal
    consumed_hours: decimal.Decimal
    remaining_hours: decimal.Decimal
    expired_hours: decimal.Decimal
    overrun_hours: decimal.Decimal
    expiring_hours: decimal.Decimal
    window_days: int
    burn_rate_hours_per_day: decimal.Decimal
    projected_exhaustion_date: dt.date | None
    penalties: Json = strawberry.field(description='Per currency: {"EUR": {"accrued": "10.00", "waived": "0.00"}}.')


@strawberry.type(description="An allocation lot and what is left of it (REST GET /contracts/{id}/lots).")
class Lot:
    id: strawberry.ID
    entry_type: str
    occurred_at: dt.datetime
    expires_at: dt.datetime | None
    allocated: decimal.Decimal
    consumed: decimal.Decimal
    expired: decimal.Decimal
    moved: decimal.Decimal = strawberry.field(description="Carried to a lot with an amended expiry (issue 14).")
    remaining: decimal.Decimal


def _contract(info, contract_id) -> ContractModel:
    TenantType.get_queryset(ContractModel.objects.none(), info)  # the role check of every read
    pk = object_id(contract_id)
    contract = ContractModel.objects.for_organization(tenant(info).organization).filter(pk=pk).first() if pk else None
    if contract is None:
        raise NotFound(errors={"contractId": ["Not found."]})
    return contract


def _two_places(value):
    return value.quantize(services.ZERO) if isinstance(value, decimal.Decimal) else value


@strawberry.type
class Query:
    ledger_entry: LedgerEntry = resource_get()
    ledger_entries: OffsetPaginated[LedgerEntry] = resource_list()

    @strawberry.field(description="A contract's balance and burn rate (the same figures as REST).")
    def contract_balance(
        self, info: strawberry.Info, contract_id: strawberry.ID, as_of: dt.datetime | None = None, window_days: int = 30
    ) -> Balance:
        if not 1 <= window_days <= 3650:
            message = "window_days must be a whole number from 1 to 3650."
            raise BadRequest(message, {"windowDays": ["Must be 1 to 3650."]})  # REST's words
        contract = _contract(info, contract_id)
        figures = services.balance(contract, as_of=dates.check(as_of, "asOf"), window_days=window_days)
        figures = {key: _two_places(value) for key, value in figures.items() if key != "contract"}
        return Balance(contract_id=contract_id, **figures)

    @strawberry.field(description="A contract's allocation lots (the same figures as REST).")
    def contract_lots(
        self, info: strawberry.Info, contract_id: strawberry.ID, as_of: dt.datetime | None = None
    ) -> list[Lot]:
        book = services.lot_book(_contract(info, contract_id), as_of=dates.check(as_of, "asOf"))
        return [
            Lot(
                id=lot.entry.pk,
                entry_type=lot.entry.entry_type,
                occurred_at=lot.entry.occurred_at,
                expires_at=lot.entry.expires_at,
                allocated=_two_places(lot.allocated),
                consumed=_two_places(lot.consumed),
                expired=_two_places(lot.expired),
                moved=_two_places(lot.moved),
                remaining=_two_places(lot.remaining),
            )
            for lot in book.lots
        ]


# --- mutations: the REST endpoints, typed ---------------------------------------------------------

LedgerEntryInput = input_from_serializer("LedgerEntryInput", LedgerEntrySerializer)
LedgerEntryResult = result_union(LedgerEntry)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="REST POST /api/v1/ledger_entries. With an idempotency key, a retry with the same input returns "
        "the original entry; the same key with another input is an INVALID error."
    )
    def post_ledger_entry(
        self, info: strawberry.Info, input: LedgerEntryInput, idempotency_key: str | None = None
    ) -> LedgerEntryResult:
        status, data = call_rest_keyed(info, f"{API}/ledger_entries", body_of(input), idempotency_key)
        return answer(models.LedgerEntry, status, data)

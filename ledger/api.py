"""`/api/v1/ledger_entries` (POST, list, get: a mistake is corrected by a new adjustment), and
a contract's `balance` and `lots`."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from breaches.models import Breach
from config import dates
from config.api.csv import CSVRenderer, JSONErrorsMixin, per_currency, wants_csv
from config.api.exceptions import BadRequest, Forbidden
from config.api.filters import PredicateFilter, PredicateFilterSet, refuse_unknown
from config.api.pagination import query_int
from config.api.schema import INSTANT_PARAMETER, whole_number_parameter
from config.api.serializers import ReferenceField, ReferenceIdField, ResourceSerializer
from config.api.viewsets import CreateMixin, ResourceViewSet
from contracts.billing_plan import HOURS_LIMIT
from contracts.models import Contract
from tenancy.currencies import MONEY_HELP, MONEY_LIMIT
from workorders.models import WorkOrder

from . import services
from .idempotency import IdempotentCreateMixin
from .models import LedgerEntry

HAND_POSTED_BY_OPERATORS = (LedgerEntry.Type.WORK,)


class LedgerEntrySerializer(ResourceSerializer):
    contract = ReferenceField()
    contract_id = ReferenceIdField(source="contract", queryset=Contract.objects.all())
    work_order = ReferenceField()
    work_order_id = ReferenceIdField(
        source="work_order", queryset=WorkOrder.objects.all(), required=False, allow_null=True
    )
    breach = ReferenceField()
    breach_id = ReferenceIdField(source="breach", queryset=Breach.objects.all(), required=False, allow_null=True)
    lot = ReferenceField()
    created_by = ReferenceField()
    occurred_at = serializers.DateTimeField(
        required=False,
        help_text="Default: now. Not before the contract's start; after its last day (a terminated contract's "
        "termination) only money (a penalty, a credit without hours).",
    )
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id", "contract", "contract_id", "entry_type", "reason_code", "hours", "charged_hours", "amount",
            "currency", "work_order", "work_order_id", "breach", "breach_id", "lot", "description", "occurred_at",
            "expires_at", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["reason_code", "charged_hours", "created_at"]
        money_fields = {"amount": "currency"}
        extra_kwargs = {
            # Its sign and its places are the service's rules (`check_entry`).
            "amount": {"max_value": MONEY_LIMIT, "help_text": MONEY_HELP},
            "hours": {"min_value": -HOURS_LIMIT, "max_value": HOURS_LIMIT},
        }
        default_fields = [
            "id", "contract", "entry_type", "reason_code", "hours", "charged_hours", "amount", "currency",
            "work_order", "occurred_at", "expires_at", "created_at",
        ]  # fmt: skip


class LedgerEntryFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    work_order_id = PredicateFilter(field_name="work_order")
    breach_id = PredicateFilter(field_name="breach")

    class Meta:
        model = LedgerEntry
        fields = ["entry_type", "reason_code", "occurred_at", "expires_at", "created_at"]


class LedgerEntryViewSet(IdempotentCreateMixin, CreateMixin, ResourceViewSet):
    """The hour ledger: append-only. Operators post work; managers post the other types.

    `Idempotency-Key` on POST: the same key with the same body returns the original entry (and
    status); with a different body it is a 422. A retrying client never posts twice, even when its
    retries arrive at once. A request that failed (4xx) is not remembered: its retry runs again.
    """

    queryset = LedgerEntry.objects.select_related("contract", "work_order", "breach", "lot", "created_by")
    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerEntryFilterSet
    sort_fields = {"occurred_at": "occurred_at", "hours": "hours", "created_at": "created_at"}
    default_sort = "-id"
    write_role = "operator"
    # `{id, name}` references: their str() columns only (a contract's and a job's str() read its
    # reference, a breach's its metric and job, a lot's its type, hours and contract, a user's its
    # username).
    list_references = {"contract": (), "work_order": (), "breach": (), "lot": (), "created_by": ()}
    idempotency_resource = "ledger_entries"

    def check_create(self, data):
        if data["entry_type"] not in HAND_POSTED_BY_OPERATORS and not self.request.auth.has_role("manager"):
            raise Forbidden(f"Posting {data['entry_type']} entries needs the manager role; operators post work.")

    @staticmethod
    def create_service(*, organization, actor, data):
        return services.post_entry(organization=organization, actor=actor, data=data)


# --- balance and lots ---------------------------------------------------------------------------


class ContractLedgerView(JSONErrorsMixin, APIView):
    """Shared: the contract of the route, in the caller's organization (else 404); JSON or CSV."""

    read_role = "viewer"
    renderer_classes = [JSONRenderer, CSVRenderer]

    def contract(self, pk) -> Contract:
        return get_object_or_404(Contract.objects.for_organization(self.request.auth.organization), pk=pk)

    def as_of(self):
        raw = self.request.query_params.get("as_of")
        if raw is None:
            return None  # blank is a 400 below, as every other non-filter parameter given blank
        try:
            parsed = parse_datetime(raw)
        except ValueError:  # well formed but not a date (2026-02-30)
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise BadRequest("as_of must be an ISO 8601 timestamp with an offset.", {"as_of": ["Invalid."]})
        return dates.check(parsed, "as_of")

    def check_params(self, allowed: set[str]) -> None:
        refuse_unknown(self.request.query_params, {*allowed, "format"})


BURN_WINDOW_DAYS = (1, 3650)  # the balance's `?window_days=`


class BalanceView(ContractLedgerView):
    basename = "balance"  # the CSV's file name

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of", INSTANT_PARAMETER, description="ISO 8601 timestamp with an offset (default now)."
            ),
            OpenApiParameter(
                "window_days",
                whole_number_parameter(*BURN_WINDOW_DAYS),
                description="Burn-rate window in days (default 30); a contract that has run fewer days "
                "burns over the days it has run, today included.",
            ),
        ],
        responses={
            200: inline_serializer(
                "Balance",
                {
                    "contract": serializers.IntegerField(),
                    "as_of": serializers.DateTimeField(),
                    "total_hours": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "consumed_hours": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "remaining_hours": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "expired_hours": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "overrun_hours": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "expiring_hours": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "window_days": serializers.IntegerField(),
                    "burn_rate_hours_per_day": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "projected_exhaustion_date": serializers.DateField(allow_null=True),
                    "penalties": serializers.DictField(),
                },
            )
        },
    )
    def get(self, request, contract_pk):
        self.check_params({"as_of", "window_days"})
        window_days = query_int(request, "window_days", 30, *BURN_WINDOW_DAYS)
        figures = services.balance(self.contract(contract_pk), as_of=self.as_of(), window_days=window_days)
        data = _json(figures)
        if wants_csv(request):
            # The penalties per currency as every CSV writes money by currency (config.api.csv):
            # penalties_accrued "300.00 EUR; 12.50 USD", penalties_waived the same, not a JSON cell.
            penalties = data.pop("penalties")
            for kind in ("accrued", "waived"):
                data[f"penalties_{kind}"] = per_currency({currency: p[kind] for currency, p in penalties.items()})
        return Response(data)


class LotsView(ContractLedgerView):
    basename = "lots"  # the CSV's file name

    @extend_schema(
        parameters=[
            OpenApiParameter("as_of", INSTANT_PARAMETER, description="ISO 8601 timestamp with an offset (default now).")
        ],
        responses={
            200: inline_serializer(
                "Lot",
                {
                    "id": serializers.IntegerField(),
                    "entry_type": serializers.CharField(),
                    "occurred_at": serializers.DateTimeField(),
                    "expires_at": serializers.DateTimeField(allow_null=True),
                    "allocated": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "consumed": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "expired": serializers.DecimalField(max_digits=14, decimal_places=2),
                    # Carried to a lot with an amended expiry (issue 14).
                    "moved": serializers.DecimalField(max_digits=14, decimal_places=2),
                    "remaining": serializers.DecimalField(max_digits=14, decimal_places=2),
                },
                many=True,
            )
        },
    )
    def get(self, request, contract_pk):
        self.check_params({"as_of"})
        book = services.lot_book(self.contract(contract_pk), as_of=self.as_of())
        return Response(
            [
                _json(
                    {
                        "id": lot.entry.pk,
                        "entry_type": lot.entry.entry_type,
                        "occurred_at": lot.entry.occurred_at,
                        "expires_at": lot.entry.expires_at,
                        "allocated": lot.allocated,
                        "consumed": lot.consumed,
                        "expired": lot.expired,
                        "moved": lot.moved,
                        "remaining": lot.remaining,
                    }
                )
                for lot in book.lots
            ]
        )


def _json(figures: dict) -> dict:
    """Decimals as strings with two places, datetimes ISO with Z, dates ISO."""
    out = {}
    for key, value in figures.items():
        if hasattr(value, "quantize") and key != "penalties":
            out[key] = str(value.quantize(services.ZERO))
        elif isinstance(value, dt.datetime):
            out[key] = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, dt.date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out

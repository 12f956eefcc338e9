"""`/api/v1/contracts/{id}/periods`, `/api/v1/billing_lines`, `/api/v1/billing_exports` and
`/api/v1/contract_templates` (with `instantiate`)."""

from __future__ import annotations

import csv
import datetime as dt
import io

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse

from config import dates
from config.api.csv import content_disposition, spreadsheet_safe
from config.api.exceptions import Unprocessable, flatten_errors
from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.schema import INSTANT_PARAMETER
from config.api.serializers import (
    JSONObjectListField,
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    price_text,
)
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin
from contracts.api import BillingPlanFieldsMixin, ContractSerializer, LineItemSerializer
from contracts.billing_plan import BILLING_PLAN_API_FIELDS, BILLING_PLAN_LIMITS, BILLING_PLAN_PRICES
from contracts.models import Contract
from contracts.services import term_end
from ledger.api import ContractLedgerView
from ledger.idempotency import IdempotentCreateMixin
from slas.api import SlaRuleSerializer
from tenancy.currencies import MINOR_UNITS, is_currency

from . import periods, services
from .models import BillingLine, ContractTemplate, ExportBatch

# --- periods ------------------------------------------------------------------------------------


# Factories, not shared instances: a field instance binds to one name, so a shared one left
# every name but the last out of the document.
def _hours():
    return serializers.DecimalField(max_digits=14, decimal_places=2)


def _money():
    return serializers.DecimalField(max_digits=18, decimal_places=4)


PERIOD_HOURS = [
    "included_hours", "rolled_over_in", "prepaid_hours_added", "topped_up_hours", "charged_hours", "overage_hours",
    "expired_hours", "rolled_over_out",
]  # fmt: skip
PERIOD_MONEY = ["period_charge", "overage_charge", "prepay_purchases", "top_up_purchases", "service_credits", "total"]


class PeriodsView(ContractLedgerView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of",
                INSTANT_PARAMETER,
                description="ISO 8601 timestamp with an offset (default now; not in the future).",
            )
        ],
        responses={
            200: inline_serializer(
                "BillingPeriod",
                {
                    "id": serializers.IntegerField(
                        allow_null=True,
                        help_text="The stored period's id, as billing lines name it (`period.id`, `?period_id=`); "
                        "null until run_lifecycle opens the period.",
                    ),
                    "index": serializers.IntegerField(help_text="0 for the period that begins on the start date."),
                    "number": serializers.IntegerField(
                        help_text="index + 1: the number the period's name and its billing lines' descriptions "
                        "give it (`9 period 4 (...)`)."
                    ),
                    "start_date": serializers.DateField(),
                    "end_date": serializers.DateField(help_text="The period's last day."),
                    "status": serializers.ChoiceField(choices=["open", "closed"]),
                    **{name: _hours() for name in PERIOD_HOURS},
                    "currency": serializers.CharField(),
                    **{name: _money() for name in PERIOD_MONEY},
                },
                many=True,
            )
        },
    )
    def get(self, request, contract_pk):
        """Every period of the contract's billing plan begun so far, with its hours and money,
        computed from the ledger (an empty list for a contract without periods). `id` is the
        stored period's, which billing lines reference (null until the period is opened)."""
        self.check_params({"as_of"})
        contract = self.contract(contract_pk)
        now = periods.check_as_of(self.as_of(), dt.datetime.now(dt.UTC))
        return Response([f.as_dict(contract.currency) for f in periods.compute(contract, now=now)])


# --- billing lines ------------------------------------------------------------------------------


class BillingLineSerializer(ResourceSerializer):
    contract = ReferenceField()
    period = ReferenceField()
    batch = ReferenceField()
    entries = serializers.SerializerMethodField(help_text="Ids of the ledger entries behind the line.")
    breaches = serializers.SerializerMethodField(help_text="Ids of the breaches behind a service credit.")

    class Meta:
        model = BillingLine
        fields = [
            "id", "contract", "period", "kind", "description", "quantity", "unit_price", "amount", "currency",
            "date", "status", "batch", "entries", "breaches", "created_at",
        ]  # fmt: skip
        read_only_fields = fields
        money_fields = {"amount": "currency"}
        price_fields = {"unit_price": "currency"}
        default_fields = [
            "id", "contract", "period", "kind", "description", "quantity", "unit_price", "amount", "currency",
            "date", "status", "batch",
        ]  # fmt: skip

    def get_entries(self, line) -> list[int]:
        return sorted(e.pk for e in line.entries.all())

    def get_breaches(self, line) -> list[int]:
        return sorted(b.pk for b in line.breaches.all())


class BillingLineFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    period_id = PredicateFilter(field_name="period")
    batch_id = PredicateFilter(field_name="batch")

    class Meta:
        model = BillingLine
        fields = ["kind", "status", "date", "currency", "created_at"]


class BillingLineViewSet(ResourceViewSet):
    """Billing lines for the finance system (read-only; managers). Written by `run_lifecycle`
    (period charges, overage, prepay, service credits) and by auto top-up; exported in batches."""

    queryset = BillingLine.objects.select_related("contract", "period", "batch")
    serializer_class = BillingLineSerializer
    filterset_class = BillingLineFilterSet
    sort_fields = {"date": "date", "amount": "amount", "kind": "kind", "created_at": "created_at"}
    default_sort = "-id"
    read_role = "manager"
    write_role = "manager"

    def get_queryset(self):
        queryset = super().get_queryset()
        fields = self.selected_fields(self.get_serializer_class())
        if fields is None or "entries" in fields:
            queryset = queryset.prefetch_related("entries")
        if fields is None or "breaches" in fields:
            queryset = queryset.prefetch_related("breaches")
        return queryset


# --- exports ------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "batch", "line", "contract_id", "contract_reference", "period_start", "period_end", "kind", "description",
    "quantity", "unit_price", "amount", "currency", "date", "entries", "breaches",
]  # fmt: skip


class CSVRenderer(BaseRenderer):
    """An export batch as CSV: one row per line (`Accept: text/csv`)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        batches = data if isinstance(data, list) else [data]
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code < 400 and isinstance(data, dict) and "id" in data:
            # One batch, a download named after it (found by an outside sweep: unnamed); the list is
            # streamed by the toolkit's CSVMixin, under the resource's name.
            response["Content-Disposition"] = content_disposition(f"billing-export-{data['id']}.csv")
        for batch in batches:
            for line in batch.get("lines", []):
                period = line["period_dates"] or {}
                writer.writerow(
                    [
                        batch["id"], line["id"], line["contract"]["id"], spreadsheet_safe(line["contract_reference"]),
                        period.get("start_date", ""), period.get("end_date", ""), line["kind"],
                        spreadsheet_safe(line["description"]), line["quantity"], line["unit_price"], line["amount"],
                        line["currency"], line["date"], " ".join(map(str, line["entries"])),
                        " ".join(map(str, line["breaches"])),
                    ]
                )  # fmt: skip
        return out.getvalue().encode()


class ExportedLineSerializer(BillingLineSerializer):
    contract_reference = serializers.CharField(source="contract.reference", read_only=True)
    period_dates = serializers.SerializerMethodField()

    class Meta(BillingLineSerializer.Meta):
        fields = [*BillingLineSerializer.Meta.fields, "contract_reference", "period_dates"]

    def get_period_dates(self, line) -> dict | None:
        if line.period is None:
            return None
        return {"start_date": line.period.start_date.isoformat(), "end_date": line.period.end_date.isoformat()}


class ExportBatchSerializer(ResourceSerializer):
    contract = ReferenceField()
    contract_id = ReferenceIdField(source="contract", queryset=Contract.objects.all(), required=False)
    created_by = ReferenceField()
    lines = serializers.SerializerMethodField()

    class Meta:
        model = ExportBatch
        fields = [
            "id", "contract", "contract_id", "date_from", "date_to", "line_count", "totals", "created_by",
            "created_at", "lines",
        ]  # fmt: skip
        read_only_fields = ["line_count", "totals", "created_at"]
        default_fields = ["id", "contract", "date_from", "date_to", "line_count", "totals", "created_by", "created_at"]

    def get_lines(self, batch) -> list[dict]:
        # Oldest first, said rather than left to the database (GraphQL's `lines` follow it).
        return ExportedLineSerializer(sorted(batch.lines.all(), key=lambda line: line.pk), many=True).data

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and end < start:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
        return attrs


class ExportBatchFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")

    class Meta:
        model = ExportBatch
        fields = ["created_at", "line_count"]


class ExportBatchViewSet(IdempotentCreateMixin, CreateMixin, ResourceViewSet):
    """Exports to the finance system (managers). `POST` takes every pending billing line
    (optionally only `contract_id`'s, dated from `date_from` to `date_to` inclusive) into one batch,
    atomically, and returns it with its lines; `Accept: text/csv` returns the lines as CSV.
    Exported lines never change: a correction is a new line. Send an `Idempotency-Key` so a
    retried export returns the same batch instead of an empty second one."""

    queryset = ExportBatch.objects.select_related("contract", "created_by").prefetch_related(
        "lines__contract", "lines__period", "lines__batch", "lines__entries", "lines__breaches"
    )
    serializer_class = ExportBatchSerializer
    filterset_class = ExportBatchFilterSet
    renderer_classes = [JSONRenderer, CSVRenderer]
    sort_fields = {"created_at": "created_at", "line_count": "line_count"}
    default_sort = "-id"
    read_role = "manager"
    write_role = "manager"
    idempotency_resource = "billing_exports"

    def get_queryset(self):
        queryset = super().get_queryset()
        fields = self.selected_fields(self.get_serializer_class())
        if fields is not None and "lines" not in fields:
            queryset = queryset.prefetch_related(None)  # a collection lists batches without their lines
        return queryset

    @staticmethod
    def create_service(*, organization, actor, data):
        return services.export_pending(organization=organization, actor=actor, **data)

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors always come as the JSON envelope, whatever was asked for.
        if response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


# --- contract templates -------------------------------------------------------------------------


class TemplateRuleSerializer(SlaRuleSerializer):
    """An SLA rule as a template holds it: no contract, no effective dates (the contract's start)."""

    class Meta(SlaRuleSerializer.Meta):
        fields = [
            "name", "metric", "priorities", "target_minutes", "calendar_id", "pause_on_hold", "escalation",
            "penalty", "monthly_penalty_cap",
        ]  # fmt: skip
        read_only_fields = []


class TemplateLineItemSerializer(LineItemSerializer):
    class Meta(LineItemSerializer.Meta):
        fields = ["kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes"]
        read_only_fields = []


def validated_items(serializer_class, items, name: str, context) -> list[dict]:
    """Each item through its resource's own serializer; a fault named `name[i].field`."""
    if not isinstance(items, list):
        raise serializers.ValidationError({name: ["Expected a list."]})
    out, errors = [], {}
    for n, item in enumerate(items):
        form = serializer_class(data=item, context=context)
        if not form.is_valid():
            # Flattened as every error is (a list field's item is `[i]`): iterating a list field's
            # errors, keyed by index, named the index as the message ("0").
            errors.update(flatten_errors(form.errors, f"{name}[{n}]"))
            continue
        out.append(form.to_json(form.validated_data))
    if errors:
        raise serializers.ValidationError(errors)
    return out


class _JSONItemsMixin:
    def to_json(self, data: dict) -> dict:
        """Validated data as the template stores it (references as ids, decimals as strings)."""
        out = {}
        for key, value in data.items():
            if key == "calendar":
                out["calendar_id"] = value.pk if value is not None else None
            elif hasattr(value, "quantize"):
                out[key] = str(value)
            else:
                out[key] = value
        return out


class TemplateRuleItem(_JSONItemsMixin, TemplateRuleSerializer):
    def to_json(self, data: dict) -> dict:
        return {"calendar_id": None, **super().to_json(data)}


class TemplateLineItem(_JSONItemsMixin, TemplateLineItemSerializer):
    def to_json(self, data: dict) -> dict:
        """A unit price as a line item's is written (`price_text`: the currency's minor units, or the
        finer places given), not with the column's four places ("12.0000")."""
        out = super().to_json(data)
        currency = self.context.get("currency")
        if currency and data.get("unit_price") is not None:
            out["unit_price"] = price_text(data["unit_price"], currency)
        return out


class ContractTemplateSerializer(BillingPlanFieldsMixin, ResourceSerializer):
    line_items = JSONObjectListField(required=False, help_text="Line items as on a contract (without ids).")
    sla_rules = JSONObjectListField(
        required=False, help_text="SLA rules as on a contract, without contract_id and effective dates."
    )
    contracts = serializers.SerializerMethodField(help_text="Ids of the contracts made from this template.")

    class Meta:
        model = ContractTemplate
        fields = [
            "id", "name", "contract_type", "term_months", "currency", *BILLING_PLAN_API_FIELDS, "line_items",
            "sla_rules", "active", "contracts", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        price_fields = dict.fromkeys(BILLING_PLAN_PRICES, "currency")
        default_fields = [
            "id", "name", "contract_type", "term_months", "currency", "billing_period", "active", "created_at",
            "updated_at",
        ]  # fmt: skip
        extra_kwargs = {"term_months": {"min_value": 1, "max_value": 120}, **BILLING_PLAN_LIMITS}

    def get_contracts(self, template) -> list[int]:
        return sorted(use.contract_id for use in template.uses.all())

    def validate_currency(self, value: str) -> str:
        if not is_currency(value):
            raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "line_items" in attrs:
            currency = attrs.get("currency", getattr(self.instance, "currency", None))
            context = {**self.context, "currency": currency if is_currency(currency) else None}
            attrs["line_items"] = validated_items(TemplateLineItem, attrs["line_items"], "line_items", context)
        if "sla_rules" in attrs:
            attrs["sla_rules"] = validated_items(TemplateRuleItem, attrs["sla_rules"], "sla_rules", self.context)
        return self.check_plan(attrs)


class ContractTemplateFilterSet(PredicateFilterSet):
    class Meta:
        model = ContractTemplate
        fields = ["name", "contract_type", "currency", "billing_period", "active", "created_at"]


# The body is validated as a contract: any writable contract field overrides the template, so the
# schema says so (additionalProperties: true) rather than pretend the three required ones are all.
INSTANTIATE_BODY = {
    "type": "object",
    "description": "Validated as a contract: any writable contract field overrides the template.",
    "properties": {
        "counterparty_id": {"type": "integer"},
        "reference": {"type": "string", "maxLength": 64},
        # As a contract's body states them: a date in the service's years, an ISO 4217 code.
        "start_date": {"type": "string", "format": "date", "pattern": dates.YEAR_PATTERN},
        "currency": {
            "type": "string",
            "enum": sorted(MINOR_UNITS),
            "description": "The template's unless it states no amount: its prices are in its currency (a 422).",
        },
    },
    "required": ["counterparty_id", "reference", "start_date"],
    "additionalProperties": True,
}


def instantiation_data(template: ContractTemplate, body: dict, context: dict) -> dict:
    """The draft contract a template makes, validated as the contracts API validates a contract:
    the template's fields, then `body`'s (`counterparty_id`, `reference`, `start_date`, any writable
    contract field), `expiry_date` the end of `term_months` unless given. The start is checked
    before the term is counted on from it (the dates end in 2999), and again with the computed
    expiry. A `currency` other than the template's is refused when the template states any amount
    (its figures are in its currency). Raises the serializer's ValidationError. Shared by the API
    and the admin's action."""
    currency = body.get("currency", template.currency)
    amounts = services.template_amounts(template)
    # A code that is no currency gets the contract's own error (the serializer's), not this one.
    if currency != template.currency and amounts and isinstance(currency, str) and is_currency(currency):
        # The same figures in another currency are other amounts (an outside test: 2400.00 EUR
        # became 2400 JPY); amendments refuse a currency change for the same reason.
        raise serializers.ValidationError(
            {
                "currency": [
                    f"The template's prices are in {template.currency} ({', '.join(amounts)}): instantiate it "
                    f"in {template.currency}, or make a template in {currency}."
                ]
            }
        )
    data = {"counterparty_role": "customer", **services.template_contract_data(template), **body}
    form = ContractSerializer(data=data, context=context)
    form.is_valid(raise_exception=True)
    if template.term_months and "expiry_date" not in body:
        expiry = term_end(form.validated_data["start_date"], template.term_months)
        form = ContractSerializer(data={**data, "expiry_date": expiry.isoformat()}, context=context)
        form.is_valid(raise_exception=True)
    return form.validated_data


class ContractTemplateViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Contract templates (managers): the terms, billing plan, line items and SLA rules a contract
    starts from. `instantiate` makes a draft contract from one; a later change to the template
    changes no contract made from it."""

    queryset = ContractTemplate.objects.prefetch_related("uses")
    serializer_class = ContractTemplateSerializer
    filterset_class = ContractTemplateFilterSet
    sort_fields = {"name": "name", "contract_type": "contract_type", "created_at": "created_at"}
    default_sort = "name"
    read_role = "manager"
    write_role = "manager"
    create_service = staticmethod(services.create_template)
    update_service = staticmethod(services.update_template)
    delete_service = staticmethod(services.delete_template)

    @extend_schema(request={"application/json": INSTANTIATE_BODY}, responses={201: ContractSerializer})
    @action(detail=True, methods=["post"])
    def instantiate(self, request, pk=None):
        """A draft contract from the template (201, `Location` of the contract). The body needs
        `counterparty_id`, `reference` and `start_date`; any other writable contract field
        overrides the template's (`expiry_date` defaults to the end of `term_months`)."""
        template = self.get_object()
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise Unprocessable("Expected a JSON object.", {"base": ["Expected a JSON object."]})
        missing = {name: ["Required."] for name in ("counterparty_id", "reference", "start_date") if name not in body}
        if missing:
            raise Unprocessable(f"Missing: {', '.join(missing)}.", missing)
        context = self.get_serializer_context()
        contract_data = instantiation_data(template, body, context)
        contract = services.instantiate_template(template=template, actor=request.user, contract_data=contract_data)
        fresh = Contract.objects.select_related("counterparty", "billing_calendar").get(pk=contract.pk)
        location = reverse("contract-detail", kwargs={"pk": contract.pk}, request=request)
        return Response(
            ContractSerializer(fresh, context=context).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

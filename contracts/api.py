"""`/api/v1/counterparties`, `/api/v1/contracts` (with lifecycle actions and line items)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import django_filters
from django import forms
from django.db.models import Case, F, Prefetch, Q, When
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.pagination import query_int
from config.api.serializers import (
    ActionSerializer,
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    SourceFieldsMixin,
    reference_of,
    tenant_of,
)
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin
from tenancy.currencies import is_currency, quantize

from . import services
from .geo import CoverageError, covers, validate_coverage
from .models import Asset, Contract, ContractApproval, Counterparty, LineItem

# --- counterparties -----------------------------------------------------------------------------


class CounterpartySerializer(SourceFieldsMixin, ResourceSerializer):
    class Meta:
        model = Counterparty
        fields = [
            "id", "name", "kind", "reference", "email", "phone", "address", "remarks",
            "source", "sourceID", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = ["id", "name", "kind", "reference", "sourceID", "created_at", "updated_at"]


class CounterpartyFilterSet(PredicateFilterSet):
    sourceID = PredicateFilter(field_name="source_id")

    class Meta:
        model = Counterparty
        fields = ["name", "kind", "reference", "email", "source", "created_at", "updated_at"]


class CounterpartyViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """The customers and vendors that contracts are made with. Managers write, everyone reads."""

    queryset = Counterparty.objects.all()
    serializer_class = CounterpartySerializer
    filterset_class = CounterpartyFilterSet
    sort_fields = {
        "name": "name",
        "kind": "kind",
        "reference": "reference",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "name"
    write_role = "manager"
    create_service = staticmethod(services.create_counterparty)
    update_service = staticmethod(services.update_counterparty)
    delete_service = staticmethod(services.delete_counterparty)


# --- contracts ----------------------------------------------------------------------------------


class ApprovalSerializer(serializers.ModelSerializer):
    approver = ReferenceField()

    class Meta:
        model = ContractApproval
        fields = ["approver", "decision", "comment", "decided_at"]


class ContractSerializer(SourceFieldsMixin, ResourceSerializer):
    counterparty = ReferenceField()
    counterparty_id = ReferenceIdField(source="counterparty", queryset=Counterparty.objects.all())
    renewed_from = ReferenceField()
    renewed_by = ReferenceField()
    submitted_by = ReferenceField()
    approvals = serializers.SerializerMethodField()
    covered_assets = serializers.SerializerMethodField()
    covered_asset_ids = serializers.ListField(
        source="covered_assets",
        child=ReferenceIdField(queryset=Asset.objects.all()),
        max_length=1000,
        required=False,
        write_only=True,
        help_text="Assets of the contract's counterparty that it covers (a term: editable in draft).",
    )
    time_zone = serializers.CharField(max_length=64, required=False)
    currency = serializers.CharField(max_length=3, required=False)

    class Meta:
        model = Contract
        fields = [
            "id", "reference", "name", "description", "remarks", "source", "sourceID",
            "contract_type", "counterparty", "counterparty_id", "counterparty_role", "status",
            "start_date", "expiry_date", "time_zone", "notice_period_days", "notice_date",
            "auto_renew", "renewal_term_months", "renewed_from", "renewed_by", "currency",
            "contract_value", "hours_budget", "remaining_hours", "low_balance_threshold_hours", "allow_overrun",
            "coverage_areas", "covered_assets", "covered_asset_ids", "service_territory_id",
            "dispatch_agreement_id", "submitted_by", "submitted_at", "approvals",
            "notice_given_at", "notice_reason", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "status", "notice_date", "submitted_at", "notice_given_at", "notice_reason", "remaining_hours",
            "created_at", "updated_at",
        ]  # fmt: skip
        default_fields = [
            "id", "reference", "name", "contract_type", "status", "counterparty",
            "start_date", "expiry_date", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            # 14 integer digits at most, so rounding to the currency's minor unit still fits the column.
            "contract_value": {"min_value": 0, "max_value": Decimal("99999999999999")},
            "hours_budget": {"min_value": 0},
            "low_balance_threshold_hours": {"min_value": 0},
            "renewal_term_months": {"min_value": 1, "max_value": 120},
            "notice_period_days": {"max_value": 3650},
        }

    def get_approvals(self, contract) -> list[dict]:
        current = [a for a in contract.approvals.all() if a.approval_round == contract.approval_round]
        return ApprovalSerializer(current, many=True).data

    @extend_schema_field(serializers.ListField(child=ReferenceField()))
    def get_covered_assets(self, contract) -> list[dict]:
        return [reference_of(asset) for asset in contract.covered_assets.all()]

    def validate_time_zone(self, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone.")
        return value

    def validate_currency(self, value: str) -> str:
        if not is_currency(value):
            raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return value

    def validate_reference(self, value: str) -> str:
        clash = Contract.objects.filter(organization=tenant_of(self), reference=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        existing = clash.values_list("pk", flat=True).first()
        if existing is not None:
            raise serializers.ValidationError(f"Already used by contract {existing}.")
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)

        def value(name):
            return attrs.get(name, getattr(self.instance, name, None))

        if attrs.get("coverage_areas") is not None:
            try:
                validate_coverage(attrs["coverage_areas"], path="coverage_areas")
            except CoverageError as exc:
                # Each error names its JSON path, e.g. coverage_areas.features[2].geometry.coordinates[0].
                raise serializers.ValidationError(exc.errors) from None
        start, expiry = value("start_date"), value("expiry_date")
        if start and expiry and expiry < start:
            raise serializers.ValidationError({"expiry_date": ["Must not be before start_date."]})
        return attrs

    def to_representation(self, contract):
        data = super().to_representation(contract)
        if data.get("contract_value") is not None:
            data["contract_value"] = str(quantize(contract.contract_value, contract.currency))
        return data


class ExpiringContractSerializer(ContractSerializer):
    days_to_expiry = serializers.SerializerMethodField()
    days_to_notice = serializers.SerializerMethodField()

    class Meta(ContractSerializer.Meta):
        fields = [*ContractSerializer.Meta.fields, "days_to_expiry", "days_to_notice"]
        default_fields = [
            *ContractSerializer.Meta.default_fields, "notice_date", "auto_renew", "days_to_expiry", "days_to_notice",
        ]  # fmt: skip

    def _days_until(self, contract, day) -> int | None:
        return None if day is None else (day - contract.local_today(timezone.now())).days

    def get_days_to_expiry(self, contract) -> int | None:
        return self._days_until(contract, contract.expiry_date)

    def get_days_to_notice(self, contract) -> int | None:
        return self._days_until(contract, contract.notice_date)


class PointField(forms.Field):
    """`LON,LAT` in WGS 84."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            lon, lat = (float(part) for part in value.split(","))
        except ValueError:
            raise forms.ValidationError("Expected LON,LAT (two numbers).") from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise forms.ValidationError("Longitude must be in [-180, 180] and latitude in [-90, 90].")
        return lon, lat


class CoversFilter(django_filters.Filter):
    """Contracts whose coverage contains the point: a bounding-box query, then the exact test."""

    field_class = PointField

    def filter(self, qs, point):
        if point is None:
            return qs
        lon, lat = point
        boxed = qs.filter(
            coverage_min_lon__lte=lon, coverage_max_lon__gte=lon, coverage_min_lat__lte=lat, coverage_max_lat__gte=lat
        )
        inside = [pk for pk, area in boxed.values_list("pk", "coverage_areas") if covers(area, lon, lat)]
        return qs.filter(pk__in=inside)


class ContractFilterSet(PredicateFilterSet):
    counterparty_id = PredicateFilter(field_name="counterparty")
    sourceID = PredicateFilter(field_name="source_id")
    covers = CoversFilter(help_text="LON,LAT: contracts whose coverage contains the point.")

    class Meta:
        model = Contract
        fields = [
            "reference", "status", "contract_type", "counterparty_role", "start_date", "expiry_date",
            "notice_date", "auto_renew", "currency", "service_territory_id", "dispatch_agreement_id",
            "source", "created_at", "updated_at",
        ]  # fmt: skip


class ReasonSerializer(ActionSerializer):
    reason = serializers.CharField(max_length=2000, allow_blank=False)


class OptionalReasonSerializer(ActionSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class CommentSerializer(ActionSerializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RenewSerializer(ActionSerializer):
    start_date = serializers.DateField(required=False)
    expiry_date = serializers.DateField(required=False)
    term_months = serializers.IntegerField(required=False, min_value=1, max_value=120)

    def validate(self, attrs):
        if "expiry_date" in attrs and "term_months" in attrs:
            raise serializers.ValidationError({"term_months": ["Give expiry_date or term_months, not both."]})
        return attrs


class EmptySerializer(ActionSerializer):
    pass


def _contract_action(service, description: str, body=EmptySerializer, **extra):
    """An action sub-path that validates its body, calls the service and returns the contract."""

    def handler(self, request, pk=None):
        form = body(data=request.data)
        form.is_valid(raise_exception=True)
        contract = service(contract=self.get_object(), actor=request.user, **form.validated_data)
        return self.respond(contract)

    handler.__name__ = service.__name__.removesuffix("_contract")
    # extend_schema outside @action, so that the documented body is the action's, not a contract.
    documented = extend_schema(request=body, responses={200: ContractSerializer}, description=description)
    return documented(action(detail=True, methods=["post"], **extra)(handler))


class ContractViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Contracts with their lifecycle. Managers write and act; everyone reads.

    Terms can be edited only in draft; descriptive fields until the contract is closed.
    """

    queryset = Contract.objects.select_related("counterparty", "renewed_from", "renewed_by", "submitted_by")
    serializer_class = ContractSerializer
    filterset_class = ContractFilterSet
    sort_fields = {
        "name": "name",
        "reference": "reference",
        "status": "status",
        "contract_type": "contract_type",
        "start_date": "start_date",
        "expiry_date": "expiry_date",
        "notice_date": "notice_date",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "name"
    write_role = "manager"
    create_service = staticmethod(services.create_contract)
    update_service = staticmethod(services.update_contract)
    delete_service = staticmethod(services.delete_contract)

    def get_queryset(self):
        queryset = super().get_queryset()
        fields = self.selected_fields(self.get_serializer_class())
        if fields is None or "approvals" in fields:
            queryset = queryset.prefetch_related("approvals__approver")
        if fields is None or "covered_assets" in fields:
            queryset = queryset.prefetch_related(Prefetch("covered_assets", Asset.objects.order_by("id")))
        return queryset

    submit = _contract_action(services.submit_contract, "Submit a draft for approval (no body).")
    approve = _contract_action(
        services.approve_contract,
        "Approve a pending contract, with an optional `comment`. Two different managers or admins must "
        "approve, neither the submitter; the second approval schedules or activates it.",
        CommentSerializer,
    )
    reject = _contract_action(
        services.reject_contract, "Reject a pending contract back to draft, with a `reason`.", ReasonSerializer
    )
    suspend = _contract_action(
        services.suspend_contract, "Suspend an active contract, with a `reason`.", ReasonSerializer
    )
    resume = _contract_action(
        services.resume_contract, "Resume a suspended contract (optional `reason`).", OptionalReasonSerializer
    )
    terminate = _contract_action(
        services.terminate_contract, "Terminate an active or suspended contract, with a `reason`.", ReasonSerializer
    )
    give_notice = _contract_action(
        services.give_notice,
        "Give notice of non-renewal (optional `reason`); after the notice date it is too late.",
        OptionalReasonSerializer,
    )

    @extend_schema(request=RenewSerializer, responses={201: ContractSerializer})
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        """Draft the renewal (201): a new contract with the same terms, linked both ways."""
        form = RenewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        renewal = services.renew_contract(contract=self.get_object(), actor=request.user, **form.validated_data)
        return self.respond(renewal, status.HTTP_201_CREATED, {"Location": self.detail_url(renewal)})

    @action(detail=False, methods=["get"])
    def active(self, request):
        """The active contracts (all list parameters apply)."""
        return self.list(request)

    @extend_schema(
        parameters=[OpenApiParameter("within_days", int, description="Window in days (default 90).")],
        responses={200: ExpiringContractSerializer(many=True)},
    )
    @action(
        detail=False,
        methods=["get"],
        extra_query_params=("within_days",),
        sort_fields={**sort_fields, "soonest": "soonest"},
        default_sort="soonest",
    )
    def expiring(self, request):
        """Active and suspended contracts whose expiry or notice date falls within the window, soonest first."""
        return self.list(request)

    def filter_queryset(self, queryset):
        if self.action == "active":
            queryset = queryset.filter(status=Contract.Status.ACTIVE)
        elif self.action == "expiring":
            queryset = self._expiring(queryset)
        return super().filter_queryset(queryset)

    def _expiring(self, queryset):
        within_days = query_int(self.request, "within_days", 90, 0, 3650)
        today = timezone.now().date()
        until = today + dt.timedelta(days=within_days)
        return queryset.filter(
            Q(expiry_date__gte=today, expiry_date__lte=until) | Q(notice_date__gte=today, notice_date__lte=until),
            status__in=[Contract.Status.ACTIVE, Contract.Status.SUSPENDED],
        ).annotate(
            # The next of the two dates still ahead: the notice date while it lies ahead, else expiry.
            soonest=Case(When(notice_date__gte=today, then=F("notice_date")), default=F("expiry_date"))
        )

    def get_serializer_class(self):
        return ExpiringContractSerializer if self.action == "expiring" else ContractSerializer


# --- line items ---------------------------------------------------------------------------------


class LineItemSerializer(ResourceSerializer):
    class Meta:
        model = LineItem
        fields = [
            "id", "kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = fields
        extra_kwargs = {"quantity": {"min_value": 0}, "unit_price": {"min_value": 0}}


class LineItemFilterSet(PredicateFilterSet):
    class Meta:
        model = LineItem
        fields = ["kind", "sku", "covered", "created_at"]


class LineItemViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """A contract's line items; editable only while the contract is a draft."""

    queryset = LineItem.objects.all()
    serializer_class = LineItemSerializer
    filterset_class = LineItemFilterSet
    sort_fields = {"description": "description", "kind": "kind", "sku": "sku", "created_at": "created_at"}
    default_sort = "id"
    write_role = "manager"

    @property
    def contract(self) -> Contract:
        if not hasattr(self, "_contract"):
            self._contract = services.contract_for_line_items(
                organization=self.organization, contract_id=self.kwargs["contract_pk"]
            )
        return self._contract

    def get_queryset(self):
        return super().get_queryset().filter(contract=self.contract)

    def create_service(self, *, organization, actor, data):
        return services.create_line_item(contract=self.contract, actor=actor, data=data)

    @staticmethod
    def update_service(*, instance, actor, data):
        return services.update_line_item(item=instance, actor=actor, data=data)

    @staticmethod
    def delete_service(*, instance, actor):
        services.delete_line_item(item=instance, actor=actor)

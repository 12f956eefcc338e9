"""`/api/v1/counterparties`, `/api/v1/contracts` (with lifecycle actions and line items)."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from operator import attrgetter

import django_filters
from django import forms
from django.db import models
from django.db.models import Case, F, Prefetch, Q, When
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action

from config import dates
from config.api.exceptions import BadRequest
from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.pagination import query_int
from config.api.schema import DATE_PARAMETER, openapi_shape, whole_number_parameter
from config.api.serializers import (
    ActionSerializer,
    JSONObjectField,
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    RowMethodField,
    SourceFieldsMixin,
    money_text,
    price_text,
    reference_of,
    shaped_json_field,
    unique_in_organization,
)
from config.api.viewsets import CreateMixin, DestroyMixin, NestedListMixin, ResourceViewSet, UpdateMixin
from events.services import jsonable
from tenancy.currencies import MONEY_BOUNDS, MONEY_HELP, is_currency

from . import amendments, services, terms
from .billing_plan import (
    AUTO_TOP_UP,
    BILLING_PLAN_API_FIELDS,
    BILLING_PLAN_LIMITS,
    BILLING_PLAN_PRICES,
    HOURS_LIMIT,
    normalise_top_up,
    plan_errors,
)
from .geo import CoverageError, covers, validate_coverage
from .models import Amendment, Asset, Contract, ContractApproval, Counterparty, LineItem, TermVersion

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


AutoTopUpField = shaped_json_field(openapi_shape(AUTO_TOP_UP), "AutoTopUp")


class BillingPlanFieldsMixin(serializers.Serializer):
    """The billing plan's fields (issue 12), shared by contracts and contract templates."""

    billing_calendar = ReferenceField()
    # The calendar model is the higher `slas` app's: reached through the field, not imported.
    billing_calendar_id = ReferenceIdField(
        source="billing_calendar",
        queryset=Contract._meta.get_field("billing_calendar").related_model.objects.all(),
        required=False,
        allow_null=True,
    )
    auto_top_up = AutoTopUpField(
        required=False,
        allow_null=True,
        help_text='{"threshold_hours", "mode": "to" | "by", "hours", "price_per_hour"} (decimal strings), or null.',
    )

    def check_plan(self, attrs: dict) -> dict:
        """422 naming the fields for the rules between plan fields; `auto_top_up` normalised."""

        def value(name):
            return attrs.get(name, getattr(self.instance, name, None))

        faults = plan_errors(value, written=None if self.instance is None else attrs)
        if faults:
            raise serializers.ValidationError(faults)
        if "auto_top_up" in attrs:
            attrs["auto_top_up"] = normalise_top_up(attrs["auto_top_up"])
        return attrs


class ContractSerializer(BillingPlanFieldsMixin, SourceFieldsMixin, ResourceSerializer):
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
    waiting_for = serializers.SerializerMethodField(
        help_text="While pending approval: what the contract still waits for (internal approvals, the "
        "counterparty's signature where its terms require one)."
    )
    time_zone = serializers.CharField(max_length=64, required=False)
    currency = serializers.CharField(max_length=3, required=False)
    coverage_areas = JSONObjectField(
        required=False,
        allow_null=True,
        help_text="GeoJSON (RFC 7946) in WGS 84: a Polygon or MultiPolygon, or a Feature or FeatureCollection of them.",
    )

    class Meta:
        model = Contract
        fields = [
            "id", "reference", "name", "description", "remarks", "source", "sourceID",
            "contract_type", "counterparty", "counterparty_id", "counterparty_role", "status",
            "start_date", "expiry_date", "time_zone", "notice_period_days", "notice_date",
            "auto_renew", "renewal_term_months", "renewed_from", "renewed_by", "currency",
            "contract_value", "hours_budget", "remaining_hours", "low_balance_threshold_hours", "allow_overrun",
            "requires_counterparty_signature", "coverage_areas", "covered_assets", "covered_asset_ids",
            "service_territory_id", "dispatch_agreement_id", "submitted_by", "submitted_at", "approvals",
            "waiting_for",
            "notice_given_at", "notice_reason", "created_at", "updated_at",
            *BILLING_PLAN_API_FIELDS,
        ]  # fmt: skip
        read_only_fields = [
            "status", "notice_date", "submitted_at", "notice_given_at", "notice_reason", "remaining_hours",
            "created_at", "updated_at",
        ]  # fmt: skip
        money_fields = {"contract_value": "currency"}
        price_fields = dict.fromkeys(BILLING_PLAN_PRICES, "currency")
        default_fields = [
            "id", "reference", "name", "contract_type", "status", "counterparty",
            "start_date", "expiry_date", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "contract_value": {**MONEY_BOUNDS, "help_text": MONEY_HELP},
            "hours_budget": {"min_value": 0, "max_value": HOURS_LIMIT},  # it is posted as one allocation
            "low_balance_threshold_hours": {"min_value": 0, "max_value": HOURS_LIMIT},
            "renewal_term_months": {"min_value": 1, "max_value": 120},
            "notice_period_days": {"max_value": 3650},
            **BILLING_PLAN_LIMITS,
        }

    def get_approvals(self, contract) -> list[dict]:
        current = [
            a
            for a in contract.approvals.all()
            if a.approval_round == contract.approval_round and a.amendment_id is None
        ]
        return ApprovalSerializer(current, many=True).data

    @extend_schema_field(serializers.ListField(child=ReferenceField()))
    def get_covered_assets(self, contract) -> list[dict]:
        version = getattr(contract, "terms_version", None)
        if version is not None:  # `?as_of=`: the assets of the terms in force that day (an outside sweep)
            ids = version.terms.get("covered_assets", [])
            assets = self.context.get("as_of_assets")  # a list's, read once for its page
            if assets is None:
                assets = assets_by_id(ids)
            return [reference_of(assets[pk]) for pk in sorted(ids) if pk in assets]
        return [reference_of(asset) for asset in contract.covered_assets.all()]

    def get_waiting_for(self, contract) -> list[str]:
        return services.waiting_for(contract)

    def validate_time_zone(self, value: str) -> str:
        if not dates.is_time_zone(value):
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone.")
        return value

    def validate_currency(self, value: str) -> str:
        if not is_currency(value):
            raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return value

    def validate_reference(self, value: str) -> str:
        return unique_in_organization(self, "reference", value, "contract")

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
        return self.check_plan(attrs)


class ExpiringContractSerializer(ContractSerializer):
    days_to_expiry = serializers.SerializerMethodField()
    days_to_notice = serializers.SerializerMethodField()

    class Meta(ContractSerializer.Meta):
        fields = [*ContractSerializer.Meta.fields, "days_to_expiry", "days_to_notice"]
        default_fields = [
            *ContractSerializer.Meta.default_fields, "notice_date", "auto_renew", "days_to_expiry", "days_to_notice",
        ]  # fmt: skip

    def _days_until(self, contract, day) -> int | None:
        """Days from today, or from `?as_of=` (the day the window starts, with the terms of that day)."""
        start = self.context.get("as_of") or contract.local_today(timezone.now())
        return None if day is None else (day - start).days

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
            "requires_counterparty_signature", "source", "created_at", "updated_at",
        ]  # fmt: skip

    def filter_queryset(self, queryset):
        """With `?as_of=YYYY-MM-DD`, filters on terms match the terms in force on that date."""
        day = as_of_date(self.request.query_params) if self.request is not None else None
        if day is None:
            return super().filter_queryset(queryset)
        for name, value in self.form.cleaned_data.items():
            flt = self.filters[name]
            if value is None or flt.field_name not in (*terms.term_fields(), *terms.DERIVED):
                queryset = flt.filter(queryset, value)
                continue
            model_field = Contract._meta.get_field(flt.field_name)
            blank_is_empty = isinstance(model_field, (models.CharField, models.TextField))
            queryset = queryset.filter(terms.term_predicate_q(flt.field_name, value, day, blank_is_empty))
        return queryset


def assets_by_id(ids) -> dict[int, Asset]:
    """The assets of these ids (those still there), one query; none asked, none read."""
    ids = set(ids)
    return {asset.pk: asset for asset in Asset.objects.filter(pk__in=ids)} if ids else {}


def as_of_date(params) -> dt.date | None:
    """`?as_of=YYYY-MM-DD` (a date in each contract's time zone), else None; malformed: 400."""
    raw = params.get("as_of")
    if raw is None:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            "as_of must be a date YYYY-MM-DD.", {"as_of": [f"'{raw}' is not a date YYYY-MM-DD."]}
        ) from None
    return dates.check(day, "as_of")


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
    # Either, not both (the OpenAPI document says so: config.api.schema.AutoSchema._map_serializer).
    exclusive_fields = (("expiry_date", "term_months"),)

    def validate(self, attrs):
        for first, second in self.exclusive_fields:
            if first in attrs and second in attrs:
                raise serializers.ValidationError({second: [f"Give {first} or {second}, not both."]})
        return attrs


class EmptySerializer(ActionSerializer):
    pass


def _contract_action(service, description: str, body=EmptySerializer, **extra):
    """An action sub-path that validates its body, calls the service and returns the contract."""

    def handler(self, request, pk=None):
        contract = self.get_object()  # a 404 before a 422 on the body (found by an outside sweep)
        form = body(data=request.data)
        form.is_valid(raise_exception=True)
        contract = service(contract=contract, actor=request.user, **form.validated_data)
        return self.respond(contract)

    handler.__name__ = service.__name__.removesuffix("_contract")
    # extend_schema outside @action, so that the documented body is the action's, not a contract.
    documented = extend_schema(request=body, responses={200: ContractSerializer}, description=description)
    return documented(action(detail=True, methods=["post"], **extra)(handler))


# The references a contract shows, and the columns of each that `reference_of` reads besides
# its name and sourceID: those of its str() where the name may be empty.
CONTRACT_REFERENCES = {
    "counterparty": (),
    "renewed_from": ("reference",),
    "renewed_by": ("reference",),
    "submitted_by": ("username",),
    "billing_calendar": (),
}
# Fields whose value is computed from more columns than their own.
READS_MORE = {"contract_value": ("contract_value", "currency")}


@functools.cache
def _columns_read(serializer_class) -> dict[str, tuple[str, ...] | None]:
    """Readable field -> the columns its value comes from (a reference's own columns included);
    None for a field computed from anything (a method field): it needs the whole row."""
    model = serializer_class.Meta.model
    concrete = {field.name for field in model._meta.concrete_fields}
    columns: dict[str, tuple[str, ...] | None] = {}
    for name, field in serializer_class().fields.items():
        if name in CONTRACT_REFERENCES:
            related = model._meta.get_field(name).related_model
            keep = (related._meta.pk.name, "name", "source_id", *CONTRACT_REFERENCES[name])
            names = {f.name for f in related._meta.concrete_fields}
            columns[name] = tuple(f"{name}__{c}" for c in keep if c in names)
        elif name in READS_MORE:
            columns[name] = READS_MORE[name]
        elif field.source in concrete:
            columns[name] = (field.source,)
        else:
            columns[name] = None
    return columns


def only_columns_read(queryset, serializer_class, fields: list[str]):
    """Load only the columns (and references) the selected fields read (issue 15): a page of the
    default fields parses 10 contract columns and a slim counterparty instead of whole rows of
    six tables. Unchanged when a selected field is computed (it may read any column)."""
    read = _columns_read(serializer_class)
    columns = {"pk"}
    for name in fields:
        if read.get(name) is None:
            return queryset
        columns.update(read[name])
    references = [name for name in CONTRACT_REFERENCES if name in fields]
    return queryset.select_related(None).select_related(*references).only(*columns)


AS_OF = OpenApiParameter(
    "as_of", DATE_PARAMETER, description="The contract as it stood in force on this date (contract time zone)."
)
EXPIRING_WITHIN_DAYS = (0, 3650)  # `?within_days=` of /contracts/expiring


class ContractViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Contracts with their lifecycle. Managers write and act; everyone reads.

    Terms can be edited only in draft; descriptive fields until the contract is closed.
    """

    queryset = Contract.objects.select_related(
        "counterparty", "renewed_from", "renewed_by", "submitted_by", "billing_calendar"
    )
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

    extra_query_params = ("as_of",)
    detail_query_params = ("as_of",)

    def get_queryset(self):
        queryset = super().get_queryset()
        serializer_class = self.get_serializer_class()
        fields = self.selected_fields(serializer_class)
        if fields is None or {"approvals", "waiting_for"} & set(fields):
            queryset = queryset.prefetch_related("approvals__approver")
        if fields is None or "covered_assets" in fields:
            queryset = queryset.prefetch_related(Prefetch("covered_assets", Asset.objects.order_by("id")))
        if self.request.method == "GET" and as_of_date(self.request.query_params) is not None:
            # A contract as of a date is rebuilt from its whole row and its term versions.
            return queryset.prefetch_related("term_versions")
        if fields is not None:
            queryset = only_columns_read(queryset, serializer_class, fields)
        return queryset

    def get_serializer(self, *args, **kwargs):
        """With `?as_of=`, each contract as it stood in force on that date (its term version)."""
        day = as_of_date(self.request.query_params) if self.request.method == "GET" else None
        if day is not None and args:
            instance = args[0]
            if isinstance(instance, Contract):
                args = (terms.contract_as_of(instance, day), *args[1:])
            elif instance is not None:
                views = [terms.contract_as_of(c, day) for c in instance]
                context = kwargs.setdefault("context", self.get_serializer_context())
                versions = [view.terms_version for view in views if view.terms_version is not None]
                # The page's covered assets in one query, not one per contract.
                context["as_of_assets"] = assets_by_id(pk for v in versions for pk in v.terms.get("covered_assets", []))
                args = (views, *args[1:])
        return super().get_serializer(*args, **kwargs)

    def row_plan(self):
        as_of = self.request.method == "GET" and as_of_date(self.request.query_params) is not None
        return None if as_of else super().row_plan()  # as of a date: rebuilt instances

    @extend_schema(parameters=[AS_OF])
    def list(self, request, *args, **kwargs):
        """Contracts; with `?as_of=YYYY-MM-DD` each as it stood in force on that date, and the term filters
        match the terms of that date."""
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[AS_OF])
    def retrieve(self, request, *args, **kwargs):
        """A contract; with `?as_of=YYYY-MM-DD` as it stood in force on that date (its term version)."""
        return super().retrieve(request, *args, **kwargs)

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
        services.terminate_contract,
        "Terminate a scheduled (not started yet), active or suspended contract, with a `reason`.",
        ReasonSerializer,
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
        contract = self.get_object()  # a 404 before a 422 on the body
        form = RenewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        renewal = services.renew_contract(contract=contract, actor=request.user, **form.validated_data)
        return self.respond(renewal, status.HTTP_201_CREATED, {"Location": self.detail_url(renewal)})

    @extend_schema(parameters=[AS_OF])
    @action(detail=False, methods=["get"])
    def active(self, request):
        """The active contracts (all list parameters apply)."""
        return self.list(request)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "within_days", whole_number_parameter(*EXPIRING_WITHIN_DAYS), description="Window in days (default 90)."
            ),
            AS_OF,
        ],
        responses={200: ExpiringContractSerializer(many=True)},
    )
    @action(
        detail=False,
        methods=["get"],
        extra_query_params=("within_days", "as_of"),
        sort_fields={**sort_fields, "soonest": "soonest"},
        default_sort="soonest",
    )
    def expiring(self, request):
        """Active and suspended contracts whose expiry or notice date falls within the window, soonest first."""
        return self.list(request)

    # The sort keys that are terms: with `?as_of=` they order by the terms in force on that date.
    TERM_SORT_KEYS = ("contract_type", "start_date", "expiry_date", "notice_date")

    def filter_queryset(self, queryset):
        day = as_of_date(self.request.query_params) if self.request.method == "GET" else None
        if day is not None:
            wanted = {key.strip().removeprefix("-") for key in self.request.query_params.get("sort", "").split(",")}
            wanted |= {self.get_default_sort().removeprefix("-")}
            self.sort_fields = dict(self.sort_fields)
            for key in self.TERM_SORT_KEYS:
                if key in wanted and self.sort_fields.get(key) == key:
                    queryset = queryset.annotate(**{f"as_of_{key}": terms.term_value_as_of(key, day)})
                    self.sort_fields[key] = f"as_of_{key}"
        if self.action == "active":
            queryset = queryset.filter(status=Contract.Status.ACTIVE)
        elif self.action == "expiring":
            queryset = self._expiring(queryset)
        return super().filter_queryset(queryset)

    def _expiring(self, queryset):
        """The window runs from today, or from `?as_of=` on the terms in force that day (issue 14:
        an expiry or notice date an amendment moves is listed where it then stands). The state is
        today's: states are not versioned (docs/decisions.md)."""
        within_days = query_int(self.request, "within_days", 90, *EXPIRING_WITHIN_DAYS)
        day = as_of_date(self.request.query_params)
        start = day or timezone.now().date()
        until = start + dt.timedelta(days=within_days)
        if day is None:
            expiry, notice = F("expiry_date"), F("notice_date")
        else:
            expiry, notice = terms.term_value_as_of("expiry_date", day), terms.term_value_as_of("notice_date", day)
        queryset = queryset.annotate(window_expiry=expiry, window_notice=notice)
        in_window = Q(window_expiry__gte=start, window_expiry__lte=until)
        return queryset.filter(
            in_window | Q(window_notice__gte=start, window_notice__lte=until),
            status__in=[Contract.Status.ACTIVE, Contract.Status.SUSPENDED],
        ).annotate(
            # The next of the two dates still ahead: the notice date while it lies ahead, else expiry.
            soonest=Case(When(window_notice__gte=start, then=F("window_notice")), default=F("window_expiry"))
        )

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request is not None and self.request.method == "GET":
            context["as_of"] = as_of_date(self.request.query_params)
        return context

    def get_serializer_class(self):
        return ExpiringContractSerializer if self.action == "expiring" else ContractSerializer


# --- line items ---------------------------------------------------------------------------------


class ContractChild(NestedListMixin):
    """A resource nested under `/contracts/{contract_pk}/`, within the caller's organization.

    A list filters on the route's contract id without loading the contract (NestedListMixin);
    every other action loads it first."""

    parent_attribute = "contract"

    @property
    def contract(self) -> Contract:
        if not hasattr(self, "_contract"):
            self._contract = services.contract_for_line_items(
                organization=self.organization, contract_id=self.kwargs["contract_pk"]
            )
        return self._contract

    def parent_unread(self) -> bool:
        return super().parent_unread() and not hasattr(self, "_contract")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema, without a request
            return self.queryset.none()
        if self.parent_unread():
            return super().get_queryset().filter(contract_id=self.kwargs["contract_pk"])
        return super().get_queryset().filter(contract=self.contract)

    def get_serializer_context(self):
        if getattr(self, "swagger_fake_view", False) or self.parent_unread():
            return super().get_serializer_context()
        return {**super().get_serializer_context(), "contract": self.contract}


class LineItemSerializer(ResourceSerializer):
    class Meta:
        model = LineItem
        fields = [
            "id", "kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = fields
        price_fields = {"unit_price": "contract.currency"}  # as a billing line's: not the column's "12.5000"
        extra_kwargs = {"quantity": {"min_value": 0}, "unit_price": MONEY_BOUNDS}


class LineItemFilterSet(PredicateFilterSet):
    class Meta:
        model = LineItem
        fields = ["kind", "sku", "covered", "created_at"]


class LineItemViewSet(ContractChild, CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """A contract's line items; editable only while the contract is a draft."""

    queryset = LineItem.objects.all()
    serializer_class = LineItemSerializer
    filterset_class = LineItemFilterSet
    sort_fields = {"description": "description", "kind": "kind", "sku": "sku", "created_at": "created_at"}
    default_sort = "id"
    write_role = "manager"

    def create_service(self, *, organization, actor, data):
        return services.create_line_item(contract=self.contract, actor=actor, data=data)

    @staticmethod
    def update_service(*, instance, actor, data):
        return services.update_line_item(item=instance, actor=actor, data=data)

    @staticmethod
    def delete_service(*, instance, actor):
        services.delete_line_item(item=instance, actor=actor)


# --- amendments and term versions (issue 14) ----------------------------------------------------


@functools.cache
def _term_inputs() -> dict[str, str]:
    """Term name -> its input name on the contract (`counterparty` -> `counterparty_id`).

    Built once per process (issue 15): it depends on the serializer class only, and building a
    ContractSerializer's fields for every row of a page cost about 35 ms a row. Read-only."""
    fields = ContractSerializer().fields
    inputs = {}
    for name, field in fields.items():
        if not field.read_only and field.source in terms.term_fields():
            inputs.setdefault(field.source, name)
    return inputs


@functools.cache
def _term_amounts() -> tuple[dict, dict]:
    """How the contract resource writes each amount among the terms, and among a line item's:
    {field: money_text or price_text}, from the serializers' `Meta.money_fields` and `price_fields`."""

    def texts(meta) -> dict:
        return {
            **dict.fromkeys(getattr(meta, "money_fields", {}), money_text),
            **dict.fromkeys(getattr(meta, "price_fields", {}), price_text),
        }

    return texts(ContractSerializer.Meta), texts(LineItemSerializer.Meta)


def _amounts(values: dict, texts: dict, currency: str | None) -> dict:
    if not currency:  # without a currency, as stored (as ResourceSerializer writes such an amount)
        return values
    return {
        name: texts[name](Decimal(str(value)), currency) if name in texts and value is not None else value
        for name, value in values.items()
    }


def shown_terms(values: dict, currency: str | None) -> dict:
    """Terms (a term version's `terms`, an amendment's `changes`) as the contract resource writes
    them, in REST and GraphQL alike: keyed by the contract's input names (`counterparty` ->
    `counterparty_id`, the key an amendment takes), money in the currency's minor unit and prices,
    a line item's too, as unit prices (`Meta.money_fields`, `price_fields`), not with the four
    places of the column they were read from ("2400.0000"). Other keys (`line_items`' own,
    `sla_rules`) as stored."""
    contract_texts, line_item_texts = _term_amounts()
    inputs = _term_inputs()
    shown = _amounts({inputs.get(k, k): v for k, v in values.items()}, contract_texts, currency)
    if currency and isinstance(shown.get("line_items"), list):
        shown["line_items"] = [
            _amounts(item, line_item_texts, currency) if isinstance(item, dict) else item
            for item in shown["line_items"]
        ]
    return shown


@extend_schema_field({"type": "object"})
class TermsField(serializers.JSONField):
    """Terms as `shown_terms` writes them, in the currency of the contract (`contract.currency`);
    written from rows too (config.api.rows: the column and the contract's currency)."""

    currency_path = "contract.currency"

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.row_columns = (self.source, self.currency_path.replace(".", "__"))

    def get_attribute(self, instance):
        return super().get_attribute(instance), attrgetter(self.currency_path)(instance)

    def to_representation(self, value):
        values, currency = value
        return shown_terms(values, currency)

    def from_row(self, row):
        column, currency = self.row_columns
        return shown_terms(row[column], row[currency])


class AmendmentSerializer(ResourceSerializer):
    changes = TermsField(
        help_text=(
            "The terms that change, as on the contract (`counterparty_id`, `expiry_date`, ...), "
            "`line_items`: the whole new list of line items, and `sla_rules`: [{`id`, changed fields}, ...], "
            "amended from the same instant. Not `currency` or `time_zone`, and `start_date` only before the "
            "contract starts, not before effective_date (nor, but by an admin, before today)."
        )
    )
    submitted_by = ReferenceField()
    created_by = ReferenceField()
    approvals = serializers.SerializerMethodField()
    effective_at = serializers.SerializerMethodField(
        help_text="The instant the terms change: the start of effective_date in the contract's time zone "
        "(use it as effective_from when amending the contract's SLA rules to match)."
    )

    class Meta:
        model = Amendment
        fields = [
            "id", "number", "status", "effective_date", "effective_at", "changes", "reason", "created_by",
            "submitted_by", "submitted_at", "approval_round", "approvals", "decided_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "number", "status", "submitted_at", "approval_round", "decided_at", "created_at", "updated_at",
        ]  # fmt: skip
        default_fields = ["id", "number", "status", "effective_date", "reason", "created_at", "updated_at"]
        extra_kwargs = {"reason": {"allow_blank": False, "max_length": 2000}}

    @property
    def contract(self) -> Contract:
        return self.context["contract"]

    def get_approvals(self, amendment) -> list[dict]:
        current = [a for a in amendment.approvals.all() if a.approval_round == amendment.approval_round]
        return ApprovalSerializer(current, many=True).data

    def get_effective_at(self, amendment) -> str:
        return (
            amendment.contract.start_of_day(amendment.effective_date)
            .astimezone(dt.UTC)
            .isoformat()
            .replace("+00:00", "Z")
        )

    def validate_changes(self, value: dict) -> dict:
        """Each term validated as a contract edit would be; stored as JSON under the term's name."""
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object of the terms that change.")
        inputs = _term_inputs()
        by_input = {input_name: term for term, input_name in inputs.items()}
        errors: dict[str, list[str]] = {}
        term_data = {}
        changes = {}
        for key in value:
            if key == "line_items":
                continue
            if key in amendments.AMENDMENT_PARTS:
                try:
                    changes[key] = amendments.AMENDMENT_PARTS[key].validate(
                        contract=self.contract, value=value[key], context=self.context
                    )
                except serializers.ValidationError as exc:
                    errors[key] = exc.detail
            elif key in by_input:
                term_data[key] = value[key]  # a term not amendable here is refused by the service's check
            else:
                amendable = [inputs[term] for term in amendments.amendable_terms(self.contract) if term in inputs]
                names = ", ".join([*sorted(amendable), "line_items", *amendments.AMENDMENT_PARTS])
                errors[key] = [f"Not an amendable term; one of: {names}."]
        if term_data:
            form = ContractSerializer(self.contract, data=term_data, partial=True, context=self.context)
            if not form.is_valid():
                errors.update({k: v for k, v in form.errors.items()})
            else:
                for input_name in term_data:
                    term = by_input[input_name]
                    changes[term] = jsonable(form.validated_data[term])
        if "line_items" in value:
            items = LineItemSerializer(data=value["line_items"], many=True)
            if not isinstance(value["line_items"], list):
                errors["line_items"] = ["Expected the whole list of line items."]
            elif not items.is_valid():
                errors["line_items"] = items.errors
            else:
                defaults = {f: LineItem._meta.get_field(f).get_default() for f in terms.LINE_ITEM_TERMS}
                changes["line_items"] = [jsonable({**defaults, **item}) for item in items.validated_data]
        if errors:
            raise serializers.ValidationError(errors)
        return changes


class AmendmentFilterSet(PredicateFilterSet):
    class Meta:
        model = Amendment
        fields = ["number", "status", "effective_date", "created_at"]


def _is_admin(request) -> bool:
    return request.auth.has_role("admin")


def _amendment_action(service, body=EmptySerializer, admin_may_backdate=False):
    def handler(self, request, contract_pk=None, pk=None):
        amendment = self.get_object()  # a 404 before a 422 on the body
        form = body(data=request.data)
        form.is_valid(raise_exception=True)
        extra = {"allow_past": _is_admin(request)} if admin_may_backdate else {}
        amendment = service(amendment=amendment, actor=request.user, **form.validated_data, **extra)
        return self.respond(amendment)

    handler.__name__ = service.__name__.removesuffix("_amendment")
    handler.__doc__ = service.__doc__
    # Outside @action, as `_contract_action`'s: inside, the documented body was the amendment's.
    documented = extend_schema(request=body, responses={200: AmendmentSerializer})
    return documented(action(detail=True, methods=["post"])(handler))


class AmendmentViewSet(ContractChild, CreateMixin, UpdateMixin, ResourceViewSet):
    """A contract's amendments: terms that change from `effective_date`, dually approved like the
    contract. Managers write and approve; an admin may date one in the past."""

    queryset = Amendment.objects.select_related("contract", "created_by", "submitted_by").prefetch_related(
        "approvals__approver"
    )
    serializer_class = AmendmentSerializer
    filterset_class = AmendmentFilterSet
    sort_fields = {"number": "number", "effective_date": "effective_date", "created_at": "created_at"}
    default_sort = "number"
    write_role = "manager"

    def create_service(self, *, organization, actor, data):
        return amendments.create_amendment(
            contract=self.contract, actor=actor, data=data, allow_past=_is_admin(self.request)
        )

    def update_service(self, *, instance, actor, data):
        return amendments.update_amendment(
            instance=instance, actor=actor, data=data, allow_past=_is_admin(self.request)
        )

    submit = _amendment_action(amendments.submit_amendment)
    approve = _amendment_action(amendments.approve_amendment, CommentSerializer, admin_may_backdate=True)
    reject = _amendment_action(amendments.reject_amendment, ReasonSerializer)


class TermVersionSerializer(ResourceSerializer):
    amendment = RowMethodField("amendment", "amendment__number", "amendment__reason")
    terms = TermsField(read_only=True)

    class Meta:
        model = TermVersion
        fields = ["id", "effective_from", "effective_to", "origin", "amendment", "terms", "applied_at", "created_at"]
        default_fields = fields

    def get_amendment(self, row) -> dict | None:
        if row["amendment"] is None:
            return None
        return {"id": row["amendment"], "number": row["amendment__number"], "reason": row["amendment__reason"]}


class TermVersionFilterSet(PredicateFilterSet):
    class Meta:
        model = TermVersion
        fields = ["effective_from", "effective_to", "origin"]


class TermVersionViewSet(ContractChild, ResourceViewSet):
    """Every version of a contract's terms with its effective range (local dates, `effective_to`
    exclusive) and what put it there: the creation (approval), a renewal or an amendment."""

    # The contract for its currency (the terms' money, TermsField): of its row only that, in a CSV.
    queryset = TermVersion.objects.select_related("amendment", "contract")
    list_references = {"contract": ("currency",)}
    serializer_class = TermVersionSerializer
    filterset_class = TermVersionFilterSet
    sort_fields = {"effective_from": "effective_from"}
    default_sort = "effective_from"

"""`/api/v1/contracts/{id}/visit_plans` (operators read, managers write) and
`/api/v1/contracts/{id}/visits?from=&to=` (the occurrences with their state and hours)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer

from config import dates
from config.api.csv import CSVRenderer, JSONErrorsMixin, columns_of, csv_parts, stream_csv, wants_csv
from config.api.exceptions import BadRequest
from config.api.filters import MAX_DB_ID, PredicateFilter, PredicateFilterSet, invalid_choice
from config.api.pagination import whole_number
from config.api.schema import DATE_OR_INSTANT_PARAMETER
from config.api.serializers import PickedFieldsMixin, ReferenceField, ReferenceIdField, ResourceSerializer
from config.api.sorting import sort_description, sort_keys, sort_schema
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin, field_names
from contracts.api import ContractChild
from contracts.models import Asset
from contracts.services import contract_for_line_items as contract_of_route
from slas.models import PRIORITY_RANK, Calendar
from workorders import rules as services
from workorders.models import VisitPlan, WorkOrder
from workorders.visits import next_occurrences

from .selectors import STATES, contract_visits

MAX_SPAN = dt.timedelta(days=366)


class VisitPlanSerializer(ResourceSerializer):
    asset = ReferenceField()
    asset_id = ReferenceIdField(source="asset", queryset=Asset.objects.all(), required=False, allow_null=True)
    recurrence = serializers.CharField(
        max_length=500,
        help_text="An RFC 5545 RRULE in the contract's time zone, anchored at active_from, e.g. "
        "FREQ=MONTHLY;BYDAY=3MO;BYHOUR=9 (every third Monday at 09:00). FREQ DAILY or coarser, at most one "
        "visit an hour: BYHOUR lists hours, BYMINUTE one minute, BYSECOND only 0.",
    )
    on_holiday = serializers.ChoiceField(
        choices=VisitPlan.OnHoliday.choices,
        required=False,
        help_text="An occurrence on a date that is no business day of calendar_id (a holiday, or a weekday "
        "without working hours; its local date in the contract's time zone): keep (default, visited as it "
        "falls), next_business_day (the same wall time on the next business day, at most 31 days later; "
        "merged with a visit already there) or skip (not visited).",
    )
    calendar = ReferenceField()
    calendar_id = ReferenceIdField(
        source="calendar",
        queryset=Calendar.objects.all(),
        required=False,
        allow_null=True,
        help_text="The calendar whose business days on_holiday reads (needed unless on_holiday is keep).",
    )
    next_occurrences = serializers.SerializerMethodField()

    class Meta:
        model = VisitPlan
        fields = [
            "id", "summary", "recurrence", "duration_minutes", "hours_allocated", "priority", "asset", "asset_id",
            "site", "generate_days_in_advance", "tolerance_minutes", "on_holiday", "calendar", "calendar_id",
            "active_from", "active_to", "generated_until", "next_occurrences", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["generated_until", "created_at", "updated_at"]
        default_fields = [
            "id", "summary", "recurrence", "priority", "asset", "active_from", "active_to", "generated_until",
            "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "duration_minutes": {"min_value": 1, "max_value": 7 * 24 * 60},
            "hours_allocated": {"min_value": 0},
            "generate_days_in_advance": {"max_value": 366},
            "tolerance_minutes": {"max_value": 90 * 24 * 60},
            "active_from": {"required": False, "help_text": "Default: today in the contract's time zone."},
        }

    def get_next_occurrences(self, plan) -> list[dt.datetime]:
        """The next five visits not generated yet (by the plan's current rule, where on_holiday puts
        them); none once the contract is expired, terminated or renewed."""
        return next_occurrences(plan, after=timezone.now())


class VisitPlanFilterSet(PredicateFilterSet):
    asset_id = PredicateFilter(field_name="asset")
    calendar_id = PredicateFilter(field_name="calendar")

    class Meta:
        model = VisitPlan
        fields = ["priority", "on_holiday", "active_from", "active_to", "created_at", "updated_at"]


class VisitPlanViewSet(ContractChild, CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """A contract's planned visits: each occurrence of the plan's RRULE becomes a work order
    `generate_days_in_advance` days ahead (run_lifecycle / generate_visits), exactly once.
    Editing a plan changes only occurrences not yet generated."""

    queryset = VisitPlan.objects.select_related("asset", "contract", "calendar")
    serializer_class = VisitPlanSerializer
    filterset_class = VisitPlanFilterSet
    sort_fields = {
        "summary": "summary",
        "priority": PRIORITY_RANK,
        "active_from": "active_from",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "id"
    read_role = "operator"
    write_role = "manager"

    def get_queryset(self):
        queryset = super().get_queryset()
        fields = self.selected_fields(self.get_serializer_class())
        if fields is None or "next_occurrences" in fields:  # where the term ends, read once a page
            queryset = queryset.prefetch_related("contract__term_versions")
        return queryset

    def create_service(self, *, organization, actor, data):
        return services.create_visit_plan(contract=self.contract, actor=actor, data=data)

    @staticmethod
    def update_service(*, instance, actor, data):
        return services.update_visit_plan(instance=instance, actor=actor, data=data)

    @staticmethod
    def delete_service(*, instance, actor):
        services.delete_visit_plan(instance=instance, actor=actor)


# --- the visits listing -------------------------------------------------------------------------


class VisitSerializer(PickedFieldsMixin, serializers.Serializer):
    visit_plan = ReferenceField(source="plan")
    occurrence = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=STATES)
    work_order = serializers.SerializerMethodField()
    # A plan need not allocate hours (VisitPlan.hours_allocated is nullable).
    hours_allocated = serializers.DecimalField(
        source="plan.hours_allocated", max_digits=8, decimal_places=2, allow_null=True
    )
    hours_logged = serializers.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        csv_parts = {"work_order": ("id", "name", "status", "resolved_at")}  # work_order_id, ... in CSV

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "readOnly": True,
            "description": "The occurrence's job, once generated.",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "status": {"type": "string", "enum": list(WorkOrder.Status.values)},
                "resolved_at": {"type": "string", "format": "date-time", "nullable": True},
            },
            "required": ["id", "name", "status", "resolved_at"],
        }
    )
    def get_work_order(self, visit) -> dict | None:
        job = visit.work_order
        if job is None:
            return None
        return {"id": job.pk, "name": job.reference or str(job), "status": job.status, "resolved_at": job.resolved_at}


class _Page(list):
    """A computed list the paginator can count."""

    def count(self, *args):  # the paginator asks for the length
        return len(self) if not args else super().count(*args)


def _instant(request, name: str, default: dt.datetime, tz) -> dt.datetime:
    raw = request.query_params.get(name)
    if raw is None:  # blank is a 400, as `within_days=` is (it was the default window)
        return default
    return day_or_instant(raw, name, tz)


def day_or_instant(raw: str, name: str, tz) -> dt.datetime:
    """A window bound of the visits (`?from=`, GraphQL's `from:`): a date (the start of that day in
    the contract's zone `tz`) or an instant with offset; anything else a 400 naming `name`."""
    day = dates.parse_day(raw)
    value = dt.datetime.combine(day, dt.time.min, tzinfo=tz) if day else dates.parse_instant(raw)
    if value is None or timezone.is_naive(value):
        raise BadRequest(
            f"{name} must be a date (YYYY-MM-DD, in the contract's time zone) or an ISO 8601 instant with offset.",
            {name: ["Expected YYYY-MM-DD or an ISO 8601 instant with offset."]},
        )
    return dates.check(value, name)


# `?sort=` keys of the visits listing; ties keep time order, then the plan's.
VISIT_SORTS = {
    "occurrence": lambda visit: visit.occurrence,
    "ends_at": lambda visit: visit.ends_at,
    "visit_plan": lambda visit: visit.plan.pk,
    "state": lambda visit: visit.state,
    "hours_logged": lambda visit: visit.hours_logged,
}


def sorted_visits(visits: list, keys: list[tuple[str, bool]]) -> list:
    for name, descending in reversed(keys):  # stable sorts, the last key first
        visits.sort(key=VISIT_SORTS[name], reverse=descending)
    return visits


class ContractVisitsView(JSONErrorsMixin, GenericAPIView):
    """The occurrences of a contract's visit plans in [from, to) (default: the last 30 days and the
    next 90; at most 366 days), in time order (`?sort=` to change it), with their state (scheduled,
    generated, completed, missed, cancelled), their job, and the hours allocated against the hours logged for
    that job. CSV (`Accept: text/csv` or `?format=csv`) has the same rows, fields, filters and sort,
    without the page limit."""

    serializer_class = VisitSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]
    read_role = "operator"
    filter_backends: list = []

    @property
    def organization(self):
        return self.request.auth.organization

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                DATE_OR_INSTANT_PARAMETER,
                description="Date (contract time zone) or instant; default now - 30 days.",
            ),
            OpenApiParameter(
                "to", DATE_OR_INSTANT_PARAMETER, description="Date or instant (exclusive); default now + 90 days."
            ),
            OpenApiParameter("visit_plan_id", str, description="Comma-separated plan ids."),
            OpenApiParameter("state", str, description=f"Comma-separated states: {', '.join(STATES)}."),
            OpenApiParameter(
                "sort",
                sort_schema(list(VISIT_SORTS)),
                style="form",
                explode=False,
                description=sort_description(list(VISIT_SORTS), "occurrence"),
            ),
        ],
        responses={200: VisitSerializer(many=True)},
    )
    def get(self, request, contract_pk: str):
        contract = contract_of_route(organization=self.organization, contract_id=contract_pk)
        known = {"from", "to", "visit_plan_id", "state", "fields", "sort", "page", "per_page", "format"}
        unknown = set(request.query_params) - known
        if unknown:
            raise BadRequest(
                f"Unknown filter: {', '.join(sorted(unknown))}", {name: ["Unknown filter."] for name in unknown}
            )
        now = timezone.now()
        tz = zoneinfo.ZoneInfo(contract.time_zone)
        start = _instant(request, "from", now - dt.timedelta(days=30), tz)
        end = _instant(request, "to", now + dt.timedelta(days=90), tz)
        if not start < end or end - start > MAX_SPAN:
            raise BadRequest("to must be after from, at most 366 days later.", {"to": ["Out of range."]})
        plan_ids = _list_param(request, "visit_plan_id", int)
        states = _list_param(request, "state", str)
        if states is not None and not set(states) <= set(STATES):
            unknown = next(state for state in states if state not in STATES)
            raise BadRequest(f"state must be among {', '.join(STATES)}.", {"state": [invalid_choice(unknown, STATES)]})
        raw_fields = request.query_params.get("fields")
        fields = None if raw_fields is None else field_names(raw_fields, VisitSerializer.readable_field_names())
        order = sort_keys(request.query_params.get("sort", "occurrence"), VISIT_SORTS)
        visits = contract_visits(contract, start=start, end=end, now=now, plan_ids=plan_ids, states=states)
        visits = sorted_visits(visits, order)
        if wants_csv(request):
            # As the toolkit's collections (config.api.csv): every row, no page limit; paging
            # parameters are still checked, so a bad one is refused as in JSON.
            self.paginator.check_params(request)
            shown = VisitSerializer(fields=fields).fields
            columns = columns_of(shown, ["visit_plan"], csv_parts(VisitSerializer))
            return stream_csv(request, columns, VisitSerializer(visits, many=True, fields=fields).data, "visits")
        page = self.paginate_queryset(_Page(visits))
        return self.get_paginated_response(VisitSerializer(page, many=True, fields=fields).data)


def _list_param(request, name: str, kind):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if kind is not int:
        return raw.split(",")
    # Ids as every filter reads them (`int()` took `3_0` for plan 30, `١` for 1, `+1` and ` 1`).
    parts = [part.strip() for part in raw.split(",")]  # `1, 2` as the filters take it
    values = [whole_number(part, MAX_DB_ID) for part in parts]
    wrong = [part for part, value in zip(parts, values, strict=True) if not value]  # None, or id 0
    if wrong:
        raise BadRequest(
            f"{name} takes ids from 1 to {MAX_DB_ID}, comma-separated.", {name: [f"'{wrong[0]}' is not an id."]}
        )
    return values

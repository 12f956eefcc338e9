"""`/api/v1/work_orders`: the jobs dispatch systems push in, with their holds and SLA clocks."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.rows import instant_text
from config.api.serializers import (
    ActionSerializer,
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    SourceFieldsMixin,
    reference_of,
    single_line,
)
from config.api.viewsets import CreateMixin, ResourceViewSet, UpdateMixin
from contracts.assets_api import GeoPointField, point_or_none
from contracts.models import Asset, Contract, Counterparty
from slas import clock
from slas.models import PRIORITY_RANK

from . import matching, services
from .clocks import (
    ClockRow,
    HoldRow,
    clock_minutes,
    clocks_by_job,
    holds_by_job,
    page_elapsed_seconds,
    shown_state,
    still_counting,
)
from .models import Hold, SlaClock, WorkOrder


class PageRowsSerializer(serializers.ListSerializer):
    # A job's holds or clocks, already written as JSON for the whole page (`JobsHoldsAndClocks`),
    # from the job's instance or its row (config.api.rows).
    row_columns = ("id",)

    def get_attribute(self, job):
        return self.parent.holds_and_clocks(job.pk)[self.field_name][job.pk]

    def from_row(self, row):
        pk = row["id"]
        return self.parent.holds_and_clocks(pk)[self.field_name][pk]

    def to_representation(self, data):
        return data


class HoldSerializer(serializers.ModelSerializer):
    # The shape of `holds_json` (for the schema).

    class Meta:
        model = Hold
        fields = ["start", "end", "reason", "kind"]
        list_serializer_class = PageRowsSerializer


@extend_schema_field(
    {"type": "integer", "description": "Business minutes left before the due time; negative once it has passed."}
)
class RemainingMinutesField(serializers.ReadOnlyField):
    pass


class ClockSerializer(serializers.ModelSerializer):
    # The shape of `clocks_json` (for the schema).

    sla_rule = ReferenceField(source="rule")
    state = serializers.ChoiceField(choices=SlaClock.State.choices, read_only=True)
    elapsed_minutes = serializers.IntegerField(read_only=True)
    remaining_minutes = RemainingMinutesField()

    class Meta:
        model = SlaClock
        fields = [
            "id", "sla_rule", "metric", "target_minutes", "started_at", "due_at", "stopped_at", "state",
            "elapsed_minutes", "remaining_minutes",
        ]  # fmt: skip
        list_serializer_class = PageRowsSerializer


def holds_json(holds: list[HoldRow], zone) -> list[dict]:
    return [
        {"start": instant_text(h.start, zone), "end": instant_text(h.end, zone), "reason": h.reason, "kind": h.kind}
        for h in holds
    ]


class ClocksPage(NamedTuple):
    """What the clocks of a page share: their calendars (`clocks_by_job`), `now` (also in epoch
    seconds, converted once), the zone of the instants, and each rule's `{id, name}` reference,
    built for its first clock and shared by the others (nothing writes into it)."""

    calendars: dict
    now: dt.datetime
    now_seconds: int
    zone: object
    references: dict


def clocks_json(clock_rows: list[ClockRow], holds: list[HoldRow], page: ClocksPage) -> list[dict]:
    """A job's clocks as the API shows them at `page.now` (elapsed and remaining in business time)."""
    data = []
    now, zone, references = page.now, page.zone, page.references
    for row in clock_rows:
        rule = row.rule
        reference = references.get(rule.pk)
        if reference is None:
            reference = references[rule.pk] = reference_of(rule)
        seconds = page_elapsed_seconds(row, holds, page.calendars, page.now_seconds)
        elapsed, remaining = clock_minutes(row.target_minutes, seconds)
        data.append(
            {
                "id": row.pk,
                "sla_rule": reference,
                "metric": row.metric,
                "target_minutes": row.target_minutes,
                "started_at": instant_text(row.started_at, zone),
                "due_at": instant_text(row.due_at, zone),
                "stopped_at": instant_text(row.stopped_at, zone),
                "state": shown_state(row, now),
                "elapsed_minutes": elapsed,
                "remaining_minutes": remaining,
            }
        )
    return data


class JobsHoldsAndClocks:
    """The holds and clocks of some jobs (a page, or the one job read), as JSON, whatever the
    number of jobs: one query for the clocks with their rules (and the calendars this process
    has not compiled yet), one for the holds when they are shown or may pause a running clock.
    `clocks=False` (`?fields=` left them out) skips the clocks' queries and figures."""

    def __init__(self, job_ids, *, holds: bool, clocks: bool, now):
        zone = timezone.get_current_timezone()
        self.job_ids = set(job_ids)
        grouped, calendars = clocks_by_job(job_ids) if clocks else ({}, {})
        counting = any(still_counting(c) for rows in grouped.values() for c in rows)  # holds may pause them
        hold_rows = holds_by_job(job_ids) if holds or counting else dict.fromkeys(job_ids, [])
        page = ClocksPage(calendars, now, clock.epoch(now), zone, {})
        self.by_field = {
            "holds": {pk: holds_json(rows, zone) for pk, rows in hold_rows.items()} if holds else {},
            "sla_clocks": {pk: clocks_json(rows, hold_rows[pk], page) for pk, rows in grouped.items()},
        }


class WorkOrderListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        jobs = list(data)
        self.child.read_holds_and_clocks([job.pk for job in jobs])
        return super().to_representation(jobs)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "readOnly": True,
        "properties": {
            "method": {"type": "string", "enum": ["manual", "rule", "entitlement", "none"]},
            "rule": {"type": "object", "nullable": True},
            "score": {"type": "integer", "nullable": True},
            "explanation": {"type": "string"},
        },
    }
)
class ContractMatchField(serializers.JSONField):
    """How the job's contract was found (workorders.matching)."""


class WorkOrderSerializer(SourceFieldsMixin, ResourceSerializer):
    contract = ReferenceField()
    contract_id = ReferenceIdField(source="contract", queryset=Contract.objects.all(), required=False, allow_null=True)
    hold_reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="With status on_hold.",
        validators=[single_line],
    )
    status_changed_at = serializers.DateTimeField(
        required=False,
        help_text="When a status change happened (default: the responded_at or resolved_at sent with the change "
        "to in_progress or resolved that sets it, else now): not before the previous change, not in the future.",
    )
    holds = HoldSerializer(many=True, read_only=True)
    sla_clocks = ClockSerializer(many=True, read_only=True)
    location = GeoPointField(required=False, allow_null=True, help_text="A GeoJSON Point (lon, lat).")
    counterparty = ReferenceField()
    counterparty_id = ReferenceIdField(
        source="counterparty", queryset=Counterparty.objects.all(), required=False, allow_null=True
    )
    asset = ReferenceField()
    asset_id = ReferenceIdField(
        source="asset",
        queryset=Asset.objects.all(),
        required=False,
        allow_null=True,
        help_text="An asset of the job's counterparty (which it implies when not given).",
    )
    contract_match = ContractMatchField(read_only=True)
    visit_plan = ReferenceField()

    class Meta:
        model = WorkOrder
        fields = [
            "id", "reference", "summary", "source", "sourceID", "contract", "contract_id", "contract_match",
            "counterparty", "counterparty_id", "asset", "asset_id", "priority", "status",
            "hold_reason", "status_changed_at", "reported_at", "responded_at", "on_site_at", "resolved_at",
            "location", "visit_plan", "occurrence", "holds", "sla_clocks", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["occurrence", "created_at", "updated_at"]
        default_fields = [
            "id", "reference", "summary", "contract", "priority", "status", "reported_at", "resolved_at",
            "sourceID", "sla_clocks", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {"reported_at": {"required": True}}
        list_serializer_class = WorkOrderListSerializer

    def read_holds_and_clocks(self, job_ids) -> JobsHoldsAndClocks:
        """Those of a page of jobs at once (`WorkOrderListSerializer`), or of one job read alone.
        One instant for the whole response, so every clock of a page is read at the same time."""
        now = self.context.setdefault("now", timezone.now())
        read = JobsHoldsAndClocks(job_ids, holds="holds" in self.fields, clocks="sla_clocks" in self.fields, now=now)
        self.context["holds_and_clocks"] = read
        return read

    def prepare_rows(self, rows) -> None:
        self.read_holds_and_clocks([row["id"] for row in rows])

    def holds_and_clocks(self, job_pk) -> dict[str, dict[int, list[dict]]]:
        read = self.context.get("holds_and_clocks")
        if read is None or job_pk not in read.job_ids:
            read = self.read_holds_and_clocks([job_pk])
        return read.by_field

    def validate_location(self, value):
        return point_or_none(value, "location")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "status_changed_at" in attrs and "status" not in attrs:
            raise serializers.ValidationError({"status_changed_at": ["Only with a status change."]})
        if attrs.get("hold_reason") and attrs.get("status") != WorkOrder.Status.ON_HOLD:
            raise serializers.ValidationError({"hold_reason": ["Only when the status becomes on_hold."]})
        return attrs


# Not `MatchRequestSerializer`: the request component would read `MatchRequestRequest`.
class MatchSerializer(ActionSerializer):
    reported_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, required=False)
    counterparty_id = ReferenceIdField(source="counterparty", queryset=Counterparty.objects.all(), required=False)
    asset_id = ReferenceIdField(source="asset", queryset=Asset.objects.all(), required=False)
    summary = serializers.CharField(max_length=255, required=False, allow_blank=True)
    location = GeoPointField(required=False, allow_null=True, help_text="A GeoJSON Point (lon, lat).")

    def validate_location(self, value):
        return point_or_none(value, "location")


class _CandidateSerializer(serializers.Serializer):
    contract = serializers.DictField()
    score = serializers.IntegerField()
    explanation = serializers.CharField()
    selected = serializers.BooleanField()


class _RuleResultSerializer(serializers.Serializer):
    rule = serializers.DictField()
    holds = serializers.BooleanField()
    explanation = serializers.CharField()


class MatchResponseSerializer(serializers.Serializer):
    contract = serializers.DictField(allow_null=True)
    contract_match = ContractMatchField()
    rules = _RuleResultSerializer(many=True)
    candidates = _CandidateSerializer(many=True)


def _contract_reference(contract) -> dict | None:
    if contract is None:
        return None
    return {**reference_of(contract), "reference": contract.reference, "expiry_date": contract.expiry_date}


def match_response(result: matching.Match) -> dict:
    return {
        "contract": _contract_reference(result.contract),
        "contract_match": result.record(),
        "rules": [{"rule": reference_of(r.rule), "holds": r.holds, "explanation": r.explanation} for r in result.rules],
        "candidates": [
            {
                "contract": _contract_reference(c.contract),
                "score": c.score,
                "explanation": c.explanation,
                "selected": result.contract is not None and c.contract.pk == result.contract.pk,
            }
            for c in result.candidates
        ],
    }


class WorkOrderFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    counterparty_id = PredicateFilter(field_name="counterparty")
    asset_id = PredicateFilter(field_name="asset")
    visit_plan_id = PredicateFilter(field_name="visit_plan")
    sourceID = PredicateFilter(field_name="source_id")

    class Meta:
        model = WorkOrder
        fields = [
            "reference", "status", "priority", "source", "reported_at", "responded_at", "on_site_at",
            "resolved_at", "created_at", "updated_at",
        ]  # fmt: skip


REFERENCES = ("contract", "counterparty", "asset", "visit_plan")


class WorkOrderViewSet(CreateMixin, UpdateMixin, ResourceViewSet):
    """Jobs with their SLA clocks. Operators write; status changes open and close holds."""

    # Holds and clocks are read per page by the serializer (`JobsHoldsAndClocks`).
    queryset = WorkOrder.objects.select_related(*REFERENCES)
    serializer_class = WorkOrderSerializer
    filterset_class = WorkOrderFilterSet
    sort_fields = {
        "reference": "reference",
        "priority": PRIORITY_RANK,
        "status": "status",
        "reported_at": "reported_at",
        "resolved_at": "resolved_at",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "-reported_at"
    write_role = "operator"
    # `{id, name}` references (a contract's str() reads its reference).
    list_references = {"contract": (), "counterparty": (), "asset": ()}
    create_service = staticmethod(services.create_work_order)
    update_service = staticmethod(services.update_work_order)

    def get_queryset(self):
        queryset = super().get_queryset()
        shown = self.selected_fields(self.serializer_class) if self.action == "list" else None
        if shown is not None:  # a list joins only the references it shows (by default the contract)
            queryset = queryset.select_related(None).select_related(*(name for name in REFERENCES if name in shown))
        return queryset

    @extend_schema(request=MatchSerializer, responses={200: MatchResponseSerializer})
    @action(detail=False, methods=["post"], required_role="operator")
    def match(self, request):
        """Which contract would cover this job, and why: the rules tried, and every candidate with
        its score and explanation (the job need not exist; nothing is written)."""
        form = MatchSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = form.validated_data
        job = matching.Job(
            reported_at=data.get("reported_at") or timezone.now(),
            priority=data.get("priority", WorkOrder.Priority.MEDIUM),
            counterparty=data.get("counterparty"),
            asset=data.get("asset"),
            summary=data.get("summary", ""),
            location=data.get("location"),
        )
        if job.asset is not None and job.counterparty is not None:
            services.check_asset_counterparty(job.asset, job.counterparty.pk)
        result = matching.match_contract(organization=self.organization, job=job)
        return Response(match_response(result))

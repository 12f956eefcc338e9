"""`/api/v1/work_orders`: the jobs dispatch systems push in, with their holds and SLA clocks."""

from __future__ import annotations

import math

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import (
    ActionSerializer,
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    SourceFieldsMixin,
    reference_of,
)
from config.api.viewsets import CreateMixin, ResourceViewSet, UpdateMixin
from contracts.assets_api import point_or_none
from contracts.models import Asset, Contract, Counterparty

from . import matching, services
from .clocks import live_elapsed_seconds, shown_state
from .models import Hold, SlaClock, WorkOrder


class HoldSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hold
        fields = ["start", "end", "reason", "kind"]


class ClockSerializer(serializers.ModelSerializer):
    sla_rule = ReferenceField(source="rule")
    state = serializers.SerializerMethodField()
    elapsed_minutes = serializers.SerializerMethodField()
    remaining_minutes = serializers.SerializerMethodField()

    class Meta:
        model = SlaClock
        fields = [
            "id", "sla_rule", "metric", "target_minutes", "started_at", "due_at", "stopped_at", "state",
            "elapsed_minutes", "remaining_minutes",
        ]  # fmt: skip

    def _now(self):
        # One instant for the whole response, so every clock of a page is read at the same time.
        return self.context.setdefault("now", timezone.now())

    def _elapsed_seconds(self, clock_row) -> int:
        # Once per clock and response (elapsed and remaining both need it; it walks the calendar).
        # The prefetch hands each clock its parent job, whose holds are prefetched too.
        cache = self.context.setdefault("elapsed_seconds", {})
        if clock_row.pk not in cache:
            holds = list(clock_row.work_order.holds.all())
            cache[clock_row.pk] = live_elapsed_seconds(clock_row, holds, self._now())
        return cache[clock_row.pk]

    @extend_schema_field(serializers.ChoiceField(choices=SlaClock.State.choices))
    def get_state(self, clock_row) -> str:
        """A clock still running after its due time is breached, even before the scan recorded it."""
        return shown_state(clock_row, self._now())

    def get_elapsed_minutes(self, clock_row) -> int:
        return self._elapsed_seconds(clock_row) // 60

    def get_remaining_minutes(self, clock_row) -> int:
        """Business minutes left before the due time; negative once it has passed."""
        return clock_row.target_minutes - math.ceil(self._elapsed_seconds(clock_row) / 60)


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
        write_only=True, required=False, allow_blank=True, max_length=255, help_text="With status on_hold."
    )
    status_changed_at = serializers.DateTimeField(
        required=False,
        help_text="When a status change happened (default now): not before the previous change, not in the future.",
    )
    holds = HoldSerializer(many=True, read_only=True)
    sla_clocks = ClockSerializer(many=True, read_only=True)
    location = serializers.JSONField(required=False, allow_null=True, help_text="A GeoJSON Point (lon, lat).")
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

    def validate_location(self, value):
        return point_or_none(value, "location")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "status_changed_at" in attrs and "status" not in attrs:
            raise serializers.ValidationError({"status_changed_at": ["Only with a status change."]})
        if attrs.get("hold_reason") and attrs.get("status") != WorkOrder.Status.ON_HOLD:
            raise serializers.ValidationError({"hold_reason": ["Only when the status becomes on_hold."]})
        return attrs


class MatchRequestSerializer(ActionSerializer):
    reported_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, required=False)
    counterparty_id = ReferenceIdField(source="counterparty", queryset=Counterparty.objects.all(), required=False)
    asset_id = ReferenceIdField(source="asset", queryset=Asset.objects.all(), required=False)
    summary = serializers.CharField(max_length=255, required=False, allow_blank=True)
    location = serializers.JSONField(required=False, allow_null=True, help_text="A GeoJSON Point (lon, lat).")

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
        "rules": [
            {"rule": reference_of(r.rule), "holds": r.holds, "explanation": r.explanation} for r in result.rules
        ],
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


class WorkOrderViewSet(CreateMixin, UpdateMixin, ResourceViewSet):
    """Jobs with their SLA clocks. Operators write; status changes open and close holds."""

    queryset = WorkOrder.objects.select_related("contract", "counterparty", "asset", "visit_plan").prefetch_related(
        "holds",
        Prefetch(
            "sla_clocks",
            queryset=SlaClock.objects.select_related("rule__calendar").order_by("id"),
        ),
    )
    serializer_class = WorkOrderSerializer
    filterset_class = WorkOrderFilterSet
    sort_fields = {
        "reference": "reference",
        "priority": "priority",
        "status": "status",
        "reported_at": "reported_at",
        "resolved_at": "resolved_at",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "-reported_at"
    write_role = "operator"
    # `{id, name}` references (a contract's str() reads its reference).
    list_references = {"contract": ("reference",), "counterparty": (), "asset": ()}
    create_service = staticmethod(services.create_work_order)
    update_service = staticmethod(services.update_work_order)

    @extend_schema(request=MatchRequestSerializer, responses={200: MatchResponseSerializer})
    @action(detail=False, methods=["post"], required_role="operator")
    def match(self, request):
        """Which contract would cover this job, and why: the rules tried, and every candidate with
        its score and explanation (the job need not exist; nothing is written)."""
        form = MatchRequestSerializer(data=request.data, context=self.get_serializer_context())
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

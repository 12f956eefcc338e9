"""`/api/v1/work_orders`: the jobs dispatch systems push in, with their holds and SLA clocks."""

from __future__ import annotations

import math
from numbers import Real

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import ReferenceField, ReferenceIdField, ResourceSerializer, SourceFieldsMixin
from config.api.viewsets import CreateMixin, ResourceViewSet, UpdateMixin
from contracts.models import Contract

from . import services
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
        # The prefetch hands each clock its parent job, whose holds are prefetched too.
        holds = list(clock_row.work_order.holds.all())
        return live_elapsed_seconds(clock_row, holds, self._now())

    @extend_schema_field(serializers.ChoiceField(choices=SlaClock.State.choices))
    def get_state(self, clock_row) -> str:
        """A clock still running after its due time is breached, even before the scan recorded it."""
        return shown_state(clock_row, self._now())

    def get_elapsed_minutes(self, clock_row) -> int:
        return self._elapsed_seconds(clock_row) // 60

    def get_remaining_minutes(self, clock_row) -> int:
        """Business minutes left before the due time; negative once it has passed."""
        return clock_row.target_minutes - math.ceil(self._elapsed_seconds(clock_row) / 60)


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

    class Meta:
        model = WorkOrder
        fields = [
            "id", "reference", "summary", "source", "sourceID", "contract", "contract_id", "priority", "status",
            "hold_reason", "status_changed_at", "reported_at", "responded_at", "on_site_at", "resolved_at",
            "location", "holds", "sla_clocks", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = [
            "id", "reference", "summary", "contract", "priority", "status", "reported_at", "resolved_at",
            "sourceID", "sla_clocks", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {"reported_at": {"required": True}}

    def validate_location(self, value):
        if value is None:
            return None
        coordinates = value.get("coordinates") if isinstance(value, dict) else None
        if (
            not isinstance(value, dict)
            or value.get("type") != "Point"
            or not isinstance(coordinates, list)
            or len(coordinates) not in (2, 3)
            or not all(isinstance(c, Real) and not isinstance(c, bool) for c in coordinates)
        ):
            raise serializers.ValidationError('Expected a GeoJSON Point: {"type": "Point", "coordinates": [lon, lat]}.')
        lon, lat = coordinates[:2]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise serializers.ValidationError("Longitude must be in [-180, 180] and latitude in [-90, 90].")
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "status_changed_at" in attrs and "status" not in attrs:
            raise serializers.ValidationError({"status_changed_at": ["Only with a status change."]})
        if attrs.get("hold_reason") and attrs.get("status") != WorkOrder.Status.ON_HOLD:
            raise serializers.ValidationError({"hold_reason": ["Only when the status becomes on_hold."]})
        return attrs


class WorkOrderFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    sourceID = PredicateFilter(field_name="source_id")

    class Meta:
        model = WorkOrder
        fields = [
            "reference", "status", "priority", "source", "reported_at", "responded_at", "on_site_at",
            "resolved_at", "created_at", "updated_at",
        ]  # fmt: skip


class WorkOrderViewSet(CreateMixin, UpdateMixin, ResourceViewSet):
    """Jobs with their SLA clocks. Operators write; status changes open and close holds."""

    queryset = WorkOrder.objects.select_related("contract").prefetch_related(
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
    create_service = staticmethod(services.create_work_order)
    update_service = staticmethod(services.update_work_order)

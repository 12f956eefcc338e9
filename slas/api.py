"""`/api/v1/calendars`, `/api/v1/sla_rules` (with `amend`) and the JSON Schemas of rule configs."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import ReferenceField, ReferenceIdField, ResourceSerializer
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin
from contracts.models import Contract
from tenancy.currencies import quantize

from . import services
from .clock import parse_hours
from .models import Calendar, SlaRule
from .schemas import SCHEMAS, validation_errors

# --- calendars ----------------------------------------------------------------------------------


class HolidaySerializer(serializers.Serializer):
    date = serializers.DateField()
    name = serializers.CharField(max_length=120, allow_blank=True, required=False, default="")


class CalendarSerializer(ResourceSerializer):
    hours = serializers.JSONField(
        help_text='[{"weekday": 1-7 (ISO, Monday = 1), "start": "HH:MM", "end": "HH:MM" or "24:00"}, ...]'
    )
    holidays = HolidaySerializer(many=True, required=False)
    time_zone = serializers.CharField(max_length=64)

    class Meta:
        model = Calendar
        fields = ["id", "name", "time_zone", "hours", "holidays", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        default_fields = ["id", "name", "time_zone", "created_at", "updated_at"]

    def validate_time_zone(self, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone.")
        return value

    def validate_hours(self, value):
        """Stored normalised: sorted by weekday and start, times as "HH:MM"."""
        try:
            hours = parse_hours(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not hours:
            # A calendar without working time would make every clock on it never due.
            raise serializers.ValidationError("At least one working interval is needed.")
        return [{"weekday": weekday, "start": start, "end": end} for weekday, start, end in hours]

    def validate_holidays(self, value):
        dates = [h["date"] for h in value]
        duplicates = sorted({d.isoformat() for d in dates if dates.count(d) > 1})
        if duplicates:
            raise serializers.ValidationError(f"Listed twice: {', '.join(duplicates)}.")
        return [
            {"date": h["date"].isoformat(), "name": h.get("name", "")} for h in sorted(value, key=lambda h: h["date"])
        ]


class CalendarFilterSet(PredicateFilterSet):
    class Meta:
        model = Calendar
        fields = ["name", "time_zone", "created_at", "updated_at"]


class CalendarViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Business-hours calendars. Editing one recomputes the due times of the running clocks
    that use it; the response's `X-Recomputed-Clocks` header says how many."""

    queryset = Calendar.objects.all()
    serializer_class = CalendarSerializer
    filterset_class = CalendarFilterSet
    sort_fields = {"name": "name", "time_zone": "time_zone", "created_at": "created_at", "updated_at": "updated_at"}
    default_sort = "name"
    write_role = "manager"
    create_service = staticmethod(services.create_calendar)
    update_service = staticmethod(services.update_calendar)
    delete_service = staticmethod(services.delete_calendar)



# --- rules --------------------------------------------------------------------------------------


class SlaRuleSerializer(ResourceSerializer):
    contract = ReferenceField()
    contract_id = ReferenceIdField(source="contract", queryset=Contract.objects.all())
    calendar = ReferenceField()
    calendar_id = ReferenceIdField(source="calendar", queryset=Calendar.objects.all(), required=False, allow_null=True)
    previous_version = ReferenceField()
    next_version = ReferenceField()
    priorities = serializers.ListField(
        child=serializers.ChoiceField(choices=SlaRule.Priority.choices), allow_empty=False, max_length=5
    )
    pause_on_hold = serializers.BooleanField(required=False, help_text="Default: true for resolution, else false.")
    escalation = serializers.JSONField(required=False, help_text="See /api/v1/schemas/escalation.")
    penalty = serializers.JSONField(required=False, allow_null=True, help_text="See /api/v1/schemas/penalty_clause.")
    effective_from = serializers.DateTimeField(
        required=False, help_text="Default: the start of the contract's start date while a draft, else now."
    )

    class Meta:
        model = SlaRule
        fields = [
            "id", "contract", "contract_id", "name", "metric", "priorities", "target_minutes", "calendar",
            "calendar_id", "pause_on_hold", "escalation", "penalty", "monthly_penalty_cap", "active",
            "effective_from", "effective_to", "previous_version", "next_version", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = [
            "id", "contract", "name", "metric", "priorities", "target_minutes", "calendar", "active",
            "effective_from", "effective_to", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "target_minutes": {"min_value": 1, "max_value": 525600},
            "monthly_penalty_cap": {"min_value": 0, "max_value": Decimal("99999999999999")},
        }

    def validate_priorities(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A priority is listed twice.")
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        errors = {}
        if attrs.get("escalation") is not None:
            errors |= validation_errors("escalation", attrs["escalation"], "escalation")
        if attrs.get("penalty") is not None:
            errors |= validation_errors("penalty_clause", attrs["penalty"], "penalty")
        start, end = self.period(attrs)
        if start and end and end <= start:
            errors["effective_to"] = ["Must be after effective_from."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def period(self, attrs) -> tuple:
        """The effective period the input leaves the rule with (a defaulted start is checked by the service)."""
        start = attrs.get("effective_from", getattr(self.instance, "effective_from", None))
        end = attrs.get("effective_to", getattr(self.instance, "effective_to", None))
        return start, end

    def to_representation(self, rule):
        data = super().to_representation(rule)
        if data.get("monthly_penalty_cap") is not None:
            data["monthly_penalty_cap"] = str(quantize(rule.monthly_penalty_cap, rule.contract.currency))
        return data


class AmendSerializer(SlaRuleSerializer):
    """The changed fields of an amendment; the rule's contract cannot change."""

    contract_id = None

    class Meta(SlaRuleSerializer.Meta):
        fields = [name for name in SlaRuleSerializer.Meta.fields if name != "contract_id"]

    def period(self, attrs) -> tuple:
        # The successor's period: the rule's own bounds are the service's to check (an amended
        # rule is a 409, an effective_from outside the rule's period a 422 naming effective_from).
        return attrs.get("effective_from"), attrs.get("effective_to")


class SlaRuleFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    calendar_id = PredicateFilter(field_name="calendar")

    class Meta:
        model = SlaRule
        fields = ["name", "metric", "target_minutes", "active", "effective_from", "effective_to", "created_at"]


class SlaRuleViewSet(CreateMixin, UpdateMixin, ResourceViewSet):
    """SLA rules of contracts. Past draft, terms change only through `amend` (history is kept).

    A rule covers the jobs reported from its `effective_from` on. Created with an
    `effective_from` in the past, it attaches clocks to the open jobs in its band reported since
    then (a retroactive start); the response's `X-Recomputed-Clocks` header says how many.
    Without one it covers work reported from now on (from the contract's start while a draft)."""

    queryset = SlaRule.objects.select_related("contract", "calendar", "previous_version", "next_version")
    serializer_class = SlaRuleSerializer
    filterset_class = SlaRuleFilterSet
    sort_fields = {
        "name": "name",
        "metric": "metric",
        "target_minutes": "target_minutes",
        "effective_from": "effective_from",
        "created_at": "created_at",
    }
    default_sort = "name"
    write_role = "manager"
    create_service = staticmethod(services.create_rule)
    update_service = staticmethod(services.update_rule)

    @extend_schema(request=AmendSerializer(partial=True), responses={201: SlaRuleSerializer})
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        """End this rule at `effective_from` (default now) and create its successor (201)."""
        rule = self.get_object()
        form = AmendSerializer(rule, data=request.data, partial=True, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        effective_from = data.pop("effective_from", None)
        successor = services.amend_rule(rule=rule, actor=request.user, data=data, effective_from=effective_from)
        return self.respond(successor, status.HTTP_201_CREATED, {"Location": self.detail_url(successor)})


# --- schemas ------------------------------------------------------------------------------------


class SchemaView(APIView):
    """The JSON Schema of a rule configuration (`escalation`, `penalty_clause`)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict}, auth=[])
    def get(self, request, name: str):
        return Response(SCHEMAS[name])

"""`/api/v1/breaches`: read-only, plus `acknowledge` (operators) and `waive` (managers)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import ActionSerializer, ReferenceField, ResourceSerializer
from config.api.viewsets import ResourceViewSet

from . import services
from .models import Breach


class BreachSerializer(ResourceSerializer):
    contract = ReferenceField()
    sla_rule = ReferenceField()
    work_order = ReferenceField()
    acknowledged_by = ReferenceField()
    waived_by = ReferenceField()

    class Meta:
        model = Breach
        fields = [
            "id", "contract", "sla_rule", "work_order", "metric", "target_minutes", "actual_minutes",
            "overage_minutes", "penalty_amount", "currency", "due_at", "detected_at", "clock_stopped_at", "final",
            "state", "acknowledged_by", "acknowledged_at", "waived_by", "waived_at", "waiver_reason", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
        money_fields = {"penalty_amount": "currency"}
        default_fields = [
            "id", "contract", "sla_rule", "work_order", "metric", "overage_minutes", "penalty_amount", "currency",
            "detected_at", "final", "state",
        ]  # fmt: skip


class WaiveSerializer(ActionSerializer):
    reason = serializers.CharField(max_length=2000, allow_blank=False)


class BreachFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    sla_rule_id = PredicateFilter(field_name="sla_rule")
    work_order_id = PredicateFilter(field_name="work_order")

    class Meta:
        model = Breach
        fields = ["state", "metric", "final", "detected_at", "due_at", "currency"]


class BreachViewSet(ResourceViewSet):
    """Breaches, newest first. Operators acknowledge; managers waive (with a reason)."""

    queryset = Breach.objects.select_related("contract", "sla_rule", "work_order", "acknowledged_by", "waived_by")
    serializer_class = BreachSerializer
    filterset_class = BreachFilterSet
    sort_fields = {
        "detected_at": "detected_at",
        "due_at": "due_at",
        "overage_minutes": "overage_minutes",
        "penalty_amount": "penalty_amount",
        "state": "state",
    }
    default_sort = "-id"
    write_role = "manager"
    # `{id, name}` references: their str() columns only (a contract's str() reads its reference,
    # a rule's its metric and target, a job's its reference, a user's its username).
    list_references = {"contract": (), "sla_rule": (), "work_order": (), "acknowledged_by": (), "waived_by": ()}

    @extend_schema(request=None, responses={200: BreachSerializer})
    @action(detail=True, methods=["post"], required_role="operator")
    def acknowledge(self, request, pk=None):
        """Acknowledge an open breach."""
        breach = self.get_object()  # a 404 before a 422 on the body
        ActionSerializer(data=request.data).is_valid(raise_exception=True)
        return self.respond(services.acknowledge_breach(breach=breach, actor=request.user))

    @extend_schema(request=WaiveSerializer, responses={200: BreachSerializer})
    @action(detail=True, methods=["post"], required_role="manager")
    def waive(self, request, pk=None):
        """Waive a breach, with a reason: its penalty is reversed."""
        breach = self.get_object()  # a 404 before a 422 on the body
        form = WaiveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        breach = services.waive_breach(breach=breach, actor=request.user, reason=form.validated_data["reason"])
        return self.respond(breach)

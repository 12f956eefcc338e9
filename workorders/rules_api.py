"""`/api/v1/contract_rules`: explicit rules for which contract covers a job (issue 13). Managers
write; operators (who dispatch) read. See `workorders.matching` for the fields and operators."""

from __future__ import annotations

from rest_framework import serializers

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import (
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    StrictInputMixin,
    shaped_json_field,
    tenant_of,
)
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin
from contracts.models import Contract

from . import rules as services
from .matching import ID_FIELDS, OPERATORS
from .models import ContractRule, WorkOrder

MAX_CRITERIA = 20
MAX_LIST = 500

# What `_ids` and `_texts` take: an id or a text, or (for `in`) a non-empty list of them.
_ONE_VALUE = [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 255}]
CriterionValueField = shaped_json_field(
    {"anyOf": [*_ONE_VALUE, {"type": "array", "minItems": 1, "maxItems": MAX_LIST, "items": {"anyOf": _ONE_VALUE}}]}
)


def _ids(value, model, organization, many: bool) -> None:
    values = value if many else [value]
    if many and (not isinstance(value, list) or not value or len(value) > MAX_LIST):
        raise serializers.ValidationError(f"Expected a non-empty list of at most {MAX_LIST} ids.")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise serializers.ValidationError("Expected integer ids." if many else "Expected an integer id.")
    found = set(model.objects.filter(organization=organization, pk__in=values).values_list("pk", flat=True))
    missing = [v for v in values if v not in found]
    if missing:
        name = model._meta.verbose_name
        raise serializers.ValidationError([f"{name.capitalize()} {pk} does not exist." for pk in missing])


def _texts(value, many: bool, choices=None) -> None:
    values = value if many else [value]
    if many and (not isinstance(value, list) or not value or len(value) > MAX_LIST):
        raise serializers.ValidationError(f"Expected a non-empty list of at most {MAX_LIST} strings.")
    if not all(isinstance(v, str) and v.strip() and len(v) <= 255 for v in values):
        raise serializers.ValidationError("Expected non-empty strings (at most 255 characters).")
    if choices is not None:
        unknown = [v for v in values if v not in choices]
        if unknown:
            raise serializers.ValidationError(f"Not a priority: {', '.join(unknown)}; one of {', '.join(choices)}.")


class CriterionSerializer(StrictInputMixin, serializers.Serializer):
    field = serializers.ChoiceField(choices=list(OPERATORS))
    operator = serializers.ChoiceField(choices=sorted({op for ops in OPERATORS.values() for op in ops}))
    value = CriterionValueField(help_text="An id, text or priority, or a list of them for `in`.")

    def validate(self, attrs):
        name, operator, value = attrs["field"], attrs["operator"], attrs["value"]
        if operator not in OPERATORS[name]:
            raise serializers.ValidationError(
                {"operator": [f"{name} takes {', '.join(OPERATORS[name])}, not {operator}."]}
            )
        organization = tenant_of(self)
        try:
            if name in ID_FIELDS:
                _ids(value, ID_FIELDS[name], organization, many=operator == "in")
            elif name == "priority":
                _texts(value, many=operator == "in", choices=list(WorkOrder.Priority.values))
            elif name == "location":
                _ids(value, Contract, organization, many=False)
                if not Contract.objects.filter(pk=value, coverage_areas__isnull=False).exists():
                    raise serializers.ValidationError(f"Contract {value} has no coverage areas.")
            else:
                _texts(value, many=operator == "in")
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"value": exc.detail}) from None
        return attrs


class ContractRuleSerializer(ResourceSerializer):
    contract = ReferenceField()
    contract_id = ReferenceIdField(
        source="contract",
        queryset=Contract.objects.all(),
        required=False,
        allow_null=True,
        help_text="The contract the rule assigns (outcome contract); null with outcome not_covered.",
    )
    criteria = CriterionSerializer(many=True, required=False, max_length=MAX_CRITERIA)

    class Meta:
        model = ContractRule
        fields = [
            "id", "name", "sequence", "enabled", "criteria", "outcome", "contract", "contract_id",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = [
            "id", "name", "sequence", "enabled", "criteria", "outcome", "contract", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {"sequence": {"max_value": 1_000_000}}

    def validate(self, attrs):
        attrs = super().validate(attrs)
        outcome = attrs.get("outcome", getattr(self.instance, "outcome", ContractRule.Outcome.CONTRACT))
        contract = attrs["contract"] if "contract" in attrs else getattr(self.instance, "contract", None)
        if outcome == ContractRule.Outcome.CONTRACT and contract is None:
            raise serializers.ValidationError({"contract_id": ["Required with outcome contract."]})
        if outcome == ContractRule.Outcome.NOT_COVERED and contract is not None:
            if "contract" in attrs:
                raise serializers.ValidationError({"contract_id": ["Must be null with outcome not_covered."]})
            attrs["contract"] = None
        return attrs


class ContractRuleFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")

    class Meta:
        model = ContractRule
        fields = ["name", "sequence", "enabled", "outcome", "created_at", "updated_at"]


class ContractRuleViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Explicit contract rules: the enabled rule with the lowest sequence whose criteria all hold
    decides which contract covers a job without a manual contract (or that none does)."""

    queryset = ContractRule.objects.select_related("contract")
    serializer_class = ContractRuleSerializer
    filterset_class = ContractRuleFilterSet
    sort_fields = {
        "name": "name",
        "sequence": "sequence",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "sequence"
    read_role = "operator"
    write_role = "manager"
    create_service = staticmethod(services.create_contract_rule)
    update_service = staticmethod(services.update_contract_rule)
    delete_service = staticmethod(services.delete_contract_rule)

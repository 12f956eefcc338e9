"""An amendment of a contract may change its SLA rules too (`changes.sla_rules`): each item names a
rule of the contract (`id`) and the fields that change, validated as `POST /sla_rules/{id}/amend`
would. When the amendment is approved, each rule is amended (`services.amend_rule`) from the
amendment's instant, the start of its effective date in the contract's time zone, so the rule
versions and the term versions change together; a rule that takes effect at or after that instant
is changed in place (`services.restate_rule`)."""

from __future__ import annotations

from types import SimpleNamespace

from rest_framework import serializers

from contracts.amendments import AmendmentPart
from events.services import jsonable

from . import services
from .models import SlaRule


def _form(rule: SlaRule, data: dict, context: dict):
    from .api import AmendSerializer

    return AmendSerializer(rule, data=data, partial=True, context=context)


def validate(*, contract, value, context) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise serializers.ValidationError(["Expected a list of {id, changed fields} objects."])
    rules = {rule.pk: rule for rule in SlaRule.objects.filter(contract=contract)}
    errors, items, seen = {}, [], set()
    for index, item in enumerate(value):  # errors keyed by index: changes.sla_rules[0].target_minutes
        if not isinstance(item, dict) or not isinstance(item.get("id"), int) or item["id"] not in rules:
            errors[index] = {"id": ["Not a rule of this contract."]}
            continue
        if item["id"] in seen:
            errors[index] = {"id": ["Listed twice."]}
            continue
        seen.add(item["id"])
        data = {name: field for name, field in item.items() if name != "id"}
        if "effective_from" in data:
            errors[index] = {"effective_from": ["Set by the amendment: the start of its effective date."]}
            continue
        if not data:
            errors[index] = ["Name at least one field to change."]
            continue
        form = _form(rules[item["id"]], data, context)
        if not form.is_valid():
            errors[index] = form.errors
            continue
        items.append({"id": item["id"], **jsonable(data)})
    if errors:
        raise serializers.ValidationError(errors)
    return items


def apply(*, contract, amendment, value, effective_at, actor) -> None:
    for item in value:
        rule = SlaRule.objects.get(pk=item["id"], contract=contract)
        while hasattr(rule, "next_version") and rule.next_version.effective_from <= effective_at:
            rule = rule.next_version  # amended since: change the version in force at that instant
        # Re-read as the API would for the contract's organization (references resolve within it).
        request = SimpleNamespace(auth=SimpleNamespace(organization=contract.organization))
        form = _form(rule, {name: v for name, v in item.items() if name != "id"}, {"request": request})
        form.is_valid(raise_exception=True)
        if rule.effective_from >= effective_at:  # the amendment covers the rule's whole life
            services.restate_rule(rule=rule, actor=actor, data=dict(form.validated_data))
        else:
            services.amend_rule(rule=rule, actor=actor, data=dict(form.validated_data), effective_from=effective_at)


SLA_RULES = AmendmentPart(validate=validate, apply=apply)

"""GraphQL enums for the models' choice fields (`status`, `metric`, `priority`, `role`, ...).

strawberry-django turns a choice field read with `auto` into an enum (GENERATE_ENUMS_FROM_CHOICES
in settings); this module names those enums before any type is built, one per set of choices:
a field whose choices several models share is one enum (`Metric`, `Priority`), otherwise the
enum is named after its model (`ContractStatus`, `SlaClockState`). A value is the REST value
itself (`pending_approval`), so a client reads the same words on both faces.

Inputs (filters and mutation bodies) still take the REST strings, so a bad value gets REST's
message with its field path rather than a bare schema error.
"""

from __future__ import annotations

import enum
from collections import defaultdict

import strawberry
from django.apps import apps

# Names for shared choice sets whose plain name would be ambiguous or clash with a type.
SHARED_NAMES = {"billing_period": "BillingFrequency", "status": "DeliveryStatus"}
# Single-model names that would repeat the model's name.
OWN_NAMES = {("LedgerEntry", "entry_type"): "LedgerEntryType"}

_by_field: dict[tuple[str, str], type] = {}


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _values(field) -> tuple[str, ...]:
    return tuple(value for value, _label in field.choices)


def install() -> None:
    """Give every string choice field without a blank choice its named enum (idempotent)."""
    if _by_field:
        return
    groups: dict[tuple[str, tuple[str, ...]], list] = defaultdict(list)
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.choices and all(isinstance(v, str) and v for v in _values(field)):
                groups[(field.name, _values(field))].append(field)
    for (field_name, values), fields in sorted(groups.items(), key=lambda item: item[0]):
        models_ = sorted({f.model.__name__ for f in fields})
        if len(models_) > 1:
            name = SHARED_NAMES.get(field_name, _camel(field_name))
        else:
            name = OWN_NAMES.get((models_[0], field_name), models_[0] + _camel(field_name))
        labels = dict(fields[0].choices)
        members = {value: strawberry.enum_value(value, description=str(labels[value])) for value in values}
        graphql_enum = strawberry.enum(enum.Enum(name, members), description=f"REST values of `{field_name}`.")
        for field in fields:
            field._strawberry_enum = graphql_enum
            _by_field[(field.model._meta.label, field.name)] = graphql_enum


def enum_of(model, field_name: str):
    """The enum of a model's choice field (for a resolver that computes the value, as REST does)."""
    install()
    return _by_field[(model._meta.label, field_name)]

"""Serializer pieces shared by every resource (DESIGN §5).

- `ResourceSerializer`: `?fields=` selection (with `Meta.default_fields` for collections),
  422 for read-only or unknown fields in the input, `source`/`sourceID` uniqueness per
  organization and source (409 naming the existing id).
- `ReferenceField` / `ReferenceIdField`: references come out as `{"id", "name"[, "sourceID"]}`
  and go in as `<name>_id`, looked up in the caller's organization only.
- `StrictInputMixin` (in `ResourceSerializer` and `ActionSerializer`): strict JSON types for
  every field, declared or generated, nested too (see `json_type_errors`), instants only with
  an offset, and unknown or read-only fields refused with the list of accepted ones.
"""

from __future__ import annotations

import copy
import functools
from decimal import Decimal
from operator import attrgetter

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import _UnvalidatedField as UnvalidatedField

from tenancy.currencies import quantize, round_down

from .. import dates, decimals
from ..text import control_character, control_message
from .exceptions import Conflict
from .filters import MAX_DB_ID, invalid_choice

NAIVE_INSTANT = dates.NAIVE


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_choices(field: serializers.ChoiceField) -> bool:
    return all(isinstance(key, str) for key in field.choices)


_SCALAR_FIELDS = (
    serializers.BooleanField, serializers.IntegerField, serializers.DecimalField, serializers.FloatField,
    serializers.RelatedField, serializers.DateTimeField, serializers.CharField, serializers.DateField,
    serializers.TimeField, serializers.DurationField, serializers.UUIDField,
)  # fmt: skip


def _scalar_type_error(field, value) -> str | None:
    """Why a JSON scalar does not fit a field's type (None when it does, or for the field to judge)."""
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Expected a JSON boolean (true or false)."
    if isinstance(field, serializers.IntegerField):
        if not _is_int(value):
            return "Expected a JSON integer."
        return None if abs(value) <= MAX_DB_ID else f"Must be between -{MAX_DB_ID} and {MAX_DB_ID}."
    if isinstance(field, (serializers.DecimalField, serializers.FloatField)):
        if isinstance(value, str):
            # DRF reads a string as Decimal() does once stripped: "1_0" was 10 and "١٢" 12 (and a
            # blank one null). Only a plain decimal is taken (config.decimals).
            return None if decimals.PLAIN.fullmatch(value) else decimals.NOT_PLAIN
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else 'Expected a decimal string (e.g. "12.50") or a number.'
    if isinstance(field, serializers.RelatedField):
        return None if _is_int(value) else "Expected an integer id."
    if isinstance(field, serializers.DateTimeField):
        if not isinstance(value, str):
            return "Expected an ISO 8601 instant as a JSON string."
        try:
            parsed = parse_datetime(value)
        except ValueError:
            return None  # well formed but impossible (2026-02-30): the field says so
        if parsed is not None and parsed.tzinfo is None:
            return NAIVE_INSTANT
        return None
    if isinstance(field, (serializers.CharField, serializers.DateField, serializers.TimeField,
                          serializers.DurationField, serializers.UUIDField)):  # fmt: skip
        return None if isinstance(value, str) else "Expected a JSON string."
    multiple = isinstance(field, serializers.MultipleChoiceField)
    single_choice = isinstance(field, serializers.ChoiceField) and not multiple
    if single_choice and _string_choices(field) and not isinstance(value, str):
        return "Expected a JSON string."
    if single_choice:
        return _choice_error(field, value)
    return None


def _choice_error(field: serializers.ChoiceField, value) -> str | None:
    """DRF's own check (`ChoiceField.to_internal_value`), with an error naming the valid values
    (DRF's says only `"x" is not a valid choice.`)."""
    if (value == "" and field.allow_blank) or str(value) in field.choice_strings_to_values:
        return None
    choices = list(field.choice_strings_to_values)
    return invalid_choice(value, [*choices, ""] if field.allow_blank and "" not in choices else choices)


def json_type_errors(field, value):
    """The type errors of one input value for a field, shaped like DRF's own errors (a list of
    messages, or a dict / index map for nested serializers and lists), or None."""
    if value is None:
        return None  # allow_null is the field's own business
    if isinstance(field, UnvalidatedField):
        return None  # a ListField's or DictField's child with no declared type takes any JSON
    if isinstance(field, (serializers.ListSerializer, serializers.ListField, serializers.ManyRelatedField)):
        if not isinstance(value, list):
            return None  # the field itself says "Expected a list"
        child = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field.child
        errors = {i: e for i, item in enumerate(value) if (e := json_type_errors(child, item))}
        return errors or None
    if isinstance(field, serializers.ManyRelatedField):  # `<name>_ids` lists: each id a scalar
        if not isinstance(value, list):
            return None
        errors = {i: e for i, item in enumerate(value) if (e := json_type_errors(field.child_relation, item))}
        return errors or None
    if isinstance(field, serializers.Serializer):
        if not isinstance(value, dict):
            return None
        errors = {}
        for key, item in value.items():
            child = field.fields.get(key)
            if child is not None and not child.read_only and (e := json_type_errors(child, item)):
                errors[key] = e
        return errors or None
    if isinstance(field, serializers.DictField):
        if not isinstance(value, dict):
            return None
        errors = {k: e for k, item in value.items() if (e := json_type_errors(field.child, item))}
        return errors or None
    if isinstance(field, serializers.ManyRelatedField):
        if not isinstance(value, list):
            return None
        errors = {i: e for i, item in enumerate(value) if (e := json_type_errors(field.child_relation, item))}
        return errors or None
    if isinstance(value, (dict, list)):
        # Only the scalar field classes refuse containers (a choice too: DRF's error quoted the
        # Python text of the list); a custom field may take any JSON.
        single_choice = isinstance(field, serializers.ChoiceField) and not isinstance(
            field, serializers.MultipleChoiceField
        )
        scalar = isinstance(field, _SCALAR_FIELDS) or single_choice
        return ["Expected a JSON scalar, not an object or an array."] if scalar else None
    message = _scalar_type_error(field, value)
    return [message] if message else None


def single_line(value: str) -> None:
    """A name, reference or other one-line text (a model `CharField`) holds no control character:
    a line break or an escape in a calendar's or contract's name broke or forged lines in every
    output that shows it (iCalendar, CSV, e-mail subjects, PDF). Multi-line text is a `TextField`."""
    char = control_character(value)
    if char is not None:
        raise serializers.ValidationError(control_message(char))


def money_text(amount, currency: str) -> str:
    """An amount in a currency's minor units, as the API writes it."""
    return str(quantize(amount, currency))


def price_text(price, currency: str) -> str:
    """A unit price in its currency's minor units, or with the finer places it was stored with (a
    rate of 110.125 an hour): rounded, quantity times unit price would no longer give the line's
    amount (found by an outside sweep)."""
    rounded = quantize(price, currency)
    return str(rounded if rounded == price else Decimal(price).normalize())


def cap_text(cap, currency: str) -> str:
    """A penalty cap as it is enforced: in its currency's minor unit, rounded down (`round_down`,
    as `breaches.penalties` applies it: a cap finer than the minor unit counts as the largest whole
    minor amount within it). Rounded half-up, a JPY cap of 2500.9 read 2501 while 2500 was
    enforced (found by an outside tester)."""
    return str(round_down(cap, currency))


# How the amounts of each `ResourceSerializer.Meta` mapping (amount -> path of its currency) are
# written: REST, its row reader (config.api.rows) and GraphQL (`money_field`) alike.
AMOUNT_TEXTS = {"money_fields": money_text, "price_fields": price_text, "cap_fields": cap_text}


def amount_text(meta, name: str) -> tuple | None:
    """`(text, currency_path)` of an amount a serializer's Meta maps (`AMOUNT_TEXTS`), else None."""
    for mapping, text in AMOUNT_TEXTS.items():
        if name in (paths := getattr(meta, mapping, {})):
            return text, paths[name]
    return None


def tenant_of(serializer_field) -> object | None:
    """The caller's organization, from the request in the serializer context."""
    request = serializer_field.context.get("request")
    auth = getattr(request, "auth", None)
    return getattr(auth, "organization", None)


def unique_in_organization(serializer, field: str, value, noun: str):
    """`value` for a field unique within the caller's organization (a contract's `reference`, a
    calendar's `name`): the 422 names the row that already has it, excluding the one edited."""
    model = serializer.Meta.model
    clash = model.objects.filter(organization=tenant_of(serializer), **{field: value})
    if serializer.instance is not None:
        clash = clash.exclude(pk=serializer.instance.pk)
    existing = clash.values_list("pk", flat=True).first()
    if existing is not None:
        raise serializers.ValidationError(f"Already used by {noun} {existing}.")
    return value


def shaped_json_field(shape: dict, name: str | None = None) -> type[serializers.JSONField]:
    """A JSONField class whose value's shape the OpenAPI document states (`shape`: OpenAPI 3.0,
    `name`: its component, if shared). The serializer judges the value as it did: the shape tells
    clients what it takes, and a shape the API does not enforce must not be stated."""
    field_class = type(f"{name or 'Shaped'}JSONField", (serializers.JSONField,), {})
    return extend_schema_field(shape, component_name=name)(field_class)


# Any JSON object: a JSON field the API refuses when it is not an object.
JSONObjectField = shaped_json_field({"type": "object"})
# A list of JSON objects, each judged by the serializer it is a list of.
JSONObjectListField = shaped_json_field({"type": "array", "items": {"type": "object"}})


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "readOnly": True,
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "sourceID": {"type": "string"}},
        "required": ["id", "name"],
    }
)
class ReferenceField(serializers.Field):
    """Read-only nested reference: `{"id": 1, "name": "Acme", "sourceID": "A-1"}`."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return reference_of(value)


def reference_of(obj) -> dict | None:
    if obj is None:
        return None
    data = {"id": obj.pk, "name": getattr(obj, "name", None) or str(obj)}
    if getattr(obj, "source_id", ""):
        data["sourceID"] = obj.source_id
    return data


class RowMethodField(serializers.SerializerMethodField):
    """A computed field whose `get_<name>(row)` reads a dict of named columns (ORM paths such as
    `"amendment__number"`, a foreign key giving its id, as `values()` does), so that a page can
    be written from rows (config.api.rows). From an instance the same dict is built by following
    the paths, so a resource read alone and a page show the same value."""

    def __init__(self, *columns: str, **kwargs):
        self.row_columns = columns
        super().__init__(**kwargs)

    def to_representation(self, instance):
        return self.from_row({column: column_value(instance, column) for column in self.row_columns})

    def from_row(self, row):
        return getattr(self.parent, self.method_name)(row)


def column_value(instance, path: str):
    """What `values(path)` gives for one instance: `a__b` follows foreign keys (None past a
    missing one); a foreign key at the end gives its id."""
    *hops, last = path.split("__")
    for hop in hops:
        instance = getattr(instance, hop)
        if instance is None:
            return None
    return getattr(instance, instance._meta.get_field(last).attname)


def str_columns_of(model) -> tuple[str, ...] | None:
    """The columns a model's `str()` reads, as it declares them (`str_columns`), or None."""
    if issubclass(model, AbstractBaseUser) and model.__str__ is AbstractBaseUser.__str__:
        return (model.USERNAME_FIELD,)  # what AbstractBaseUser.__str__ writes
    return getattr(model, "str_columns", None)


def defer_unreferenced(queryset, references: dict[str, tuple[str, ...]]):
    """Load only what `reference_of` reads from each listed `select_related` reference (issue 15).

    `references` maps a reference (a top-level `select_related` name) to the other columns of it
    the serializer reads (e.g. `{"contract": ("currency",)}`). Each keeps its primary key, `name`,
    `source_id`, what its `str()` reads (`str_columns_of`) and the extra columns; the rest is
    deferred, so a page does not parse the JSON, text and timestamps of 100 contracts it shows as
    `{id, name}`. A column read but not kept costs one query per row: the query-count tests catch it.
    """
    deferred = []
    for name, extra in references.items():
        model = queryset.model._meta.get_field(name).related_model
        keep = {model._meta.pk.name, "name", "source_id", *(str_columns_of(model) or ()), *extra}
        deferred += [f"{name}__{field.name}" for field in model._meta.concrete_fields if field.name not in keep]
    return queryset.defer(*deferred) if deferred else queryset


class ReferenceIdField(serializers.PrimaryKeyRelatedField):
    """`<name>_id` input, resolved within the caller's organization: any other id is a 422."""

    default_error_messages = {
        "does_not_exist": "{model} {pk_value} does not exist.",
        "incorrect_type": "Expected an integer id, got {data_type}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("write_only", True)
        super().__init__(**kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(organization=tenant_of(self))

    def to_internal_value(self, data):
        if not _is_int(data):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            if not 1 <= data <= MAX_DB_ID:
                raise self.get_queryset().model.DoesNotExist
            return self.get_queryset().get(pk=data)
        except self.get_queryset().model.DoesNotExist:
            model = self.get_queryset().model._meta.verbose_name.capitalize()
            self.fail("does_not_exist", model=model, pk_value=data)


def in_service_range(value) -> None:
    """A validator: the date or instant lies in the service's range (config.dates)."""
    if not dates.in_range(value):
        raise serializers.ValidationError(f"Must be {dates.RANGE}.")


def bounded_dates(fields: dict) -> dict:
    """The fields, each date and instant a body may give held to the service's range (config.dates)."""
    for field in fields.values():
        if isinstance(field, (serializers.DateField, serializers.DateTimeField)) and not field.read_only:
            field.validators = [*field.validators, in_service_range]
    return fields


class StrictInputMixin:
    """Input is refused (422) rather than guessed at: a field that is read-only or does not
    exist (the error lists the accepted fields), and a value of the wrong JSON type, anywhere in
    the body: `"name": 123`, `"auto_renew": "yes"`, `"target_minutes": "60"`, an instant
    without an offset, a date or instant outside the service's range (`config.dates`)."""

    def get_fields(self):
        return bounded_dates(super().get_fields())

    def accepted_field_names(self) -> list[str]:
        return sorted(name for name, field in self.fields.items() if not field.read_only)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"base": ["Expected a JSON object."]})
        errors = {}
        for key, value in data.items():
            field = self.fields.get(key)
            if field is None:
                accepted = ", ".join(self.accepted_field_names()) or "none"
                errors[key] = [f"Unknown field. Accepted fields: {accepted}."]
            elif field.read_only:
                errors[key] = ["This field is read-only."]
            elif type_errors := json_type_errors(field, value):
                errors[key] = type_errors
        if errors:
            # Report the other fields' errors too, as one response.
            try:
                super().to_internal_value({k: v for k, v in data.items() if k not in errors})
            except serializers.ValidationError as exc:
                if isinstance(exc.detail, dict):
                    for key, detail in exc.detail.items():
                        errors.setdefault(key, detail)
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ActionSerializer(StrictInputMixin, serializers.Serializer):
    """The body of an action sub-path (`POST /contracts/{id}/approve`)."""


@functools.cache
def _built_fields(serializer_class) -> dict:
    """Every field of a serializer class, built once per process from its model and declared
    fields (DRF's ModelSerializer.get_fields). Read-only: each serializer gets copies."""
    return serializers.ModelSerializer.get_fields(serializer_class())


class ResourceSerializer(StrictInputMixin, serializers.ModelSerializer):
    """Base for every resource serializer.

    `Meta.default_fields` lists what a collection returns without `?fields=`; a single GET
    returns every readable field. Pass `fields=[...]` to pick.

    `Meta.money_fields` maps an amount to the path of its currency code (`{"amount":
    "contract.currency"}`): the amount is written with the currency's minor units (`"1200.00"`,
    `"1200"` in JPY), or as the decimal field writes it when the currency is blank.
    `Meta.price_fields` does the same for unit prices, which keep finer places (`price_text`), and
    `Meta.cap_fields` for penalty caps, written as enforced: rounded down (`cap_text`).
    """

    def __init__(self, *args, fields=None, **kwargs):
        self._wanted_fields = None if fields is None else {*fields, "id"}
        self._takes_input = "data" in kwargs
        super().__init__(*args, **kwargs)

    def get_fields(self):
        # Copies of the fields built once per class, and only those shown (issue 15): building
        # them from the model took longer than writing a page. Write-only fields only for input.
        wanted = self._wanted_fields
        fields = {
            name: copy.deepcopy(field)
            for name, field in _built_fields(type(self)).items()
            if wanted is None or name in wanted or (field.write_only and self._takes_input)
        }
        # DRF's DateTimeField looks the current time zone up (an asgiref Local) for every value;
        # look it up once per serializer instead, i.e. once per response for a list (issue 15).
        for field in fields.values():
            if isinstance(field, serializers.DateTimeField) and not hasattr(field, "timezone"):
                field.timezone = field.default_timezone()
        return bounded_dates(fields) if self._takes_input else fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for currency_fields, text in AMOUNT_TEXTS.items():
            for name, currency_path in getattr(self.Meta, currency_fields, {}).items():
                if data.get(name) is not None and (currency := attrgetter(currency_path)(instance)):
                    data[name] = text(getattr(instance, self.fields[name].source), currency)
        return data

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if type(model_field) is models.CharField and not model_field.choices:
            kwargs["validators"] = [*kwargs.get("validators", []), single_line]
        return field_class, kwargs

    @classmethod
    def readable_field_names(cls) -> list[str]:
        # From the fields built once per class, not `cls().fields`: that deep-copied every field on
        # each request with `?fields=` (twice on work orders), ~0.6 ms a time (issue 15).
        return [name for name, field in _built_fields(cls).items() if not field.write_only]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        self._check_source_id(attrs)
        return attrs

    def _check_source_id(self, attrs) -> None:
        model = self.Meta.model
        if not any(f.name == "source_id" for f in model._meta.fields):
            return
        source = attrs.get("source", getattr(self.instance, "source", ""))
        source_id = attrs.get("source_id", getattr(self.instance, "source_id", ""))
        if not source_id:
            return
        conflict = source_id_conflict(
            model, tenant_of(self), source, source_id, exclude=None if self.instance is None else self.instance.pk
        )
        if conflict is not None:
            raise conflict


def source_id_conflict(model, organization, source: str, source_id: str, *, exclude=None) -> Conflict | None:
    """The 409 naming the row of `model` that already has this (source, sourceID), or None."""
    clash = model.objects.filter(organization=organization, source=source, source_id=source_id)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    existing = clash.values_list("pk", flat=True).first()
    if existing is None:
        return None
    return Conflict(
        f"sourceID {source_id!r} is already used in source {source!r} by id {existing}.",
        {"sourceID": [f"Already used by id {existing}."]},
    )


class PickedFieldsMixin:
    # `fields=[...]` (`?fields=`) for a serializer of computed rows (a listing that is not a
    # resource), as `ResourceSerializer` takes it. (A comment: a docstring would describe the
    # serializer's component in the OpenAPI document.)

    def __init__(self, *args, fields=None, **kwargs):
        self._wanted_fields = None if fields is None else set(fields)
        super().__init__(*args, **kwargs)

    def get_fields(self):
        fields = super().get_fields()
        wanted = self._wanted_fields
        return fields if wanted is None else {name: field for name, field in fields.items() if name in wanted}

    @classmethod
    def readable_field_names(cls) -> list[str]:
        return [name for name, field in cls().fields.items() if not field.write_only]


class SourceFieldsMixin(serializers.Serializer):
    """`source` (max 30) and `sourceID` (max 128) of resources integrators sync."""

    # Declared here, so not built from the model: they take `single_line` as the built fields do.
    source = serializers.CharField(max_length=30, required=False, allow_blank=True, validators=[single_line])
    sourceID = serializers.CharField(
        source="source_id", max_length=128, required=False, allow_blank=True, validators=[single_line]
    )

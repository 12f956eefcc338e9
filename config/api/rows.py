"""A collection's page written from `values()` rows (issue 15).

Loading a page as model instances cost more than anything else a list does: an instance per row
and per `{id, name}` reference (Django's `__init__` and `from_db`), then DRF's walk of each field
(`get_attribute`, the None check, `to_representation`). Most fields need none of that: they show a
column, possibly across foreign keys, or a reference's id, name and sourceID. So a list asks its
serializer for a `RowPlan`: the columns its fields read and, per field, how it writes its value
from one row. When every field of the response has one, the page is loaded with
`values(*columns)` (ids first, as before) and each row written with one call per field; when one
field has none (a `SerializerMethodField`, a serializer with its own `to_representation`) the
list loads instances as before. The bytes are the same either way: tests/config/test_rows.py
compares every list of the API written both ways.

A field of the project's own kind takes part by declaring `row_columns` (the ORM paths it reads,
relative to the serializer's model) and `from_row(row)`. A serializer may declare
`prepare_rows(rows)`, called once per page before any row is written (to read what a page needs
at once, as the work orders' clocks).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from decimal import Decimal, getcontext

from django.core.exceptions import FieldDoesNotExist
from django.db.models.base import ModelState
from rest_framework import ISO_8601, serializers
from rest_framework.fields import Field, empty
from rest_framework.relations import PrimaryKeyRelatedField, RelatedField
from rest_framework.settings import api_settings

from .serializers import ReferenceField, ResourceSerializer, amount_text, money_text, reference_of, str_columns_of

Writer = Callable[[dict], object]
_SKIP = object()  # a field DRF leaves out of the row (a read-only field across a missing reference)


# The zones whose offset is always zero: an instant in them is written by `utc_text`.
_UTC_ZONES = frozenset({dt.UTC, zoneinfo.ZoneInfo("UTC")})


def instant_text(value, zone) -> str | None:
    """An instant as DRF's DateTimeField writes it (ISO 8601 in `zone`, UTC as `Z`), the zone
    looked up once per page rather than once per value."""
    if value is None:
        return None
    if zone in _UTC_ZONES:
        return utc_text(value)
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def utc_text(value: dt.datetime) -> str:
    """`value.astimezone(UTC).isoformat()` with `Z` for `+00:00`: the same text in about half the
    time (measured), for what every page writes most (a page of work orders about 700 instants)."""
    if value.tzinfo not in _UTC_ZONES:
        value = value.astimezone(dt.UTC)
    # Percent formatting: about half the time of isoformat() or of an f-string with widths.
    if value.microsecond:
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - measured faster, see above
            value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
        )  # fmt: skip
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 - measured faster, see above
        value.year, value.month, value.day, value.hour, value.minute, value.second
    )  # fmt: skip


class RowPlan:
    """The columns a page's rows need and, per shown field, its writer."""

    def __init__(self, serializer, columns: list[str], writers: list[tuple[str, Writer]], may_skip: bool):
        self.serializer = serializer
        self.columns = columns
        self.writers = writers
        self.may_skip = may_skip

    def render(self, rows: list[dict]) -> list[dict]:
        prepare = getattr(self.serializer, "prepare_rows", None)
        if prepare is not None:
            prepare(rows)
        writers = self.writers
        if not self.may_skip:
            return [{name: write(row) for name, write in writers} for row in rows]
        return [{name: value for name, write in writers if (value := write(row)) is not _SKIP} for row in rows]


def row_plan(serializer) -> RowPlan | None:
    """The plan of a serializer's shown fields, or None when one of them needs the instance."""
    if not isinstance(serializer, ResourceSerializer):
        return None
    if type(serializer).to_representation is not ResourceSerializer.to_representation:
        return None  # a serializer of its own writes from the instance
    model = serializer.Meta.model
    pk = model._meta.pk.name
    columns = {pk: None}
    writers = []
    may_skip = False
    for name, field in serializer.fields.items():
        if field.write_only:
            continue
        reader = _reader(field, model)
        if reader is not None and (written := amount_text(serializer.Meta, name)) is not None:
            text, currency_path = written
            reader = _money_reader(reader, field, currency_path, model, text)
        if reader is None:
            return None
        field_columns, write, skips = reader
        columns.update(dict.fromkeys(field_columns))
        writers.append((name, write))
        may_skip |= skips
    return RowPlan(serializer, list(columns), writers, may_skip)


def _money_reader(reader, field, currency_path: str, model, text=money_text):
    """An amount of ResourceSerializer's `Meta.money_fields` (`price_fields`, `cap_fields`: its
    `text`, `serializers.AMOUNT_TEXTS`) from a row: the amount in its currency's units."""
    currency = _column_path(model, currency_path.split("."))
    amount = _column_path(model, field.source_attrs)
    if currency is None or currency[2] or amount is None or amount[2]:
        return None
    columns, write, skips = reader
    amount_column, currency_column = amount[0], currency[0]

    def write_money(row):
        value = write(row)
        if value is None or not (code := row[currency_column]):
            return value
        return text(row[amount_column], code)

    if isinstance(field, serializers.DecimalField) and getattr(field, "row_columns", None) is None:
        write_money = _amount_writer(write, amount_column, currency_column, text)
    return [*columns, currency_column], write_money, skips


def _amount_writer(write: Writer, amount_column: str, currency_column: str, text=money_text) -> Writer:
    """`write_money` for a decimal column: written once, in its currency's units when it has one
    (the decimal field's own text only without a currency)."""

    def write_amount(row):
        if not (code := row[currency_column]):
            return write(row)
        amount = row[amount_column]
        return None if amount is None else text(amount, code)

    return write_amount


def _reader(field, model) -> tuple[list[str], Writer, bool] | None:
    declared = getattr(field, "row_columns", None)
    if declared is not None:
        return list(declared), field.from_row, False
    if field.source == "*" or isinstance(field, (serializers.SerializerMethodField, serializers.ManyRelatedField)):
        return None
    path = _column_path(model, field.source_attrs)
    if path is None:
        return None
    column, target, nullable_hops = path
    if isinstance(field, ReferenceField):
        reader = _reference_reader(column, target)
        if reader is None:
            return None
        columns, write = reader
    elif target.is_relation:
        if not isinstance(field, PrimaryKeyRelatedField) or field.pk_field is not None:
            return None
        write, columns = _value_writer(column, lambda value: value), [column]
    elif isinstance(field, RelatedField) or type(field).get_attribute is not Field.get_attribute:
        return None  # a field that reads the instance its own way
    else:
        write, columns = _value_writer(column, _representation(field)), [column]
    if not nullable_hops:
        return columns, write, False
    if field.required:
        return None  # DRF raises for it: left to the instances
    # Across a reference that may be missing, DRF's get_attribute falls back (default, null, left out).
    return columns + nullable_hops, _missing_reference(field, nullable_hops, write), True


def _column_path(model, attrs) -> tuple[str, object, list[str]] | None:
    """`contract.currency` → ("contract__currency", the model field, [nullable foreign keys on the way])."""
    nullable = []
    for i, attr in enumerate(attrs):
        try:
            field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None
        if not field.concrete or field.many_to_many:
            return None
        if i == len(attrs) - 1:
            return "__".join(attrs), field, nullable
        if not field.is_relation:
            return None
        if field.null:
            nullable.append("__".join(attrs[: i + 1]))
        model = field.related_model
    return None


def _value_writer(column: str, represent: Callable) -> Writer:
    def write(row):
        value = row[column]
        return None if value is None else represent(value)

    return write


def _representation(field) -> Callable:
    """The field's `to_representation`, or an exact shortcut for the commonest kinds."""
    if isinstance(field, serializers.DateTimeField) and type(field).to_representation is (
        serializers.DateTimeField.to_representation
    ):
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
        if zone is not None and isinstance(output_format, str) and output_format.lower() == ISO_8601:
            return utc_text if zone in _UTC_ZONES else lambda value: instant_text(value, zone)
    if type(field) is serializers.CharField:
        return lambda value: value if type(value) is str else str(value)
    return _exact_representation(field) or field.to_representation


def _exact_representation(field) -> Callable | None:
    """DRF's `to_representation` of a decimal, choice, integer or boolean field without its
    per-value set-up (a decimal context copied and the quantum computed for every amount), for
    the values a column holds; the same output. None for any other field."""
    kind = type(field)
    if kind is serializers.DecimalField:
        coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        if not coerce or field.localize or field.normalize_output or field.decimal_places is None:
            return None
        quantum = Decimal(".1") ** field.decimal_places
        context = getcontext().copy()
        if field.max_digits is not None:
            context.prec = field.max_digits
        rounding = field.rounding

        def decimal_text(value):
            if type(value) is not Decimal:
                return field.to_representation(value)
            return f"{value.quantize(quantum, rounding=rounding, context=context):f}"

        return decimal_text
    if kind is serializers.ChoiceField:
        to_value = field.choice_strings_to_values.get
        return lambda value: to_value(value, value) if type(value) is str else field.to_representation(value)
    if kind is serializers.IntegerField:
        return lambda value: value if type(value) is int else int(value)
    if kind is serializers.BooleanField:
        return lambda value: value if type(value) is bool else field.to_representation(value)
    return None


def _reference_reader(column: str, target) -> tuple[list[str], Writer] | None:
    """`{id, name[, sourceID]}` from the reference's columns (config.api.serializers.reference_of):
    its `name`, and for a blank name or a model without one, its `str()` from the columns the
    model says it reads (`str_columns`; a user's username, what `AbstractBaseUser.__str__` writes)."""
    if not target.is_relation or target.many_to_many:
        return None
    related = target.related_model
    names = {f.name for f in related._meta.concrete_fields}
    str_columns = str_columns_of(related)
    if str_columns is None:
        return None
    name_column = f"{column}__name" if "name" in names else None
    source_column = f"{column}__source_id" if "source_id" in names else None
    shown = {*str_columns, *(["name"] if name_column else []), *(["source_id"] if source_column else [])}
    attnames = {f"{column}__{name}": related._meta.get_field(name).attname for name in sorted(shown)}
    pk_name = related._meta.pk.attname

    def write(row):
        pk = row[column]
        if pk is None:
            return None
        if name_column is not None and (name := row[name_column]):
            data = {"id": pk, "name": name}
            if source_column is not None and row[source_column]:
                data["sourceID"] = row[source_column]
            return data
        # An instance holding only what str() reads: Model.__init__ would set every other field's
        # default (a work order has 25) for each row. A column str() read but not listed would
        # be loaded by Django, one query per row, which the query-count tests catch.
        reference = related.__new__(related)
        reference.__dict__.update({attname: row[path] for path, attname in attnames.items()}, _state=ModelState())
        reference.__dict__[pk_name] = pk
        return reference_of(reference)

    return [column, *attnames], write


def _missing_reference(field, hops: list[str], write: Writer) -> Writer:
    def fallback():
        if field.default is not empty:
            return field.get_default()
        return None if field.allow_null else _SKIP

    def guarded(row):
        if any(row[hop] is None for hop in hops):
            return fallback()
        return write(row)

    return guarded

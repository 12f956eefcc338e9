"""Filter predicates (DESIGN §5) on top of django-filter.

A resource declares its filters as a `PredicateFilterSet`; each query parameter is parsed with
one grammar, and each value is converted by the model field's own form field (dates, numbers,
choices, booleans), so a malformed value is a 400 naming the parameter:

    ?status=active            equals             ?status=active,suspended   in
    ?status=!expired          not (in)           ?ids=1,2,3                 id in
    ?created_at=>2026-01-01   also <, <=, >=     ?created_at=>=2026-01-01<2026-02-01   range
    ?remarks=                 is empty           ?remarks=!                 is present

A parameter that is not a declared filter (nor one of the view's own parameters) is a 400, and
so is a parameter given more than once (`?status=active&status=draft`, `single_values`): a list
is one value, comma-separated. `fields` and `sort` alone, lists by nature, take their repeats as
one list (`joined_lists`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.db.models import Q
from django.forms.utils import from_current_timezone
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import get_model_field

from .. import dates, decimals
from .exceptions import BadRequest
from .pagination import integer

# The largest id and integer every database takes (a signed 64-bit integer): a bigger number in
# a filter, a path or a body can match nothing, and would overflow SQLite's integers.
MAX_DB_ID = 2**63 - 1
# Integer columns by their range on the strictest database (PostgreSQL's int2/int4/int8).
_INTEGER_RANGES = {  # subclasses before their bases
    models.PositiveSmallIntegerField: (0, 2**15 - 1),
    models.PositiveIntegerField: (0, 2**31 - 1),
    models.PositiveBigIntegerField: (0, MAX_DB_ID),
    models.SmallIntegerField: (-(2**15), 2**15 - 1),
    models.BigIntegerField: (-(2**63), MAX_DB_ID),
    models.IntegerField: (-(2**31), 2**31 - 1),
}

MAX_LIST_VALUES = 1000

# Query parameters the toolkit itself reads; never taken for filters.
RESERVED_PARAMS = frozenset({"page", "per_page", "fields", "sort", "format"})  # format: ?format=csv

_RANGE = re.compile(r"^(>=|<=|>|<)([^<>]+?)(?:(>=|<=|>|<)([^<>]+))?$")
_LOOKUPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_ORDERED = (
    models.DateField,
    models.DateTimeField,
    models.TimeField,
    models.IntegerField,
    models.DecimalField,
    models.FloatField,
    models.CharField,
    models.AutoField,
)


# A repeated parameter's example in its error, at most this long (else a placeholder).
_EXAMPLE_LENGTH = 120


# The toolkit's parameters that take one value, never a list: their repeat is told to send it once
# (`page=1,2` would be no better; found by a regression sweep).
SINGLE_VALUED = frozenset({"page", "per_page", "format"})


# The toolkit's parameters that are a list and nothing else: `fields=a&fields=b` can only mean
# `fields=a,b`, which is what generated clients (openapi-python-client and others, which ignore
# `explode: false`) send. A filter's repeat stays a 400: `status=!expired&status=active` has no
# single reading.
LIST_VALUED = ("fields", "sort")


def joined_lists(params):
    """`params` with each repeated LIST_VALUED parameter joined into one comma-separated value
    (the same QueryDict when nothing is repeated)."""
    repeated = [name for name in LIST_VALUED if len(params.getlist(name)) > 1]
    if not repeated:
        return params
    joined = params.copy()
    for name in repeated:
        joined.setlist(name, [",".join(params.getlist(name))])
    joined._mutable = False
    return joined


def single_values(params, *, lists: bool = True) -> None:
    """A 400 naming each query parameter given more than once (`?status=active&status=draft`).

    Django's QueryDict (and so DRF's `query_params`) keeps every value, but `get()` and `[]` read
    the last: a client that sends a list as repeated parameters (many HTTP libraries do) would get
    an answer to a question it did not ask. `lists`: the error says to send one value,
    comma-separated (the predicate grammar); else to send the parameter once."""
    repeated = {name: values for name, values in params.lists() if len(values) > 1}
    if not repeated:
        return
    errors = {}
    for name, values in repeated.items():
        if lists and name not in SINGLE_VALUED:
            example = f"{name}={','.join(values)}"
            if len(example) > _EXAMPLE_LENGTH:
                example = f"{name}=a,b"
            errors[name] = [f"Given {len(values)} times; send one value, comma-separated ({example})."]
        else:
            errors[name] = [f"Given {len(values)} times; send it once."]
    as_lists = lists and any(name not in SINGLE_VALUED for name in repeated)
    advice = "send one value, comma-separated" if as_lists else "send each once"
    raise BadRequest(f"Repeated query parameter: {', '.join(repeated)}; {advice}.", errors)


def refuse_unknown(params, allowed, hints: dict[str, str] | None = None) -> None:
    """A 400 naming each query parameter not in `allowed` (`hints`: a better word than "Unknown
    query parameter." for some of them). Every endpoint's one rule: never silently ignored."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        hints = hints or {}
        raise BadRequest(
            f"Unknown query parameter: {', '.join(unknown)}",
            {name: [hints.get(name, "Unknown query parameter.")] for name in unknown},
        )


def invalid_choice(value, choices) -> str:
    """The error of a value that is not among `choices`, naming them (as an unknown field's error
    names the accepted fields): input bodies (`config.api.serializers`) and filters alike."""
    shown = [str(choice) for choice in choices if str(choice) != ""]
    blank = " (or blank)" if len(shown) < len(list(choices)) else ""
    return f'"{value}" is not a valid choice: one of {", ".join(shown)}{blank}.'


@dataclass(frozen=True)
class Predicate:
    """A parsed filter: `kind` is one of in, not_in, range, empty, present."""

    kind: str
    values: tuple = ()
    bounds: tuple = ()  # ((lookup, value), ...) for range

    def to_q(self, path: str, blank_is_empty: bool) -> Q:
        if self.kind in ("empty", "present"):
            q = Q(**{f"{path}__isnull": True})
            if blank_is_empty:
                q |= Q(**{path: ""})
            return q if self.kind == "empty" else ~q
        if self.kind == "range":
            return Q(**{f"{path}__{lookup}": value for lookup, value in self.bounds})
        q = Q(**{f"{path}__in": self.values})
        return q if self.kind == "in" else ~q


@dataclass(frozen=True)
class PredicateParts:
    """A predicate given in parts rather than as one query-string value (GraphQL's typed filters,
    `config.graphql.base.predicate_to_rest`): each value is converted as one value and never read
    with the grammar, so a `,`, a leading `!` or a `>` is part of the value it is in. `kind` as
    `Predicate`'s; `bounds` are ((lookup, raw value), ...)."""

    kind: str
    values: tuple[str, ...] = ()
    bounds: tuple[tuple[str, str], ...] = ()


# The longest integer a filter reads as a number: beyond every database's integers, so that a big
# one gets the range error naming the bound, and short enough that `int()` stays cheap.
_LONGEST_INTEGER = 10**100 - 1


class StrictIntegerField(forms.IntegerField):
    """An id or integer as the rest of the API reads one (`config.api.pagination.integer`): Django's
    reads it as `int()` does once a `.0` is stripped, so `ids=1_0` matched id 10, `١` id 1, and
    `+1` and `1.0` id 1 (found by an outside sweep; GraphQL's Int refused them)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = integer(str(value), _LONGEST_INTEGER)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class ISODateField(forms.DateField):
    """A date YYYY-MM-DD only (`dates.parse_day`): Django's tries every `DATE_INPUT_FORMATS`, so
    `01/12/2026` was read as 12 January (found by an outside sweep; GraphQL's Date refused it)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        day = dates.parse_day(str(value))
        if day is None:
            raise ValidationError("Not a date YYYY-MM-DD.", code="invalid")
        return day


class ISOInstantField(forms.DateTimeField):
    """An ISO 8601 instant only (`dates.parse_instant`), naive ones in UTC as before: Django's also
    tried every `DATETIME_INPUT_FORMATS` (`11/30/2026 23:00`)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        instant = dates.parse_instant(str(value))
        if instant is None:
            raise ValidationError("Not an ISO 8601 instant (e.g. 2026-03-01T09:00:00Z).", code="invalid")
        return from_current_timezone(instant)


def _value_field(model_field) -> forms.Field:
    """The form field that converts one raw value for this model field."""
    if isinstance(model_field, models.ForeignKey):
        model_field = model_field.target_field
    if isinstance(model_field, models.BooleanField):
        return forms.NullBooleanField()
    if isinstance(model_field, (models.AutoField, models.BigAutoField, models.SmallAutoField)):
        return StrictIntegerField(min_value=1, max_value=MAX_DB_ID)
    if isinstance(model_field, models.JSONField):
        return forms.CharField()
    if isinstance(model_field, models.DateTimeField):
        return ISOInstantField()
    if isinstance(model_field, models.DateField):
        return ISODateField()
    for field_class, (low, high) in _INTEGER_RANGES.items():
        if isinstance(model_field, field_class):
            return StrictIntegerField(min_value=low, max_value=high)
    field = model_field.formfield()
    field.required = True
    if isinstance(field, forms.CharField):
        # Any length may be looked for, but never a NUL character (PostgreSQL refuses them).
        field.max_length = None
        field.validators = [ProhibitNullCharactersValidator()]
    return field


class PredicateField(forms.Field):
    """Parses the raw parameter into a `Predicate` of typed values."""

    def __init__(self, *, value_field: forms.Field, ordered: bool, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.value_field = value_field
        self.ordered = ordered

    def _convert(self, raw: str):
        if isinstance(self.value_field, forms.NullBooleanField):
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValidationError(f"'{raw}' is not a boolean (use true or false).")
            return lowered in ("true", "1")
        if isinstance(self.value_field, (forms.DecimalField, forms.FloatField)) and not decimals.PLAIN.fullmatch(
            raw.strip()
        ):
            # Django reads it as Decimal() or float() does ("1_0" is 10, "١٢" 12): the bodies' rule.
            raise ValidationError(f"'{raw}': {decimals.NOT_PLAIN}")
        try:
            value = self.value_field.clean(raw.strip())
        except ValidationError as exc:
            if isinstance(self.value_field, forms.ChoiceField) and exc.code == "invalid_choice":
                choices = [choice for choice, _ in self.value_field.choices if choice != ""]
                raise ValidationError(invalid_choice(raw.strip(), choices)) from None
            raise ValidationError(f"'{raw}': {' '.join(exc.messages)}") from None
        if isinstance(value, dt.datetime) and not dates.representable(value):
            raise ValidationError(f"'{raw}': out of range (it has no UTC instant).")
        return value

    def _from_parts(self, parts: PredicateParts) -> Predicate:
        # The same conversions and limits as a query string's values; only the grammar is skipped.
        if parts.kind == "range":
            if not self.ordered:
                raise ValidationError("Comparisons are not supported on this field.")
            return Predicate("range", bounds=tuple((lookup, self._convert(raw)) for lookup, raw in parts.bounds))
        if parts.kind in ("empty", "present"):
            return Predicate(parts.kind)
        if any(raw.strip() == "" for raw in parts.values):
            raise ValidationError("Empty value: ask for isEmpty to match a field without one.")
        if len(parts.values) > MAX_LIST_VALUES:
            raise ValidationError(f"At most {MAX_LIST_VALUES} values in one list.")
        return Predicate(parts.kind, values=tuple(self._convert(raw) for raw in parts.values))

    def to_python(self, value):
        if value is None:
            return None
        if isinstance(value, PredicateParts):
            return self._from_parts(value)
        if value == "":
            return Predicate("empty")
        if value == "!":
            return Predicate("present")
        match = _RANGE.match(value)
        if match:
            if not self.ordered:
                raise ValidationError("Comparisons are not supported on this field.")
            op1, v1, op2, v2 = match.groups()
            if op2 and op1[0] == op2[0]:
                raise ValidationError("A range takes one lower and one upper bound (e.g. >=2026-01-01<2026-02-01).")
            bounds = [(_LOOKUPS[op1], self._convert(v1))]
            if op2:
                bounds.append((_LOOKUPS[op2], self._convert(v2)))
            return Predicate("range", bounds=tuple(bounds))
        negate = value.startswith("!")
        raw_values = [v for v in (value[1:] if negate else value).split(",")]
        if any(v.strip() == "" for v in raw_values):
            raise ValidationError("Empty value in the list.")
        if len(raw_values) > MAX_LIST_VALUES:
            # SQLite takes at most 32766 parameters in a query; nobody means thousands of ids.
            raise ValidationError(f"At most {MAX_LIST_VALUES} values in one list.")
        values = tuple(self._convert(v) for v in raw_values)
        return Predicate("not_in" if negate else "in", values=values)


def _ordered(model_field) -> bool:
    """Whether a field takes comparisons and ranges (`>v`, `>=a<b`): ordered values, not a
    choice, a boolean or a reference."""
    return isinstance(model_field, _ORDERED) and not getattr(model_field, "choices", None)


# What a filter's value is, for its description (subclasses before their bases).
_VALUE_KINDS = (
    (models.BooleanField, "true or false"),
    (models.DateTimeField, "an ISO 8601 instant"),
    (models.DateField, "a date YYYY-MM-DD"),
    (models.TimeField, "a time HH:MM"),
    ((models.AutoField, models.BigAutoField, models.SmallAutoField), "ids"),
    (models.IntegerField, "a whole number"),
    ((models.DecimalField, models.FloatField), "a number"),
)


def predicate_description(model, field_name: str) -> str:
    """What a filter on `field_name` (an ORM path from `model`) takes, as the OpenAPI document
    states it after the parameter's name: only the predicates the field takes (no comparisons on
    a choice, a boolean or a reference), its values as the API writes them (choices, ids, dates)."""
    model_field = get_model_field(model, field_name)
    choices = getattr(model_field, "choices", None)
    if choices:
        values = [str(value) for value, _ in choices if value != ""]
        kind = f"one of {', '.join(values)}"
    elif isinstance(model_field, models.ForeignKey):
        kind = f"{model_field.related_model._meta.verbose_name} ids"
    else:
        kind = next((text for classes, text in _VALUE_KINDS if isinstance(model_field, classes)), "text")
    predicates = "`v`, `a,b` (in), `!a` (not), "
    if _ordered(model_field):
        predicates += "`>v`, `>=v`, `<v`, `<=v`, ranges `>=a<b`, "
    return f"({kind}): {predicates}empty value (is empty), `!` (is present)."


class PredicateFilter(django_filters.Filter):
    """One query parameter with the predicate grammar, typed by its model field."""

    def _model_field(self):
        return get_model_field(self.model, self.field_name)

    @property
    def field(self):
        if not hasattr(self, "_field"):
            model_field = self._model_field()
            self._field = PredicateField(
                value_field=_value_field(model_field),
                ordered=_ordered(model_field),
                label=self.label,
                help_text=self.extra.get("help_text", ""),
            )
        return self._field

    def filter(self, qs, value):
        if value is None:
            return qs
        model_field = self._model_field()
        blank_is_empty = isinstance(model_field, (models.CharField, models.TextField))
        return qs.filter(value.to_q(self.field_name, blank_is_empty))


class PredicateFilterSet(django_filters.FilterSet):
    """Every field in `Meta.fields` becomes a `PredicateFilter`; `ids` is always there."""

    ids = PredicateFilter(field_name="id", help_text="Comma-separated ids.")

    def __init__(self, data=None, *args, **kwargs):
        # Only the filters the request names (issue 15): django-filter deep-copies every declared
        # filter and builds a form field for each on every request, and a filter whose parameter
        # is absent filters nothing. Unbound (the schema), every filter.
        if data is not None:
            self.base_filters = {name: f for name, f in type(self).base_filters.items() if name in data}
        super().__init__(data, *args, **kwargs)

    @classmethod
    def filter_for_field(cls, field, field_name, lookup_expr=None):
        return PredicateFilter(field_name=field_name)


class PredicateFilterBackend(DjangoFilterBackend):
    """Rejects unknown parameters and reports malformed values as 400 naming the parameter."""

    def get_filterset_class(self, view, queryset=None):
        return getattr(view, "filterset_class", None)

    def filter_queryset(self, request, queryset, view):
        # A view that lists without pages, fields or sort (the event stream) says which of the
        # toolkit's parameters it honours: the others are unknown, not silently ignored.
        reserved = getattr(view, "reserved_query_params", RESERVED_PARAMS)
        own = {*reserved, *getattr(view, "extra_query_params", ())}
        filterset_class = self.get_filterset_class(view, queryset)
        declared = set(filterset_class.base_filters) if filterset_class is not None else set()
        refuse_unknown(request.query_params, own | declared)
        if filterset_class is None or not declared & set(request.query_params):
            # No filter parameter: the filter set and its form would filter nothing (issue 15:
            # building them cost about 7% of a plain list request).
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if not filterset.is_valid():
            errors = {name: list(messages) for name, messages in filterset.errors.items()}
            raise BadRequest(f"Invalid filter: {', '.join(sorted(errors))}", errors)
        return filterset.qs

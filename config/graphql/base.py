"""The GraphQL toolkit every app's `graphql.py` uses (DESIGN §7b), the counterpart of config/api/.

- `TenantType`: the one base `get_queryset` of every type, scoping each list, nested relation
  and single get to the caller's organization (another organization's row is "not found").
- `ResourceField`: a list (root or nested) with the REST filter vocabulary as typed inputs
  (`filters: {status: {in: [..]}, createdAt: {gte: ..}}`), ordering on the REST sort keys and
  offset pagination (at most 100 per page). The filters and sort are executed by the resource's
  own REST filter backends, so both faces give the same answers and the same 400 messages.
- `tenant(info)`: the caller's `TenantContext` (organization, role) set by the view.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from operator import attrgetter
from types import SimpleNamespace
from typing import Any

import strawberry
import strawberry_django
from django.contrib.auth import get_user_model
from django.db import models
from django.http import QueryDict
from django_filters.utils import get_model_field
from django_fsm import FSMField
from strawberry import UNSET
from strawberry.scalars import JSON
from strawberry.types.arguments import StrawberryArgument
from strawberry_django.fields.field import StrawberryDjangoField
from strawberry_django.fields.types import field_type_map
from strawberry_django.optimizer import is_optimized_by_prefetching
from strawberry_django.pagination import OffsetPaginated, OffsetPaginationInput
from strawberry_django.queryset import run_type_get_queryset
from strawberry_django.settings import strawberry_django_settings
from strawberry_django.utils.typing import unwrap_type

from config.api.filters import MAX_DB_ID, MAX_LIST_VALUES, PredicateFilter, PredicateParts
from config.api.pagination import whole_number
from config.api.serializers import amount_text, cap_text, price_text
from config.api.sorting import SortBackend
from config.errors import BadRequest, Forbidden, NotFound
from config.graphql import enums
from config.graphql.scalars import BigInt
from tenancy.models import TenantQuerySet

MAX_PAGE_SIZE = 100

# django-fsm's state fields are character fields to GraphQL.
field_type_map.setdefault(FSMField, str)
# Choice fields read with `auto` are named enums (config/graphql/enums.py): named before any type is built.
enums.install()


def tenant(info):
    """The caller's tenancy context (`organization`, `role`, `has_role`), set by the view."""
    context = getattr(info.context, "tenant", None)
    if context is None:
        request = info.context.get("request") if isinstance(info.context, dict) else info.context.request
        context = getattr(request, "tenant", None)
    if context is None:  # the view refuses unauthenticated requests; this is a second wall
        raise Forbidden("Not authenticated.")
    return context


def require_role(info, role: str):
    """The caller's tenancy context when it has `role` or higher (a computed query's role check)."""
    context = tenant(info)
    if not context.has_role(role):
        raise Forbidden(f"This needs the {role} role or higher; your role is {context.role}.")
    return context


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_path(path: str) -> str:
    """A REST error key (`items[0].unit_price`) as a GraphQL input path (`items[0].unitPrice`)."""
    return ".".join(camel(part) for part in path.split("."))


# --- the filter vocabulary -----------------------------------------------------------------


def _predicate(name: str, scalar, ordered: bool, *, kind: str | None = None, description: str | None = None):
    type_description = description or f"A condition on a {kind or scalar.__name__} field."
    namespace: dict[str, Any] = {"__annotations__": {}}
    notes = namespace["__annotations__"]
    fields = {
        "eq": (scalar | None, "Equals."),
        "in_": (list[scalar] | None, "Is one of."),
        "not_": (list[scalar] | None, "Is none of."),
    }
    if ordered:
        fields.update(
            gt=(scalar | None, "Greater than."),
            gte=(scalar | None, "Greater than or equal."),
            lt=(scalar | None, "Less than."),
            lte=(scalar | None, "Less than or equal."),
        )
    fields["is_empty"] = (bool | None, "true: has no value; false: has a value.")
    for field_name, (annotation, description) in fields.items():
        notes[field_name] = annotation
        graphql_name = field_name.rstrip("_") if field_name.endswith("_") else None
        namespace[field_name] = strawberry.field(default=None, description=description, name=graphql_name)
    return strawberry.input(type(name, (), namespace), description=type_description)


IntFilter = _predicate("IntFilter", int, ordered=True)
# 64-bit columns (an event's object id): GraphQL's Int is 32 bits, REST's filter takes 64.
BigIntFilter = _predicate("BigIntFilter", BigInt, ordered=True, kind="BigInt")
# Ids as REST's filters read them (`?ids=`, `?contract_id=`): 1 to 2^63-1, given as an ID (a
# string or a number), converted and checked by REST's own filter (its messages). An object's own
# ids take comparisons (`?ids=>100`); a reference takes none (`?contract_id=>1` is a 400 in REST).
IdFilter = _predicate(
    "IdFilter", strawberry.ID, ordered=True, description="A condition on ids (REST `?ids=`): ranges allowed."
)
ReferenceFilter = _predicate(
    "ReferenceFilter",
    strawberry.ID,
    ordered=False,
    description="A condition on a reference's id (REST `?contract_id=`): equals, one of, none of, is empty; "
    "no comparisons, as REST.",
)
DecimalFilter = _predicate("DecimalFilter", decimal.Decimal, ordered=True)
StringFilter = _predicate("StringFilter", str, ordered=True)
ChoiceFilter = _predicate("ChoiceFilter", str, ordered=False)
DateTimeFilter = _predicate("DateTimeFilter", dt.datetime, ordered=True)
DateFilter = _predicate("DateFilter", dt.date, ordered=True)
BooleanFilter = _predicate("BooleanFilter", bool, ordered=False)


def _raw(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # plain, as REST's filters take it: str() writes 0.0000001 as "1E-7"
    return str(value)


def predicate_to_rest(predicate) -> list[str | PredicateParts]:
    """One GraphQL predicate as the REST filter's values, each to hold together with the others.

    A typed predicate goes in parts (`PredicateParts`), never through the query-string grammar: a
    typed `eq: "CRM-7,8"` is that value (the grammar split it on the comma; a leading `!` negated
    it and `>=X` made a range). The REST filter still converts and checks each value, within the
    same filter set, so tenancy and messages stay one code path."""
    if isinstance(predicate, str | int):  # a parameter with its own grammar (`covers: "LON,LAT"`, `since: 5`)
        return [str(predicate)]
    out: list[str | PredicateParts] = []
    if predicate.eq is not None:
        out.append(PredicateParts("in", values=(_raw(predicate.eq),)))
    if predicate.in_ is not None:
        out.append(PredicateParts("in", values=tuple(_raw(v) for v in predicate.in_)))  # `in: []` matches nothing
    if predicate.not_:
        out.append(PredicateParts("not_in", values=tuple(_raw(v) for v in predicate.not_)))
    bounds = tuple(
        (name, _raw(value))
        for name in ("gt", "gte", "lt", "lte")
        if (value := getattr(predicate, name, None)) is not None
    )
    if bounds:
        out.append(PredicateParts("range", bounds=bounds))
    if predicate.is_empty is not None:
        out.append(PredicateParts("empty" if predicate.is_empty else "present"))
    return out


def _filter_scalar(filter_obj, model):
    if not isinstance(filter_obj, PredicateFilter):
        return str
    field = get_model_field(model, filter_obj.field_name)
    if isinstance(field, models.ForeignKey):
        return ReferenceFilter  # REST takes no comparisons on a reference (`config.api.filters._ordered`)
    if isinstance(field, (models.AutoField, models.BigAutoField, models.SmallAutoField)):
        return IdFilter
    if getattr(field, "choices", None):
        return ChoiceFilter
    if isinstance(field, models.BooleanField):
        return BooleanFilter
    if isinstance(field, (models.BigIntegerField, models.PositiveBigIntegerField)):
        return BigIntFilter
    if isinstance(field, models.IntegerField):
        return IntFilter
    if isinstance(field, models.DecimalField):
        return DecimalFilter
    if isinstance(field, models.DateTimeField):
        return DateTimeFilter
    if isinstance(field, models.DateField):
        return DateFilter
    return StringFilter


def filter_input(name: str, filterset_class, extra: dict[str, Any] | None = None):
    """The `filters:` input of a resource: one typed predicate per REST filter parameter."""
    namespace: dict[str, Any] = {"__annotations__": {}}
    for param, filter_obj in filterset_class.base_filters.items():
        scalar = _filter_scalar(filter_obj, filterset_class._meta.model)
        namespace["__annotations__"][param] = scalar | None
        graphql_name = param if param == "sourceID" else camel(param)
        help_text = filter_obj.extra.get("help_text") or f"REST `?{param}=`."
        namespace[param] = strawberry.field(default=None, name=graphql_name, description=help_text)
    for param, (annotation, description) in (extra or {}).items():
        namespace["__annotations__"][param] = annotation | None
        namespace[param] = strawberry.field(default=None, name=camel(param), description=description)
    graphql_input = strawberry.input(type(name, (), namespace), description="Conditions, all of which must hold.")
    graphql_input.extra_params = frozenset(extra or ())  # the type's `filter_extra` applies them
    return graphql_input


@strawberry.enum
class Direction(enum.Enum):
    ASC = "asc"
    DESC = "desc"


def order_input(name: str, sort_keys: list[str]):
    """The `order:` input: `[{field: NAME, direction: DESC}]`, on the REST sort keys."""
    keys = enum.Enum(f"{name}Field", {key.upper(): key for key in sorted({"id", *sort_keys})})
    field_enum = strawberry.enum(keys, description="A REST sort key.")
    namespace = {
        "__annotations__": {"field": field_enum, "direction": Direction},
        "direction": strawberry.field(default=Direction.ASC),
    }
    return strawberry.input(type(name, (), namespace), description="One sort key.")


# --- types ----------------------------------------------------------------------------------


class TenantType:
    """Base of every tenant-owned type: one `get_queryset` for lists, nested lists and gets.

    A type declares `rest_view` (its REST viewset: filters, sort keys, default sort and roles).
    Its list arguments follow from it: `Filters` (the view's filterset, `<Type>Filter`) and `Order`
    (its sort keys, `<Type>Order`); a type declares either only to change it (`Filters = None`: none)."""

    rest_view: type
    read_role: str | None = None  # default: the REST view's, else viewer

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        view = cls.__dict__.get("rest_view")
        if view is None:
            return
        if "Filters" not in cls.__dict__ and getattr(view, "filterset_class", None) is not None:
            cls.Filters = cls.list_filters(f"{cls.__name__}Filter", view.filterset_class)
        if "Order" not in cls.__dict__:
            cls.Order = order_input(f"{cls.__name__}Order", list(view.sort_fields))

    @classmethod
    def list_filters(cls, name: str, filterset_class):
        return filter_input(name, filterset_class)

    @classmethod
    def filter_extra(cls, queryset, filters):
        """Filters of the REST view's own parameters (not its filterset), e.g. events' `since`."""
        return queryset

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        role = cls.read_role or getattr(getattr(cls, "rest_view", None), "read_role", "viewer")
        context = require_role(info, role)
        # The optimizer's prefetches start from the plain manager: apply the one scoping method to it.
        return TenantQuerySet.for_organization(queryset, context.organization)


def reference_id(value) -> int | None:
    """An ID given to select by (a filter's or a report's id) as a database id, read as REST's
    filters read one (`?contract_id=%201`, `?visit_plan_id=1,%202`): surrounding blanks dropped,
    then `object_id`'s rule; None when it cannot name one."""
    return object_id(str(value).strip())


def filter_id(value, name: str) -> int:
    """A type's own id filter (`contractId`, `webhookId`: an ID, up to 2^63-1) as a database id,
    read as a `ReferenceFilter`'s (`reference_id`); one that cannot be an id (`"abc"`, `"0"`) is a
    BAD_REQUEST naming it."""
    pk = reference_id(value)
    if pk is None:
        raise BadRequest(f"Invalid filter: {name}", {name: [f"'{value}' is not an id."]})
    return pk


def at_most_list_values(**lists) -> None:
    """A computed query's selection lists (`contractIds`, `visitPlanIds`, by their GraphQL names) of
    at most `MAX_LIST_VALUES` each, in REST's filters' words. REST's own are bounded by its URL
    (MAX_URL_BYTES leaves room for 1,000 ids); a GraphQL body of 90,000 contract ids, within its
    1 MB, kept `slaCompliance` busy 13 s."""
    for name, values in lists.items():
        if values is not None and len(values) > MAX_LIST_VALUES:
            raise BadRequest(f"Invalid filter: {name}", {name: [f"At most {MAX_LIST_VALUES} values in one list."]})


class ContractChildType(TenantType):
    """A resource REST lists under its contract (`/contracts/{id}/amendments`): at the root of
    GraphQL it lists across contracts, with `filters: {contractId: ..}` for one contract's."""

    @classmethod
    def list_filters(cls, name: str, filterset_class):
        extra = {"contract_id": (strawberry.ID, "Only this contract's (REST: the /contracts/{id}/... route).")}
        return filter_input(name, filterset_class, extra=extra)

    @classmethod
    def filter_extra(cls, queryset, filters):
        contract_id = getattr(filters, "contract_id", None)
        if contract_id is None:
            return queryset
        return queryset.filter(contract_id=filter_id(contract_id, "contractId"))


@strawberry_django.type(get_user_model(), name="User", description="A user, as a reference.")
class UserRef:
    id: strawberry.ID
    username: str


def rest_filter(view_class, queryset, info, filters=None, order=None, extra_params: dict | None = None):
    """Filter and sort `queryset` with the REST view's own backends (same answers, same 400s)."""
    passes: list[dict[str, Any]] = [{}]
    names: dict[str, str] = {}
    # A type's own parameters (`contractId` of a contract's children) are not the REST view's,
    # unless the view reads them too (events' `since`, which also sets its default order).
    own = getattr(type(filters), "extra_params", frozenset()) - set(getattr(view_class, "extra_query_params", ()))
    for attr, value in vars(filters).items() if filters is not None else ():
        if value is None or value is UNSET or attr in own:
            continue
        param = attr
        names[param] = attr if attr == "sourceID" else camel(attr)
        for index, raw in enumerate(predicate_to_rest(value)):
            while len(passes) <= index:
                passes.append({})
            passes[index][param] = raw
    passes[0].update({k: str(v) for k, v in (extra_params or {}).items() if v is not None})
    if order:
        passes[0]["sort"] = ",".join(("-" if o.direction == Direction.DESC else "") + o.field.value for o in order)
    view = view_class()
    view.action = "list"
    view.kwargs = {}
    view.format_kwarg = None
    for index, params in enumerate(passes):
        query = QueryDict(mutable=True)
        query.update(params)
        view.request = SimpleNamespace(query_params=query, auth=tenant(info), user=None, method="GET")
        # The first pass sorts; a later one (a second predicate on one field) only filters: the sort
        # backend orders by the default when `sort` is absent, which replaced the client's order.
        backends = [b for b in view.filter_backends if index == 0 or not issubclass(b, SortBackend)]
        try:
            for backend in backends:
                queryset = backend().filter_queryset(view.request, queryset, view)
        except BadRequest as exc:
            errors = {names.get(k, camel(k)): v for k, v in (exc.errors or {}).items()}
            raise BadRequest(exc.message, errors or None) from None
    return queryset


class PagedListField(StrawberryDjangoField):
    """A nested list: a page of at most 100 also when the client sends no `pagination`."""

    def apply_pagination(self, queryset, pagination=None, *, related_field_id=None):
        """A nested list without `pagination` is a page of at most 100 (`MAX_PAGE_SIZE`), as README
        has said: strawberry-django read the whole relation then (a counterparty's 130 contracts,
        found while bounding nested lists). Prefetched or not: the optimizer pages its prefetch
        through here too."""
        if pagination in (None, UNSET) and self.is_list and not self.is_paginated:
            pagination = OffsetPaginationInput(offset=0, limit=MAX_PAGE_SIZE)
        return super().apply_pagination(queryset, pagination, related_field_id=related_field_id)


def paged_list(**kwargs):
    """A nested list taking `pagination` only (a job's `holds`): a `PagedListField`."""
    return strawberry_django.field(field_cls=PagedListField, pagination=True, **kwargs)


class ResourceField(PagedListField):
    """A list of a `TenantType` with `filters`, `order` and `pagination` (max 100); `default_sort`
    (REST sort keys) replaces the REST view's default where REST lists the relation otherwise."""

    default_sort: str | None = None

    def __init__(self, *args, extra_filters: dict | None = None, **kwargs):
        self.extra_filters = extra_filters or {}
        super().__init__(*args, **kwargs)

    def _resource(self):
        return unwrap_type(self.django_type)

    @property
    def arguments(self) -> list[StrawberryArgument]:
        arguments = super().arguments
        resource = self._resource()
        if (self.is_list or self.is_paginated) and getattr(resource, "Filters", None) is not None:
            default = f"`{self.default_sort}`, as REST lists them" if self.default_sort else "the REST default sort"
            arguments = [
                *arguments,
                StrawberryArgument(
                    "filters",
                    None,
                    type_annotation=strawberry.annotation.StrawberryAnnotation(resource.Filters | None),
                    default=None,
                ),
                StrawberryArgument(
                    "order",
                    None,
                    type_annotation=strawberry.annotation.StrawberryAnnotation(list[resource.Order] | None),
                    default=None,
                    description=f"Sort keys, first first; default: {default}.",
                ),
            ]
        return arguments

    @arguments.setter
    def arguments(self, value):
        StrawberryDjangoField.arguments.fset(self, value)

    def get_queryset(self, queryset, info, *, filters=None, order=None, **kwargs):
        if is_optimized_by_prefetching(queryset):
            return queryset
        resource = self._resource()
        if (self.is_list or self.is_paginated) and hasattr(resource, "rest_view"):
            # Scope first (and check the role), then filter and sort like REST does.
            queryset = run_type_get_queryset(queryset, resource, info)
            default = {"sort": self.default_sort} if self.default_sort and not order else None
            queryset = rest_filter(resource.rest_view, queryset, info, filters, order, extra_params=default)
            if filters is not None:
                queryset = resource.filter_extra(queryset, filters)
        return super().get_queryset(queryset, info, **kwargs)


def page_window(pagination: OffsetPaginationInput | None) -> tuple[int, int]:
    """(offset, limit) of a computed list's page (`contractVisits`, `slaAtRisk`): the root lists'
    default of 20 when no limit is given; a limit beyond 100 or a negative offset never gets here
    (`config.graphql.limits.PageSizeLimiter`)."""
    offset = pagination.offset if pagination is not None else 0
    limit = pagination.limit if pagination is not None else UNSET
    if limit is UNSET or limit is None:
        limit = strawberry_django_settings()["PAGINATION_DEFAULT_LIMIT"]
    return offset, limit


def resource_list(**kwargs):
    """A root list: `{results, totalCount, pageInfo}` with filters, order and pagination."""
    return strawberry_django.offset_paginated(field_cls=ResourceField, **kwargs)


def nested_list(*, default_sort: str | None = None, **kwargs):
    """A nested relation: a plain list with filters, order and pagination (at most 100 items)."""
    field = strawberry_django.field(field_cls=ResourceField, pagination=True, **kwargs)
    field.default_sort = default_sort
    return field


def money_field(serializer, name: str):
    """An amount of the REST serializer's `Meta.money_fields` (or unit price of its `price_fields`,
    cap of its `cap_fields`), written as REST writes it: "18500.50", not the column's "18500.5000"
    (found by an outside tester). Declared with its type:
    `amount: decimal.Decimal = money_field(BillingLineSerializer, "amount")`."""
    text, currency_path = amount_text(serializer.Meta, name)
    currency_of = attrgetter(currency_path)
    *relation, _ = currency_path.split(".")

    def resolve(root):
        amount = getattr(root, name)
        if amount is None or not (currency := currency_of(root)):
            return amount  # without a currency, as the decimal field writes it (ResourceSerializer)
        return decimal.Decimal(text(amount, currency))

    finer = {
        price_text: ", or with the finer places it was stored with",
        cap_text: ", rounded down as the cap is enforced",
    }.get(text, "")
    return strawberry_django.field(
        resolver=resolve,
        only=[name, currency_path.replace(".", "__")],
        select_related=["__".join(relation)] if relation else None,
        description=f"In the currency's minor unit{finer}, as REST writes it.",
    )


def object_id(value) -> int | None:
    """A GraphQL ID as a database id, or None when it cannot name one (`"abc"`, `"1.5"`, `"²"`, `"0"`,
    beyond 64 bits): such an id is "not found", as a REST path that is not one."""
    # `whole_number` checks the length before `int()`, which refuses more than 4,300 digits with a
    # ValueError (an INTERNAL error in every ID argument).
    return whole_number(str(value), MAX_DB_ID) or None


class ResourceGetField(StrawberryDjangoField):
    """`contract(id:)`: an id that cannot name an object is "not found" before any query."""

    def get_queryset(self, queryset, info, **kwargs):
        pk = kwargs.get(strawberry_django_settings()["DEFAULT_PK_FIELD_NAME"])  # the `id` argument
        if pk not in (None, UNSET) and object_id(pk) is None:
            raise NotFound()
        return super().get_queryset(queryset, info, **kwargs)


def resource_get(**kwargs):
    """`contract(id:)`: one object of the caller's organization, else a "not found" error."""
    return strawberry_django.field(field_cls=ResourceGetField, **kwargs)


Json = JSON

__all__ = ["OffsetPaginated"]  # re-exported for the apps' root lists

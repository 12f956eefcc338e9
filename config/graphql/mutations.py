"""Mutations: the REST write path, typed for GraphQL (never a second write path).

Each mutation is executed by the REST endpoint it corresponds to, in process and within the
same request: the same authentication and role check, the same serializer validation (so the
same messages, field by field), the same service call and event, the same idempotency. GraphQL
only types the input (generated from the REST serializer, so a field added to REST appears in
GraphQL), and types the answer: the object, or an `OperationError` with the REST message and
the field paths in GraphQL's names (`unit_price` -> `unitPrice`).

    Mutation = rest_mutations(
        Counterparty, "counterparties", serializer=CounterpartySerializer, delete=True,
    )                       # createCounterparty(input:), updateCounterparty(id:, input:), deleteCounterparty(id:)

This module does not use `from __future__ import annotations`: the resolvers it builds carry
real annotation objects, which strawberry reads.
"""

import datetime as dt
import decimal
import io
import json
from collections.abc import Callable
from typing import Annotated, Any, Union

import strawberry
from django.http import HttpRequest
from django.urls import resolve
from rest_framework import serializers
from strawberry import UNSET
from strawberry.scalars import JSON

from config.api.serializers import ReferenceIdField
from config.api.throttling import COUNTED

from .base import camel, camel_path, object_id
from .errors import KIND_BY_STATUS, ErrorKind, FieldError, OperationError
from .scalars import BigInt

API = "/api/v1"

# --- inputs from the REST serializers --------------------------------------------------------

_SCALARS: list[tuple[type, Any]] = [
    (serializers.BooleanField, bool),
    (serializers.IntegerField, int),
    (serializers.DecimalField, decimal.Decimal),
    (serializers.DateTimeField, dt.datetime),
    (serializers.DateField, dt.date),
    (serializers.ChoiceField, str),
    (serializers.CharField, str),
]

_inputs: dict[str, type] = {}
# (input type, field) -> the model a reference field names, e.g. ("ContractInput", "billingCalendarId") -> Calendar.
REFERENCES: dict[tuple[str, str], type] = {}


def _annotation(field: serializers.Field):
    if isinstance(field, (ReferenceIdField, serializers.PrimaryKeyRelatedField)):
        return strawberry.ID
    if isinstance(field, serializers.IntegerField) and (field.max_value or 0) > 2**31 - 1:
        return BigInt  # an event id (`since`, `until`): GraphQL's Int is 32 bits
    for drf_class, scalar in _SCALARS:
        if isinstance(field, drf_class):
            return scalar
    return JSON  # lists, nested objects, GeoJSON, escalation levels: validated by the REST serializer


def input_from_serializer(name: str, serializer_class, exclude: tuple[str, ...] = ()) -> type | None:
    """A GraphQL input with the serializer's writable fields, all optional (REST says what is required)."""
    if name in _inputs:
        return _inputs[name]
    namespace: dict[str, Any] = {"__annotations__": {}}
    references: set[str] = set()
    for field_name, field in serializer_class().fields.items():
        if field.read_only or field_name in exclude:
            continue
        namespace["__annotations__"][field_name] = Union[_annotation(field), None]  # noqa: UP007 (`|` is not defined on strawberry's lazy and Annotated types)
        description = str(field.help_text) if field.help_text else None
        graphql_name = field_name if field_name == "sourceID" else camel(field_name)
        if isinstance(field, ReferenceIdField | serializers.PrimaryKeyRelatedField):
            REFERENCES[(name, graphql_name)] = field.queryset.model
            references.add(field_name)
        namespace[field_name] = strawberry.field(default=UNSET, name=graphql_name, description=description)
    if not namespace["__annotations__"]:
        return None
    _inputs[name] = strawberry.input(type(name, (), namespace), description=f"The REST body of {name}, typed.")
    _inputs[name].reference_fields = frozenset(references)  # body_of turns these (typed ID) into ints
    return _inputs[name]


def _json_value(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # plain, as REST takes it: str() writes 0.0000001 as "1E-7"
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def body_of(data) -> dict:
    """A GraphQL input object as the REST JSON body (unset fields left out)."""
    if data is None or data is UNSET:
        return {}
    # Only the fields typed ID are ids: a text field named `..._id` (`service_territory_id`) keeps
    # its digits as text, as REST stores them.
    references = getattr(type(data), "reference_fields", frozenset())
    body = {}
    for key, value in vars(data).items():
        if value is UNSET:
            continue
        if key in references and isinstance(value, str) and (pk := object_id(value)) is not None:
            value = pk  # a GraphQL ID is a string; REST takes integer ids
        # An ID that names no row ("abc", "١", "0") goes as sent: REST's 422 on the field says why.
        body[key] = _json_value(value)
    return body


# --- running the REST endpoint ---------------------------------------------------------------


# What the REST call needs of the GraphQL request: the credentials, the host and scheme (a
# Location; X-Forwarded-Proto behind a TLS proxy), the client's address (rate limits, behind
# NUM_PROXIES too) and user agent. Not every header: the client's Accept is GraphQL's business
# (REST answered 406 to `application/graphql-response+json`), and an Idempotency-Key header would
# bind every mutation of the document to one key; GraphQL takes the key as an argument.
_KEPT_META = frozenset({
    "HTTP_AUTHORIZATION", "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.url_scheme",
})  # fmt: skip


def _request(original: HttpRequest, method: str, path: str, body: dict | None, headers: dict) -> HttpRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    request = HttpRequest()
    request.method = method
    request.path = request.path_info = path
    request.META = {
        **{k: v for k, v in original.META.items() if k in _KEPT_META},
        "HTTP_ACCEPT": "application/json",
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    }  # fmt: skip
    request._stream = io.BytesIO(raw)
    request._read_started = False
    setattr(request, COUNTED, True)  # the GraphQL request it serves was counted (one count a mutation)
    return request


def call_rest(info, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    """Run the REST endpoint for `path` with the caller's credentials: (status, data)."""
    original = info.context.request
    request = _request(original, method, path, body, headers or {})
    match = resolve(path)
    # As REST runs it, outside any transaction of ours: the service's own transaction is then the
    # outermost, and a foreign key checked at its commit (a row it names deleted meanwhile) fails
    # inside the endpoint, which answers what REST answers. Wrapped in a transaction here, the check
    # came at this block's commit, after the endpoint: "Internal server error." (nothing rolled
    # back on an error answer either: REST's handler marks a rollback only under ATOMIC_REQUESTS).
    response = match.func(request, *match.args, **match.kwargs)
    return response.status_code, getattr(response, "data", None)


IDEMPOTENCY_HEADER = "Idempotency-Key"


def call_rest_keyed(info, path: str, body: dict, idempotency_key: str | None):
    """`call_rest` POSTing with the mutation's `idempotencyKey` argument as REST's header; REST's
    errors about the header (used with another body, too long) are named by the argument."""
    headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key is not None else {}
    status, data = call_rest(info, "POST", path, body, headers)
    if status >= 400 and isinstance(data, dict) and IDEMPOTENCY_HEADER in (data.get("errors") or {}):
        errors = dict(data["errors"])
        errors["idempotencyKey"] = errors.pop(IDEMPOTENCY_HEADER)
        data = {**data, "errors": errors}
    return status, data


def operation_error(status: int, data) -> OperationError:
    data = data if isinstance(data, dict) else {}
    errors = data.get("errors") or {}
    fields = [FieldError(path=camel_path(path), messages=list(messages)) for path, messages in errors.items()]
    kind = KIND_BY_STATUS.get(status, ErrorKind.BAD_REQUEST)
    return OperationError(kind=kind, message=data.get("message", ""), fields=fields)


def answer(model, status: int, data):
    if status >= 400:
        return operation_error(status, data)
    return model.objects.get(pk=data["id"])


@strawberry.type(description="What a delete removed.")
class Deleted:
    id: strawberry.ID


DeleteResult = Annotated[Union[Deleted, OperationError], strawberry.union("DeleteResult")]  # noqa: UP007 (Annotated needs one Union object)


def result_union(graphql_type) -> Any:
    name = graphql_type.__strawberry_definition__.name
    return Annotated[Union[graphql_type, OperationError], strawberry.union(f"{name}Result")]  # noqa: UP007 (built at run time)


# --- building mutations ------------------------------------------------------------------------


def _mutation(resolver: Callable, name: str, description: str):
    return strawberry.mutation(resolver=resolver, name=name, description=description)


def create_mutation(graphql_type, noun: str, path: str, input_type, verb: str = "create"):
    """`createX(input:)`: POST to the collection."""
    model = graphql_type.__strawberry_django_definition__.model
    result = result_union(graphql_type)

    def resolve_create(info: strawberry.Info, input: input_type) -> result:
        return answer(model, *call_rest(info, "POST", path, body_of(input)))

    return _mutation(resolve_create, f"{verb}{noun}", f"REST POST {path}.")


def update_mutation(graphql_type, noun: str, path: Callable[[str], str], input_type):
    """`updateX(id:, input:)`: PATCH the object."""
    model = graphql_type.__strawberry_django_definition__.model
    result = result_union(graphql_type)

    def resolve_update(info: strawberry.Info, id: strawberry.ID, input: input_type) -> result:
        status, data = call_rest(info, "PATCH", path(pk_of(id)), body_of(input))
        return answer(model, status, data)

    return _mutation(resolve_update, f"update{noun}", f"REST PATCH {path('{id}')}.")


def delete_mutation(noun: str, path: Callable[[str], str]):
    def resolve_delete(info: strawberry.Info, id: strawberry.ID) -> DeleteResult:
        status, data = call_rest(info, "DELETE", path(pk_of(id)))
        return operation_error(status, data) if status >= 400 else Deleted(id=id)

    return _mutation(resolve_delete, f"delete{noun}", f"REST DELETE {path('{id}')}.")


def action_mutation(graphql_type, name: str, path: Callable[[str], str], input_type=None, returns=None):
    """`submitContract(id:, input:)`: POST to the action sub-path; the answer is `returns`' object."""
    returns = returns or graphql_type
    model = returns.__strawberry_django_definition__.model
    result = result_union(returns)

    if input_type is None:

        def resolve_action(info: strawberry.Info, id: strawberry.ID) -> result:
            return answer(model, *call_rest(info, "POST", path(pk_of(id)), {}))
    else:
        # `input` may be left out (REST says what the body needs): nullable, default null. Typed
        # non-null with a default of None, introspection failed on its `defaultValue`.

        def resolve_action(info: strawberry.Info, id: strawberry.ID, input: input_type | None = None) -> result:
            return answer(model, *call_rest(info, "POST", path(pk_of(id)), body_of(input)))

    return _mutation(resolve_action, name, f"REST POST {path('{id}')}.")


def pk_of(value) -> str:
    # An id that cannot name anything goes to REST as 0: "not found", as any unknown id.
    return str(object_id(value) or 0)


def child_path(info, model, pk, route: str, parent: str = "contract_id", prefix: str = "contracts") -> str:
    """The REST path of an object nested under its parent (`/contracts/{contract}/amendments/{pk}`).

    The parent is looked up within the caller's organization: an object of another one gets parent
    0, which REST answers with "not found", like any other id of theirs."""
    from .base import tenant

    parent_id = (
        model.objects.for_organization(tenant(info).organization)
        .filter(pk=pk_of(pk))
        .values_list(parent, flat=True)
        .first()
    )
    return f"{API}/{prefix}/{parent_id or 0}/{route}/{pk_of(pk)}"


def child_action_mutation(graphql_type, name: str, route: str, action: str, input_type=None):
    """`submitAmendment(id:, input:)`: POST /contracts/{contract}/{route}/{id}/{action}."""
    model = graphql_type.__strawberry_django_definition__.model
    result = result_union(graphql_type)

    if input_type is None:

        def resolve_action(info: strawberry.Info, id: strawberry.ID) -> result:
            path = f"{child_path(info, model, id, route)}/{action}"
            return answer(model, *call_rest(info, "POST", path, {}))
    else:

        def resolve_action(info: strawberry.Info, id: strawberry.ID, input: input_type | None = None) -> result:
            path = f"{child_path(info, model, id, route)}/{action}"
            return answer(model, *call_rest(info, "POST", path, body_of(input)))

    return _mutation(resolve_action, name, f"REST POST {API}/contracts/{{contractId}}/{route}/{{id}}/{action}.")

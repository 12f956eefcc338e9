"""OpenAPI additions for the toolkit's conventions, so that the document tells the truth about
every endpoint, including those added later: collections are arrays with pagination headers,
`?fields=` and `?sort=` list their allowed values, filters describe their grammar, request bodies
of strict serializers refuse additional properties, and every error has the envelope.
Descriptions come from a resource's own docstrings only, never from the toolkit's base classes.
"""

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiFilterExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_basic_type, build_parameter_type
from drf_spectacular.plumbing import get_lib_doc_excludes as spectacular_lib_doc_excludes
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.settings import api_settings

from .. import dates, decimals
from .filters import PredicateFilter, predicate_description
from .sorting import is_collection

_PAGINATION_HEADERS = {
    "X-Pagination-Per-Page": "Resources per page.",
    "X-Pagination-Current-Page": "This page's number.",
    "X-Pagination-Total-Pages": "Number of pages.",
    "X-Pagination-Total-Entries": "Number of resources in the whole collection.",
    "Link": 'Links to the first, prev, next and last pages (rel="first" ...).',
}

_ERRORS = {
    "400": "Bad parameters or malformed JSON.",
    "401": "No token, or the token was rejected.",
    "403": "The caller's role does not allow this.",
    "404": "No such resource in the caller's organization.",
    "409": "Illegal transition or conflicting write.",
    "413": "The request body is larger than the service's MAX_REQUEST_BYTES.",
    "414": "The URL (path and query) is longer than the service's MAX_URL_BYTES.",
    "415": "The request body is not JSON.",
    "422": "Validation failed; `errors` names each field.",
    "429": "Too many requests; see Retry-After.",
}
_BODY_ERRORS = ("409", "413", "415", "422")


def lib_doc_excludes() -> list:
    """The toolkit's base classes document the code, not the API: their docstrings stay out."""
    from .csv import CSVMixin, JSONErrorsMixin
    from .serializers import ActionSerializer, ResourceSerializer, SourceFieldsMixin, StrictInputMixin
    from .viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin

    return [
        *spectacular_lib_doc_excludes(),
        ResourceSerializer,
        ActionSerializer,
        StrictInputMixin,
        SourceFieldsMixin,
        ResourceViewSet,
        CreateMixin,
        UpdateMixin,
        DestroyMixin,
        JSONErrorsMixin,
        CSVMixin,
    ]


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.auth.TenantJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /api/v1/token (or an external issuer's RS256/ES256 token).",
        }


class PredicateFilterScheme(OpenApiFilterExtension):
    """Filters take the predicate grammar, so they are documented as strings with its rules."""

    target_class = "config.api.filters.PredicateFilterBackend"
    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        view = auto_schema.view
        filterset_class = getattr(view, "filterset_class", None)
        if not is_collection(view) or filterset_class is None:
            return []
        parameters = []
        for name, filter_ in filterset_class.base_filters.items():
            description = filter_.extra.get("help_text") or ""
            if isinstance(filter_, PredicateFilter):
                # Named as the API names it (the parameter), not by its ORM path.
                grammar = predicate_description(filterset_class._meta.model, filter_.field_name)
                description = f"Filter on {name} {grammar} {description}".strip()
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": description,
                }
            )
        return parameters


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_BLANK = {"type": "string", "maxLength": 0}
# Keys of a field's schema that stay outside its alternatives (drf-spectacular's own list).
_OUTER_KEYS = ("readOnly", "writeOnly", "nullable", "deprecated", "description", "title")

# What each JSON type may say in OpenAPI 3.0, to split a JSON Schema's list of types into one schema each.
_KEYWORDS_OF_TYPE = {
    "string": {"pattern", "minLength", "maxLength", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "array": {"items", "minItems", "maxItems", "uniqueItems"},
    "object": {"properties", "required", "additionalProperties", "minProperties", "maxProperties"},
}
_TYPED_KEYWORDS = set().union(*_KEYWORDS_OF_TYPE.values())
_JSON_SCHEMA_ONLY = ("$schema", "$id", "dependentRequired")  # OAS 3.0 lacks them; the server still checks


def openapi_shape(schema):
    """A JSON Schema (2020-12, as `/api/v1/schemas/<name>` serves it) as OpenAPI 3.0 states it: a
    list of types becomes `anyOf` one schema per type, `null` becomes `nullable`, and keywords 3.0
    lacks are left out. The API validates with the original; this only tells clients the shape."""
    if isinstance(schema, list):
        return [openapi_shape(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    shape = {}
    for key, value in schema.items():
        if key in _JSON_SCHEMA_ONLY:
            continue
        if key == "properties":
            shape[key] = {name: openapi_shape(item) for name, item in value.items()}
        else:
            shape[key] = openapi_shape(value) if key in ("items", "not", "oneOf", "anyOf", "allOf") else value
    nullable = False
    for key in ("oneOf", "anyOf"):
        if {"type": "null"} in shape.get(key, ()):
            nullable = True
            alternatives = [item for item in shape.pop(key) if item != {"type": "null"}]
            shape.update(alternatives[0] if len(alternatives) == 1 else {key: alternatives})
    types = shape.get("type")
    if isinstance(types, list):
        nullable = nullable or "null" in types
        types = [name for name in types if name != "null"]
        common = {key: value for key, value in shape.items() if key != "type" and key not in _TYPED_KEYWORDS}
        branches = [
            {"type": name, **{k: v for k, v in shape.items() if k in _KEYWORDS_OF_TYPE.get(name, ())}} for name in types
        ]
        shape = {**branches[0], **common} if len(branches) == 1 else {"anyOf": branches, **common}
    if nullable:
        # OAS 3.0.3: `nullable` acts only beside a `type`, so each alternative carries it.
        for branch in shape.get("anyOf", shape.get("oneOf", [])):
            branch["nullable"] = True
        if "type" in shape:
            shape["nullable"] = True
    return shape


# A date query parameter in the service's range (config.dates: "Must be from 2000-01-01 to 2999-12-31.").
DATE_PARAMETER = {"type": "string", "format": "date", "pattern": dates.YEAR_PATTERN}
# An instant query parameter in it (by its written year, as a body's instant), and one that may be either.
INSTANT_PARAMETER = {"type": "string", "format": "date-time", "pattern": dates.YEAR_PATTERN}
DATE_OR_INSTANT_PARAMETER = {"type": "string", "pattern": dates.YEAR_PATTERN}


def time_zone_parameter() -> dict:
    """A query parameter naming a time zone: the IANA zones the server takes, as a body's `time_zone`."""
    return {"type": "string", "enum": sorted(dates._time_zones())}


def whole_number_parameter(minimum: int, maximum: int) -> dict:
    """A whole-number query parameter's schema: the bounds outside which it is a 400 (`query_int`)."""
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


# Headers a view's action sends on success, declared by the view as `sent_headers = {action: (name, ...)}`.
_COUNT = {"type": "integer"}
_URI = {"type": "string", "format": "uri"}
SENT_HEADERS = {
    "X-Recomputed-Clocks": (_COUNT, "How many running SLA clocks this change recomputed."),
    "X-Imported-Holidays": (_COUNT, "How many of the file's dates were new to the calendar."),
    "Location": (_URI, "The resource this call made (a ping's delivery)."),
}


def _model_field(field):
    """The model field a ModelSerializer's field writes, or None."""
    meta = getattr(getattr(field, "parent", None), "Meta", None)
    model = getattr(meta, "model", None)
    source = getattr(field, "source", None)
    if model is None or not isinstance(source, str) or "." in source or source == "*":
        return None
    try:
        return model._meta.get_field(source)
    except FieldDoesNotExist:  # a method, a property, an annotation
        return None


def _blank_allowed(field) -> bool:
    """Whether a text field may hold "" (its own allow_blank, or its model field's blank=True: a
    read-only field is built without allow_blank)."""
    from rest_framework import serializers

    if not isinstance(field, serializers.CharField):
        return False  # (a blank date or number is null, said by `nullable`)
    model_field = _model_field(field)
    return bool(field.allow_blank or (model_field is not None and model_field.blank))


def _validators(field) -> list:
    """The validators the API runs on a field: its own and its model field's (a ModelSerializer
    may declare the field anew, with a `validate_<name>` calling the same check)."""
    model_field = _model_field(field)
    return [*getattr(field, "validators", ()), *getattr(model_field, "validators", ())]


def _insert_known_rules(field, schema) -> None:
    """What the serializer refuses that drf-spectacular leaves unsaid."""
    from rest_framework import serializers

    listish = (serializers.ListField, serializers.ListSerializer, serializers.ManyRelatedField)
    if isinstance(field, listish) and not getattr(field, "allow_empty", True) and schema.get("type") == "array":
        # "This list may not be empty." (allow_empty=False): drf-spectacular writes minItems only from min_length.
        schema["minItems"] = max(schema.get("minItems", 0), 1)


def _bounded_at_input(field) -> bool:
    """A date or instant of a resource's body, which `bounded_dates` holds to the service's range
    when the serializer is given data (a resource serializer built for the document is not, so
    its fields lack the validator: `start_date`, `reported_at` had no pattern and were refused)."""
    from rest_framework import serializers

    from .serializers import ResourceSerializer

    parent = getattr(field, "parent", None)
    return (
        isinstance(field, (serializers.DateField, serializers.DateTimeField))
        and not field.read_only
        and isinstance(parent, ResourceSerializer)
        and parent.parent is None  # the body itself: a nested resource is built without data at input too
    )


def _insert_request_rules(field, schema) -> None:
    """Request-only rules: a date in the service's range, and a closed set of values the server
    checks (an IANA time zone, an ISO 4217 currency) as an enum."""
    from tenancy.currencies import MINOR_UNITS
    from tenancy.models import validate_currency, validate_time_zone

    from .serializers import in_service_range

    validators = _validators(field)
    if (in_service_range in validators or _bounded_at_input(field)) and schema.get("type") == "string":
        # "Must be from 2000-01-01 to 2999-12-31." (config.dates): the year is 2xxx.
        schema["pattern"] = dates.YEAR_PATTERN
    if schema.get("type") == "string" and "enum" not in schema:
        if validate_time_zone in validators:
            schema["enum"] = sorted(dates._time_zones())
        elif validate_currency in validators:
            schema["enum"] = sorted(MINOR_UNITS)


class AutoSchema(SpectacularAutoSchema):
    def _is_list_view(self, serializer=None) -> bool:
        # A collection sub-path of a resource (`GET /contracts/active`) is a collection too.
        if self.method == "GET" and getattr(self.view, "detail", None) is False and self._paginated():
            return True
        return super()._is_list_view(serializer)

    def _paginated(self) -> bool:
        return getattr(self.view, "pagination_class", None) is not None and hasattr(self.view, "sort_fields")

    def _is_list_action(self) -> bool:
        return getattr(self.view, "action", None) == "list" or self._is_list_view()

    def _get_format_parameters(self):
        """`?format=` wherever the view takes it. drf-spectacular documents it only where a view has
        two renderers or more, but every view here takes it (config.api.csv.JSONErrorsMixin):
        `/me?format=json`, a calendar's `ical?format=ics`; an integrator should read it there too."""
        formats = self.map_renderers("format")
        if not api_settings.URL_FORMAT_OVERRIDE or not formats:
            return []
        return [
            build_parameter_type(
                name=api_settings.URL_FORMAT_OVERRIDE,
                schema=build_basic_type(OpenApiTypes.STR),
                location=OpenApiParameter.QUERY,
                enum=formats,
            )
        ]

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        from rest_framework import serializers

        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request":
            _insert_request_rules(field, schema)
        decimal = isinstance(field, serializers.DecimalField) and schema.get("type") == "string"
        if decimal and "pattern" in schema:
            # The rule the server applies (config.decimals): drf-spectacular's `\d{0,N}` took "",
            # "." and "5.", which are refused, and `\d` is any script's digit in Python.
            schema["pattern"] = decimals.pattern(field.max_whole_digits, field.decimal_places)
        if direction == "request" and decimal and not field.read_only:
            # Money and hours go in as a decimal string ("12.50", exact) or a JSON number. (A
            # read-only one stays as it is, marked readOnly, so it leaves the request body.)
            number = {"type": "number"}
            alternatives = [{k: v for k, v in schema.items() if k not in ("nullable", "description")}, number]
            schema = {
                "anyOf": alternatives,
                **{k: schema[k] for k in ("nullable", "description") if k in schema},
            }
        if direction == "response" and field.read_only and schema.get("format") and _blank_allowed(field):
            # A read-only formatted string a model keeps blank (`signer_email` before anyone signs):
            # drf-spectacular adds the blank alternative only for a writable field's allow_blank,
            # so "" was "not an email" to a client that checks formats.
            outer = {k: schema.pop(k) for k in list(schema) if k in _OUTER_KEYS}
            schema = {"anyOf": [schema, dict(_BLANK)], **outer}
        if schema.get("nullable") and "type" not in schema and "anyOf" in schema:
            # OAS 3.0.3: `nullable` acts only beside a `type`, so a strict client (openapi-core)
            # refused the null the server takes for a nullable decimal (`"overage_rate": null`);
            # each alternative carries it.
            for alternative in schema["anyOf"]:
                alternative["nullable"] = True
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        _insert_known_rules(field, schema)
        if _BLANK in schema.get("oneOf", ()):
            # drf-spectacular writes a blank-allowed formatted string (an e-mail) as oneOf [the format,
            # a blank string]; "" matches both for a validator that does not check formats (the
            # default in JSON Schema), so a blank e-mail failed validation: either may match.
            schema["anyOf"] = schema.pop("oneOf")

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        from .serializers import StrictInputMixin

        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictInputMixin) and schema.get("properties"):
            schema["additionalProperties"] = False  # unknown fields are a 422
        if direction == "request" and schema.get("properties"):
            # Fields a serializer takes one of, never together (`exclusive_fields`): a 422 when both come.
            excluded = [{"not": {"required": list(pair)}} for pair in getattr(serializer, "exclusive_fields", ())]
            if len(excluded) == 1:
                schema.update(excluded[0])
            elif excluded:
                schema["allOf"] = excluded
        if direction == "response" and hasattr(serializer, "readable_field_names"):
            # `?fields=` may leave out any field but id (and a collection returns its default
            # fields); a serializer that takes it without an id (a visit) may leave out any.
            if "id" in schema.get("properties", {}):
                schema["required"] = ["id"]
            else:
                schema.pop("required", None)
        return schema

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        if (
            status_code == "200"
            and self.method == "GET"
            and self._is_list_action()
            and getattr(self.view, "pagination_class", None)
        ):
            for name, description in _PAGINATION_HEADERS.items():
                headers[name] = {
                    "schema": {"type": "string" if name == "Link" else "integer"},
                    "description": description,
                }
        if status_code == "201" and self.method == "POST":
            # Every 201 sends it: a create's, and an action's that makes a resource (amend, renew, instantiate).
            headers["Location"] = {"schema": dict(_URI), "description": "The new resource."}
        if status_code.startswith("2"):
            for name in getattr(self.view, "sent_headers", {}).get(getattr(self.view, "action", None), ()):
                header_schema, description = SENT_HEADERS[name]
                headers[name] = {"schema": dict(header_schema), "description": description}
        return headers

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        public = not self.get_auth()
        for code, description in _ERRORS.items():
            if public and code in ("401", "403"):
                continue
            if self.method in ("GET", "HEAD") and code in _BODY_ERRORS:
                continue
            if self.method == "DELETE" and code in _BODY_ERRORS and code != "409":
                continue
            responses.setdefault(code, _error_response(description))
        return responses

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None:
            from .permissions import RolePermission, required_role

            if any(isinstance(permission, RolePermission) for permission in self.view.get_permissions()):
                # The least role allowed: integrators see it, and the fuzzer picks the token to use.
                operation["x-required-role"] = required_role(self.view, method)
        return operation

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        serializer_class = getattr(self.view, "serializer_class", None)
        if serializer_class is not None and hasattr(self.view, "get_serializer_class"):
            # An action's own serializer (`/contracts/expiring` adds days_to_expiry, days_to_notice).
            serializer_class = self.view.get_serializer_class()
        # Not on an action that answers in another format only (a calendar's iCalendar): it ignores `fields`.
        from .csv import answers_json

        if self.method == "GET" and answers_json(self.view) and hasattr(serializer_class, "readable_field_names"):
            readable = serializer_class.readable_field_names()
            parameters = [
                *parameters,
                OpenApiParameter(
                    "fields",
                    {"type": "array", "minItems": 1, "items": {"type": "string", "enum": readable}},
                    style="form",
                    explode=False,
                    description=_fields_description(serializer_class, readable),
                ),
            ]
        return parameters


def _fields_description(serializer_class, readable) -> str:
    text = "Comma-separated fields to return (`fields=name,status`, or repeated: `fields=name&fields=status`"
    if "id" in readable:
        text += "; id is always present"
    defaults = getattr(getattr(serializer_class, "Meta", None), "default_fields", None)
    return f"{text}). Collections default to: {', '.join(defaults)}." if defaults else f"{text}; default: all)."


_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current window.",
    "X-RateLimit-Remaining": "Requests left in the current window.",
    "X-RateLimit-Reset": "When the current window ends (UTC epoch seconds).",
}


# Refused by the middleware before the caller is known, so without X-RateLimit-* (README).
_BEFORE_THE_CALLER = ("413", "414")


def document_rate_limit_headers(result, generator, request, public):
    """Every API response carries X-RateLimit-* but a 413 and a 414; a 429 also Retry-After
    (config/api/throttling.py)."""
    for item in result["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, response in operation["responses"].items():
                if code in _BEFORE_THE_CALLER:
                    continue
                headers = response.setdefault("headers", {})
                for name, description in _RATE_LIMIT_HEADERS.items():
                    headers.setdefault(name, {"schema": {"type": "integer"}, "description": description})
                if code == "429":
                    headers.setdefault(
                        "Retry-After", {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                    )
    return result


def nullable_references(result, generator, request, public):
    """A nullable nested object (drf-spectacular: `allOf: [$ref]` beside `nullable: true`) as
    `oneOf: [$ref, null]`. In OAS 3.0.3 `nullable` only acts beside a `type`, and even then the
    `allOf` branch still refuses null, so strict validators (openapi-core) rejected every null
    `rule.calendar` of an evidence pack."""
    components = result.get("components", {}).get("schemas", {})

    def visit(node):
        if isinstance(node, dict):
            wrapped = node.get("allOf")
            if node.get("nullable") and isinstance(wrapped, list) and len(wrapped) == 1 and "$ref" in wrapped[0]:
                target = components.get(wrapped[0]["$ref"].rsplit("/", 1)[1], {})
                null = {"type": target.get("type", "object"), "nullable": True, "enum": [None]}
                del node["allOf"], node["nullable"]
                node["oneOf"] = [wrapped[0], null]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result


CSV_SCHEMA = {"type": "string", "description": "CSV text: a header row, then one line per row (RFC 4180)."}


def csv_is_text(result, generator, request, public):
    """A `text/csv` body is text: drf-spectacular gave it the JSON body's schema (an array of
    objects, even a MatchResponse), so a validating client refused every CSV answer."""
    for item in result["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                if "text/csv" in response.get("content", {}):
                    response["content"]["text/csv"] = {"schema": dict(CSV_SCHEMA)}
    return result


def strip_trailing_slashes(result, generator, request, public):
    """The routes accept an optional trailing slash; document the canonical form without it."""
    result["paths"] = {path.rstrip("/") or "/": item for path, item in result["paths"].items()}
    return result


FORMAT_DESCRIPTION = (
    "The response's format, in place of the Accept header (`csv`: the same rows, fields, filters and sort as "
    "JSON, every page at once); an unknown one is a 400."
)
# Where there is no CSV (`/me`, a breach's evidence, a calendar's iCalendar): the same without the CSV words.
FORMAT_DESCRIPTION_NO_CSV = "The response's format, in place of the Accept header; an unknown one is a 400."


def describe_format_parameter(result, generator, request, public):
    """`?format=` (DRF's format override, documented by drf-spectacular without a word) says what it does."""
    for item in result["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") == "format":
                    offers_csv = "csv" in parameter.get("schema", {}).get("enum", ())
                    parameter.setdefault("description", FORMAT_DESCRIPTION if offers_csv else FORMAT_DESCRIPTION_NO_CSV)
    return result

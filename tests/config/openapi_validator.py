"""Judge real answers by the OpenAPI document as a generated client would: the document's schema
(OpenAPI 3.0.3) turned into JSON Schema and checked by `jsonschema` with the formats a client
parses (date-time, date, time, uuid, email, uri), `nullable`, `readOnly` and `writeOnly` read as
the specification reads them."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import jsonschema

# `writeOnly` in a response, `readOnly` in a request: "SHOULD NOT be sent" (OAS 3.0.3).
_ABSENT = {"not": {}}


def _convert(node, direction: str):
    if isinstance(node, list):
        return [_convert(item, direction) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key == "$ref":
            converted[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key == "properties":
            hidden = "writeOnly" if direction == "response" else "readOnly"
            converted[key] = {
                name: _ABSENT if isinstance(item, dict) and item.get(hidden) else _convert(item, direction)
                for name, item in value.items()
            }
        elif key in ("nullable", "readOnly", "writeOnly", "example", "discriminator", "xml", "externalDocs"):
            continue
        elif key in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf"):
            converted[key] = _convert(value, direction)
        else:
            converted[key] = value
    if direction == "response" and "properties" in converted and "additionalProperties" not in converted:
        # An answer's object that lists its properties lists them all: a key it does not list is
        # one a generated model drops (or refuses).
        converted["additionalProperties"] = False
    if node.get("nullable") and "type" in converted:
        # OAS 3.0.3: null is a value only beside a `type`; `enum` must list it too.
        converted["type"] = [converted["type"], "null"]
        if "enum" in converted and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


def json_schema(document: dict, schema: dict, direction: str = "response") -> dict:
    return {
        **_convert(schema, direction),
        "definitions": {
            name: _convert(component, direction) for name, component in document["components"]["schemas"].items()
        },
    }


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    # RFC 3339: a date, 'T', a time and an offset (Z or +hh:mm).
    if not re.fullmatch(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})", value
    ):
        raise ValueError("not an RFC 3339 date-time")
    dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    return True


@_FORMATS.checks("date", raises=ValueError)
def _date(value) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("not a full-date")
    dt.date.fromisoformat(value)
    return True


@_FORMATS.checks("time", raises=ValueError)
def _time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?", value):
        raise ValueError("not a time")
    return True


@_FORMATS.checks("uuid", raises=ValueError)
def _uuid(value) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


@_FORMATS.checks("email")
def _email(value) -> bool:
    return not isinstance(value, str) or "@" in value


@_FORMATS.checks("uri")
def _uri(value) -> bool:
    return not isinstance(value, str) or bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value))


def violations(document: dict, schema: dict, value, direction: str = "response") -> list[str]:
    """Every way `value` breaks `schema` as the document states it (empty when it fits)."""
    validator = jsonschema.Draft7Validator(json_schema(document, schema, direction), format_checker=_FORMATS)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '$'}: {error.message[:300]}"
        for error in validator.iter_errors(value)
    ]

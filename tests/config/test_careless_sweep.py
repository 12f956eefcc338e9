"""A sweep of careless inputs over every operation the OpenAPI document lists (issue 8):
oversized, deeply nested, huge numbers, wrong JSON types, naive instants, NUL characters. Every
answer is a 4xx with the JSON envelope, never a 5xx. Generic: an endpoint added later is swept
as soon as the schema lists it. (The fuzzer in `make test` goes further, on a live server.)"""

from __future__ import annotations

import json
import re

import pytest

HUGE = "99999999999999999999999"


def careless_values(prop: dict) -> list:
    """Values of the wrong kind for a documented property."""
    kind = prop.get("type")
    values: list = [{"nested": [[[]]]}, 10**30]
    if "anyOf" in prop:  # a decimal: a string or a number
        return [*values, True, "NaN", "1e999999", HUGE, "x\x00"]
    if kind == "string":
        values += [123, True, "x\x00y"]
        if prop.get("format") == "date-time":
            values += ["2026-03-01T09:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
        if prop.get("format") == "date":
            values += ["0000-01-01", "2026-02-30"]
        if prop.get("format") == "decimal" or prop.get("pattern"):
            values += ["1e999999", "NaN", "-Infinity", HUGE]
    elif kind in ("integer", "number"):
        values += ["12", True, -(10**30)]
    elif kind == "boolean":
        values += ["yes", 1]
    elif kind == "array":
        values += ["a,b", [None, 10**30, "\x00"]]
    return values


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def first_id(client, collection: str) -> str:
    response = client.get(f"{collection}?per_page=1&sort=id")
    body = response.json() if response.status_code == 200 else []
    return str(body[0]["id"]) if isinstance(body, list) and body else "1"


def concrete(client, path: str) -> str:
    """The path with its placeholders replaced by ids that exist in the demo data."""
    if "{contract_pk}" in path:
        path = path.replace("{contract_pk}", first_id(client, "/api/v1/contracts"))
    if "{id}" in path:
        collection = path.split("/{id}")[0]
        path = path.replace("{id}", first_id(client, collection))
    return re.sub(r"\{[^}]+\}", "1", path)


def assert_client_error(response, what) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), what
    assert "message" in response.json(), what


@pytest.mark.django_db
def test_every_operation_answers_careless_input_with_a_4xx_json_error(demo):
    schema = demo.get("/api/v1/schema?format=json").json()
    swept = 0
    for template, item in schema["paths"].items():
        path = concrete(demo, template)
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if method == "get":
                for parameter in query:
                    for value in (HUGE, "\x00", "!,", ">=2026-02-30"):
                        response = demo.get(path, {parameter["name"]: value})
                        if response.status_code >= 400:
                            assert_client_error(response, (template, parameter["name"], value))
                        swept += 1
                continue
            send = getattr(demo, method)
            assert_client_error(
                send(path, json.dumps({"x": "y" * (2 * 1024 * 1024)}), content_type="application/json"),
                (method, template, "oversized"),
            )
            if method == "delete":
                continue  # a DELETE reads no body
            assert_client_error(
                send(path, "[" * 20000 + "]" * 20000, content_type="application/json"), (method, template, "nested")
            )
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            properties = resolve(schema, body["schema"]).get("properties", {}) if body else {}
            for name, prop in properties.items():
                if prop.get("readOnly"):
                    continue
                for value in careless_values(resolve(schema, prop)):
                    response = send(path, {name: value}, format="json")
                    assert_client_error(response, (method, template, name, value))
                    swept += 1
    assert swept > 500, swept

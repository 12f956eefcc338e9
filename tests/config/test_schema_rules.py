"""What the API refuses, the OpenAPI document forbids (the fuzzer's "schema validation mismatch":
operations that mostly refused the data generated from their own document). Each rule is checked
both ways: the document allows a value and the API takes it; the document forbids one and the
API refuses it. The rules come from the shared schema code (config.api.schema), not per view."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from .test_schema_contract import resolve


def as_json_schema(document: dict, node):
    """An OpenAPI 3.0 schema as JSON Schema: references inlined, `nullable` as a null type."""
    if isinstance(node, list):
        return [as_json_schema(document, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return as_json_schema(document, resolve(document, node))
    out = {key: as_json_schema(document, value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


def allows(document: dict, node: dict, value) -> bool:
    validator = jsonschema.Draft4Validator(as_json_schema(document, node), format_checker=jsonschema.FormatChecker())
    return validator.is_valid(value)


def body_property(document, component: str, name: str) -> dict:
    return document["components"]["schemas"][component]["properties"][name]


def parameter(document, path: str, name: str) -> dict:
    return next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name)["schema"]


@pytest.fixture
def demo_username() -> str:
    return "demo-manager"


@pytest.fixture
def active_contract(demo):
    from contracts.models import Contract

    return Contract.objects.filter(status="active").order_by("pk").first()


HOURS = [{"weekday": 1, "start": "09:00", "end": "17:00"}]


def test_a_time_zone_is_one_the_service_knows(schema, demo):
    node = body_property(schema, "CalendarRequest", "time_zone")
    assert allows(schema, node, "Europe/Amsterdam") and not allows(schema, node, "Mars/Olympus")
    assert allows(schema, body_property(schema, "ContractRequest", "time_zone"), "Europe/Amsterdam")
    assert not allows(schema, body_property(schema, "ContractRequest", "time_zone"), "Mars/Olympus")
    taken = demo.post(
        "/api/v1/calendars", {"name": "A", "time_zone": "Europe/Amsterdam", "hours": HOURS}, format="json"
    )
    assert taken.status_code == 201, taken.json()
    refused = demo.post("/api/v1/calendars", {"name": "B", "time_zone": "Mars/Olympus", "hours": HOURS}, format="json")
    assert refused.status_code == 422 and "time_zone" in refused.json()["errors"]


def test_a_currency_is_an_iso_4217_code(schema, demo):
    for component in ("ContractRequest", "ContractTemplateRequest"):
        node = body_property(schema, component, "currency")
        assert allows(schema, node, "EUR") and not allows(schema, node, "EUX"), component
    body = {"name": "T", "contract_type": "service_contract"}
    taken = demo.post("/api/v1/contract_templates", {**body, "currency": "EUR"}, format="json")
    assert taken.status_code == 201, taken.json()
    refused = demo.post("/api/v1/contract_templates", {**body, "name": "T2", "currency": "EUX"}, format="json")
    assert refused.status_code == 422 and list(refused.json()["errors"]) == ["currency"]


def test_a_list_that_may_not_be_empty_has_min_items(schema, demo, active_contract):
    node = body_property(schema, "SlaRuleRequest", "priorities")
    assert allows(schema, node, ["low"]) and not allows(schema, node, [])
    body = {"contract_id": active_contract.pk, "name": "R", "metric": "on_site", "target_minutes": 60}
    refused = demo.post("/api/v1/sla_rules", {**body, "priorities": []}, format="json")
    assert refused.status_code == 422 and refused.json()["errors"] == {"priorities": ["This list may not be empty."]}
    taken = demo.post("/api/v1/sla_rules", {**body, "priorities": ["low"]}, format="json")
    assert taken.status_code == 201, taken.json()


def test_a_body_date_is_in_the_service_range(schema, demo, active_contract):
    node = body_property(schema, "RenewRequest", "start_date")
    assert not allows(schema, node, "1999-12-31") and allows(schema, node, "2000-01-01")
    assert allows(schema, node, "2999-12-31") and not allows(schema, node, "3000-01-01")
    url = f"/api/v1/contracts/{active_contract.pk}/renew"
    refused = demo.post(url, {"start_date": "1999-12-31"}, format="json")
    assert refused.status_code == 422 and list(refused.json()["errors"]) == ["start_date"]


def test_renew_takes_an_expiry_date_or_a_term_not_both(schema, demo, active_contract):
    node = schema["components"]["schemas"]["RenewRequest"]
    assert allows(schema, node, {"term_months": 12}) and allows(schema, node, {"expiry_date": "2031-01-01"})
    assert not allows(schema, node, {"expiry_date": "2031-01-01", "term_months": 12})
    url = f"/api/v1/contracts/{active_contract.pk}/renew"
    refused = demo.post(url, {"expiry_date": "2031-01-01", "term_months": 12}, format="json")
    assert refused.status_code == 422
    assert refused.json()["errors"] == {"term_months": ["Give expiry_date or term_months, not both."]}
    taken = demo.post(url, {"term_months": 12}, format="json")
    assert taken.status_code == 201, taken.json()


def test_report_dates_are_dates_in_the_service_range(schema, demo):
    node = parameter(schema, "/api/v1/reports/sla_compliance", "from")
    assert (
        not allows(schema, node, "") and not allows(schema, node, "1999-12-31") and allows(schema, node, "2000-01-01")
    )
    assert demo.get("/api/v1/reports/sla_compliance?from=&to=2000-01-31").status_code == 400
    assert demo.get("/api/v1/reports/sla_compliance?from=1999-12-31&to=2000-01-31").status_code == 400
    assert demo.get("/api/v1/reports/sla_compliance?from=2000-01-01&to=2000-01-31").status_code == 200


def test_a_statement_month_is_in_the_service_range(schema, demo, active_contract):
    node = parameter(schema, "/api/v1/contracts/{contract_pk}/statement", "month")
    assert not allows(schema, node, "1999-12") and allows(schema, node, "2026-03")
    url = f"/api/v1/contracts/{active_contract.pk}/statement?month="
    assert demo.get(url + "1999-12").status_code == 400
    assert demo.get(url + "2026-03").status_code == 200


def test_the_helper_reads_nullable_as_openapi_does(schema):
    # A sanity check of as_json_schema: nullable adds null, and a copy is not the document.
    node = {"type": "string", "nullable": True}
    assert allows(schema, node, None) and allows(schema, copy.deepcopy(node), "x") and not allows(schema, node, 1)

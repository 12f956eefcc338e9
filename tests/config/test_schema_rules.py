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


# JSON fields: the document states each one's shape, and every value it forbids the API refuses (so a
# client that builds bodies from the document is never surprised; a shape the API does not hold to
# would make the fuzzer's negative cases pass). Cases: the component and property, the request that
# carries the value, a value the document allows, and values it forbids.
@pytest.fixture
def template_id(demo) -> int:
    response = demo.post(
        "/api/v1/contract_templates",
        {"name": "Shapes", "contract_type": "service_contract", "currency": "EUR"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _rule_body(contract):
    return {"contract_id": contract.pk, "name": "R", "metric": "on_site", "target_minutes": 60, "priorities": ["low"]}


def _asset_body(contract):
    return {"name": "Pump", "counterparty_id": contract.counterparty_id}


SHAPED = {
    "calendar hours": (
        "CalendarRequest",
        "hours",
        "post",
        lambda c, t: "/api/v1/calendars",
        lambda c: {"name": "Shaped", "time_zone": "Europe/Amsterdam"},
        HOURS,
        [
            None,
            [],
            {"weekday": 1},
            [{"weekday": 1, "start": "9:00", "end": "17:00"}],
            [{"weekday": 8, "start": "09:00", "end": "17:00"}],
            [{"weekday": 1, "start": "09:00", "end": "17:00", "note": "x"}],
            [{"weekday": 1, "start": "09:00"}],
        ],
    ),
    "escalation": (
        "SlaRuleRequest",
        "escalation",
        "post",
        lambda c, t: "/api/v1/sla_rules",
        _rule_body,
        [{"at_percent": 75, "name": "Warn"}],
        [None, {}, [{"at_percent": 0, "name": "W"}], [{"at_percent": 50}], [{"at_percent": 50, "name": "W", "x": 1}]],
    ),
    "penalty clause": (
        "SlaRuleRequest",
        "penalty",
        "post",
        lambda c, t: "/api/v1/sla_rules",
        _rule_body,
        {"fixed_amount": "50.00", "per_unit_amount": 10, "unit_minutes": 30, "per_breach_cap": None},
        [[], "50", {"fixed_amount": "-1"}, {"unit_minutes": 0}, {"fixed_amount": "1", "rate": 1}],
    ),
    "asset location": (
        "AssetRequest",
        "location",
        "post",
        lambda c, t: "/api/v1/assets",
        _asset_body,
        {"type": "Point", "coordinates": [4.9, 52.37]},
        [
            [4.9, 52.37],
            {"type": "Polygon", "coordinates": [4.9, 52.37]},
            {"type": "Point", "coordinates": [4.9]},
            {"type": "Point", "coordinates": ["4.9", "52.37"]},
            {"type": "Point"},
        ],
    ),
    "auto top-up": (
        "PatchedContractTemplateRequest",
        "auto_top_up",
        "patch",
        lambda c, t: f"/api/v1/contract_templates/{t}",
        lambda c: {},
        None,
        [
            [],
            "to",
            {"threshold_hours": "2", "mode": "up", "hours": "10", "price_per_hour": "80"},
            {"threshold_hours": "2", "mode": "to", "hours": "10"},
        ],
    ),
    "template line items": (
        "PatchedContractTemplateRequest",
        "line_items",
        "patch",
        lambda c, t: f"/api/v1/contract_templates/{t}",
        lambda c: {},
        [],
        [None, {}, ["a line"]],
    ),
    "template SLA rules": (
        "PatchedContractTemplateRequest",
        "sla_rules",
        "patch",
        lambda c, t: f"/api/v1/contract_templates/{t}",
        lambda c: {},
        [],
        [None, {"name": "R"}, [1]],
    ),
    "coverage areas": (
        "PatchedContractRequest",
        "coverage_areas",
        "patch",
        lambda c, t: f"/api/v1/contracts/{c.pk}",
        lambda c: {},
        None,
        [[], "Amsterdam", 1],
    ),
}


@pytest.mark.parametrize("case", list(SHAPED))
def test_a_json_field_states_its_shape_and_the_api_refuses_what_it_forbids(
    schema, demo, active_contract, template_id, case
):
    component, name, method, url, body, allowed, forbidden = SHAPED[case]
    node = body_property(schema, component, name)
    assert allows(schema, node, allowed), (case, allowed)
    send = getattr(demo, method)
    target = url(active_contract, template_id)
    for value in forbidden:
        assert not allows(schema, node, value), (case, value)
        refused = send(target, {**body(active_contract), name: value}, format="json")
        assert refused.status_code == 422, (case, value, refused.status_code, refused.content[:300])
        assert any(key == name or key.startswith((f"{name}.", f"{name}[")) for key in refused.json()["errors"]), (
            case,
            value,
            refused.json(),
        )
    taken = send(target, {**body(active_contract), name: allowed}, format="json")
    assert taken.status_code in (200, 201), (case, taken.json())


def test_a_criterion_value_is_an_id_a_text_or_a_list_of_them(schema, demo, active_contract):
    node = body_property(schema, "CriterionRequest", "value")
    assert allows(schema, node, "high") and allows(schema, node, 3) and allows(schema, node, ["a", 2])
    url = "/api/v1/contract_rules"
    body = {"contract_id": active_contract.pk, "name": "Match", "outcome": "contract"}
    for value in (None, {}, [], True, [[1]], ""):
        assert not allows(schema, node, value), value
        criterion = {"field": "summary", "operator": "contains", "value": value}
        refused = demo.post(url, {**body, "criteria": [criterion]}, format="json")
        assert refused.status_code == 422, (value, refused.content[:300])
    taken = demo.post(
        url, {**body, "criteria": [{"field": "summary", "operator": "contains", "value": "pump"}]}, format="json"
    )
    assert taken.status_code == 201, taken.json()


def test_the_served_json_schemas_and_their_openapi_form_judge_alike():
    """`openapi_shape` (OAS 3.0) says what the served 2020-12 schema says, value for value."""
    from config.api.schema import openapi_shape
    from contracts.billing_plan import AUTO_TOP_UP
    from slas.schemas import ESCALATION, PENALTY_CLAUSE

    samples = [
        None,
        [],
        {},
        "5",
        5,
        -1,
        True,
        [{"at_percent": 50, "name": "Half"}],
        [{"at_percent": 101, "name": "X"}],
        [{"at_percent": 50, "name": ""}],
        [{"at_percent": 50, "name": "N", "notify": ["a@b.example"]}],
        [{"at_percent": 50, "name": "N", "notify": [""]}],
        {"fixed_amount": "10.00"},
        {"fixed_amount": 10.5},
        {"fixed_amount": "10.123456"},
        {"fixed_amount": -3},
        {"per_breach_cap": None},
        {"per_breach_cap": "7"},
        {"per_breach_cap": []},
        {"unit_minutes": 0},
        {"bonus": 1},
        {"threshold_hours": "2", "mode": "to", "hours": "10", "price_per_hour": "80"},
        {"threshold_hours": 2, "mode": "by", "hours": 10.5, "price_per_hour": 80},
        {"threshold_hours": "2", "mode": "up", "hours": "10", "price_per_hour": "80"},
        {"threshold_hours": "2", "mode": "to", "hours": "10"},
    ]
    for original in (ESCALATION, PENALTY_CLAUSE, AUTO_TOP_UP):
        strict = jsonschema.Draft202012Validator({k: v for k, v in original.items() if k != "dependentRequired"})
        shape = jsonschema.Draft4Validator(as_json_schema({}, openapi_shape(original)))
        for value in samples:
            assert strict.is_valid(value) == shape.is_valid(value), (original["$id"], value)

"""The OpenAPI schema documents the endpoints of issue 13 as they behave."""

import pytest


@pytest.mark.django_db
def test_the_schema_documents_matching_assets_rules_plans_and_visits(anon):
    schema = anon.get("/api/v1/schema?format=json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/assets",
        "/api/v1/contract_rules",
        "/api/v1/contracts/{contract_pk}/visit_plans",
        "/api/v1/contracts/{contract_pk}/visits",
        "/api/v1/work_orders/match",
    ):
        assert path in paths, path
    match = paths["/api/v1/work_orders/match"]["post"]
    body = match["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"asset_id", "counterparty_id", "location", "priority", "reported_at", "summary"} == set(
        schema["components"]["schemas"][body]["properties"]
    )
    answer = match["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"contract", "contract_match", "rules", "candidates"} == set(
        schema["components"]["schemas"][answer]["properties"]
    )
    visits = paths["/api/v1/contracts/{contract_pk}/visits"]["get"]
    assert {"from", "to", "visit_plan_id", "state"} <= {p["name"] for p in visits["parameters"]}
    job = schema["components"]["schemas"]["WorkOrderRequest"]["properties"]
    assert {"counterparty_id", "asset_id"} <= set(job) and not {"contract_match", "occurrence"} & set(job)

"""Dates and instants at the edges of the calendar (config.dates): a 400 or 422 naming the
parameter or field, never a 500. Bodies, the query parameters that name a day or an instant, and
GraphQL arguments take dates from 2000-01-01 to 2999-12-31; filters, which only compare, take any
instant that has a UTC form. Each once gave a 500 (an outside sweep of the API found them)."""

from __future__ import annotations

import pytest
from django.db import models
from django_filters.utils import get_model_field

from config.api.filters import PredicateFilter
from config.graphql.schema import schema
from contracts.models import Contract
from tests.config.test_rows import concrete_urls, list_routes

# Instants whose offset carries them past either end of Python's calendar in UTC.
NO_UTC_FORM = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]


@pytest.fixture
def demo_username() -> str:
    return "demo-admin"  # every list, the admin's (members, webhooks) too


def _instant_filters(view) -> list[str]:
    filterset = getattr(view, "filterset_class", None)
    if filterset is None:
        return []
    return [
        name
        for name, declared in filterset.base_filters.items()
        if isinstance(declared, PredicateFilter)
        and isinstance(get_model_field(filterset._meta.model, declared.field_name), models.DateTimeField)
    ]


def _refused(response, status: int, name: str) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert name in response.json()["errors"], response.json()


def test_every_instant_filter_refuses_an_instant_without_a_utc_form(demo):
    checked = 0
    for route, view in list_routes():
        names = _instant_filters(view)
        urls = concrete_urls(demo, route) if names else []
        for name in names if urls else []:
            for value in NO_UTC_FORM:
                for predicate in (value, f">{value}", f">=2026-01-01<{value}"):
                    _refused(demo.get(urls[0], {name: predicate}), 400, name)
                    checked += 1
    assert checked >= 100  # created_at and updated_at of every collection, and the rest


def test_a_range_has_one_lower_and_one_upper_bound(demo):
    # Two lower bounds used to keep the second silently.
    _refused(demo.get("/api/v1/counterparties", {"created_at": ">2026-01-01>2026-02-01"}), 400, "created_at")
    _refused(demo.get("/api/v1/counterparties", {"created_at": "<2026-01-01<=2026-02-01"}), 400, "created_at")
    assert demo.get("/api/v1/counterparties", {"created_at": ">=2026-01-01<2026-02-01"}).status_code == 200


def _contract(reference: str) -> int:
    return Contract.objects.get(organization__slug="demo", reference=reference).pk


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v1/contracts/expiring", {"as_of": "9999-12-31"}, "as_of"),
        ("/api/v1/contracts", {"as_of": "0001-01-01"}, "as_of"),
        ("/api/v1/contracts/{SC}/statement", {"month": "9999-12"}, "month"),
        ("/api/v1/contracts/{SC}/statement", {"month": "0001-01"}, "month"),
        ("/api/v1/contracts/{SC}/statement", {"month": "0000-01"}, "month"),
        ("/api/v1/reports/sla_compliance", {"from": "9999-12-31", "to": "9999-12-31"}, "from"),
        ("/api/v1/reports/sla_compliance", {"from": "2026-01-01", "to": "9999-12-31"}, "to"),
        (
            "/api/v1/reports/sla_compliance",
            {"from": "2026-01-01", "to": "2026-12-31", "contract": "9" * 20},
            "contract",
        ),
        (
            "/api/v1/reports/sla_compliance",
            {"from": "2026-01-01", "to": "2026-12-31", "counterparty": "1,²"},
            "counterparty",
        ),
        ("/api/v1/contracts/{SC}/balance", {"as_of": "9999-12-31T23:59:59Z"}, "as_of"),
        ("/api/v1/contracts/{SC}/balance", {"as_of": "0001-01-01T00:00:00Z"}, "as_of"),
        ("/api/v1/contracts/{SC}/lots", {"as_of": "0001-01-01T00:00:00+01:00"}, "as_of"),
        ("/api/v1/contracts/{MS}/periods", {"as_of": "9999-12-31T23:59:59-01:00"}, "as_of"),
        ("/api/v1/contracts/{MA}/visits", {"from": "9999-12-01", "to": "9999-12-31"}, "from"),
    ],
)
def test_a_day_or_instant_parameter_outside_the_range_is_a_400(demo, path, params, name):
    path = path.format(SC=_contract("DEMO-SC-001"), MS=_contract("DEMO-MS-002"), MA=_contract("DEMO-MA-001"))
    _refused(demo.get(path, params), 400, name)


def test_dates_and_instants_in_a_body_lie_in_the_range(demo):
    draft = _contract("DEMO-PS-001")
    for field, value in [("start_date", "0001-01-01"), ("start_date", "1999-12-31"), ("expiry_date", "3000-01-01")]:
        _refused(demo.patch(f"/api/v1/contracts/{draft}", {field: value}, format="json"), 422, field)
    assert demo.patch(f"/api/v1/contracts/{draft}", {"start_date": "2000-01-01"}, format="json").status_code == 200
    # An instant whose UTC date is 3000-01-01, in an action's body (a backtest's window).
    body = {"contract_id": _contract("DEMO-SC-001"), "from": "2026-01-01T00:00:00Z", "proposed": {"target_minutes": 90}}
    late = demo.post("/api/v1/backtests", {**body, "to": "2999-12-31T23:59:59-01:00"}, format="json")
    _refused(late, 422, "to")


def _graphql(client, query: str) -> dict:
    response = client.post("/api/graphql", {"query": query}, format="json")
    assert response.status_code == 200, response.content[:300]
    return response.json()


def _code(body: dict) -> str:
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


def test_graphql_single_gets_say_not_found_for_what_cannot_be_an_id(demo):
    gets = [name for name, field in schema._schema.query_type.fields.items() if list(field.args) == ["id"]]
    assert len(gets) >= 10
    for name in gets:
        for bad in ["abc", "", "1.5", "²", "9" * 20, "-1"]:
            body = _graphql(demo, f'{{ {name}(id: "{bad}") {{ __typename }} }}')
            assert _code(body) == "NOT_FOUND", (name, bad, body)


def test_graphql_arguments_at_the_edges_are_bad_requests_or_not_found(demo):
    sc = _contract("DEMO-SC-001")
    assert _code(_graphql(demo, '{ contractBalance(contractId: "abc") { remainingHours } }')) == "NOT_FOUND"
    assert _code(_graphql(demo, '{ contractPeriods(contractId: "9.5") { index } }')) == "NOT_FOUND"
    cases = [
        f'{{ contractBalance(contractId: {sc}, asOf: "9999-12-31T23:59:59Z") {{ remainingHours }} }}',
        f'{{ contractLots(contractId: {sc}, asOf: "0001-01-01T00:00:00Z") {{ id }} }}',
        f'{{ contractPeriods(contractId: {sc}, asOf: "9999-12-31T23:59:59-01:00") {{ index }} }}',
        f'{{ contractVisits(contractId: {sc}, from: "9999-12-01T00:00:00Z", to: "9999-12-31T00:00:00Z")'
        " { results { occurrence } } }",
        '{ workOrders(filters: {reportedAt: {gt: "9999-12-31T23:59:59-01:00"}}) { totalCount } }',
        '{ slaCompliance(from: "9999-12-31", to: "9999-12-31") { decided } }',
    ]
    for query in cases:
        body = _graphql(demo, query)
        assert _code(body) == "BAD_REQUEST", (query, body)


HOURS = [{"weekday": 1, "start": "09:00", "end": "17:00"}]


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules"])
def test_a_time_zone_is_a_place(demo, zone):
    # Files of the zone database that are not zones: the server's own zone, a placeholder.
    report = demo.get("/api/v1/reports/sla_compliance", {"from": "2026-01-01", "to": "2026-01-31", "time_zone": zone})
    _refused(report, 400, "time_zone")
    _refused(
        demo.post("/api/v1/calendars", {"name": "Here", "time_zone": zone, "hours": HOURS}, format="json"),
        422,
        "time_zone",
    )
    calendar = demo.post(
        "/api/v1/calendars", {"name": "London", "time_zone": "Europe/London", "hours": HOURS}, format="json"
    )
    assert calendar.status_code == 201, calendar.content[:300]

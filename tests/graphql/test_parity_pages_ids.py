"""GraphQL against REST, tenth round: `contractVisits` pages as every root list (and as REST's
`page`/`per_page`), reference filters take what REST takes (ids up to 2^63-1, no comparisons), and
event cursors beyond 32 bits pass both ways. Real view, real JWTs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.contracts.factories import make_contract
from tests.slas.factories import ams
from workorders import rules

pytestmark = pytest.mark.django_db

EVERY_HOUR = "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24)))
WINDOW = 'from: "2026-04-01T00:00:00Z", to: "2026-04-06T00:00:00Z"'  # five days: 120 hourly visits
REST_WINDOW = "from=2026-04-01T00:00:00Z&to=2026-04-06T00:00:00Z"

VISITS = (
    "query Visits($contract: ID!, $pagination: OffsetPaginationInput) {"
    f"  contractVisits(contractId: $contract, {WINDOW}, pagination: $pagination) {{"
    "    totalCount pageInfo { offset limit } results { occurrence state visitPlan { id } }"
    "  }"
    "}"
)


@pytest.fixture
def hourly(org):
    contract = make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31))
    data = {"summary": "Standby rota", "recurrence": EVERY_HOUR}
    rules.create_visit_plan(contract=contract, actor=None, data=data, now=ams(2026, 3, 1))
    return contract


def visits(client, contract, pagination=None):
    return client(VISITS, {"contract": contract.pk, "pagination": pagination})["contractVisits"]


def test_contract_visits_page_as_rest_pages(gql, hourly):
    client = gql("operator")
    first = visits(client, hourly)  # no pagination: the root lists' default page of 20
    assert first["totalCount"] == 120 and len(first["results"]) == 20
    assert first["pageInfo"] == {"offset": 0, "limit": 20}
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/visits?{REST_WINDOW}&per_page=100&page=2")
    assert rest["X-Pagination-Total-Entries"] == "120"
    second = visits(client, hourly, {"offset": 100, "limit": 100})
    assert [v["occurrence"] for v in second["results"]] == [v["occurrence"] for v in rest.json()]
    assert len(second["results"]) == 20 and second["totalCount"] == 120
    assert visits(client, hourly, {"offset": 200, "limit": 10})["results"] == []


@pytest.mark.parametrize(
    ("pagination", "message"),
    [
        ({"limit": 101}, "pagination.limit must be between 0 and 100; got 101."),
        ({"offset": -1}, "pagination.offset must be at least 0; got -1."),
    ],
)
def test_contract_visits_refuse_a_page_beyond_the_limits(gql, hourly, pagination, message):
    body = gql("operator")(VISITS, {"contract": hourly.pk, "pagination": pagination}, errors=True)
    assert body["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [(message, "BAD_REQUEST")]


def test_contract_visits_query_count_does_not_grow_with_the_page(gql, hourly, theirs_contract):
    client = gql("operator")
    visits(client, hourly, {"limit": 1})  # the membership, cached from here on
    counts = []
    for limit in (1, 100):
        with CaptureQueriesContext(connection) as queries:
            page = visits(client, hourly, {"limit": limit})
        assert len(page["results"]) == limit
        counts.append(len(queries))
    # the contract, its plans, their jobs in the window (none: no hours to read), its term versions
    assert counts[0] == counts[1] == 4, counts


def test_contract_visits_keep_the_wall_and_the_role(gql, hourly, theirs_contract):
    body = gql("operator")(VISITS, {"contract": theirs_contract.pk}, errors=True)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND" and body["data"] is None
    body = gql("viewer")(VISITS, {"contract": hourly.pk}, errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.fixture
def theirs_contract(other_org):
    contract = make_contract(other_org, status="active", expiry_date=dt.date(2099, 12, 31))
    data = {"summary": "Their rota", "recurrence": EVERY_HOUR}
    rules.create_visit_plan(contract=contract, actor=None, data=data, now=ams(2026, 3, 1))
    return contract

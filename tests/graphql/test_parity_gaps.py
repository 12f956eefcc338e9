"""GraphQL against REST, eleventh round: the gaps the tenth left. A compliance row's overage is a
whole number as REST writes it, `contractVisits` takes a bare date as REST's `?from=` does, the
clocks at risk page as every root list, and an id given to select by is read as REST's filters read
it. Real view, real JWTs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.breaches.factories import make_job, make_rule
from tests.contracts.factories import make_contract
from tests.graphql.world import build_world
from tests.slas.factories import ams
from workorders import rules

pytestmark = pytest.mark.django_db


# --- a compliance row's overage is REST's whole number -------------------------------------------------


def test_compliance_overage_minutes_is_the_whole_number_rest_writes(gql, org, make_member):
    build_world(org, make_member("admin", org))  # one breach, 30 minutes over
    client = gql("viewer")
    response = client.post('{ slaCompliance(from: "2026-01-01", to: "2026-12-31") { overageMinutes } }')
    rest = client.client.get("/api/v1/reports/sla_compliance?from=2026-01-01&to=2026-12-31").json()
    assert rest[0]["overage_minutes"] == 30
    # The JSON text itself: a Float wrote `30.0`, which equals 30 once parsed.
    assert b'"overageMinutes":30}' in response.content, response.content
    assert response.json()["data"]["slaCompliance"] == [{"overageMinutes": rest[0]["overage_minutes"]}]
    kind = client('{ __type(name: "ComplianceRow") { fields { name type { ofType { name } } } } }')
    types = {f["name"]: f["type"]["ofType"] and f["type"]["ofType"]["name"] for f in kind["__type"]["fields"]}
    assert types["overageMinutes"] == "BigInt"


# --- contractVisits takes a bare date, as REST's ?from= ------------------------------------------------

EVERY_HOUR = "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24)))
DAY_VISITS = (
    "query($c: ID!, $from: DateOrInstant, $to: DateOrInstant) {"
    "  contractVisits(contractId: $c, from: $from, to: $to, pagination: {limit: 100}) {"
    "    totalCount results { occurrence }"
    "  }"
    "}"
)


@pytest.fixture
def hourly(org):
    contract = make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31))  # Europe/Amsterdam
    data = {"summary": "Standby rota", "recurrence": EVERY_HOUR}
    rules.create_visit_plan(contract=contract, actor=None, data=data, now=ams(2026, 3, 1))
    return contract


def test_contract_visits_take_a_bare_date_as_the_contracts_local_day(gql, hourly):
    client = gql("operator")
    client(DAY_VISITS, {"c": hourly.pk, "from": "2026-04-01", "to": "2026-04-02"})  # the membership, cached
    with CaptureQueriesContext(connection) as queries:
        data = client(DAY_VISITS, {"c": hourly.pk, "from": "2026-04-01", "to": "2026-04-02"})["contractVisits"]
    # the contract, its plans, their jobs in the window (none: no hours to read), its term versions
    assert len(queries) == 4, [q["sql"] for q in queries.captured_queries]
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/visits?from=2026-04-01&to=2026-04-02&per_page=100")
    assert rest.status_code == 200
    assert [v["occurrence"] for v in data["results"]] == [v["occurrence"] for v in rest.json()]
    # Amsterdam's day (UTC+2 in April): 22:00Z the evening before to 22:00Z, 24 hourly visits.
    assert data["totalCount"] == 24 == int(rest["X-Pagination-Total-Entries"])
    assert data["results"][0]["occurrence"] == "2026-03-31T22:00:00Z"
    # A date and an instant mix, as in REST.
    mixed = client(DAY_VISITS, {"c": hourly.pk, "from": "2026-04-01T00:00:00Z", "to": "2026-04-02"})
    assert mixed["contractVisits"]["totalCount"] == 22


@pytest.mark.parametrize("value", ["yesterday", "2026-04-01T00:00:00", "2026-02-30", "1999-12-31"])
def test_contract_visits_refuse_a_bad_bound_in_rests_words(gql, hourly, value):
    client = gql("operator")
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/visits", {"from": value})
    assert rest.status_code == 400
    body = client(DAY_VISITS, {"c": hourly.pk, "from": value}, errors=True)
    (error,) = body["errors"]
    assert error["message"] == rest.json()["message"]
    assert error["extensions"] == {"code": "BAD_REQUEST", "errors": rest.json()["errors"]}


# --- the clocks at risk page as every root list ------------------------------------------------------

AT_RISK = (
    "query($p: OffsetPaginationInput, $o: [AtRiskClockOrder!]) {"
    "  slaAtRisk(withinMinutes: 525600, pagination: $p, order: $o) {"
    "    totalCount pageInfo { offset limit } results { remainingMinutes clock { id workOrder { id } } }"
    "  }"
    "}"
)


@pytest.fixture
def at_risk(org, other_org):
    """25 running clocks of ours due within the year (jobs reported a minute apart), one of theirs."""
    now = dt.datetime.now(dt.UTC)
    contract = make_contract(org, status="active")
    make_rule(contract, target_minutes=600)
    for index in range(25):
        make_job(contract, reported_at=now - dt.timedelta(minutes=30 + index))
    theirs = make_contract(other_org, status="active")
    make_rule(theirs, target_minutes=600)
    make_job(theirs, reported_at=now - dt.timedelta(minutes=30))
    return contract


def _ids(page) -> list[int]:
    return [int(item["clock"]["id"]) for item in page["results"]]


def test_sla_at_risk_pages_as_every_root_list_and_as_rest(gql, at_risk):
    client = gql("viewer")
    first = client(AT_RISK)["slaAtRisk"]  # no pagination: the root lists' default page of 20
    assert first["totalCount"] == 25 and len(first["results"]) == 20
    assert first["pageInfo"] == {"offset": 0, "limit": 20}
    rest = client.client.get("/api/v1/reports/at_risk?within_minutes=525600&per_page=20&page=2")
    assert rest["X-Pagination-Total-Entries"] == "25"
    second = client(AT_RISK, {"p": {"offset": 20, "limit": 20}})["slaAtRisk"]
    assert _ids(second) == [row["id"] for row in rest.json()] and len(second["results"]) == 5
    # REST's sort keys, REST's order.
    order = [{"field": "STARTED_AT", "direction": "DESC"}]
    rest = client.client.get("/api/v1/reports/at_risk?within_minutes=525600&per_page=100&sort=-started_at")
    latest_first = _ids(client(AT_RISK, {"p": {"limit": 100}, "o": order})["slaAtRisk"])
    assert (
        latest_first
        == [r["id"] for r in rest.json()]
        == list(reversed(_ids(client(AT_RISK, {"p": {"limit": 100}})["slaAtRisk"])))
    )


def test_sla_at_risk_query_count_does_not_grow_with_the_page(gql, at_risk):
    client = gql("viewer")
    client(AT_RISK, {"p": {"limit": 1}})  # the membership, cached from here on
    counts = []
    for limit in (1, 25):
        with CaptureQueriesContext(connection) as queries:
            page = client(AT_RISK, {"p": {"limit": limit}})["slaAtRisk"]
        assert len(page["results"]) == limit
        counts.append(len(queries))
    # the page of clocks (rule, calendar, job joined), the jobs' holds, the count
    assert counts[0] == counts[1] == 3, counts


def test_sla_at_risk_keeps_limit_and_items_deprecated_but_not_with_pagination(gql, at_risk):
    client = gql("viewer")
    old = client("{ slaAtRisk(withinMinutes: 525600, limit: 2, offset: 1) { totalCount items { clock { id } } } }")
    new = client(AT_RISK, {"p": {"offset": 1, "limit": 2}})["slaAtRisk"]
    assert [int(i["clock"]["id"]) for i in old["slaAtRisk"]["items"]] == _ids(new)
    body = client("{ slaAtRisk(pagination: {limit: 1}, offset: 3) { totalCount } }", errors=True)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "errors": {"offset": ["Not with pagination."]}}
    body = client("{ slaAtRisk(pagination: {limit: 101}) { totalCount } }", errors=True)
    assert body["errors"][0]["message"] == "pagination.limit must be between 0 and 100; got 101."


# --- an id to select by is read as REST's filters read it ---------------------------------------------


def test_a_childs_root_contract_id_takes_what_a_reference_filter_takes(gql, org, make_member):
    world = build_world(org, make_member("admin", org))
    contract = world["contracts.Contract"][0]
    client = gql("operator")
    padded = f" {contract} "
    # A ReferenceFilter (REST's `?contract_id=%201`) took it; the child's own contractId refused it.
    jobs = client("query($c: ID) { workOrders(filters: {contractId: {eq: $c}}) { totalCount } }", {"c": padded})
    assert jobs["workOrders"]["totalCount"] > 0
    amendments = client("query($c: ID) { amendments(filters: {contractId: $c}) { totalCount } }", {"c": padded})
    assert amendments["amendments"]["totalCount"] == 1
    body = client('{ amendments(filters: {contractId: " x"}) { totalCount } }', errors=True)
    assert body["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "errors": {"contractId": ["' x' is not an id."]}}


def test_contract_visits_plan_ids_take_what_rests_visit_plan_id_takes(gql, hourly):
    client = gql("operator")
    plan = hourly.visit_plans.get().pk
    query = (
        'query($c: ID!, $p: [ID!]) { contractVisits(contractId: $c, from: "2026-03-31T22:00:00Z",'
        ' to: "2026-04-01T22:00:00Z", visitPlanIds: $p) { totalCount } }'
    )
    window = "from=2026-03-31T22:00:00Z&to=2026-04-01T22:00:00Z"
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/visits?{window}&visit_plan_id=%20{plan}")
    assert rest.status_code == 200 and rest["X-Pagination-Total-Entries"] == "24"
    assert client(query, {"c": hourly.pk, "p": [f" {plan}"]})["contractVisits"]["totalCount"] == 24


# --- an id of thousands of digits is "not found" or a bad request, never INTERNAL -----------------------

LONG = "1" * 5000  # past the 4,300 digits `int()` converts (it raised ValueError: an INTERNAL error)


@pytest.mark.parametrize(
    "query",
    [
        "query($i: ID!) { contract(id: $i) { id } }",
        "query($i: ID!) { event(id: $i) { id } }",
        "query($i: ID!) { contractBalance(contractId: $i) { remainingHours } }",
        'mutation($i: ID!) { updateContract(id: $i, input: {name: "x"}) { ... on OperationError { kind } } }',
        "mutation($i: ID!) { createAmendment(contractId: $i, input: {}) { ... on OperationError { kind } } }",
    ],
)
def test_an_id_of_thousands_of_digits_is_not_found(gql, org, query):
    client = gql("manager")
    assert client.client.get(f"/api/v1/contracts/{LONG}").status_code == 404  # REST's route
    body = client.post(query, {"i": LONG}).json()
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    kinds = [v["kind"] for v in (body.get("data") or {}).values() if v]
    assert codes + kinds == ["NOT_FOUND"], body


def test_an_id_of_thousands_of_digits_in_a_selection_is_refused_in_rests_words(gql, org, make_member):
    world = build_world(org, make_member("admin", org))
    client = gql("operator")
    rest = client.client.get(f"/api/v1/reports/sla_compliance?from=2026-01-01&to=2026-02-01&contract_id={LONG}")
    assert rest.status_code == 400, rest.content  # was a 500
    assert rest.json()["errors"] == {"contract_id": [f"'{LONG}' is not an id."]}
    compliance = 'query($i: [ID!]) { slaCompliance(from: "2026-01-01", to: "2026-02-01", contractIds: $i) { decided } }'
    body = client(compliance, {"i": [LONG]}, errors=True)
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_REQUEST",
        "errors": {"contractIds": [f"'{LONG}' is not an id."]},
    }
    body = client("query($i: ID!) { amendments(filters: {contractId: $i}) { totalCount } }", {"i": LONG}, errors=True)
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_REQUEST",
        "errors": {"contractId": [f"'{LONG}' is not an id."]},
    }
    contract = world["contracts.Contract"][0]
    visits = "query($c: ID!, $p: [ID!]) { contractVisits(contractId: $c, visitPlanIds: $p) { totalCount } }"
    rest = client.client.get(f"/api/v1/contracts/{contract}/visits?visit_plan_id={LONG}")
    body = client(visits, {"c": contract, "p": [LONG]}, errors=True)
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_REQUEST",
        "errors": {"visitPlanIds": rest.json()["errors"]["visit_plan_id"]},
    }


# --- an idempotency key's errors name the argument the client sent -----------------------------------

POST_ENTRY = (
    "mutation($k: String, $i: LedgerEntryInput!) { postLedgerEntry(input: $i, idempotencyKey: $k) {"
    "  __typename ... on LedgerEntry { id } ... on OperationError { kind message fields { path messages } } } }"
)


def test_an_idempotency_keys_errors_name_the_argument(gql, org, make_member):
    world = build_world(org, make_member("admin", org))
    contract = world["contracts.Contract"][0]
    client = gql("manager")
    entry = {"contractId": str(contract), "entryType": "adjustment", "hours": "1", "description": "x"}
    body = {"contract_id": contract, "entry_type": "adjustment", "hours": "1", "description": "x"}
    first = client(POST_ENTRY, {"k": "abc", "i": entry})["postLedgerEntry"]
    assert client(POST_ENTRY, {"k": "abc", "i": entry})["postLedgerEntry"] == first  # a retry: the same entry
    again = client(POST_ENTRY, {"k": "abc", "i": {**entry, "hours": "2"}})["postLedgerEntry"]
    rest = client.client.post(
        "/api/v1/ledger_entries", {**body, "hours": "3"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    assert rest.status_code == 422
    assert again == {
        "__typename": "OperationError",
        "kind": "INVALID",
        "message": rest.json()["message"],
        "fields": [{"path": "idempotencyKey", "messages": rest.json()["errors"]["Idempotency-Key"]}],
    }
    long = client(POST_ENTRY, {"k": "k" * 256, "i": entry})["postLedgerEntry"]
    rest = client.client.post("/api/v1/ledger_entries", body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert rest.status_code == 400
    assert rest.json() == {
        "message": "Idempotency-Key is at most 255 characters.",
        "errors": {"Idempotency-Key": ["At most 255 characters."]},
    }
    assert long["kind"] == "BAD_REQUEST" and long["message"] == rest.json()["message"]
    assert long["fields"] == [{"path": "idempotencyKey", "messages": ["At most 255 characters."]}]
    export = (
        "mutation($k: String) { createBillingExport(input: {}, idempotencyKey: $k) {"
        " ... on OperationError { kind fields { path messages } } } }"
    )
    refused = client(export, {"k": "k" * 256})["createBillingExport"]
    assert refused == {
        "kind": "BAD_REQUEST",
        "fields": [{"path": "idempotencyKey", "messages": ["At most 255 characters."]}],
    }


@pytest.mark.parametrize(
    "query",
    [
        "{ contract(id: %s) { id } }",  # an ID written as a number literal
        "{ events(filters: {objectId: {eq: %s}}) { totalCount } }",  # a BigInt literal
        "{ slaAtRisk(pagination: {limit: %s}) { totalCount } }",  # an Int the page size check reads
        "{ contracts(filters: {contractValue: {gt: %s.5}}) { totalCount } }",  # a float literal
    ],
)
def test_a_number_literal_of_thousands_of_digits_is_a_bad_request(gql, org, query):
    """Written in the query rather than sent as a variable: strawberry's depth limiter and the page
    size check read every literal with `int()` before any type is checked, so it was INTERNAL
    (regression sweep of the eleventh round)."""
    body = gql("manager").post(query % LONG).json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"], body
    characters = len(LONG) + (2 if "%s.5" in query else 0)
    assert body["errors"][0]["message"] == f"A number literal of {characters} characters is out of range: at most 100."


def test_a_number_literal_of_twenty_characters_still_reads(gql, org):
    body = gql("manager").post("{ events(filters: {objectId: {eq: -9223372036854775808}}) { totalCount } }").json()
    assert body == {"data": {"events": {"totalCount": 0}}}

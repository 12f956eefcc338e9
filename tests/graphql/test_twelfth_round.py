"""GraphQL answers what REST answers (twelfth round): every refused request carries a code, as
every REST refusal has a status, and what GraphQL's own validation costs is bounded."""

from __future__ import annotations

import pytest
from rest_framework.throttling import SimpleRateThrottle

from tests.contracts.factories import make_contract
from tests.graphql.conftest import URL

pytestmark = pytest.mark.django_db

DEEP = "{ contracts { results " + "{ counterparty { contracts " * 5 + "{ name }" + " } }" * 5 + " } }"

# What GraphQL refuses before it runs anything, each with the words that say why.
REFUSED_BEFORE_RUNNING = {
    "syntax": ("{ contracts ", {}, "Syntax Error"),
    "unknown field": ("{ nope }", {}, "Cannot query field 'nope'"),
    "missing argument": ("{ contract { id } }", {}, "is required, but it was not provided"),
    "unknown enum value": ("{ contracts(order: [{field: NOPE}]) { totalCount } }", {}, "does not exist"),
    "unknown filter": ("{ contracts(filters: {nope: {eq: 1}}) { totalCount } }", {}, "unknown field 'nope'"),
    "bad date": ('{ contracts(filters: {startDate: {gte: "2026-13-01"}}) { totalCount } }', {}, "Date"),
    "variable of the wrong type": (
        "query Q($p: OffsetPaginationInput) { contracts(pagination: $p) { totalCount } }",
        {"p": {"limit": "x"}},
        "Variable '$p' has invalid value at .limit",
    ),
    "null for a non-null input": ("{ contracts(pagination: {offset: null}) { totalCount } }", {}, "non-null"),
    "fragment cycle": (
        "query Q { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        {},
        "Cannot spread fragment",
    ),
    "unknown directive": ("{ me @nope { role } }", {}, "Unknown directive"),
    "too deep": (DEEP, {}, "exceeds maximum operation depth of 10"),
    "too many aliases": ("{ " + " ".join(f"a{i}: me {{ role }}" for i in range(16)) + " }", {}, "aliases"),
    "too many tokens": ("{ " + " ".join("me { role }" for _ in range(600)) + " }", {}, "tokens"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BEFORE_RUNNING))
def test_a_request_refused_before_it_runs_is_a_bad_request(gql, case):
    """REST answers a bad request 400; GraphQL's own refusals (graphql-core's, strawberry's
    limits) carried no `extensions.code`, where README says every query error has one."""
    query, variables, words = REFUSED_BEFORE_RUNNING[case]
    response = gql("viewer").client.post(URL, {"query": query, "variables": variables}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["data"] is None, body
    (error,) = body["errors"]
    assert words in error["message"], error
    assert error["extensions"]["code"] == "BAD_REQUEST", error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("query", "variables", "words"),
    [
        ("subscription S { events { nope } }", {}, "Cannot query field 'nope'"),
        ("subscription S($s: BigInt) { events(sinceId: $s) { kind } }", {"s": "x"}, "Variable '$s'"),
    ],
)
def test_a_subscription_refused_before_it_runs_is_a_bad_request(token, query, variables, words):
    """The same over the WebSocket: graphql-transport-ws's `error` message carried no code."""
    from tests.graphql.test_subscriptions import acked
    from tests.stream.conftest import run

    async def scenario():
        comm = await acked(token("viewer"))
        await comm.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "error" and message["id"] == "1", message
        (error,) = message["payload"]
        assert words in error["message"] and error["extensions"]["code"] == "BAD_REQUEST", error
        await comm.disconnect()

    run(scenario)


def _fragments(count: int) -> str:
    """`me { role }` through `count` fragments, each its own: the same place selected `count` times."""
    spreads = " ".join(f"...F{i}" for i in range(count))
    return f"{{ me {{ {spreads} }} }} " + " ".join(f"fragment F{i} on Me {{ role }}" for i in range(count))


def test_one_field_selected_hundreds_of_times_is_refused_before_graphqls_own_validation(gql):
    """graphql-core's check that same-named fields merge compares every pair: `contracts {
    totalCount }` 490 times, within the 2,000 tokens, cost seconds of CPU and then answered
    "Validation aborted." (its recursion ran out), with no code."""
    client = gql("viewer")
    for query, place in [
        ("{ " + "contracts { totalCount } " * 490 + "}", "`contracts`"),
        (_fragments(31), "`me.role`"),
        ("{ me { organization { " + "slug " * 31 + "} } }", "`me.organization.slug`"),
    ]:
        body = client.post(query).json()
        (error,) = body["errors"]
        assert body["data"] is None and error["extensions"]["code"] == "BAD_REQUEST", body
        assert error["message"].startswith(f"{place} is selected more than 30 times"), error


def test_a_field_selected_up_to_30_times_still_answers(gql, org):
    """What clients do (overlapping fragments, `id` in each) still runs, merged as before."""
    client = gql("viewer")
    assert client(_fragments(30)) == {"me": {"role": "viewer"}}
    assert client("{ " + "me { organization { slug } } " * 30 + "}") == {"me": {"organization": {"slug": org.slug}}}


def test_a_fragment_cycle_through_a_field_is_graphqls_error_not_a_recursion(gql):
    query = "query Q { contracts { results { ...A } } } fragment A on Contract { counterparty { contracts { ...A } } }"
    (error,) = gql("viewer").post(query).json()["errors"]
    assert error["message"] == "Cannot spread fragment 'A' within itself."
    assert error["extensions"]["code"] == "BAD_REQUEST"


def test_introspection_needs_a_token_as_every_query_does(gql, anon):
    """README: open to every authenticated caller (GraphiQL, code generators), not without a token."""
    query = {"query": "{ __schema { queryType { name } } }"}
    assert anon.post(URL, query, format="json").status_code == 401
    assert gql("viewer")(query["query"]) == {"__schema": {"queryType": {"name": "Query"}}}


def test_graphql_requests_count_against_the_rest_rate_limit(gql, monkeypatch):
    """THROTTLE_USER_RATE held REST back while GraphQL's queries were never counted: its
    X-RateLimit-Remaining stayed put and a caller refused under /api/v1/ went on querying here."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "3/min"})
    client = gql("viewer")
    remaining = []
    for _ in range(2):
        response = client.post("{ me { role } }")
        assert response.status_code == 200 and response.json() == {"data": {"me": {"role": "viewer"}}}
        remaining.append(response["X-RateLimit-Remaining"])
    assert remaining == ["2", "1"]
    assert client.client.get("/api/v1/me").status_code == 200  # one count for both faces: the third
    rest = client.client.get("/api/v1/me")
    refused = client.post("{ me { role } }")
    assert rest.status_code == refused.status_code == 429
    assert refused.json()["message"].startswith("Request was throttled. Expected available in")
    assert refused.json().keys() == rest.json().keys() == {"message"}
    assert 1 <= int(refused["Retry-After"]) <= 60 and refused["X-RateLimit-Remaining"] == "0"


def test_a_mutation_counts_once_with_the_rest_write_it_runs(gql, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "3/min"})
    client = gql("manager")
    mutation = 'mutation { createCounterparty(input: {name: "Acme %s"}) { ... on Counterparty { id } } }'
    first = client.post(mutation % 1)
    assert first.json()["data"]["createCounterparty"]["id"] and first["X-RateLimit-Remaining"] == "2"
    second = client.post(mutation % 2)
    assert second.json()["data"]["createCounterparty"]["id"] and second["X-RateLimit-Remaining"] == "1"


@pytest.mark.parametrize(
    ("query", "variable", "argument"),
    [
        ('query Q($v: [ID!]) { slaCompliance(from: "2026-01-01", to: "2026-02-01", contractIds: $v) { decided } }',
         [str(i) for i in range(1, 1002)], "contractIds"),
        ('query Q($v: [ID!]) { slaCompliance(from: "2026-01-01", to: "2026-02-01", counterpartyIds: $v) { decided } }',
         [str(i) for i in range(1, 1002)], "counterpartyIds"),
        ('query Q($v: [Metric!]) { slaCompliance(from: "2026-01-01", to: "2026-02-01", metrics: $v) { decided } }',
         ["response"] * 1001, "metrics"),
        ("query Q($v: [ID!]) { contractVisits(contractId: %(contract)s, visitPlanIds: $v) { totalCount } }",
         [str(i) for i in range(1, 1002)], "visitPlanIds"),
        ("query Q($v: [VisitState!]) { contractVisits(contractId: %(contract)s, states: $v) { totalCount } }",
         ["scheduled"] * 1001, "states"),
    ],
)  # fmt: skip
def test_a_computed_querys_list_holds_at_most_1000_values_as_rests_filters(gql, org, query, variable, argument):
    """REST's lists are bounded by its URL (room for 1,000 ids); a GraphQL body of 90,000 contract
    ids kept `slaCompliance` busy for seconds, and answered."""
    contract = make_contract(org, status="active")
    client = gql("manager")
    query = query % {"contract": contract.pk}
    body = client.post(query, {"v": variable}).json()
    (error,) = body["errors"]
    assert error["message"] == f"Invalid filter: {argument}", error
    assert error["extensions"] == {"code": "BAD_REQUEST", "errors": {argument: ["At most 1000 values in one list."]}}
    assert client(query, {"v": variable[:1000]})  # 1,000 still answer

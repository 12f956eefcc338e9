"""GraphQL answers what REST answers (twelfth round): every refused request carries a code, as
every REST refusal has a status, and what GraphQL's own validation costs is bounded."""

from __future__ import annotations

import pytest

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

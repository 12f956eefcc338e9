"""An outside tester's sweep of GraphQL against REST (seventh round, docs/decisions.md): the
transport of a mutation's REST call, id inputs, pagination bounds, typed filter values, empty
selections and malformed requests. Through the real view with real JWTs."""

from __future__ import annotations

import json

import pytest

from contracts.models import Counterparty
from ledger.models import LedgerEntry
from tests.contracts.factories import make_contract
from tests.ledger.helpers import active_contract, final_breach, penalty_rule
from workorders.models import WorkOrder

from .conftest import URL

pytestmark = pytest.mark.django_db

ERROR = "... on OperationError { kind message fields { path messages } }"


def fields_of(data) -> dict:
    assert data["__typename"] == "OperationError", data
    return {f["path"]: f["messages"] for f in data["fields"]}


def post(client, body, **headers):
    return client.client.post(URL, json.dumps(body), content_type="application/json", **headers)


# --- 1, 7: what reaches the REST call behind a mutation ------------------------------------------


@pytest.mark.parametrize("accept", ["application/graphql-response+json", "text/html"])
def test_a_mutation_runs_whatever_the_client_accepts(gql, org, accept):
    client = gql("manager")
    counterparty = Counterparty.objects.create(organization=org, name="Acme", kind="customer")
    query = (
        f'mutation {{ updateCounterparty(id: {counterparty.pk}, input: {{remarks: "x"}}) '
        f"{{ __typename ... on Counterparty {{ remarks }} {ERROR} }} }}"
    )
    response = post(client, {"query": query}, HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["updateCounterparty"] == {"__typename": "Counterparty", "remarks": "x"}


def test_an_idempotency_key_header_binds_no_mutation(gql, org):
    client = gql("manager")
    contract = active_contract(org)
    entry = 'postLedgerEntry(input: {{contractId: {pk}, entryType: "adjustment", hours: "{h}", description: "{d}"}})'
    query = (
        "mutation { "
        + f"a: {entry.format(pk=contract.pk, h=1, d='a')} {{ __typename {ERROR} }} "
        + f"b: {entry.format(pk=contract.pk, h=2, d='b')} {{ __typename {ERROR} }} }}"
    )
    response = post(client, {"query": query}, HTTP_IDEMPOTENCY_KEY="k-sweep-2")
    data = response.json()["data"]
    assert data == {"a": {"__typename": "LedgerEntry"}, "b": {"__typename": "LedgerEntry"}}, data
    posted = LedgerEntry.objects.filter(contract=contract, entry_type="adjustment")
    assert sorted(posted.values_list("description", flat=True)) == ["a", "b"]


# --- 2, 3: id inputs -----------------------------------------------------------------------------


def test_a_text_field_named_like_an_id_keeps_its_digits(gql, org):
    client = gql("manager")
    contract = make_contract(org)
    updated = client(
        f'mutation {{ updateContract(id: {contract.pk}, input: {{serviceTerritoryId: "12345", '
        f'dispatchAgreementId: "007"}}) {{ __typename ... on Contract {{ serviceTerritoryId dispatchAgreementId }} '
        f"{ERROR} }} }}"
    )["updateContract"]
    assert updated == {"__typename": "Contract", "serviceTerritoryId": "12345", "dispatchAgreementId": "007"}
    contract.refresh_from_db()
    assert (contract.service_territory_id, contract.dispatch_agreement_id) == ("12345", "007")


@pytest.mark.parametrize("contract_id", ["²", "١"])
def test_an_id_of_other_digits_is_refused_as_rest_refuses_it(gql, org, contract_id):
    client = gql("manager")
    active_contract(org)  # id 1 of a fresh database: "١" named it
    created = client(
        'mutation ($c: ID!) { createWorkOrder(input: {contractId: $c, priority: "high", summary: "x", '
        f'reportedAt: "2026-11-30T09:00:00Z"}}) {{ __typename {ERROR} }} }}',
        {"c": contract_id},
    )["createWorkOrder"]
    assert created["kind"] == "INVALID" and fields_of(created) == {"contractId": ["Expected an integer id."]}
    assert not WorkOrder.objects.filter(organization=org).exists()


# --- 4: pagination bounds ------------------------------------------------------------------------


def test_a_negative_offset_is_a_bad_request(gql, org):
    client = gql("manager")
    contract = make_contract(org)
    for query, variables in (
        ("{ workOrders(pagination: {offset: -5}) { totalCount results { id } } }", None),
        (f"{{ contract(id: {contract.pk}) {{ workOrders(pagination: {{offset: -1}}) {{ id }} }} }}", None),
        ("query ($p: OffsetPaginationInput) { contracts(pagination: $p) { results { id } } }", {"p": {"offset": -1}}),
    ):
        body = client(query, variables, errors=True)
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST", error
        assert error["message"].startswith("pagination.offset must be at least 0"), error


def test_at_risk_names_the_argument_out_of_range(gql):
    client = gql("manager")
    offset = client("{ slaAtRisk(offset: -1) { totalCount } }", errors=True)["errors"][0]["extensions"]["errors"]
    assert offset == {"offset": ["Out of range."]}
    limit = client("{ slaAtRisk(limit: 101) { totalCount } }", errors=True)["errors"][0]["extensions"]["errors"]
    assert limit == {"limit": ["Out of range."]}


# --- 5: typed filter values ----------------------------------------------------------------------


def test_a_typed_filter_value_means_exactly_that_value(gql, org):
    client = gql("viewer")
    wanted = Counterparty.objects.create(
        organization=org, name="Smith, Jones & Co", kind="customer", source="crm", source_id="CRM-7,8"
    )
    Counterparty.objects.create(organization=org, name="Other", kind="customer", source="crm", source_id="CRM-7")
    make_contract(org, reference="DEMO-SC-001")

    def counterparties(filters: str) -> list[str]:
        data = client(f"{{ counterparties(filters: {filters}) {{ results {{ id }} }} }}")["counterparties"]
        return [row["id"] for row in data["results"]]

    assert counterparties('{sourceID: {eq: "CRM-7,8"}}') == [str(wanted.pk)]
    assert counterparties('{sourceID: {in: ["CRM-7,8"]}}') == [str(wanted.pk)]
    assert counterparties('{sourceID: {in: ["CRM-7", "8"]}}') != [str(wanted.pk)]
    assert str(wanted.pk) not in counterparties('{sourceID: {not: ["CRM-7,8"]}}')
    assert counterparties('{reference: {eq: "!nothing"}}') == []
    contracts = client('{ contracts(filters: {reference: {eq: ">=DEMO-SC"}}) { totalCount } }')["contracts"]
    assert contracts["totalCount"] == 0
    # Comparisons stay comparisons, whatever the value holds.
    ranged = client('{ contracts(filters: {reference: {gte: "DEMO-SC", lt: "DEMO-SD"}}) { totalCount } }')
    assert ranged["contracts"]["totalCount"] == 1
    body = client('{ counterparties(filters: {name: {eq: ""}}) { totalCount } }', errors=True)
    assert (
        body["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and "name" in body["errors"][0]["extensions"]["errors"]
    )


# --- 6: an empty selection in the compliance report -----------------------------------------------

COMPLIANCE = '{{ slaCompliance(from: "2026-03-01", to: "2026-03-31"{args}) {{ decided }} }}'


@pytest.mark.parametrize(
    ("args", "param"),
    [
        ("contractIds: []", "contract_id"),
        ("counterpartyIds: []", "counterparty_id"),
        ("metrics: []", "metric"),
        ("priorities: []", "priority"),
    ],
)
def test_an_empty_selection_reports_nothing(gql, org, args, param):
    client = gql("manager")
    contract = active_contract(org)
    penalty_rule(contract)
    final_breach(contract)
    everything = client(COMPLIANCE.format(args=""))["slaCompliance"]
    assert sum(row["decided"] for row in everything) >= 1
    nothing = client(COMPLIANCE.format(args=", " + args))["slaCompliance"]
    assert sum(row["decided"] for row in nothing) == 0
    response = client.client.get(
        "/api/v1/reports/sla_compliance", {"from": "2026-03-01", "to": "2026-03-31", param: ""}
    )
    assert response.status_code == 200, response.content
    assert sum(row["decided"] for row in response.json()) == 0


# --- 8: malformed requests say why ---------------------------------------------------------------


def test_a_malformed_request_says_why_in_the_json_error_shape(gql):
    client = gql("viewer")
    me = "{ me { user { id } } }"
    for body, message in (
        ({"query": me, "operationName": "Nope"}, 'Unknown operation named "Nope".'),
        ([{"query": me}], "Batching is not enabled"),
        ({"variables": {}}, "No GraphQL query found in the request"),
        (
            {"query": me, "variables": "abc"},
            "The GraphQL operation's `variables` must be an object or null, if provided.",
        ),
    ):
        response = post(client, body)
        assert response.status_code == 400, response.content
        assert response.json() == {"message": message}
    response = client.client.get(URL, {"query": 'mutation { deleteCounterparty(id: "1") { __typename } }'})
    assert response.status_code == 400, response.content
    assert response.json() == {"message": "mutations are not allowed when using GET"}


# --- found while fixing 5: two predicates on one field lost the client's order ------------------


def test_two_predicates_on_one_field_keep_the_order(gql, org):
    client = gql("viewer")
    for name in ("Alpha", "Bravo", "Charlie"):
        Counterparty.objects.create(organization=org, name=name, kind="customer", reference=name[0])
    rows = client(
        '{ counterparties(filters: {reference: {not: ["X"], isEmpty: false}}, order: [{field: NAME, direction: DESC}]) '
        "{ results { name } } }"
    )["counterparties"]["results"]
    assert [row["name"] for row in rows] == ["Charlie", "Bravo", "Alpha"]

"""`POST /api/graphql` through the real view with real JWTs: authentication, roles, filters,
ordering, pagination, the N+1 wall, the abuse limits and the mutations' typed errors."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from graphql import get_introspection_query

from contracts.models import Contract, Counterparty
from events.models import Event
from tests.breaches.factories import T0, make_job, make_rule
from tests.contracts.factories import make_contract
from tests.graphql.conftest import URL

pytestmark = pytest.mark.django_db

ERROR = "... on OperationError { kind message fields { path messages } }"


# --- authentication and roles ---------------------------------------------------------------


def test_no_token_is_a_401_with_the_json_envelope(anon):
    response = anon.post(URL, {"query": "{ contracts { totalCount } }"}, format="json")
    assert response.status_code == 401
    assert response.json() == {"message": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_a_401_like_rest(anon):
    anon.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    response = anon.post(URL, {"query": "{ me { role } }"}, format="json")
    assert response.status_code == 401 and response.json()["message"] == "Malformed token."


def test_a_get_with_a_repeated_parameter_is_a_400_not_its_last_value(gql):
    # As under /api/v1/ (config.api.filters.single_values): strawberry read the last `query`.
    client = gql("viewer").client
    ok = client.get(URL, {"query": "{ me { role } }"})
    assert ok.status_code == 200 and ok.json()["data"]["me"]["role"] == "viewer"
    response = client.get(f"{URL}?query=%7B+me+%7B+role+%7D+%7D&query=%7B+contracts+%7B+totalCount+%7D+%7D")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "message": "Repeated query parameter: query; send each once.",
        "errors": {"query": ["Given 2 times; send it once."]},
    }


def test_me_names_the_caller_organization_and_role(gql):
    data = gql("operator")("{ me { role organization { slug } user { username } } }")["me"]
    assert data["role"] == "operator" and data["organization"]["slug"] == "acme"


def test_memberships_are_for_admins_only(gql):
    body = gql("manager")("{ memberships { totalCount } }", errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "admin role" in body["errors"][0]["message"]
    assert gql("admin")("{ memberships { totalCount } }")["memberships"]["totalCount"] >= 1


@pytest.mark.parametrize(
    ("role", "mutation", "allowed"),
    [
        ("viewer", 'createCounterparty(input: {name: "X", kind: "customer"})', False),
        ("operator", 'createCounterparty(input: {name: "X", kind: "customer"})', False),
        ("manager", 'createCounterparty(input: {name: "X", kind: "customer"})', True),
        ("viewer", 'createWorkOrder(input: {reportedAt: "2026-03-10T09:00:00Z", priority: "high"})', False),
        ("operator", 'createWorkOrder(input: {reportedAt: "2026-03-10T09:00:00Z", priority: "high"})', True),
    ],
)
def test_writes_follow_the_rest_roles(gql, role, mutation, allowed):
    data = gql(role)(f"mutation {{ m: {mutation} {{ __typename {ERROR} }} }}")["m"]
    if allowed:
        assert data["__typename"] != "OperationError", data
    else:
        assert data["kind"] == "FORBIDDEN" and data["message"].startswith("This needs the")


# --- lists: filters, ordering, pagination -------------------------------------------------------


@pytest.fixture
def contracts(org):
    return [
        make_contract(org, name="Alpha", status="active"),
        make_contract(org, name="Bravo", status="draft", expiry_date=dt.date(2027, 6, 30)),
        make_contract(org, name="Charlie", status="suspended", remarks=""),
    ]


def _names(data) -> list[str]:
    return [c["name"] for c in data["contracts"]["results"]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ('{status: {eq: "active"}}', ["Alpha"]),
        ('{status: {in: ["active", "suspended"]}}', ["Alpha", "Charlie"]),
        ('{status: {not: ["draft"]}}', ["Alpha", "Charlie"]),
        ("{status: {in: []}}", []),
        ('{expiryDate: {gt: "2027-01-01"}}', ["Bravo"]),
        ('{expiryDate: {gte: "2026-01-01", lt: "2027-01-01"}}', ["Alpha", "Charlie"]),
        ("{noticeDate: {isEmpty: true}}", []),
        ("{noticeDate: {isEmpty: false}}", ["Alpha", "Bravo", "Charlie"]),
    ],
)
def test_filters_speak_the_rest_vocabulary(gql, contracts, filters, expected):
    data = gql("viewer")(f"{{ contracts(filters: {filters}) {{ totalCount results {{ name }} }} }}")
    assert _names(data) == expected and data["contracts"]["totalCount"] == len(expected)


def test_ids_filter_and_a_reference_filter(gql, contracts):
    ids = [contracts[0].pk, contracts[2].pk]
    data = gql("viewer")(f"{{ contracts(filters: {{ids: {{in: {ids}}}}}) {{ results {{ name }} }} }}")
    assert _names(data) == ["Alpha", "Charlie"]
    counterparty = contracts[1].counterparty_id
    data = gql("viewer")(
        f"{{ contracts(filters: {{counterpartyId: {{eq: {counterparty}}}}}) {{ results {{ name }} }} }}"
    )
    assert _names(data) == ["Bravo"]


def test_a_malformed_filter_value_is_a_bad_request_naming_the_field(gql, contracts):
    body = gql("viewer")('{ contracts(filters: {status: {eq: "nope"}}) { totalCount } }', errors=True)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST" and "status" in error["extensions"]["errors"]
    assert error["message"] == "Invalid filter: status"  # REST's message


def test_ordering_on_the_rest_sort_keys(gql, contracts):
    query = "{ contracts(order: [{field: NAME, direction: DESC}]) { results { name } } }"
    assert _names(gql("viewer")(query)) == ["Charlie", "Bravo", "Alpha"]
    assert _names(gql("viewer")("{ contracts { results { name } } }")) == ["Alpha", "Bravo", "Charlie"]  # REST default


def test_offset_pagination_with_total_count(gql, contracts):
    data = gql("viewer")("{ contracts(pagination: {offset: 1, limit: 1}) { totalCount results { name } } }")
    assert data["contracts"]["totalCount"] == 3 and _names(data) == ["Bravo"]


def test_nested_lists_take_the_same_arguments(gql, org):
    counterparty = Counterparty.objects.create(organization=org, name="Fleet", kind="customer")
    for name in ("One", "Two", "Three"):
        make_contract(org, counterparty=counterparty, name=name, status="active" if name != "Two" else "draft")
    query = f"""{{ counterparty(id: {counterparty.pk}) {{
        contracts(filters: {{status: {{eq: "active"}}}}, order: [{{field: NAME, direction: DESC}}]) {{ name }}
        firstTwo: contracts(pagination: {{limit: 2}}) {{ name }} }} }}"""
    data = gql("viewer")(query)["counterparty"]
    assert [c["name"] for c in data["contracts"]] == ["Three", "One"]
    assert [c["name"] for c in data["firstTwo"]] == ["One", "Three"]


def test_events_since_reads_forward_from_the_cursor(gql, org, contracts):
    first = Event.objects.filter(organization=org).order_by("id").first()
    if first is None:  # factories write rows directly: make two events through a service
        gql("manager")(f"mutation {{ submitContract(id: {contracts[1].pk}) {{ __typename }} }}")
        first = Event.objects.filter(organization=org).order_by("id").first()
    data = gql("viewer")(f"{{ events(filters: {{since: {first.pk - 1}}}) {{ results {{ id type }} }} }}")
    ids = [int(e["id"]) for e in data["events"]["results"]]
    assert ids == sorted(ids) and ids[0] == first.pk


# --- the N+1 wall -----------------------------------------------------------------------------------

DEEP = """{ contracts(pagination: {limit: 100}) { totalCount results {
  id name counterparty { name }
  slaRules { id name calendar { name } clocks { id state dueAt breach { id state } } breaches { id penaltyAmount } }
  workOrders { reference holds { kind } slaClocks { state } }
  ledgerEntries { hours entryType } lineItems { description } } } }"""


def _deep_queries(gql, org, contracts: int) -> int:
    for index in range(contracts):
        contract = make_contract(org, name=f"Deep {index:03d}", status="active")
        rule = make_rule(contract)
        make_job(contract, T0, now=T0)
        later = T0 + dt.timedelta(hours=3)
        make_job(contract, later, now=later + dt.timedelta(hours=1), responded_at=later + dt.timedelta(hours=1))
        assert rule.pk
    client = gql("viewer", org=org)
    with CaptureQueriesContext(connection) as captured:
        data = client(DEEP)
    assert data["contracts"]["totalCount"] == Contract.objects.filter(organization=org).count()
    return len(captured.captured_queries)


def test_the_deep_contract_query_does_not_grow_with_rows(gql, org, other_org):
    few = _deep_queries(gql, other_org, 2)
    many = _deep_queries(gql, org, 20)
    # auth (membership), count, contracts + counterparty, then one query per nested relation:
    # rules (+calendar), clocks (+breach), rule breaches, work orders, holds, job clocks,
    # ledger entries, line items.
    assert many == few, (few, many)
    assert many <= 14


# --- abuse limits ----------------------------------------------------------------------------------


def _refused(client, query: str) -> str:
    response = client.post(query)
    body = response.json()
    assert response.status_code == 200 and body["data"] is None, body
    return body["errors"][0]["message"]


def test_a_query_deeper_than_10_is_refused_before_it_runs(gql, org):
    client = gql("viewer")
    deep = "{ contracts { results " + "{ counterparty { contracts " * 5 + "{ name }" + " } }" * 5 + " } }"
    with CaptureQueriesContext(connection) as captured:
        message = _refused(client, deep)
    assert "exceeds maximum operation depth of 10" in message
    assert len(captured.captured_queries) <= 1  # the token's membership only: nothing of the query ran


def test_an_alias_starting_with_two_underscores_is_not_introspection(gql, org):
    """Only `__schema`, `__type` and `__typename` by their own name are exempt from the depth
    limit; the alias `__deep` went 24 deep (found by an outside tester)."""
    deep = "{ contracts { results " + "{ counterparty { contracts " * 5 + "{ name }" + " } }" * 5 + " } }"
    aliased = deep.replace("{ contracts", "{ __deep: contracts", 1)
    assert "exceeds maximum operation depth of 10" in _refused(gql("viewer"), aliased)
    introspection = (
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }"
    )
    assert gql("viewer")(introspection)["__schema"]["types"]


def test_the_full_introspection_query_has_no_errors(gql):
    """What GraphiQL and code generators send. The action mutations' `input` was non-null with a
    default of None, which graphql-core cannot print: 11 "Internal server error." at their
    `args[input].defaultValue` (found by an outside tester)."""
    schema = gql("viewer")(get_introspection_query(descriptions=True))["__schema"]
    mutation = next(t for t in schema["types"] if t["name"] == schema["mutationType"]["name"])
    approve = next(f for f in mutation["fields"] if f["name"] == "approveContract")
    (argument,) = [a for a in approve["args"] if a["name"] == "input"]
    assert argument["type"] == {"kind": "INPUT_OBJECT", "name": "CommentInput", "ofType": None}
    assert argument["defaultValue"] == "null"  # optional, as before: omitted or null is an empty body


def test_a_nested_list_without_pagination_is_a_page_of_100(gql, org):
    counterparty = Counterparty.objects.create(organization=org, name="Fleet", kind="customer")
    for index in range(101):
        make_contract(org, counterparty=counterparty, name=f"C{index:03d}")
    query = f"{{ counterparty(id: {counterparty.pk}) {{ contracts {{ name }} }} }}"
    assert len(gql("viewer")(query)["counterparty"]["contracts"]) == 100


def _contract_with_10_jobs(org) -> Contract:
    contract = make_contract(org, status="active")
    for hour in range(10):
        make_job(contract, T0 + dt.timedelta(hours=hour))
    return contract


def _nested_work_orders(contract, levels: int) -> str:
    """`contract { workOrders { contract { workOrders .. } } }`, `levels` deep: with 10 jobs,
    10 + 100 + .. work orders (four levels: 11,110)."""
    inner = "id"
    for _ in range(levels):
        inner = f"workOrders {{ contract {{ {inner} }} }}"
    return f"{{ contract(id: {contract.pk}) {{ {inner} }} }}"


def test_nested_lists_that_multiply_past_10000_objects_are_refused(gql, org):
    """`contract { workOrders { contract { workOrders .. } } }` multiplies: 10 jobs at four levels
    are 10 + 100 + 1,000 + 10,000 work orders. Refused with one error and no data; three levels
    (1,110) are answered."""
    contract = _contract_with_10_jobs(org)
    client = gql("viewer")
    three = client(_nested_work_orders(contract, 3))["contract"]
    assert sum(len(c["contract"]["workOrders"]) for c in three["workOrders"]) == 100
    response = client.post(_nested_work_orders(contract, 4))
    body = response.json()
    assert response.status_code == 200 and body["data"] is None, body
    (error,) = body["errors"]
    assert "more than 10,000 objects in its lists" in error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"


def test_a_query_past_the_list_limit_logs_no_traceback(gql, org, caplog):
    """A client's error: every list reached past the limit raised its own error and strawberry
    logged each with its traceback (68 tracebacks, 93 KB for one request, found by an outside
    tester). At most one line, no traceback."""
    with caplog.at_level(logging.INFO):
        body = gql("viewer")(_nested_work_orders(_contract_with_10_jobs(org), 4), errors=True)
    assert body["data"] is None and len(body["errors"]) == 1
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
    assert len([record for record in caplog.records if "10,000 objects" in record.getMessage()]) <= 1


def test_more_than_15_aliases_are_refused(gql):
    query = "{ " + " ".join(f"a{i}: me {{ role }}" for i in range(16)) + " }"
    assert "aliases" in _refused(gql("viewer"), query).lower()


def test_more_than_2000_tokens_are_refused(gql):
    query = "{ " + " ".join("me { role }" for _ in range(600)) + " }"
    assert "token" in _refused(gql("viewer"), query).lower()


@pytest.mark.parametrize("pagination", ["{limit: 101}", "$p"])
def test_a_page_over_100_is_refused_not_clamped(gql, pagination):
    client = gql("viewer")
    declared = "($p: OffsetPaginationInput)" if pagination == "$p" else ""
    response = client.client.post(
        URL,
        {
            "query": f"query{declared} {{ contracts(pagination: {pagination}) {{ totalCount }} }}",
            "variables": {"p": {"limit": 500}},
        },
        format="json",
    )
    body = response.json()
    assert body["data"] is None and "between 0 and 100" in body["errors"][0]["message"], body


# --- mutations: the REST write path, typed ------------------------------------------------------------


def test_create_counterparty_returns_the_object_and_writes_the_event(gql, org):
    data = gql("manager")(
        'mutation { createCounterparty(input: {name: "Fleet Co", kind: "customer", sourceID: "F-1"}) '
        f"{{ __typename ... on Counterparty {{ id name sourceID }} {ERROR} }} }}"
    )["createCounterparty"]
    assert data["__typename"] == "Counterparty" and data["name"] == "Fleet Co" and data["sourceID"] == "F-1"
    assert Event.objects.filter(organization=org, type="counterparty.created", object_id=data["id"]).exists()


def test_validation_errors_carry_rest_messages_and_graphql_paths(gql, org, api):
    contract = make_contract(org)
    mutation = (
        f'mutation {{ createLineItem(contractId: {contract.pk}, input: {{description: "", unitPrice: "-1"}}) '
        f"{{ __typename {ERROR} }} }}"
    )
    data = gql("manager")(mutation)["createLineItem"]
    rest = api("manager").post(
        f"/api/v1/contracts/{contract.pk}/line_items", {"description": "", "unit_price": "-1"}, format="json"
    )
    assert rest.status_code == 422
    assert data["kind"] == "INVALID" and data["message"] == rest.json()["message"]
    paths = {f["path"]: f["messages"] for f in data["fields"]}
    assert paths == {
        ("unitPrice" if key == "unit_price" else key): messages for key, messages in rest.json()["errors"].items()
    }


def test_an_illegal_transition_is_a_conflict(gql, org):
    contract = make_contract(org, status="active")
    data = gql("manager")(f"mutation {{ submitContract(id: {contract.pk}) {{ __typename {ERROR} }} }}")
    assert data["submitContract"]["kind"] == "CONFLICT"


def test_the_lifecycle_through_mutations(gql, org):
    contract = make_contract(org)
    manager = gql("manager")
    data = manager(f"mutation {{ submitContract(id: {contract.pk}) {{ ... on Contract {{ status }} }} }}")
    assert data["submitContract"]["status"] == "pending_approval"
    data = manager(
        f'mutation {{ approveContract(id: {contract.pk}, input: {{comment: "ok"}}) {{ __typename {ERROR} }} }}'
    )
    assert data["approveContract"]["kind"] == "FORBIDDEN"  # the submitter may not approve (four eyes)


def test_post_ledger_entry_is_idempotent_with_a_key(gql, org):
    contract = make_contract(org, status="active")
    mutation = f"""mutation($key: String) {{ postLedgerEntry(idempotencyKey: $key, input: {{contractId: {contract.pk},
        entryType: "credit", hours: "5.00", occurredAt: "2026-03-01T10:00:00Z"}})
        {{ __typename ... on LedgerEntry {{ id hours }} {ERROR} }} }}"""
    client = gql("manager")
    first = client.post(mutation, {"key": "k-1"}).json()["data"]["postLedgerEntry"]
    second = client.post(mutation, {"key": "k-1"}).json()["data"]["postLedgerEntry"]
    assert first["__typename"] == "LedgerEntry" and first == second, first
    assert contract.ledger_entries.count() == 1


def test_post_ledger_entry_replays_a_key_only_to_a_caller_who_may_post(gql, org):
    contract = make_contract(org, status="active")
    mutation = f"""mutation($key: String) {{ postLedgerEntry(idempotencyKey: $key, input: {{contractId: {contract.pk},
        entryType: "adjustment", hours: "3.00", description: "fix"}})
        {{ __typename ... on LedgerEntry {{ id }} {ERROR} }} }}"""
    assert gql("manager").post(mutation, {"key": "adj-xyz"}).json()["data"]["postLedgerEntry"]["id"]
    refused = gql("operator").post(mutation, {"key": "adj-xyz"}).json()["data"]["postLedgerEntry"]
    assert refused["kind"] == "FORBIDDEN" and "manager role" in refused["message"], refused
    assert contract.ledger_entries.count() == 1


def test_a_decimal_input_takes_the_rest_rule(gql, org):
    # strawberry's Decimal() read "1_0" as 10 and passed "10" on to REST, past REST's check.
    contract = make_contract(org, status="active")
    mutation = f"""mutation($hours: Decimal) {{ postLedgerEntry(input: {{contractId: {contract.pk},
        entryType: "credit", hours: $hours}}) {{ __typename ... on LedgerEntry {{ hours }} {ERROR} }} }}"""
    client = gql("manager")
    for hours in ("1_0", "١٢", " 1", "1e1"):
        body = client.post(mutation, {"hours": hours}).json()
        assert body["data"] is None and "plain decimal" in body["errors"][0]["message"], (hours, body)
    inline = client.post(mutation.replace("($hours: Decimal)", "").replace("$hours", '"1_0"')).json()
    assert inline["data"] is None and "plain decimal" in inline["errors"][0]["message"], inline
    # A number and a plain string are taken; a fine number reaches REST as plain text (its own error).
    assert client(mutation, {"hours": 2.5})["postLedgerEntry"]["hours"] == "2.50"
    assert client(mutation, {"hours": "3"})["postLedgerEntry"]["hours"] == "3.00"
    tiny = client(mutation, {"hours": "0.0000001"})["postLedgerEntry"]
    assert tiny["kind"] == "INVALID" and "decimal places" in tiny["fields"][0]["messages"][0], tiny
    assert contract.ledger_entries.count() == 2


def test_delete_counterparty(gql, org):
    counterparty = Counterparty.objects.create(organization=org, name="Gone", kind="customer")
    data = gql("manager")(f"mutation {{ deleteCounterparty(id: {counterparty.pk}) {{ ... on Deleted {{ id }} }} }}")
    assert data["deleteCounterparty"]["id"] == str(counterparty.pk)
    assert not Counterparty.objects.filter(pk=counterparty.pk).exists()


def test_webhooks_admins_write_and_the_secret_is_shown_once(gql, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True  # no delivery happens; the URL need only be allowed
    mutation = (
        'mutation { createWebhook(input: {url: "http://127.0.0.1:9/sla", eventTypes: ["breach.*"]}) '
        f"{{ __typename ... on Webhook {{ id secret eventTypes }} {ERROR} }} }}"
    )
    assert gql("manager")(mutation)["createWebhook"]["kind"] == "FORBIDDEN"
    created = gql("admin")(mutation)["createWebhook"]
    assert created["__typename"] == "Webhook" and created["secret"], created
    assert created["eventTypes"] == ["breach.*"]
    listed = gql("manager")("{ webhooks { totalCount results { id secret } } }")["webhooks"]
    assert listed["totalCount"] == 1 and listed["results"][0]["secret"] is None
    assert gql("viewer")("{ webhooks { totalCount } }", errors=True)["errors"][0]["extensions"]["code"] == "FORBIDDEN"

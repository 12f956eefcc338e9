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


# --- reference and id filters take what REST takes --------------------------------------------------

BIG = 2**31 + 5  # past GraphQL's Int (32 bits); REST's ids go to 2^63 - 1


def test_a_reference_filter_takes_any_id_rest_takes_and_no_comparison(gql, hourly, theirs_contract):
    client = gql("operator")
    contracts = "query($f: ContractFilter) { contracts(filters: $f) { totalCount } }"
    rest = client.client.get(f"/api/v1/contracts?counterparty_id={BIG}")
    assert rest.status_code == 200 and rest["X-Pagination-Total-Entries"] == "0"
    for value in (str(BIG), BIG):  # an ID: a string, or the number an Int client sends
        assert client(contracts, {"f": {"counterpartyId": {"eq": value}}})["contracts"]["totalCount"] == 0
    mine = hourly.counterparty_id
    query = f"{{ contracts(filters: {{counterpartyId: {{in: [{mine}, {BIG}]}}}}) {{ totalCount }} }}"
    assert client(query)["contracts"]["totalCount"] == 1
    # Another organization's counterparty matches nothing, as in REST.
    theirs = {"f": {"counterpartyId": {"eq": theirs_contract.counterparty_id}}}
    assert client(contracts, theirs)["contracts"]["totalCount"] == 0
    # REST refuses comparisons on a reference; GraphQL's ReferenceFilter does not offer them.
    assert client.client.get("/api/v1/contracts?counterparty_id=>1").status_code == 400
    body = client("{ contracts(filters: {counterpartyId: {gt: 1}}) { totalCount } }", errors=True)
    assert "gt" in body["errors"][0]["message"] and "ReferenceFilter" in body["errors"][0]["message"]


@pytest.mark.parametrize("value", ["abc", "0", "1.5", "٣", str(2**63)])
def test_a_bad_reference_id_is_refused_with_rests_message(gql, hourly, value):
    client = gql("operator")
    rest = client.client.get("/api/v1/contracts", {"counterparty_id": value})
    assert rest.status_code == 400
    body = client(
        "query($f: ContractFilter) { contracts(filters: $f) { totalCount } }",
        {"f": {"counterpartyId": {"eq": value}}},
        errors=True,
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["errors"] == {"counterpartyId": rest.json()["errors"]["counterparty_id"]}


def test_ids_take_ranges_as_rest_and_a_childs_contract_id_any_id(gql, hourly):
    client = gql("operator")
    rest = client.client.get(f"/api/v1/contracts?ids=>={hourly.pk}")
    data = client(f'{{ contracts(filters: {{ids: {{gte: "{hourly.pk}", lt: "{BIG}"}}}}) {{ totalCount }} }}')
    assert data["contracts"]["totalCount"] == int(rest["X-Pagination-Total-Entries"]) == 1
    # A contract's children at the root: `contractId` is an ID, as the route's id.
    data = client(f'{{ visitPlans(filters: {{contractId: "{BIG}"}}) {{ totalCount }} }}')
    assert data["visitPlans"]["totalCount"] == 0
    data = client(f"{{ visitPlans(filters: {{contractId: {hourly.pk}}}) {{ totalCount }} }}")
    assert data["visitPlans"]["totalCount"] == 1
    body = client('{ visitPlans(filters: {contractId: "abc"}) { totalCount } }', errors=True)
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert set(body["errors"][0]["extensions"]["errors"]) == {"contractId"}


# --- event ids beyond 32 bits --------------------------------------------------------------------------


@pytest.fixture
def big_events(org):
    from events.models import Event
    from tests.events.helpers import emit

    first, second = emit(org, "thing.happened", n=1), emit(org, "thing.happened", n=2)
    # Ids past 2^31, in order (the sequence is not moved: these are the newest rows either way).
    Event.objects.filter(pk=second.pk).update(id=BIG + 1, object_id=2**40)
    Event.objects.filter(pk=first.pk).update(id=BIG)
    return BIG, BIG + 1


def test_event_ids_beyond_32_bits_pass_both_ways(gql, big_events):
    first, second = big_events
    client = gql("viewer")
    query = "query($since: BigInt) { events(filters: {since: $since}) { results { id objectId } } }"
    for since in (first, str(first)):
        data = client(query, {"since": since})["events"]["results"]
        assert data == [{"id": str(second), "objectId": 2**40}]
    literal = client(f"{{ events(filters: {{since: {first}}}) {{ results {{ id }} }} }}")["events"]["results"]
    assert literal == [{"id": str(second)}]
    rest = client.client.get(f"/api/v1/events?since={first}").json()
    assert [r["id"] for r in rest] == [second] and rest[0]["object_id"] == 2**40
    data = client(f"{{ events(filters: {{objectId: {{eq: {2**40}}}}}) {{ totalCount }} }}")
    assert data["events"]["totalCount"] == 1
    data = client(f'{{ events(filters: {{ids: {{eq: "{second}"}}}}) {{ totalCount }} }}')
    assert data["events"]["totalCount"] == 1
    # An old client's small Int literal keeps its meaning.
    assert len(client("{ events(filters: {since: 0}) { results { id } } }")["events"]["results"]) == 2
    body = client(query, {"since": "1e3"}, errors=True)
    assert "BigInt cannot represent" in body["errors"][0]["message"]


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), ("1e3", '"1e3"'), (" 1", '" 1"'), (1.5, "1.5")])
def test_a_big_int_refused_is_quoted_as_the_client_wrote_it(gql, value, shown):
    # A boolean was quoted as Python writes it ("True") (regression sweep of the tenth round).
    query = "query($since: BigInt) { events(filters: {since: $since}) { totalCount } }"
    body = gql("viewer")(query, {"since": value}, errors=True)
    assert f"BigInt cannot represent {shown}: a whole number" in body["errors"][0]["message"], body


FOLLOW = """subscription Follow($sinceId: BigInt) {
  events(sinceId: $sinceId) { kind cursor event { id objectType } }
}"""


@pytest.mark.django_db(transaction=True)
def test_the_subscription_resumes_after_an_event_id_beyond_32_bits(token, big_events):
    from tests.graphql.test_subscriptions import acked, messages
    from tests.stream.conftest import run

    first, second = big_events

    async def scenario():
        comm = await acked(token("viewer"))
        payload = {"query": FOLLOW, "variables": {"sinceId": str(first)}}
        await comm.send_json_to({"id": "2", "type": "subscribe", "payload": payload})
        start, replayed = await messages(comm, 2)
        assert start["kind"] == "SUBSCRIBED" and start["cursor"] == first  # a JSON number, as REST writes ids
        assert replayed["cursor"] == second and replayed["event"]["id"] == str(second)
        # An old client's query (`since: Int`) still runs; both at once is a BAD_REQUEST naming both.
        old = {"query": "subscription { events(since: 0) { kind cursor } }"}
        await comm.send_json_to({"id": "3", "type": "subscribe", "payload": old})
        both = {"query": f"subscription {{ events(since: 1, sinceId: {first}) {{ kind }} }}"}
        await comm.send_json_to({"id": "4", "type": "subscribe", "payload": both})
        seen = {}
        while not {"3", "4"} <= set(seen):
            message = await comm.receive_json_from(timeout=5)
            if message["id"] in ("3", "4") and message["id"] not in seen:
                seen[message["id"]] = message
        assert seen["3"]["type"] == "next" and seen["3"]["payload"]["data"]["events"]["kind"] == "SUBSCRIBED"
        assert seen["4"]["type"] == "error"
        assert set(seen["4"]["payload"][0]["extensions"]["errors"]) == {"since", "sinceId"}
        await comm.disconnect()

    run(scenario)


def test_redelivery_takes_event_ids_beyond_32_bits(gql, org, big_events):
    from tests.notifications.test_webhooks_api import make_endpoint

    first, second = big_events
    endpoint = make_endpoint(org)
    mutation = """mutation($id: ID!, $input: RedeliverEventsInput!) {
      redeliverWebhookEvents(id: $id, input: $input) {
        ... on RedeliveryQueued { queued eventIds } ... on OperationError { kind message }
      }
    }"""
    data = gql("admin")(mutation, {"id": endpoint.pk, "input": {"since": first, "until": second}})
    assert data["redeliverWebhookEvents"] == {"queued": 1, "eventIds": [str(second)]}


# --- the same words as REST for the same bad input ------------------------------------------------------


def test_a_bad_visit_plan_id_and_window_days_say_what_rest_says(gql, hourly):
    client = gql("manager")
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/visits?visit_plan_id=abc").json()
    body = client(f'{{ contractVisits(contractId: {hourly.pk}, visitPlanIds: ["abc"]) {{ totalCount }} }}', errors=True)
    (error,) = body["errors"]
    assert error["message"] == rest["message"].replace("visit_plan_id", "visitPlanIds").replace(", comma-separated", "")
    assert error["extensions"]["errors"] == {"visitPlanIds": rest["errors"]["visit_plan_id"]}
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/balance?window_days=0").json()
    body = client(f"{{ contractBalance(contractId: {hourly.pk}, windowDays: 0) {{ remainingHours }} }}", errors=True)
    (error,) = body["errors"]
    assert error["message"] == rest["message"]
    assert error["extensions"]["errors"] == {"windowDays": rest["errors"]["window_days"]}


def test_contract_visits_order_as_rest_sort(gql, hourly):
    client = gql("operator")
    query = (
        f"{{ contractVisits(contractId: {hourly.pk}, {WINDOW}, order: [{{field: STATE}}, "
        "{field: OCCURRENCE, direction: DESC}]) { results { occurrence state } } }"
    )
    shown = client(query)["contractVisits"]["results"]
    rest = client.client.get(f"/api/v1/contracts/{hourly.pk}/visits?{REST_WINDOW}&sort=state,-occurrence").json()
    assert [(v["occurrence"], v["state"]) for v in shown] == [(v["occurrence"], v["state"]) for v in rest]
    assert shown[0]["occurrence"] == "2026-04-05T23:00:00Z"  # the window's last hour first


def test_deliveries_of_a_webhook_take_any_id_as_rests_route(gql, org):
    from tests.notifications.test_webhooks_api import make_endpoint

    endpoint = make_endpoint(org)
    client = gql("manager")
    query = "query($w: ID) { webhookDeliveries(filters: {webhookId: $w}) { totalCount } }"
    assert client(query, {"w": endpoint.pk})["webhookDeliveries"]["totalCount"] == 0
    assert client(query, {"w": str(BIG)})["webhookDeliveries"]["totalCount"] == 0
    assert client.client.get(f"/api/v1/webhooks/{BIG}/deliveries").status_code == 404
    body = client(query, {"w": "abc"}, errors=True)
    assert body["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "errors": {"webhookId": ["'abc' is not an id."]}}


@pytest.mark.django_db(transaction=True)
def test_a_negative_since_id_is_refused_naming_since_id(token):
    # BigInt takes -1; the cursor does not. The error said "since must be an event id" to a client
    # that had sent no `since` (regression sweep of the tenth round).
    from tests.graphql.test_subscriptions import acked
    from tests.stream.conftest import run

    async def scenario():
        comm = await acked(token("viewer"))
        payload = {"query": FOLLOW, "variables": {"sinceId": -1}}
        await comm.send_json_to({"id": "2", "type": "subscribe", "payload": payload})
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "error", message
        error = message["payload"][0]
        assert error["message"].startswith("sinceId must be an event id"), error
        assert error["extensions"]["errors"] == {"sinceId": ["Must be 0 to 9223372036854775807."]}
        await comm.disconnect()

    run(scenario)

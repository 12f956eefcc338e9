"""A role reads the events of the resources it may read (events.visibility), through every way
events leave the service: REST, GraphQL, the WebSocket and SSE streams and the GraphQL
subscription. Found by an outside sweep: a viewer read assets' serial numbers and webhook URLs
in event payloads, though both resources are closed to viewers."""

from __future__ import annotations

import pytest

from contracts.assets_api import AssetViewSet
from events.visibility import _read_roles
from notifications.api import WebhookEndpointViewSet
from tests.events.helpers import emit
from tests.graphql.conftest import GraphQLClient

from .conftest import closed_with, connected, events, run, subscribed, write

TYPES = ["work_order.created", "asset.created", "visit_plan.created", "contract_rule.created", "webhook.created",
         "billing.exported", "contract_template.created", "organization.updated"]  # fmt: skip
SEEN = {
    "viewer": {"work_order.created"},
    "operator": {"work_order.created", "asset.created", "visit_plan.created", "contract_rule.created"},
    "manager": set(TYPES),
    "admin": set(TYPES),
}


def test_each_restricted_type_follows_its_resources_read_role():
    assert _read_roles["asset."] == AssetViewSet.read_role == "operator"
    assert _read_roles["webhook."] == WebhookEndpointViewSet.read_role == "manager"
    assert set(_read_roles) == {
        "asset.", "visit_plan.", "contract_rule.", "webhook.", "billing.", "contract_template.", "organization.",
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "operator", "manager", "admin"])
def test_rest_and_graphql_list_only_what_the_role_reads(api, org, role):
    for event_type in TYPES:
        emit(org, event_type, secret="serial-123")
    client = api(role)
    listed = client.get("/api/v1/events", {"per_page": 100}).json()
    assert {e["type"] for e in listed} == SEEN[role]
    data = GraphQLClient(client)("{ events(pagination: {limit: 100}) { results { type } } }")
    assert {e["type"] for e in data["events"]["results"]} == SEEN[role]
    connection = GraphQLClient(client)("{ eventsConnection(first: 100) { edges { node { type } } } }")
    assert {e["node"]["type"] for e in connection["eventsConnection"]["edges"]} == SEEN[role]
    hidden = [e for e in TYPES if e not in SEEN[role]]
    if hidden:
        event = emit(org, hidden[0])
        assert client.get(f"/api/v1/events/{event.pk}").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_websocket_stream_skips_what_the_viewer_may_not_read(token, org):
    async def scenario():
        comm = await connected(token("viewer"))
        await subscribed(comm)
        await write(org, "asset.created", serial_number="SN-1")
        await write(org, "webhook.created", url="https://hooks.example.com/?token=x")
        shown = await write(org, "work_order.created")
        (message,) = await events(comm, 1)
        assert message["cursor"] == shown.pk
        await comm.disconnect()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_demotion_closes_the_stream_4401(make_member, org):
    """The stream's events are chosen by the role it was opened with: a new role reconnects."""
    from channels.db import database_sync_to_async

    from tenancy.auth import issue_tokens
    from tenancy.models import Membership

    membership = make_member("manager", org)
    raw = issue_tokens(membership)["access"]

    def demote():
        member = Membership.objects.get(pk=membership.pk)
        member.role = "viewer"
        member.save()

    async def scenario():
        comm = await connected(raw)
        await subscribed(comm)
        await database_sync_to_async(demote)()
        await write(org, "webhook.created", url="https://hooks.example.com/?token=x")
        code, before = await closed_with(comm)
        assert code == 4401 and "viewer" in before[-1]["message"]
        assert all(m["type"] != "event" for m in before)

    run(scenario)


@pytest.mark.django_db
def test_sse_replays_only_what_the_role_reads(make_member, org):
    from django.test import Client

    from tenancy.auth import issue_tokens

    first = emit(org, "work_order.created")
    emit(org, "asset.created", serial_number="SN-1")
    last = emit(org, "work_order.created")
    auth = f"Bearer {issue_tokens(make_member('viewer', org))['access']}"
    response = Client().get(f"/api/v1/events/stream?since={first.pk - 1}", HTTP_AUTHORIZATION=auth)
    body = b"".join(response.streaming_content).decode()
    assert "SN-1" not in body and f"id: {first.pk}\n" in body and f"id: {last.pk}\n" in body


@pytest.mark.django_db(transaction=True)
def test_the_graphql_subscription_skips_what_the_viewer_may_not_read(token, org):
    from tests.graphql.test_subscriptions import acked, messages, subscribe

    async def scenario():
        comm = await acked(token("viewer"))
        await subscribe(comm)
        assert (await messages(comm, 1))[0]["kind"] == "SUBSCRIBED"
        await write(org, "asset.created", serial_number="SN-1")
        shown = await write(org, "work_order.created")
        (message,) = await messages(comm, 1)
        assert message["cursor"] == shown.pk
        await comm.disconnect()

    run(scenario)

"""`subscription { events }` over graphql-transport-ws at ws://HOST/api/graphql, through
config.asgi.application and Channels' WebsocketCommunicator: authentication in connection_init,
replay from `since` in order then live, the organization wall, the types filter, bad input,
RESET, and that the WebSocket carries subscriptions only."""

from __future__ import annotations

import json
import logging

import pytest
from channels.testing import WebsocketCommunicator

from tenancy.auth import CREDENTIALS_CLAIM, credentials_stamp
from tests.stream.conftest import closed_with, run, write

pytestmark = pytest.mark.django_db(transaction=True)

PROTOCOL = "graphql-transport-ws"
SUBSCRIPTION = """subscription Follow($since: Int, $types: [String!]) {
  events(since: $since, types: $types) { kind cursor types event { id type objectType payload actor { username } } }
}"""


async def opened(access: str | None, params: dict | None = None) -> WebsocketCommunicator:
    from config.asgi import application

    comm = WebsocketCommunicator(application, "/api/graphql", subprotocols=[PROTOCOL])
    ok, subprotocol = await comm.connect(timeout=5)
    assert ok and subprotocol == PROTOCOL
    payload = params if params is not None else ({"token": access} if access else {})
    await comm.send_json_to({"type": "connection_init", "payload": payload})
    return comm


async def acked(access: str, params: dict | None = None) -> WebsocketCommunicator:
    comm = await opened(access, params)
    ack = await comm.receive_json_from(timeout=5)
    assert ack["type"] == "connection_ack", ack
    return comm


async def subscribe(comm, since=None, types=None, op_id="1", query=SUBSCRIPTION) -> None:
    variables = {"since": since, "types": types}
    await comm.send_json_to({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})


async def messages(comm, count: int, timeout: float = 5) -> list[dict]:
    """The next `count` stream messages (`events` payloads), heartbeats skipped."""
    out = []
    while len(out) < count:
        message = await comm.receive_json_from(timeout=timeout)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data = message["payload"]["data"]["events"]
        if data["kind"] != "HEARTBEAT":
            out.append(data)
    return out


def test_connection_init_acknowledges_with_the_organization_and_role(token):
    async def scenario():
        comm = await opened(token("operator"))
        ack = await comm.receive_json_from(timeout=5)
        assert ack == {"type": "connection_ack", "payload": {"organization": "acme", "role": "operator"}}
        await comm.disconnect()

    run(scenario)


def test_an_authorization_header_style_param_is_accepted(token):
    async def scenario():
        comm = await acked("", {"Authorization": f"Bearer {token('viewer')}"})
        await comm.disconnect()

    run(scenario)


@pytest.mark.parametrize("params", [{}, {"token": "not.a.jwt"}, {"token": 42}, {"Authorization": "Basic abc"}])
def test_no_or_a_bad_token_is_refused_4403(params):
    async def scenario():
        comm = await opened(None, params)
        code, before = await closed_with(comm)
        assert code == 4403 and before == []

    run(scenario)


def test_subscribe_before_connection_init_is_refused_4401(token):
    async def scenario():
        from config.asgi import application

        comm = WebsocketCommunicator(application, "/api/graphql", subprotocols=[PROTOCOL])
        await comm.connect(timeout=5)
        await subscribe(comm)
        code, _ = await closed_with(comm)
        assert code == 4401

    run(scenario)


def test_an_expired_token_is_refused_and_one_expiring_closes_4401(org, make_member):
    import datetime as dt

    from rest_framework_simplejwt.tokens import AccessToken

    member = make_member("viewer", org)
    expired, expiring = AccessToken.for_user(member.user), AccessToken.for_user(member.user)
    for access in (expired, expiring):
        access["org"], access["role"] = org.slug, "viewer"
        access[CREDENTIALS_CLAIM] = credentials_stamp(member.user)
    now = dt.datetime.now(dt.UTC)
    expired.set_exp(from_time=now, lifetime=-dt.timedelta(seconds=5))

    async def scenario():
        comm = await opened(str(expired))
        code, _ = await closed_with(comm)
        assert code == 4403
        expiring.set_exp(from_time=dt.datetime.now(dt.UTC), lifetime=dt.timedelta(seconds=1.5))
        comm = await acked(str(expiring))
        await subscribe(comm)
        code, before = await closed_with(comm)
        assert code == 4401 and before[0]["payload"]["data"]["events"]["kind"] == "SUBSCRIBED"

    run(scenario)


def test_replay_from_since_in_order_then_live(token, org):
    first = write(org, "contract.created", n=1)
    async_events = []

    async def scenario():
        a = await first
        b = await write(org, "breach.opened", n=2)
        c = await write(org, "breach.closed", n=3)
        comm = await acked(token("viewer"))
        await subscribe(comm, since=a.pk)
        start, *replayed = await messages(comm, 3)
        assert start == {"kind": "SUBSCRIBED", "cursor": a.pk, "types": [], "event": None}
        assert [m["cursor"] for m in replayed] == [b.pk, c.pk]
        assert [m["event"]["type"] for m in replayed] == ["breach.opened", "breach.closed"]
        assert replayed[0]["event"] == {
            "id": str(b.pk), "type": "breach.opened", "objectType": "thing", "payload": {"n": 2}, "actor": None,
        }  # fmt: skip
        live = await write(org, "work_order.created", n=4)  # its commit pokes the connection
        (message,) = await messages(comm, 1)
        assert message["kind"] == "EVENT" and message["cursor"] == live.pk
        async_events.append(message)
        await comm.send_json_to({"id": "1", "type": "complete"})
        await comm.disconnect()

    run(scenario)
    assert async_events


def test_with_redis_down_a_subscription_replays_and_follows_by_re_reads(token, org, redis_down):
    """As the WebSocket stream (tests/stream/test_websocket.py): the layer's failures cost the
    pokes, not the subscription."""

    async def scenario():
        a = await write(org, "contract.created", n=1)
        b = await write(org, "breach.opened", n=2)
        comm = await acked(token("viewer"))
        await subscribe(comm, since=a.pk)
        start, replayed = await messages(comm, 2)
        assert start["kind"] == "SUBSCRIBED" and replayed["cursor"] == b.pk
        live = await write(org, "work_order.created", n=3)
        (message,) = await messages(comm, 1)
        assert message["kind"] == "EVENT" and message["cursor"] == live.pk
        await comm.disconnect()

    run(scenario)


def test_another_organizations_events_are_never_delivered(token, org, other_org):
    async def scenario():
        theirs_before = await write(other_org, "breach.opened", secret=True)
        ours = await write(org, "breach.opened", n=1)
        comm = await acked(token("viewer"))
        await subscribe(comm, since=0)
        start, replayed = await messages(comm, 2)
        assert start["kind"] == "SUBSCRIBED" and replayed["cursor"] == ours.pk
        await write(other_org, "breach.opened", secret=True)  # pokes only their group
        ours_live = await write(org, "breach.closed", n=2)
        (live,) = await messages(comm, 1)
        assert live["cursor"] == ours_live.pk and live["event"]["payload"] == {"n": 2}
        assert theirs_before.pk not in (replayed["cursor"], live["cursor"])
        await comm.disconnect()

    run(scenario)


def test_a_cursor_of_theirs_beyond_our_head_is_a_reset(token, org, other_org):
    async def scenario():
        ours = await write(org, "breach.opened")
        theirs = await write(other_org, "breach.opened")
        assert theirs.pk > ours.pk
        comm = await acked(token("viewer"))
        await subscribe(comm, since=theirs.pk)
        reset, start = await messages(comm, 2)
        assert reset == {"kind": "RESET", "cursor": ours.pk, "types": None, "event": None}
        assert start["kind"] == "SUBSCRIBED" and start["cursor"] == ours.pk
        await comm.disconnect()

    run(scenario)


def test_the_types_filter(token, org):
    async def scenario():
        await write(org, "contract.created")
        opened_ = await write(org, "breach.opened")
        await write(org, "work_order.created")
        closed = await write(org, "breach.closed")
        comm = await acked(token("viewer"))
        await subscribe(comm, since=0, types=["breach.*"])
        start, *got = await messages(comm, 3)
        assert start["types"] == ["breach.*"]
        assert [m["cursor"] for m in got] == [opened_.pk, closed.pk]
        await write(org, "contract.created")
        exact = await write(org, "breach.opened")
        (live,) = await messages(comm, 1)
        assert live["cursor"] == exact.pk
        await comm.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("since", "types", "field"),
    [
        (-1, None, "since"),
        (None, ["bad type!"], "types"),
        (None, ["x"] * 51, "types"),
        (None, ["*a*a*a*a*a*Q"], "types"),  # more than 4 wildcards
    ],
)
def test_bad_input_is_an_error_with_the_field(token, since, types, field):
    async def scenario():
        comm = await acked(token("viewer"))
        await subscribe(comm, since=since, types=types)
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "error" and message["id"] == "1", message
        (error,) = message["payload"]
        assert error["extensions"]["code"] == "BAD_REQUEST" and field in error["extensions"]["errors"]
        # The connection stays usable.
        await subscribe(comm, op_id="2")
        (start,) = await messages(comm, 1)
        assert start["kind"] == "SUBSCRIBED"
        await comm.disconnect()

    run(scenario)


def test_a_non_integer_since_is_refused_by_the_schema(token):
    async def scenario():
        comm = await acked(token("viewer"))
        await subscribe(comm, since="abc")
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "error" and "Int" in message["payload"][0]["message"]
        await comm.disconnect()

    run(scenario)


def test_queries_and_mutations_are_not_served_over_the_websocket(token):
    async def scenario():
        comm = await acked(token("admin"))
        await subscribe(comm, query="{ contracts { totalCount } }")
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "error" and "POST" in message["payload"][0]["message"]
        await comm.disconnect()

    run(scenario)


def test_subscriptions_running_at_once_on_one_socket_are_bounded(token, _stream_settings):
    """One socket may run STREAM["MAX_SUBSCRIPTIONS"] subscriptions: the next is refused with an
    error naming the limit (the socket stays open), and completing one makes room."""
    _stream_settings["MAX_SUBSCRIPTIONS"] = 2

    async def next_of(comm, op_id: str) -> dict:
        message = await comm.receive_json_from(timeout=5)
        assert message["id"] == op_id, message
        return message

    async def scenario():
        comm = await acked(token("viewer"))
        for op_id in ("1", "2"):
            await subscribe(comm, op_id=op_id)
            assert (await next_of(comm, op_id))["payload"]["data"]["events"]["kind"] == "SUBSCRIBED"
        await subscribe(comm, op_id="3")
        refused = await next_of(comm, "3")
        assert refused["type"] == "error", refused
        assert refused["payload"] == [
            {
                "message": "At most 2 subscriptions at once on one connection: complete one first.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
        await comm.send_json_to({"id": "1", "type": "complete"})
        await subscribe(comm, op_id="3")
        assert (await next_of(comm, "3"))["payload"]["data"]["events"]["kind"] == "SUBSCRIBED"
        await comm.disconnect()

    run(scenario)


def test_heartbeats_carry_the_cursor_past_filtered_events(token, org, _stream_settings):
    _stream_settings["HEARTBEAT"] = 0.3

    async def scenario():
        comm = await acked(token("viewer"))
        await subscribe(comm, types=["breach.*"])
        start = (await comm.receive_json_from(timeout=5))["payload"]["data"]["events"]
        skipped = await write(org, "contract.created")
        while True:
            data = (await comm.receive_json_from(timeout=5))["payload"]["data"]["events"]
            assert data["kind"] == "HEARTBEAT", data
            if data["cursor"] == skipped.pk:
                break
        assert skipped.pk > start["cursor"]
        await comm.disconnect()

    run(scenario)


@pytest.mark.django_db
def test_a_subscription_posted_over_http_is_refused_before_it_runs(gql):
    body = gql("viewer")("subscription { events { kind } }", errors=True)
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST" and "WebSocket" in error["message"]


def test_removing_the_membership_closes_the_subscription_4401_before_the_next_event(make_member, org):
    """Found by an outside sweep: the subscription went on until the token expired."""
    from channels.db import database_sync_to_async

    from tenancy.auth import issue_tokens
    from tenancy.models import Membership

    membership = make_member("viewer", org)
    raw = issue_tokens(membership)["access"]
    remove = database_sync_to_async(lambda: Membership.objects.get(pk=membership.pk).delete())

    async def scenario():
        comm = await acked(raw)
        await subscribe(comm)
        assert (await messages(comm, 1))[0]["kind"] == "SUBSCRIBED"
        await write(org)
        assert (await messages(comm, 1))[0]["kind"] == "EVENT"
        await remove()
        await write(org, secret="after removal")
        code, before = await closed_with(comm)
        assert code == 4401
        assert not any("after removal" in json.dumps(m) for m in before)

    run(scenario)


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_after_closing_a_changed_member_the_server_sends_nothing_and_logs_no_error(make_member, org, caplog, change):
    """Found by an outside tester: the operation's error was sent after the 4401 close, which
    uvicorn refused ("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'"),
    an error in the log at every membership change."""
    from channels.db import database_sync_to_async

    from tenancy.auth import issue_tokens
    from tenancy.models import Membership

    membership = make_member("operator", org)
    raw = issue_tokens(membership)["access"]

    def apply():
        member = Membership.objects.get(pk=membership.pk)
        if change == "demote":
            member.role = "viewer"
            member.save()
        else:
            member.delete()

    async def scenario():
        comm = await acked(raw)
        await subscribe(comm)
        assert (await messages(comm, 1))[0]["kind"] == "SUBSCRIBED"
        await database_sync_to_async(apply)()
        await write(org)
        code, _ = await closed_with(comm)
        assert code == 4401
        assert await comm.receive_nothing(timeout=1)  # the server sent nothing after its close
        await comm.disconnect()

    with caplog.at_level(logging.WARNING):
        run(scenario)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

"""End to end: two real uvicorn processes (A and B) on one Redis and the test's PostgreSQL.

A client on B receives, within a second, an event written through A's REST API (the poke
crosses processes through channels-redis); a client that disconnects, misses 100 events and
reconnects with its cursor receives exactly those 100, in order, over WebSocket and over SSE.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import time
import uuid

import pytest
import redis
from channels.layers import channel_layers
from django.db import connection, transaction
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from events.feed import group_name
from events.models import Event
from events.services import record_events
from tenancy.auth import issue_tokens
from tests.events.helpers import Thing

from .servers import AsgiServer, database_url, post_json, redis_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor == 'sqlite'", reason="the SQLite test database is in memory, private to the test process"
    ),
]


@pytest.fixture
def server_env():
    url = redis_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for the end-to-end stream test ({url}): {exc}")
    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "CONN_MAX_AGE": "0",
        "REDIS_URL": url,
        "CHANNEL_LAYER_PREFIX": f"sla-test-{uuid.uuid4().hex[:12]}",  # this run's own keys and channels
        # and its own cache: each xdist worker's database repeats user ids, so a membership another
        # test's servers cached under the shared prefix would be read as this test's (a 403 in CI).
        "CACHE_KEY_PREFIX": f"sla-test-{uuid.uuid4().hex[:12]}",
        "THROTTLE_USER_RATE": "100000/min",
    }


@pytest.fixture
def two_servers(server_env):
    servers = []
    try:
        servers.append(AsgiServer(server_env))
        servers.append(AsgiServer(server_env))
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def authenticated(server, token, since):
    with connect(f"{server.ws}/api/v1/stream", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=5))["type"] == "authenticated"
        ws.send(json.dumps({"type": "subscribe", "since": since}))
        answer = json.loads(ws.recv(timeout=5))
        assert answer["type"] == "subscribed", answer
        yield ws


def next_event(ws, timeout: float) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] == "event":
            return message
        assert message["type"] == "heartbeat", message


def sse_ids(server, token, since, count, timeout=10) -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.request(
        "GET",
        f"/api/v1/events/stream?since={since}",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    )
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    ids, frame = [], {}
    while len(ids) < count:
        # The response decodes the chunked body; frames end with a blank line.
        line = response.readline().decode().rstrip("\n")
        if line:
            field, _, value = line.partition(": ")
            frame[field] = value
            continue
        if "id" in frame and "data" in frame and "event" not in frame:  # an event, not a heartbeat
            ids.append(int(frame["id"]))
        frame = {}
    conn.close()
    return ids


def test_two_processes_one_redis(two_servers, org, make_member):
    a, b = two_servers
    manager = issue_tokens(make_member("manager", org))["access"]
    viewer = issue_tokens(make_member("viewer", org))["access"]

    # Live across processes: written through A, received on B within a second.
    with authenticated(b, viewer, since=None) as ws:
        # Idle longer than channels-redis's 5 s blocking read first: the connection must survive it.
        time.sleep(6)
        for n in range(3):
            created = post_json(f"{a.http}/api/v1/counterparties", {"name": f"Live {n}"}, manager)
            written = time.monotonic()
            message = next_event(ws, timeout=1.0)
            assert time.monotonic() - written < 1.0
            assert message["event"]["type"] == "counterparty.created"
            assert message["event"]["object_id"] == created["id"]
        cursor = message["cursor"]

    # Missed while away: 100 events, then a reconnect with the cursor gets exactly those, in order.
    for n in range(100):
        post_json(f"{a.http}/api/v1/counterparties", {"name": f"Missed {n}"}, manager)
    missed = list(Event.objects.filter(organization=org, id__gt=cursor).order_by("id").values_list("id", flat=True))
    assert len(missed) == 100
    with authenticated(b, viewer, since=cursor) as ws:
        received = [next_event(ws, timeout=5)["cursor"] for _ in range(100)]
        assert received == missed
        with pytest.raises(TimeoutError):
            next_event(ws, timeout=0.5)  # and nothing more

    # The same over Server-Sent Events through a real server.
    assert sse_ids(b, viewer, cursor, 100) == missed


def test_another_organizations_client_on_the_other_process_gets_nothing(two_servers, org, other_org, make_member):
    a, b = two_servers
    manager = issue_tokens(make_member("manager", org))["access"]
    outsider = issue_tokens(make_member("admin", other_org))["access"]
    with authenticated(b, outsider, since=None) as ws:
        post_json(f"{a.http}/api/v1/counterparties", {"name": "Ours"}, manager)
        with pytest.raises(TimeoutError):
            next_event(ws, timeout=1.0)


@pytest.fixture
def redis_layer(server_env, settings):
    """The test process pokes the servers through their Redis channel layer."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": server_env["REDIS_URL"], "socket_timeout": 30}],
                "prefix": server_env["CHANNEL_LAYER_PREFIX"],
            },
        }
    }
    channel_layers.backends.clear()


def flood(org) -> None:
    """4,000 events of about 4 KB that do not compress (permessage-deflate is on): far more than
    the socket buffers between a server and a client that stopped reading hold."""
    for start in range(0, 4000, 500):
        with transaction.atomic():
            record_events(
                type="thing.happened",
                items=[
                    (Thing(org, pk=n), {"filler": base64.b64encode(os.urandom(3000)).decode()})
                    for n in range(start, start + 500)
                ],
                occurred_at=timezone.now(),
            )


def probe_received(ws, org) -> bool:
    """Write one event and say whether the subscriber received an event within a second."""
    with transaction.atomic():
        record_events(type="thing.happened", items=[(Thing(org, pk=-1), {})], occurred_at=timezone.now())
    try:
        message = json.loads(ws.recv(timeout=1))
    except TimeoutError:
        return False
    assert message["type"] == "next", message
    return True


@contextlib.contextmanager
def graphql_subscribed(server, token, org, **options):
    """A graphql-transport-ws connection subscribed to `events`, live: the subscription sends what
    is written from its start, so it is live once a probe event comes through."""
    with connect(f"{server.ws}/api/graphql", open_timeout=10, subprotocols=["graphql-transport-ws"], **options) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        query = "subscription { events { kind cursor event { id payload } } }"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        until = time.monotonic() + 60
        while not probe_received(ws, org):
            assert time.monotonic() < until, "the subscription never delivered a probe event"
        yield ws


def wait_for_output(server, text: str, deadline: float = 60) -> None:
    """Until the server has logged `text`: a condition, not a fixed sleep, so that a loaded
    machine (CI beside other suites) only makes the test slower, never wrong."""
    until = time.monotonic() + deadline
    while text not in server.output():
        assert time.monotonic() < until, f"the server never logged {text!r}:\n{server.output()[-3000:]}"
        time.sleep(0.1)


def read_until_closed(ws) -> tuple[int, int]:
    """(messages received, close code) once the client reads again."""
    received = 0
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=10)
            received += 1
    assert closed.value.rcvd is not None, closed.value
    return received, closed.value.rcvd.code


def test_a_client_that_stops_reading_is_closed_4408_by_a_real_server(server_env, redis_layer, org, make_member):
    """uvicorn applies backpressure: once the socket buffers are full its send waits, and the
    stream closes the connection after STREAM_SEND_TIMEOUT instead of buffering the log."""
    viewer = issue_tokens(make_member("viewer", org))["access"]
    with AsgiServer({**server_env, "STREAM_SEND_TIMEOUT": "1", "LOG_LEVEL": "INFO"}) as server:
        # The client stops reading after max_queue messages: TCP then fills up to the server.
        with connect(f"{server.ws}/api/v1/stream", open_timeout=10, max_queue=4) as ws:
            ws.send(json.dumps({"type": "auth", "token": viewer}))
            ws.send(json.dumps({"type": "subscribe", "since": None}))
            json.loads(ws.recv(timeout=5))
            json.loads(ws.recv(timeout=5))
            flood(org)
            wait_for_output(server, "closing a slow consumer (4408)")  # its send waited past the timeout
            received, code = read_until_closed(ws)
        assert code == 4408
        assert received < 4000


def test_a_graphql_subscriber_that_stops_reading_is_closed_4408_by_a_real_server(
    server_env, redis_layer, org, make_member
):
    """The same wall for `subscription { events }` over graphql-transport-ws."""
    viewer = issue_tokens(make_member("viewer", org))["access"]
    with AsgiServer({**server_env, "STREAM_SEND_TIMEOUT": "1", "LOG_LEVEL": "INFO"}) as server:
        with graphql_subscribed(server, viewer, org, max_queue=4) as ws:
            flood(org)
            wait_for_output(server, "closing a slow consumer (4408)")  # its send waited past the timeout
            received, code = read_until_closed(ws)
            output = server.output()
        assert code == 4408, output[-3000:]
        assert received < 4000
        assert "Traceback" not in output  # dropped quietly, not a task error per message


def wait_until_everyone_left(server, server_env, org, deadline: float = 60) -> None:
    """Until no connection of `org` is in its channel-layer group: each one's disconnect has run.
    On failure, the members left and the server's log say which connection stayed and why."""
    key = f"{server_env['CHANNEL_LAYER_PREFIX']}:group:{group_name(org.pk)}"
    layer = redis.Redis.from_url(server_env["REDIS_URL"])
    until = time.monotonic() + deadline
    while layer.zcard(key):
        members = layer.zrange(key, 0, -1)
        assert time.monotonic() < until, f"connections never left their group: {members}\n{server.output()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_client_that_leaves_mid_stream_is_let_go_quietly(kind, server_env, redis_layer, org, make_member):
    """A client that drops its socket while events are being sent to it is no server error: the
    send fails before the disconnect reaches the consumer (uvicorn and daphne alike)."""
    viewer = issue_tokens(make_member("viewer", org))["access"]
    with AsgiServer(server_env, server=kind) as server:
        for _ in range(3):
            with authenticated(server, viewer, since=None) as ws:
                flood(org)
                next_event(ws, timeout=10)  # the pump is sending the flood
                ws.socket.close()  # gone without a closing handshake
        wait_until_everyone_left(server, server_env, org)
        output = server.output()
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_graphql_subscriber_that_leaves_mid_stream_is_let_go_quietly(kind, server_env, redis_layer, org, make_member):
    viewer = issue_tokens(make_member("viewer", org))["access"]
    with AsgiServer(server_env, server=kind) as server:
        for _ in range(3):
            with graphql_subscribed(server, viewer, org) as ws:
                flood(org)
                json.loads(ws.recv(timeout=10))  # the subscription is sending the flood
                ws.socket.close()
        wait_until_everyone_left(server, server_env, org)
        output = server.output()
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_a_graphql_subscriber_demoted_or_removed_is_closed_without_an_error_logged(
    change, server_env, redis_layer, org, make_member
):
    """Found by an outside tester: after the 4401 close, the subscription's error was sent on the
    closed socket, and uvicorn logged "Unexpected ASGI message 'websocket.send', after sending
    'websocket.close'" at every membership change."""
    member = make_member("operator", org)
    operator = issue_tokens(member)["access"]
    # No membership cache: this process's change could not reach the server's copy in Redis.
    with AsgiServer({**server_env, "LOG_LEVEL": "INFO", "MEMBERSHIP_CACHE": "false"}) as server:
        with graphql_subscribed(server, operator, org) as ws:
            if change == "demote":
                member.role = "viewer"
                member.save()
            else:
                member.delete()
            until = time.monotonic() + 30
            with pytest.raises(ConnectionClosed) as closed:
                while time.monotonic() < until:
                    probe_received(ws, org)  # a poke: the next read checks the membership
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        wait_until_everyone_left(server, server_env, org)
        output = server.output()
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]

"""End to end: two real uvicorn processes (A and B) on one Redis and the test's PostgreSQL.

A client on B receives, within a second, an event written through A's REST API (the poke
crosses processes through channels-redis); a client that disconnects, misses 100 events and
reconnects with its cursor receives exactly those 100, in order, over WebSocket and over SSE.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import uuid

import pytest
import redis
from django.db import connection
from websockets.sync.client import connect

from events.models import Event
from tenancy.auth import issue_tokens

from .servers import AsgiServer, database_url, post_json, redis_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor == 'sqlite'", reason="the SQLite test database is in memory, private to the test process"
    ),
]


@pytest.fixture
def two_servers():
    url = redis_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for the end-to-end stream test ({url}): {exc}")
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "CONN_MAX_AGE": "0",
        "REDIS_URL": url,
        "CHANNEL_LAYER_PREFIX": f"sla-test-{uuid.uuid4().hex[:12]}",  # this run's own keys and channels
        "THROTTLE_USER_RATE": "100000/min",
    }
    servers = []
    try:
        servers.append(AsgiServer(env))
        servers.append(AsgiServer(env))
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
    ids = []
    while len(ids) < count:
        line = response.fp.readline().decode()
        if line.startswith("id: ") and response.fp.peek(5).startswith(b"data:"):
            ids.append(int(line[4:]))
    conn.close()
    return ids


def test_two_processes_one_redis(two_servers, org, make_member):
    a, b = two_servers
    manager = issue_tokens(make_member("manager", org))["access"]
    viewer = issue_tokens(make_member("viewer", org))["access"]

    # Live across processes: written through A, received on B within a second.
    with authenticated(b, viewer, since=None) as ws:
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

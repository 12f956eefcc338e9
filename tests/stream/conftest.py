"""Fixtures for the live stream (the in-memory channel layer comes from tests/conftest.py): timers,
and helpers to drive `config.asgi.application` with Channels' WebsocketCommunicator.

Stream tests use `django_db(transaction=True)`: the stream reads in other threads, on their own
connections, so the test's writes must be committed (and their commit is what pokes).
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection, connections

from tenancy.auth import issue_tokens
from tests.events.helpers import emit


@pytest.fixture(autouse=True)
def _stream_settings(settings):
    settings.STREAM = {
        **settings.STREAM, "AUTH_TIMEOUT": 5.0, "HEARTBEAT": 30.0, "SEND_TIMEOUT": 10.0
    }  # fmt: skip
    # The stream reads in pooled threads (on PostgreSQL); with persistent connections those would
    # outlive the test and keep the test database from being dropped.
    database = connections.settings["default"]
    max_age, database["CONN_MAX_AGE"] = database["CONN_MAX_AGE"], 0
    yield settings.STREAM
    database["CONN_MAX_AGE"] = max_age


@pytest.fixture
def redis_down(settings):
    """The channel layer on a Redis that refuses every connection (nothing listens on port 1):
    joins, receives and the writes' pokes all fail."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def token(make_member, org):
    """`token("viewer")`: an access token of a new member; callable inside a scenario too."""

    def issue(role, organization):
        try:
            return issue_tokens(make_member(role, organization or org))["access"]
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()

    def make(role: str = "viewer", organization=None) -> str:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return issue(role, organization)
        with ThreadPoolExecutor(1) as pool:  # the ORM refuses to run on the event loop's thread
            return pool.submit(issue, role, organization).result()

    return make


def run(scenario):
    """Run an async test scenario from a sync test (no asyncio plugin needed)."""
    return async_to_sync(scenario)()


def communicator(subprotocols=None, path="/api/v1/stream", app=None) -> WebsocketCommunicator:
    from config.asgi import application

    return WebsocketCommunicator(app or application, path, subprotocols=subprotocols)


async def connected(token: str | None = None, subprotocols=None, app=None) -> WebsocketCommunicator:
    """A communicator that has connected and (with a token) authenticated by first message."""
    comm = communicator(subprotocols=subprotocols, app=app)
    ok, _ = await comm.connect(timeout=5)
    assert ok
    if token is not None:
        await comm.send_json_to({"type": "auth", "token": token})
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "authenticated", message
    return comm


async def subscribed(comm, since=None, types=None) -> dict:
    message = {"type": "subscribe", "since": since}
    if types is not None:
        message["types"] = types
    await comm.send_json_to(message)
    answer = await next_but_heartbeats(comm)
    if answer["type"] == "reset":
        answer = {**await next_but_heartbeats(comm), "reset": answer}
    assert answer["type"] == "subscribed", answer
    return answer


async def next_but_heartbeats(comm, timeout: float = 5) -> dict:
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        if message["type"] != "heartbeat":
            return message


async def events(comm, count: int, timeout: float = 5) -> list[dict]:
    """The next `count` event messages (heartbeats in between, which may come at any time on a
    slow machine when a test shortens their interval, are skipped; anything else fails)."""
    received = []
    while len(received) < count:
        message = await comm.receive_json_from(timeout=timeout)
        if message["type"] == "heartbeat":
            continue
        assert message["type"] == "event", message
        received.append(message)
    return received


async def closed_with(comm, timeout: float = 5) -> tuple[int, list[dict]]:
    """Read until the server closes; (close code, the messages before it)."""
    before = []
    while True:
        output = await comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code"), before
        before.append(json.loads(output["text"]))


write = database_sync_to_async(emit)

"""The WebSocket event stream, `ws://HOST/api/v1/stream` (README, "Live event stream").

Protocol (JSON text messages):

1. Authenticate, without a token in the URL: either the first message is
   `{"type": "auth", "token": "<access token>"}`, or the handshake offers the subprotocols
   `bearer, <token>` (the server answers with `bearer`). Without a valid token within
   `STREAM["AUTH_TIMEOUT"]` (5 s) the connection is closed with 4401. The server answers
   `{"type": "authenticated", "organization": "<slug>", "role": "<role>"}`. When the token expires,
   the connection is closed with 4401: reconnect with a fresh token and the last cursor.
2. `{"type": "subscribe", "since": <cursor or null>, "types": ["breach.*", ...]}`: answered with
   `{"type": "subscribed", "cursor": <start>}` (and first `{"type": "reset", "cursor": <head>}` when
   `since` is older than what is replayed, see `stream.reader`), then every stored event after the
   cursor, then live ones, each `{"type": "event", "cursor": <id>, "event": {...}}` in the shape of
   `GET /api/v1/events`. A later subscribe replaces the subscription.
3. `{"type": "heartbeat", "cursor": <cursor>}` every `STREAM["HEARTBEAT"]` (30 s): the cursor to
   resume from (it moves past events the filter skipped).

Bad input is answered with `{"type": "error", "message": ..., "errors": {...}}`; the connection
stays open. Close codes: 4401 not (or no longer) authenticated; 4408 slow consumer (a message
not taken by the client within `STREAM["SEND_TIMEOUT"]`, where the server applies backpressure);
1011 server error.

Live delivery: `events.feed` pokes the group of the organization after each commit; a poke wakes
the connection's pump, which re-reads the log from the connection's cursor (so does each
heartbeat, in case a poke was lost; and, while the channel layer fails, a re-read each second:
`stream.layer`). Only the pump sends events and heartbeats, one batch read
from the database at a time: nothing is buffered beyond one batch per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed

from config.api import parsers
from events.feed import group_name
from tenancy.auth import TenantJWTAuthentication

from . import layer, reader
from .disconnects import CLIENT_GONE

logger = logging.getLogger("stream")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_SLOW_CONSUMER = 4408
CLOSE_SERVER_ERROR = 1011
SLOW_MESSAGE = "Slow consumer: messages were not taken in time; resume with your cursor."


class EventStreamConsumer(layer.LayerOutageTolerant, AsyncWebsocketConsumer):
    async def connect(self):
        self.context = None
        self.subscription: reader.Subscription | None = None
        self.wake = asyncio.Event()
        self.heartbeat_due = False
        self.group = None
        self.tasks: list[asyncio.Task] = []
        self.closing = False
        offered = self.scope.get("subprotocols") or []
        if offered and offered[0] == "bearer":
            await self.accept(subprotocol="bearer")
            await self.authenticate(offered[1] if len(offered) > 1 else "")
        else:
            await self.accept()
            self.deadline = asyncio.create_task(self.auth_deadline())
            self.tasks.append(self.deadline)

    async def disconnect(self, code):
        self.closing = True
        for task in self.tasks:
            task.cancel()
        if self.group:
            await layer.leave(self.channel_layer, self.group, self.channel_name)

    async def shut(self, code: int, message: str) -> None:
        """Say why in a last message (and in the close reason), then close."""
        if self.closing:
            return
        self.closing = True
        if code == CLOSE_SLOW_CONSUMER:  # staff see who was dropped (and tests wait on it)
            organization = self.context.organization.slug if self.context else None
            logger.info("event stream: closing a slow consumer (%s) of organization %s", code, organization)
        with contextlib.suppress(Exception):  # a slow consumer may not take even this one
            last = reader.dumps({"type": "error", "code": code, "message": message})
            await asyncio.wait_for(self.send(text_data=last), 1.0)
        await self.close(code=code, reason=message[:120])

    # --- authentication ---------------------------------------------------------------------

    async def auth_deadline(self):
        await asyncio.sleep(settings.STREAM["AUTH_TIMEOUT"])
        if self.context is None:
            await self.shut(CLOSE_UNAUTHENTICATED, "No valid auth message in time.")

    async def authenticate(self, token) -> None:
        if not isinstance(token, str) or not token:
            await self.shut(CLOSE_UNAUTHENTICATED, "A token is required.")
            return
        try:
            _user, context = await reader.in_db_thread(TenantJWTAuthentication().authenticate_token)(token)
        except AuthenticationFailed as exc:
            await self.shut(CLOSE_UNAUTHENTICATED, str(exc.detail))
            return
        if not context.has_role("viewer"):
            await self.shut(CLOSE_UNAUTHENTICATED, "This needs the viewer role or higher.")
            return
        self.context = context
        for task in self.tasks:
            task.cancel()
        self.tasks = [asyncio.create_task(self.heartbeats())]
        expires = context.claims.get("exp")
        if isinstance(expires, (int, float)):
            self.tasks.append(asyncio.create_task(self.expire_at(expires)))
        organization = context.organization
        await self.send_json({"type": "authenticated", "organization": organization.slug, "role": context.role})

    async def expire_at(self, expires: float):
        await asyncio.sleep(max(0.0, expires - time.time()))
        await self.shut(CLOSE_UNAUTHENTICATED, "The token has expired: reconnect with a fresh one and your cursor.")

    # --- messages from the client --------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        try:
            await self.handle(text_data, bytes_data)
        except SlowConsumer:
            await self.shut(CLOSE_SLOW_CONSUMER, SLOW_MESSAGE)
        except ClientGone:
            self.closing = True  # nothing to answer; the disconnect message follows

    async def handle(self, text_data, bytes_data) -> None:
        try:
            # REST's bounds: a message thousands deep raised RecursionError, which dropped the socket.
            message = parsers.loads(text_data if text_data is not None else bytes_data)
            unreadable = None
        except (TypeError, ValueError) as exc:  # MalformedJSON is a ValueError: unreadable, answered below
            message = None
            # Said as REST says it: a key given twice made "Expected a JSON object with type
            # subscribe." of a subscribe message (regression sweep of the tenth round).
            unreadable = f"Malformed message: JSON parse error - {exc}."
        kind = message.get("type") if isinstance(message, dict) else None
        if self.context is None:
            if kind == "auth":
                await self.authenticate(message.get("token"))
            else:
                why = f" ({unreadable})" if unreadable else ""
                await self.shut(CLOSE_UNAUTHENTICATED, f'Authenticate first: {{"type": "auth", "token": ...}}.{why}')
            return
        if kind == "subscribe":
            await self.subscribe(message)
        elif kind == "auth":
            await self.error("Already authenticated.", {"type": ["Already authenticated."]})
        elif unreadable:
            await self.error(unreadable, {"type": [unreadable]})
        else:
            await self.error("Expected a JSON object with type subscribe.", {"type": ["Unknown message type."]})

    async def subscribe(self, message: dict) -> None:
        try:
            since = reader.parse_since(message.get("since"))
            types = reader.parse_types(message.get("types"))
        except reader.StreamInputError as exc:
            await self.error(exc.message, exc.errors)
            return
        for task in [t for t in self.tasks if t.get_name() == "pump"]:
            task.cancel()
            self.tasks.remove(task)
        organization_id = self.context.organization.pk
        if self.group is None:
            # Join before reading the start: a poke between the two is not missed.
            self.group = group_name(organization_id)
            await layer.join(self.channel_layer, self.group, self.channel_name)
        subscription = reader.Subscription(
            organization_id=organization_id, token=self.context.token, role=self.context.role, types=types
        )
        reset = await reader.in_db_thread(reader.start)(subscription, since)
        self.subscription = subscription
        if reset:
            await self.send_json({"type": "reset", "cursor": subscription.cursor})
        await self.send_json({"type": "subscribed", "cursor": subscription.cursor, "types": list(types)})
        self.wake.set()
        self.tasks.append(asyncio.create_task(self.pump(subscription), name="pump"))

    async def error(self, message: str, errors: dict) -> None:
        await self.send_json({"type": "error", "message": message, "errors": errors})

    # --- delivery -----------------------------------------------------------------------------

    async def events_poke(self, message):
        """A committed write in this organization (events.feed): re-read from the cursor."""
        self.wake.set()

    async def heartbeats(self):
        while True:
            await asyncio.sleep(settings.STREAM["HEARTBEAT"])
            if self.subscription is None:
                try:
                    await reader.in_db_thread(reader.still_admitted)(self.context.token, self.context.role)
                    await self.send_json({"type": "heartbeat", "cursor": None})
                except AuthenticationFailed as exc:
                    await self.shut(CLOSE_UNAUTHENTICATED, str(exc.detail))
                    return
                except SlowConsumer:
                    await self.shut(CLOSE_SLOW_CONSUMER, SLOW_MESSAGE)
                    return
                except ClientGone:
                    self.closing = True
                    return
            else:
                self.heartbeat_due = True
                self.wake.set()
                if self.group:  # keep the group membership from expiring in the channel layer
                    await layer.join(self.channel_layer, self.group, self.channel_name)

    async def pump(self, subscription: reader.Subscription):
        read = reader.in_db_thread(reader.read)
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                more = True
                while more:
                    events, more = await read(subscription)
                    for event in events:
                        await self.send_json({"type": "event", "cursor": event["id"], "event": event})
                if self.heartbeat_due:
                    self.heartbeat_due = False
                    await self.send_json({"type": "heartbeat", "cursor": subscription.cursor})
        except asyncio.CancelledError:
            raise
        except SlowConsumer:
            await self.shut(CLOSE_SLOW_CONSUMER, SLOW_MESSAGE)
        except ClientGone:
            self.closing = True
        except AuthenticationFailed as exc:  # the membership is gone (reader.still_admitted)
            await self.shut(CLOSE_UNAUTHENTICATED, str(exc.detail))
        except Exception:
            logger.exception("event stream pump failed")
            await self.shut(CLOSE_SERVER_ERROR, "Server error; resume with your cursor.")

    async def send_json(self, message: dict) -> None:
        """Send one message; a client that does not take it within SEND_TIMEOUT is a slow consumer."""
        try:
            await asyncio.wait_for(self.send(text_data=reader.dumps(message)), settings.STREAM["SEND_TIMEOUT"])
        except TimeoutError:
            raise SlowConsumer from None
        except CLIENT_GONE:
            raise ClientGone from None


class SlowConsumer(Exception):
    pass


class ClientGone(Exception):
    """The client left while a message was being sent to it: not an error, nothing to log."""

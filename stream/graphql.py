"""`subscription { events(since:, types:) }`: the live event stream over GraphQL (graphql-transport-ws).

The same stream as `ws://HOST/api/v1/stream` (stream.consumers), through the same reader: the
organization comes from the token given in `connection_init` (config/graphql/ws.py), the cursor
semantics are `stream.reader`'s (an event id; `since` older than what is replayed, or one this
organization never handed out, is a RESET to the head), and live delivery is woken by the
channel-layer pokes of `events.feed` and, in case a poke was lost, by each heartbeat.

Messages, in this order: SUBSCRIBED (the start cursor; RESET before it when `since` was reset),
then each stored event after the cursor, then live ones, each EVENT with its cursor and event;
HEARTBEAT every `STREAM["HEARTBEAT"]` seconds with the cursor to resume from (it moves past
events the type filter skipped).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from django.conf import settings
from graphql import GraphQLError
from rest_framework.exceptions import AuthenticationFailed

from config.errors import DomainError
from config.graphql.base import tenant
from config.graphql.scalars import BigInt
from config.graphql.ws import CLOSE_TOKEN_EXPIRED
from events.feed import POKE_TYPE, group_name
from events.graphql import Event

from . import layer, reader


@strawberry.enum(description="What a message of the event stream says.")
class EventStreamKind(enum.Enum):
    SUBSCRIBED = "subscribed"
    RESET = "reset"
    EVENT = "event"
    HEARTBEAT = "heartbeat"


@strawberry.type(description="One message of the event stream: `cursor` is the event id to resume from (`since`).")
class EventStreamMessage:
    kind: EventStreamKind
    cursor: BigInt  # an event id: 64 bits, GraphQL's Int is 32 (config.graphql.scalars)
    event: Event | None = None
    types: list[str] | None = strawberry.field(default=None, description="SUBSCRIBED: the type patterns followed.")


def _input_error(exc: reader.StreamInputError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": "BAD_REQUEST", "errors": exc.errors})


class _Pokes:
    """This connection's membership of its organization's poke group, shared by its subscriptions."""

    def __init__(self, consumer, organization_id: int):
        self.consumer, self.group = consumer, group_name(organization_id)
        self.queue: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self):
        followers = getattr(self.consumer, "event_followers", 0)
        self.consumer.event_followers = followers + 1
        # Join before reading the start: a poke between the two is not missed.
        await layer.join(self.consumer.channel_layer, self.group, self.consumer.channel_name)
        self.consumer.listen_queues[POKE_TYPE].add(self.queue)  # a WeakSet: `self` keeps the queue
        return self

    async def __aexit__(self, *exc):
        self.consumer.listen_queues[POKE_TYPE].discard(self.queue)
        self.consumer.event_followers -= 1
        if self.consumer.event_followers == 0:
            await layer.leave(self.consumer.channel_layer, self.group, self.consumer.channel_name)

    async def wait(self, timeout: float) -> bool:
        """True on a poke, False when `timeout` passed without one (a heartbeat is due)."""
        try:
            await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return False
        while not self.queue.empty():  # pokes that came while reading: one re-read covers them
            self.queue.get_nowait()
        return True

    async def refresh(self):
        # Keep the group membership from expiring in the channel layer (as stream.consumers does).
        await layer.join(self.consumer.channel_layer, self.group, self.consumer.channel_name)


async def _follow(consumer, subscription: reader.Subscription, since: int | None):
    read_rows = reader.in_db_thread(reader.read_rows)

    async def read(subscription):
        try:
            return await read_rows(subscription)
        except AuthenticationFailed as exc:  # the membership is gone (reader.still_admitted)
            await consumer.close(code=CLOSE_TOKEN_EXPIRED, reason=str(exc.detail))
            raise GraphQLError(str(exc.detail), extensions={"code": "UNAUTHENTICATED"}) from None

    async with _Pokes(consumer, subscription.organization_id) as pokes:
        reset = await reader.in_db_thread(reader.start)(subscription, since)
        if reset:
            yield EventStreamMessage(kind=EventStreamKind.RESET, cursor=subscription.cursor)
        yield EventStreamMessage(
            kind=EventStreamKind.SUBSCRIBED, cursor=subscription.cursor, types=list(subscription.types)
        )
        poked = True  # read what is stored after the start cursor at once
        while not consumer.ended:  # the client left, or this side closed: leave the group now (`_Pokes`)
            more = poked
            while more:
                rows, more = await read(subscription)
                for row in rows:
                    if consumer.ended:  # mid-page: not the rest of the log for nobody
                        return
                    yield EventStreamMessage(kind=EventStreamKind.EVENT, cursor=row.pk, event=row)
            poked = await pokes.wait(settings.STREAM["HEARTBEAT"])
            if not poked:
                rows, more = await read(subscription)  # in case a poke was lost
                for row in rows:
                    if consumer.ended:
                        return
                    yield EventStreamMessage(kind=EventStreamKind.EVENT, cursor=row.pk, event=row)
                poked = more
                await pokes.refresh()
                yield EventStreamMessage(kind=EventStreamKind.HEARTBEAT, cursor=subscription.cursor)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Your organization's events after `sinceId` (an event id; null: from now on), then live ones; "
        "`types`: event type patterns, `*` for any characters (`breach.*`). WebSocket `/api/graphql`, "
        "protocol graphql-transport-ws, the access token in `connection_init` (`{token}` or `{Authorization}`)."
    )
    async def events(
        self,
        info: strawberry.Info,
        since: Annotated[
            int | None,
            strawberry.argument(
                description="An event id below 2^31 (GraphQL's Int, 32 bits), as before: `sinceId` takes any.",
                deprecation_reason="GraphQL's Int is 32 bits: use sinceId (BigInt), which takes any event id.",
            ),
        ] = None,
        types: list[str] | None = None,
        since_id: Annotated[
            BigInt | None, strawberry.argument(description="The event id to resume after (a message's `cursor`).")
        ] = None,
    ) -> AsyncGenerator[EventStreamMessage, None]:
        try:
            context = tenant(info)
        except DomainError as exc:
            raise GraphQLError(exc.message, extensions={"code": exc.kind.upper()}) from None
        if since is not None and since_id is not None:
            message = "Give sinceId or since (the same cursor), not both."
            raise GraphQLError(
                message, extensions={"code": "BAD_REQUEST", "errors": {"since": [message], "sinceId": [message]}}
            )
        # `since` is kept for clients whose variables are typed Int; a cursor past 2^31 needs `sinceId`.
        try:
            since = reader.parse_since(since_id if since_id is not None else since)
            patterns = reader.parse_types(types)
        except reader.StreamInputError as exc:
            if since_id is not None and "since" in exc.errors:  # the argument given, in the message too
                exc.errors = {"sinceId": exc.errors.pop("since"), **exc.errors}
                exc.message = exc.message.replace("since", "sinceId", 1)
            raise _input_error(exc) from None
        consumer = info.context["ws"]
        subscription = reader.Subscription(
            organization_id=context.organization.pk, token=context.token, role=context.role, types=patterns
        )
        return _follow(consumer, subscription, since)

"""The channel layer as the live streams use it: its pokes are a hint, never their lifeline.

A poke ("organization N has new events", `events.feed`) wakes a connection to re-read the log
from its cursor; each heartbeat re-reads too. So while the layer fails (Redis down or not
answering), every stream (SSE, the WebSocket stream, GraphQL subscriptions) goes on by re-reads:
joining or leaving the group is bounded and may fail (`join`, `leave`), and a receive that fails
is a poke a second later (`receive_or_poke`: a re-read at most once a second per connection while
the layer is down). Before, SSE broke right after its 200, and a WebSocket closed at its
subscribe or when channels' receive loop met the error (an outside test, Redis stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

from events.feed import POKE_TIMEOUT_SECONDS, POKE_TYPE

logger = logging.getLogger("stream")

RETRY_SECONDS = 1.0


async def join(layer, group: str, channel: str) -> None:
    """Join the organization's group of pokes (again: a membership expires in the layer), within
    POKE_TIMEOUT_SECONDS; a failure costs the pokes, not the stream."""
    try:
        await asyncio.wait_for(layer.group_add(group, channel), POKE_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("live stream: could not join %s (%s: %s); following by re-reads", group, type(exc).__name__, exc)


async def leave(layer, group: str, channel: str) -> None:
    try:
        await asyncio.wait_for(layer.group_discard(group, channel), POKE_TIMEOUT_SECONDS)
    except Exception as exc:  # the membership expires in the layer by itself
        logger.warning("live stream: could not leave %s (%s: %s)", group, type(exc).__name__, exc)


async def receive_or_poke(layer, channel: str) -> dict:
    """The channel's next message; when the layer fails, a poke after RETRY_SECONDS (re-read, retry)."""
    try:
        return await layer.receive(channel)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("live stream: channel layer receive failed (%s: %s); re-reading", type(exc).__name__, exc)
        await asyncio.sleep(RETRY_SECONDS)
        return {"type": POKE_TYPE}


class LayerOutageTolerant:
    """A channels consumer whose channel-layer receive may fail (`receive_or_poke`): channels'
    `AsyncConsumer.__call__`, whose receive loop ended the connection on the layer's first error,
    with that one difference."""

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(receive_or_poke, self.channel_layer, self.channel_name)
            sources.append(self.channel_receive)
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch(sources, self.dispatch)

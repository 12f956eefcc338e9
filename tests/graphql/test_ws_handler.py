"""The subscription socket's handler: an operation that ends after the socket's shutdown cleaned it
up (a demoted member's subscription error after the 4401 close) is no KeyError in the server's log."""

from __future__ import annotations

import asyncio
import datetime as dt

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

from config.graphql.ws import TenantGraphQLWSConsumer


class Socket:
    def __init__(self):
        self.sent = []

    async def send_json(self, message):
        self.sent.append(message)


def test_an_operation_that_ends_after_the_shutdown_cleaned_it_up_is_forgotten_once():
    async def scenario():
        socket = Socket()
        handler = TenantGraphQLWSConsumer.graphql_transport_ws_handler_class(
            view=None,
            websocket=socket,
            context={},
            root_value=None,
            schema=None,
            connection_init_wait_timeout=dt.timedelta(seconds=10),
        )
        operation = Operation(handler, "1", "subscription { events { id } }", None, None)
        operation.task = asyncio.create_task(asyncio.sleep(1))
        handler.operations["1"] = operation
        await handler.cleanup_operation("1")  # the socket's shutdown
        await operation.send_initial_errors([GraphQLError("Not a member")])  # the operation's own end
        return socket.sent, handler.operations

    sent, operations = asyncio.run(scenario())
    assert [message["type"] for message in sent] == ["error"] and operations == {}

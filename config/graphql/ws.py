"""`ws://HOST/api/graphql`: GraphQL subscriptions over graphql-transport-ws, on the ASGI server.

Authentication is the live stream's (stream.consumers): the access token, given in
`connection_init` as `{"token": "<access>"}` or `{"Authorization": "Bearer <access>"}`, is
checked by `TenantJWTAuthentication.authenticate_token`, and the caller needs the viewer role.
A missing or refused token closes the connection with 4403 (the protocol's "Forbidden"); when
the token expires the connection is closed with 4401: reconnect with a fresh token and the
last cursor. A client that does not take a message within `STREAM["SEND_TIMEOUT"]` (the server
applies backpressure) is closed with 4408, as the event stream closes it. The WebSocket carries
subscriptions only: queries and mutations go to `POST /api/graphql`, where the HTTP face's rules
(status codes, the REST write path) apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from django.conf import settings
from graphql import GraphQLError
from rest_framework.exceptions import AuthenticationFailed
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http.exceptions import NonJsonMessageReceived
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types.graphql import OperationType

from config.api import parsers
from stream.disconnects import CLIENT_GONE
from stream.layer import LayerOutageTolerant
from tenancy.auth import TenantJWTAuthentication

from .errors import format_error

CLOSE_TOKEN_EXPIRED = 4401
CLOSE_SLOW_CONSUMER = 4408  # the event stream's code (stream.consumers)
SLOW_MESSAGE = "Slow consumer: messages were not taken in time; resume with your last cursor."

logger = logging.getLogger("stream")


def _token(params) -> str:
    if not isinstance(params, dict):
        return ""
    token = params.get("token")
    if isinstance(token, str) and token:
        return token
    header = params.get("Authorization") or params.get("authorization")
    if isinstance(header, str) and header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return ""


class TransportWSHandler(BaseGraphQLTransportWSHandler):
    async def handle_subscribe(self, message) -> None:
        """A subscription beyond `STREAM["MAX_SUBSCRIPTIONS"]` running on this socket is refused with
        an error naming the limit (it stays open): each follows the log on its own, so one socket
        could otherwise make every write of its organization cost hundreds of reads (strawberry's
        own bound, 100, answered without a code)."""
        limit = self.max_subscriptions_per_connection
        acknowledged, new = self.connection_acknowledged, message["id"] not in self.operations
        if acknowledged and new and limit is not None and len(self.operations) >= limit:
            text = f"At most {limit} subscriptions at once on one connection: complete one first."
            error = GraphQLError(text, extensions={"code": "BAD_REQUEST"})
            await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
            return
        await super().handle_subscribe(message)

    def forget_id(self, id: str) -> None:
        """An operation's id, forgotten once, whichever comes first: its last message (`error`,
        `complete`) or the socket's shutdown. strawberry's `del` raised KeyError (logged as an
        error) when a subscription's error followed the close of a demoted or removed member's
        socket, whose shutdown had already cleaned the operation up."""
        self.operations.pop(id, None)

    async def _handle_pre_execution_error(self, operation, result) -> None:
        """A subscription refused before it runs, in the HTTP face's words and codes (`format_error`):
        graphql-core's own errors (an unknown field, a variable of the wrong type) had no code. A
        syntax error or an unknown operation keeps strawberry's close (4400), which reads its type."""
        if self._get_pre_execution_close_reason(result.errors[0]) is None:
            result.errors = [format_error(error) for error in result.errors]
        await super()._handle_pre_execution_error(operation, result)


class TenantGraphQLWSConsumer(LayerOutageTolerant, GraphQLWSConsumer):
    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, schema, **kwargs):
        kwargs.setdefault("subscription_protocols", (GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        kwargs.setdefault("connection_init_wait_timeout", dt.timedelta(seconds=10))
        kwargs.setdefault("max_subscriptions_per_connection", settings.STREAM["MAX_SUBSCRIPTIONS"])
        super().__init__(schema, **kwargs)
        self.tenant = None
        self.expiry: asyncio.Task | None = None
        self.slow = False
        self.gone = False
        self.closed = False

    def decode_json(self, data):
        # REST's bounds: a frame thousands deep raised RecursionError in strawberry's receive loop,
        # which left the socket open and unanswered (past the init timeout, unauthenticated too).
        try:
            return parsers.loads(data)
        except parsers.MalformedJSON:
            raise NonJsonMessageReceived from None  # graphql-transport-ws: closed with 4400

    async def on_ws_connect(self, context):
        from stream import reader  # its thread pool needs Django's settings

        token = _token(context.get("connection_params"))
        if not token:
            raise ConnectionRejectionError({"message": "A token is required in connection_init."})
        try:
            _user, tenant = await reader.in_db_thread(TenantJWTAuthentication().authenticate_token)(token)
        except AuthenticationFailed as exc:
            raise ConnectionRejectionError({"message": str(exc.detail)}) from None
        if not tenant.has_role("viewer"):
            raise ConnectionRejectionError({"message": "This needs the viewer role or higher."})
        self.tenant = context["tenant"] = tenant
        expires = tenant.claims.get("exp")
        if isinstance(expires, (int, float)):
            self.expiry = asyncio.create_task(self._expire_at(expires))
        return {"organization": tenant.organization.slug, "role": tenant.role}

    async def _expire_at(self, expires: float):
        await asyncio.sleep(max(0.0, expires - time.time()))
        await self.close(code=CLOSE_TOKEN_EXPIRED, reason="The token has expired: reconnect with a fresh one.")

    async def send(self, text_data=None, bytes_data=None, close=False):
        """Every message strawberry sends. One not taken within SEND_TIMEOUT closes the connection
        (4408) instead of holding a subscription open forever behind a reader that stopped; what
        the operations send after that, after the client has gone, or after this side closed the
        socket (an expired token, a removed or demoted member: the operation's error follows the
        close, and the server refused it with a logged RuntimeError), is dropped until the server
        reports the disconnect."""
        if self.slow or self.gone or self.closed:
            return
        try:
            await asyncio.wait_for(super().send(text_data, bytes_data, close), settings.STREAM["SEND_TIMEOUT"])
        except TimeoutError:
            self.slow = True
            organization = self.tenant.organization.slug if self.tenant is not None else None
            logger.info("GraphQL: closing a slow consumer (%s) of organization %s", CLOSE_SLOW_CONSUMER, organization)
            await self.close(code=CLOSE_SLOW_CONSUMER, reason=SLOW_MESSAGE)
        except CLIENT_GONE:
            self.gone = True

    @property
    def ended(self) -> bool:
        """Nothing more can reach the client: it left, was too slow, or this side closed. The
        subscriptions stop there (stream.graphql), as the event stream's pump stops on a client gone,
        rather than read the rest of the log for nobody until the disconnect is handled."""
        return self.slow or self.gone or self.closed

    async def close(self, code=None, reason=None):
        if self.closed:  # a second close is as unexpected to the server as a send
            return
        self.closed = True
        await super().close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.expiry
        await super().disconnect(code)


class OneTransportPerOperation(SchemaExtension):
    """Subscriptions over the WebSocket, queries and mutations over HTTP: anything else is
    refused before it runs (see the module doc)."""

    def on_validate(self):
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            over_ws = isinstance(context.context, dict) and "ws" in context.context
            try:
                kind = context.operation_type
            except CannotGetOperationTypeError:  # an unknown operation name: reported by graphql's own validation
                kind = None
            message = None
            if over_ws and kind not in (None, OperationType.SUBSCRIPTION):
                message = "Only subscriptions are served over the WebSocket: POST queries and mutations to /api/graphql"
            elif not over_ws and kind is OperationType.SUBSCRIPTION:
                message = "Subscriptions are served over the WebSocket at /api/graphql (protocol graphql-transport-ws)."
            if message:
                context.pre_execution_errors = [GraphQLError(message, extensions={"code": "BAD_REQUEST"})]
        yield

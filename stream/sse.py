"""`GET /api/v1/events/stream`: the event stream as Server-Sent Events (README, "Live event stream").

`Authorization: Bearer <token>` (viewer and up); resume with `Last-Event-ID` (what EventSource
sends when it reconnects) or `?since=<cursor>`; filter with `?types=breach.*,contract.state_changed`
and the filters of `/api/v1/events` (`type`, `object_type`, `object_id`, `occurred_at`).

    retry: 2000
    : following organization acme from cursor 41

    id: 42
    data: {"id": 42, "type": "breach.detected", ...}     <- the event as /api/v1/events shows it

    event: reset                                         <- `since` older than what is replayed
    id: 97
    data: {"type": "reset", "cursor": 97}

    id: 97
    : heartbeat                                          <- every 30 s; the id moves the resume cursor

Under ASGI (runserver with daphne, uvicorn workers, daphne) the response is an async stream:
stored events after the cursor, then live ones, woken by `events.feed`'s pokes and re-read from
the cursor, until the client goes away. Under WSGI a worker cannot wait on pokes without holding
a thread per client, so the response replays what is stored after the cursor and ends; the
`retry:` line makes EventSource reconnect 2 s later with `Last-Event-ID`, i.e. lossless polling.
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from config.api.csv import JSONErrorsMixin
from config.api.exceptions import BadRequest
from config.api.filters import MAX_DB_ID, PredicateFilterBackend, predicate_description
from config.api.schema import whole_number_parameter
from events.api import EventFilterSet
from events.feed import group_name
from events.models import Event

from . import layer as pokes
from . import reader

logger = logging.getLogger("stream")


class EventStreamRenderer(BaseRenderer):
    """Names the stream's one format (`?format=event-stream`); the view answers with its own
    streaming response, and errors are the JSON envelope (JSONErrorsMixin)."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class FirstRenderer(BaseContentNegotiation):
    """The stream is text/event-stream whatever `Accept` says (EventSource sends
    `Accept: text/event-stream`); errors before the stream starts are the JSON envelope. A
    `?format=` other than the stream's own is refused as on every endpoint (JSONErrorsMixin)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        requested = request.query_params.get("format")
        if requested is not None and requested != renderers[0].format:
            raise Http404
        return renderers[0], renderers[0].media_type


def event_frame(event: dict) -> str:
    return f"id: {event['id']}\ndata: {reader.dumps(event)}\n\n"


def reset_frame(cursor: int) -> str:
    return f"event: reset\nid: {cursor}\ndata: {reader.dumps({'type': 'reset', 'cursor': cursor})}\n\n"


def heartbeat_frame(cursor: int) -> str:
    return f"id: {cursor}\n: heartbeat\n\n"


def preamble(subscription: reader.Subscription, slug: str) -> str:
    retry = settings.STREAM["SSE_RETRY_MS"]
    return f"retry: {retry}\n: following organization {slug} from cursor {subscription.cursor}\n\n"


def replay(subscription: reader.Subscription, opening: str):
    """WSGI: what is stored after the cursor, then the end (EventSource reconnects)."""
    yield opening
    more = True
    while more:
        try:
            events, more = reader.read(subscription)
        except AuthenticationFailed as exc:  # as in `follow`
            yield f": {exc.detail}\n\n"
            return
        yield "".join(event_frame(e) for e in events)
    yield heartbeat_frame(subscription.cursor)


async def follow(subscription: reader.Subscription, opening: str):
    """ASGI: what is stored after the cursor, then live events, until the client disconnects."""
    layer = get_channel_layer()
    group = group_name(subscription.organization_id)
    channel = await layer.new_channel()
    await pokes.join(layer, group, channel)  # before the first read: no poke falls in between
    wake = asyncio.Event()
    listener = asyncio.create_task(_listen(layer, channel, wake))
    read = reader.in_db_thread(reader.read)
    try:
        yield opening
        while True:
            more = True
            while more:
                try:
                    events, more = await read(subscription)
                except AuthenticationFailed as exc:
                    # The membership is gone or the token expired (reader.still_admitted): the
                    # stream ends, and EventSource's reconnection gets the 401.
                    yield f": {exc.detail}\n\n"
                    return
                if events:
                    yield "".join(event_frame(e) for e in events)
            try:
                await asyncio.wait_for(wake.wait(), settings.STREAM["HEARTBEAT"])
            except TimeoutError:
                yield heartbeat_frame(subscription.cursor)
                await pokes.join(layer, group, channel)  # keeps the membership from expiring
            wake.clear()
    finally:
        listener.cancel()
        await pokes.leave(layer, group, channel)


async def _listen(layer, channel: str, wake: asyncio.Event) -> None:
    while True:
        await pokes.receive_or_poke(layer, channel)  # a poke, or a second after a failed receive
        wake.set()


# One Server-Sent Event as a client's parser hands it over (the schema of each event in the stream).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The cursor: the event's id, to resume from."},
        "event": {"type": "string", "description": "Always `message` (EventSource's default)."},
        "data": {"type": "string", "description": "The event as `GET /api/v1/events` shows it, as JSON."},
        "retry": {"description": "Milliseconds EventSource waits before reconnecting."},
    },
}


@extend_schema(
    summary="Follow the event log (Server-Sent Events)",
    parameters=[
        OpenApiParameter(
            "since",
            whole_number_parameter(0, MAX_DB_ID),
            description="Resume after this cursor (an event id); absent: from now on.",
        ),
        OpenApiParameter(
            "Last-Event-ID",
            str,
            OpenApiParameter.HEADER,
            description="Sent by EventSource on reconnect; wins over since.",
        ),
        OpenApiParameter(
            "types",
            str,
            description=f"Comma-separated event type patterns (at most {reader.MAX_TYPE_PATTERNS}), `*` for any "
            f"characters (a run of `*` is one; at most {reader.MAX_WILDCARDS} per pattern).",
        ),
        # The event log's filters, described as GET /api/v1/events describes them.
        *(
            OpenApiParameter(name, str, description=f"Filter on {name} {predicate_description(Event, name)}")
            for name in EventFilterSet.Meta.fields
        ),
    ],
    responses={(200, "text/event-stream"): SSE_EVENT},
)
class EventStreamView(JSONErrorsMixin, APIView):
    """The caller's organization's events after a cursor, then live (text/event-stream).

    Each event is `id: <cursor>` and `data: <the event as /api/v1/events shows it>`; a cursor
    older than what is replayed gets `event: reset` with the cursor to follow on from; a heartbeat
    comment every 30 s carries the current cursor as its id. Under a WSGI server the response
    ends after the stored events and EventSource reconnects (`retry:`).
    """

    read_role = "viewer"
    filterset_class = EventFilterSet
    extra_query_params = ("since", "types")
    # Every event after the cursor, as the event log shows it: no pages, fields or sort.
    reserved_query_params = ("format",)
    content_negotiation_class = FirstRenderer
    renderer_classes = [EventStreamRenderer]

    def get(self, request):
        try:
            since = reader.parse_since(request.headers.get("Last-Event-ID") or request.query_params.get("since"))
            types = reader.parse_types(request.query_params.get("types"))
        except reader.StreamInputError as exc:
            raise BadRequest(exc.message, exc.errors) from None
        base = PredicateFilterBackend().filter_queryset(request, Event.objects.all(), self)
        organization = request.auth.organization
        subscription = reader.Subscription(
            organization_id=organization.pk, token=request.auth.token, role=request.auth.role, types=types, base=base
        )
        reset = reader.start(subscription, since)
        opening = preamble(subscription, organization.slug) + (reset_frame(subscription.cursor) if reset else "")
        if isinstance(request._request, ASGIRequest):
            content = follow(subscription, opening)
        else:
            content = replay(subscription, opening)
        response = StreamingHttpResponse(content, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response

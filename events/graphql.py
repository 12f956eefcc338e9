"""GraphQL type of events: the audit trail, as an offset list and as a relay cursor connection."""

from __future__ import annotations

import base64
import binascii

import strawberry
import strawberry_django
from strawberry import auto

from config.api.filters import MAX_DB_ID
from config.api.pagination import whole_number
from config.errors import BadRequest
from config.graphql.base import (
    MAX_PAGE_SIZE,
    Json,
    OffsetPaginated,
    TenantType,
    UserRef,
    filter_input,
    resource_get,
    resource_list,
    rest_filter,
    tenant,
)
from config.graphql.scalars import BigInt

from . import models
from .api import EventFilterSet, EventViewSet
from .visibility import readable_by


@strawberry_django.type(models.Event, name="Event")
class Event(TenantType):
    rest_view = EventViewSet
    Filters = filter_input(
        "EventFilter",
        EventFilterSet,
        extra={"since": (BigInt, "Only events after this id, oldest first (REST ?since=).")},
    )

    id: strawberry.ID
    type: auto
    actor: UserRef | None
    object_type: auto
    object_id: BigInt  # REST's object ids are 64 bits; GraphQL's Int is 32
    payload: Json
    occurred_at: auto

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        # The events of the resources the caller's role reads (events.visibility), as in REST.
        return readable_by(super().get_queryset(queryset, info, **kwargs), tenant(info).role)

    @classmethod
    def filter_extra(cls, queryset, filters):
        since = getattr(filters, "since", None)
        if since is not None and since < 0:
            raise BadRequest("since must be an event id (a whole number).", {"since": ["Must be a whole number."]})
        return queryset if since is None else queryset.filter(id__gt=since)


# --- the relay connection ------------------------------------------------------------------------
#
# A cursor is opaque to clients, but it is the feed's cursor underneath: the event id, as in REST's
# `?since=` and the subscription's `since`. The connection reads oldest first, so `after: <cursor
# of event N>` is exactly `since: N`: page through the history, then follow live from the last id.

CURSOR_PREFIX = "event:"


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (UnicodeError, ValueError, binascii.Error):
        raw = ""
    number = raw.removeprefix(CURSOR_PREFIX) if raw.startswith(CURSOR_PREFIX) else ""
    event_id = whole_number(number, MAX_DB_ID)
    if event_id is None:
        raise BadRequest("after is not a cursor of this connection.", {"after": ["Not a valid cursor."]})
    return event_id


@strawberry.type(description="Relay page information of a cursor connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="One event and its cursor.")
class EventEdge:
    cursor: str
    node: Event


@strawberry.type(description="Events oldest first, by cursor (relay). A cursor is the feed cursor, opaque.")
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo
    _matching: strawberry.Private[object]

    @strawberry.field(description="Events matching the filters, on every page.")
    def total_count(self) -> int:
        return self._matching.count()


@strawberry.type
class Query:
    event: Event = resource_get()
    events: OffsetPaginated[Event] = resource_list()

    @strawberry.field(
        description="Your organization's events oldest first, `first` (at most 100) after the cursor `after`: "
        "a relay connection. A node's id is its feed cursor (REST `?since=`, the subscription's `since`)."
    )
    def events_connection(
        self,
        info: strawberry.Info,
        first: int = 20,
        after: str | None = None,
        filters: Event.Filters | None = None,
    ) -> EventConnection:
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise BadRequest(f"first must be between 0 and {MAX_PAGE_SIZE}; got {first}.", {"first": ["Out of range."]})
        cursor = decode_cursor(after) if after is not None else None
        # The one scoping method (and the role check), then REST's own filters.
        matching = Event.get_queryset(models.Event.objects.all(), info)
        matching = Event.filter_extra(rest_filter(EventViewSet, matching, info, filters), filters)
        matching = matching.order_by("id")
        page = matching if cursor is None else matching.filter(id__gt=cursor)
        rows = list(page.select_related("actor")[: first + 1])
        edges = [EventEdge(cursor=encode_cursor(row.pk), node=row) for row in rows[:first]]
        has_previous = cursor is not None and matching.filter(id__lte=cursor).exists()
        return EventConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                has_previous_page=has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else after,
            ),
            _matching=matching,
        )

"""GraphQL type of events: the audit trail, as an offset list and as a relay cursor connection."""

from __future__ import annotations

import strawberry
import strawberry_django
from strawberry import auto

from config.errors import BadRequest
from config.graphql.base import (
    Json,
    OffsetPaginated,
    TenantType,
    UserRef,
    filter_input,
    order_input,
    resource_get,
    resource_list,
)

from . import models
from .api import EventFilterSet, EventViewSet


@strawberry_django.type(models.Event, name="Event")
class Event(TenantType):
    rest_view = EventViewSet
    Filters = filter_input(
        "EventFilter", EventFilterSet, extra={"since": (int, "Only events after this id, oldest first (REST ?since=).")}
    )
    Order = order_input("EventOrder", list(EventViewSet.sort_fields))

    id: strawberry.ID
    type: auto
    actor: UserRef | None
    object_type: auto
    object_id: auto
    payload: Json
    occurred_at: auto

    @classmethod
    def filter_extra(cls, queryset, filters):
        since = getattr(filters, "since", None)
        if since is not None and since < 0:
            raise BadRequest("since must be an event id (a whole number).", {"since": ["Must be a whole number."]})
        return queryset if since is None else queryset.filter(id__gt=since)


@strawberry.type
class Query:
    event: Event = resource_get()
    events: OffsetPaginated[Event] = resource_list()

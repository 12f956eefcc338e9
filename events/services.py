"""Writing events, and describing a change for an event's payload."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from config.bulk_insert import builder, bulk_insert

from .feed import prepare_write
from .handlers import dispatch, dispatch_recorded
from .models import Event

# Values that go into a payload as they are: checked by exact type first (a scan's batch walks
# ~300,000 of them), anything else (a subclass such as a `TextChoices` member too) below.
_AS_IS = frozenset({str, int, bool, float, type(None)})


def jsonable(value: Any) -> Any:
    """A value as it goes into an event payload (JSON types only)."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        # In UTC with a Z, as the API writes instants (DESIGN §5): a rule's start came out in its
        # contract's zone (found by an outside sweep: "2000-01-01T00:00:00+14:00").
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return value


def with_rest_names(payload: dict) -> dict:
    """A payload with the REST name beside a stored field's name where they differ: `sourceID`
    beside `source_id` (a `*.created`/`*.deleted` snapshot) and in `changes` (an update), as the
    REST resource reads it. The stored name stays: webhook consumers filter on it (eleventh
    round). Only a dict lookup or two per payload (a scan's batch writes thousands)."""
    if "source_id" in payload:
        payload["sourceID"] = payload["source_id"]
    changes = payload.get("changes")
    if type(changes) is dict and "source_id" in changes:
        changes["sourceID"] = changes["source_id"]
    return payload


@transaction.atomic(savepoint=False)  # the order lock (events.feed) lasts until the change commits
def record_event(
    *,
    type: str,
    obj: models.Model,
    actor=None,
    payload: dict | None = None,
    object_type: str | None = None,
    occurred_at: dt.datetime | None = None,
) -> Event:
    """Write one event about a tenant-owned `obj`, inside the transaction of the change, and
    run the handlers registered for its type (see `events.handlers`)."""
    prepare_write([obj.organization_id])
    event = Event.objects.create(
        organization_id=obj.organization_id,
        type=type,
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        object_type=object_type or obj._meta.model_name,
        object_id=obj.pk,
        payload=with_rest_names(jsonable(payload or {})),
        occurred_at=occurred_at or timezone.now(),
    )
    event.reactions = dispatch(event)
    dispatch_recorded([event])
    return event


@cache
def _new_event():
    """`Event(organization_id=, type=, object_type=, object_id=, payload=, occurred_at=)`, faster."""
    return builder(Event, ("organization_id", "type", "object_type", "object_id", "payload", "occurred_at"))


@transaction.atomic(savepoint=False)
def record_events(*, type: str, items: list[tuple[models.Model, dict]], occurred_at: dt.datetime) -> list[Event]:
    """Many events of one type in one INSERT (a scan's batch), with their handlers run as one by one.

    A transaction that writes events of several organizations writes them in one call (their
    order locks are taken together, in ascending order: see `events.feed`)."""
    prepare_write(obj.organization_id for obj, _payload in items)
    new = _new_event()
    events = bulk_insert(
        Event,
        [
            new(
                obj.organization_id, type, obj._meta.model_name, obj.pk, with_rest_names(jsonable(payload)), occurred_at
            )
            for obj, payload in items
        ],
    )
    for event in events:
        event.reactions = dispatch(event)
    dispatch_recorded(events)
    return events


def apply_changes(instance: models.Model, data: dict) -> dict[str, dict]:
    """Set `data` on `instance`; return `{field: {"before": .., "after": ..}}` for real changes."""
    changes = {}
    for name, value in data.items():
        before = getattr(instance, name)
        if before != value:
            changes[name] = {"before": jsonable(before), "after": jsonable(value)}
            setattr(instance, name, value)
    return changes


def save_changes(instance: models.Model, data: dict, *, actor, event_type: str, check=None) -> models.Model:
    """Set `data`; when anything changed, run `check(instance)` (it may raise), save, and write
    one `event_type` event with the changes. The update service of a plain resource."""
    changes = apply_changes(instance, data)
    if changes:
        if check is not None:
            check(instance)
        instance.save()
        record_event(type=event_type, obj=instance, actor=actor, payload={"changes": changes})
    return instance


def snapshot(instance: models.Model, fields: list[str]) -> dict:
    """The named fields of an instance, for a created/deleted event's payload."""
    return {name: jsonable(getattr(instance, name)) for name in fields}

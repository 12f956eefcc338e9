"""`config.bulk_insert.bulk_insert`: the same rows as `bulk_create`, pks in the objects' order."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.bulk_insert import builder, bulk_insert
from events.models import Event
from tenancy.models import Organization

pytestmark = pytest.mark.django_db

WHEN = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _events(org, n, tag):
    payloads = [
        {"quote": 'say "hi"\\ \n', "unicode": "é€😀", "n": i, "list": [1, None, {"x": "y"}], "none": None}
        for i in range(n)
    ]
    payloads[0] = {}
    return [
        Event(organization_id=org.pk, type=tag, object_type="thing", object_id=10**12 + i, payload=p, occurred_at=WHEN)
        for i, p in enumerate(payloads)
    ]


def _stored(tag):
    return list(
        Event.objects.filter(type=tag)
        .order_by("pk")
        .values_list("organization_id", "object_type", "object_id", "payload", "occurred_at", "actor_id")
    )


def test_same_rows_as_bulk_create_in_one_statement():
    org = Organization.objects.create(name="Bulk", slug="bulk")
    expected = Event.objects.bulk_create(_events(org, 25, "a"))
    objs = _events(org, 25, "b")
    with CaptureQueriesContext(connection) as queries:
        returned = bulk_insert(Event, objs)
    assert len(queries) == 1
    assert returned == objs and all(o.pk is not None and not o._state.adding for o in objs)
    # pks in the objects' order (what handlers and outbox rows refer to)
    assert [Event.objects.get(pk=o.pk).object_id for o in objs] == [o.object_id for o in objs]
    assert [o.pk for o in objs] == sorted(o.pk for o in objs)
    assert _stored("b") == _stored("a") and len(expected) == 25
    assert _stored("b")[0][4] == WHEN


def test_empty_and_values_without_json_form():
    assert bulk_insert(Event, []) == []
    org = Organization.objects.create(name="Bulk2", slug="bulk2")
    bad = _events(org, 2, "c")
    bad[1].payload = {"amount": Decimal("1.5")}  # Django's JSONField refuses it: so does this
    with pytest.raises(TypeError):
        bulk_insert(Event, bad)


def test_related_instances_and_fields_that_set_their_own_value():
    """A related instance assigned (saved: its pk is taken; unsaved: refused as `bulk_create` does),
    and auto_now / auto_now_add columns set for each row, as `bulk_create` sets them."""
    from notifications.models import EmailNotification

    org = Organization.objects.create(name="Bulk3", slug="bulk3")
    event, other = bulk_insert(Event, _events(org, 2, "d"))
    before = dt.datetime.now(dt.UTC)
    rows = [
        EmailNotification(organization=org, event=event, kind="breach", recipients=["a@example.com"]),
        EmailNotification(organization_id=org.pk, event_id=other.pk, kind="breach", recipients=[]),
    ]
    bulk_insert(EmailNotification, rows)
    stored = EmailNotification.objects.filter(organization=org).order_by("pk")
    assert list(stored.values_list("organization_id", "event_id", "recipients")) == [
        (org.pk, event.pk, ["a@example.com"]),
        (org.pk, other.pk, []),
    ]
    for row in stored:
        assert row.created_at >= before and row.updated_at >= before and row.status == "pending"
    unsaved = EmailNotification(organization=org, event=Event(organization=org), kind="breach", recipients=[])
    with pytest.raises(ValueError, match="unsaved related object 'event'"):
        bulk_insert(EmailNotification, [unsaved])


# --- builder: what Model(**values) builds, through the positional __init__ -----------------------


def _fields(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_builder_builds_what_the_keyword_constructor_builds():
    from breaches.models import Breach
    from notifications.models import EmailNotification

    values = {"organization_id": 3, "type": "x.y", "object_type": "thing", "object_id": 7, "payload": {"a": [1]},
              "occurred_at": WHEN}  # fmt: skip
    new = builder(Event, tuple(values))
    built, expected = new(*values.values()), Event(**values)
    assert type(built) is Event and built._state.adding and built.pk is None
    assert _fields(built) == _fields(expected)
    email = {"organization_id": 3, "event_id": 9, "kind": "breach", "recipients": ["a@example.com"],
             "next_attempt_at": WHEN}  # fmt: skip
    assert _fields(builder(EmailNotification, tuple(email))(*email.values())) == _fields(EmailNotification(**email))
    # Fields left to their defaults: constant ones (state, penalty, final) and None where there is none.
    breach = {"organization_id": 1, "clock_id": 2, "metric": "response", "due_at": WHEN}
    assert _fields(builder(Breach, tuple(breach))(*breach.values())) == _fields(Breach(**breach))


def test_builder_calls_a_callable_default_per_instance():
    from notifications.models import EmailNotification

    new = builder(EmailNotification, ("organization_id", "event_id"))
    first, second = new(1, 2), new(1, 3)
    assert first.recipients == [] and second.recipients == [] and first.recipients is not second.recipients
    assert EmailNotification._meta.get_field("recipients").default is list


def test_builder_refuses_unknown_or_repeated_fields_and_a_wrong_number_of_values():
    with pytest.raises(ValueError):
        builder(Event, ("organization", "type"))  # the attribute is organization_id
    with pytest.raises(ValueError):
        builder(Event, ("type", "type"))
    with pytest.raises(TypeError):
        builder(Event, ("type", "object_id"))("x.y")


def test_built_instances_insert_as_bulk_create_does():
    org = Organization.objects.create(name="Built", slug="built")
    new = builder(Event, ("organization_id", "type", "object_type", "object_id", "payload", "occurred_at"))
    objs = bulk_insert(Event, [new(org.pk, "built", "thing", i, {"n": i}, WHEN) for i in range(3)])
    Event.objects.bulk_create(_events(org, 3, "kw"))
    assert [o.pk for o in objs] == sorted(o.pk for o in objs)
    assert [row[:3] for row in _stored("built")] == [(org.pk, "thing", i) for i in range(3)]
    assert {row[4:] for row in _stored("built")} == {row[4:] for row in _stored("kw")}

"""The real races on PostgreSQL, in a fixed interleaving: the test holds the organization's event
order (`events.feed.hold_order`) while the requests start, waits until each waits for a lock, and
lets go.

- The same DELETE sent three times at once answered 204 three times and wrote three `*.deleted`
  events (the delete recorded its event, then deleted a row another had already deleted).
- A PATCH and a DELETE of one object took the row and the order in opposite orders and deadlocked:
  PostgreSQL's victim answered 409 "Conflicting write ... Retry." (found by an outside tester).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from model_bakery import baker

from contracts.models import Asset, Counterparty
from events.feed import hold_order
from events.models import Event
from tests.locking import holding, start, wait_until_blocked
from tests.slas.factories import make_calendar

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def _counterparty(org):
    return "/api/v1/counterparties", baker.make(Counterparty, organization=org, name="Race"), {"remarks": "r"}


def _calendar(org):
    return "/api/v1/calendars", make_calendar(org), {"name": "Renamed"}


def _asset(org):
    party = baker.make(Counterparty, organization=org)
    return "/api/v1/assets", baker.make(Asset, organization=org, counterparty=party, name="a1"), {"name": "zz"}


RESOURCES = {"counterparty": _counterparty, "calendar": _calendar, "asset": _asset}


def _released_together(org, requests):
    """Run each request in a session of its own while the organization's order is held; each is
    started once the previous one waits for a lock, so they queue in this order. Their responses."""
    release, held = threading.Event(), threading.Event()
    holder = start(holding(lambda: hold_order([org.pk]), release, held))
    assert held.wait(10)
    sessions = []
    for request in requests:
        sessions.append(start(request))
        wait_until_blocked(sessions[-1])
    release.set()
    holder.finish()
    responses = []
    for session in sessions:
        session.finish()
        assert session.error is None, repr(session.error)
        responses.append(session.result)
    return responses


@pytest.mark.parametrize("name", RESOURCES)
def test_the_same_delete_sent_three_times_at_once_deletes_once(name, org, api):
    url, obj, _ = RESOURCES[name](org)
    clients = [api("admin") for _ in range(3)]

    responses = _released_together(org, [lambda c=c: c.delete(f"{url}/{obj.pk}") for c in clients])

    assert [r.status_code for r in responses] == [204, 404, 404], [r.content for r in responses]
    assert responses[1].json() == {"message": "Not found."}
    assert Event.objects.filter(object_id=obj.pk, type=f"{obj._meta.model_name}.deleted").count() == 1


@pytest.mark.parametrize("name", RESOURCES)
def test_a_patch_and_a_delete_at_once_do_not_deadlock(name, org, api):
    url, obj, body = RESOURCES[name](org)
    deleter, patcher = api("admin"), api("admin")

    delete, patch = _released_together(
        org,
        [lambda: deleter.delete(f"{url}/{obj.pk}"), lambda: patcher.patch(f"{url}/{obj.pk}", body, format="json")],
    )

    # The DELETE queued first on the order, so it wins; the PATCH then finds the row gone.
    assert (delete.status_code, patch.status_code) == (204, 404), (delete.content, patch.content)

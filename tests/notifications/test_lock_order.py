"""A webhook endpoint's writers and the organization's notification settings against the event order
(events.feed, "Lock order"), on PostgreSQL in a fixed interleaving.

These writers lock their row before the order (the delivery worker's order: the endpoint, then its
event). A dispatch system's job update holds the order and writes its event, whose delivery names
the endpoint and whose row names the organization; at commit their foreign-key checks take `FOR
KEY SHARE` on those rows. With the endpoint (or the organization) locked `FOR UPDATE` by a writer
that waited for the order, that was a deadlock: PostgreSQL killed one of the two, the API answered
409 "Conflicting write ... Retry." and the worker's disabling of a dead endpoint was lost. Forced
here: a third transaction holds the order, the job update queues for it first, then the writer;
then the third one commits.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from contracts.services import create_counterparty
from events.feed import hold_order
from notifications import delivery as worker
from notifications import services
from notifications.models import WebhookDelivery, WebhookEndpoint
from tenancy.models import Organization
from tests.locking import holding, start, wait_until_blocked
from tests.workorders.factories import make_job
from workorders import services as job_services
from workorders.models import WorkOrder

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]

WRITERS = {
    "patch": lambda org, endpoint, older: services.update_endpoint(
        instance=endpoint, actor=None, data={"description": "Operations"}
    ),
    "disable": lambda org, endpoint, older: services.update_endpoint(
        instance=endpoint, actor=None, data={"active": False}
    ),
    "rotate_secret": lambda org, endpoint, older: services.rotate_secret(endpoint=endpoint, actor=None),
    "redeliver": lambda org, endpoint, older: services.redeliver(delivery=older, actor=None),
    "redeliver_events": lambda org, endpoint, older: _redeliver_failed(endpoint, older),
    "delete": lambda org, endpoint, older: services.delete_endpoint(instance=endpoint, actor=None),
    "worker_gone": lambda org, endpoint, older: _worker_told_gone(older),
    "notification_settings": lambda org, endpoint, older: services.update_notification_settings(
        organization=org, actor=None, data={"notification_emails": ["ops@example.com"]}
    ),
}


def _redeliver_failed(endpoint: WebhookEndpoint, delivery: WebhookDelivery):
    """A failed delivery queued again by `redeliver_events` (one that is pending is left alone)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    return services.redeliver_events(endpoint=endpoint, actor=None, since=0)


def _worker_told_gone(delivery: WebhookDelivery):
    """The worker records a 410 Gone for a delivery it claimed: the endpoint is disabled."""
    token, ids = worker.claim(WebhookDelivery.objects.filter(pk=delivery.pk), now=timezone.now(), limit=1)
    assert ids == [delivery.pk]
    outcome = worker.Outcome(http_status=410, error="HTTP 410")
    return worker.record_outcome(delivery.pk, token, outcome, timezone.now())


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_job_update_and_an_endpoint_or_settings_write_do_not_deadlock(org, endpoint, writer):
    job = make_job(org, reported_at=timezone.now() - dt.timedelta(hours=1))
    create_counterparty(organization=org, actor=None, data={"name": "Northwind"})
    older = WebhookDelivery.objects.get(event__type="counterparty.created")

    release, held = threading.Event(), threading.Event()
    holder = start(holding(lambda: hold_order([org.pk]), release, held))
    assert held.wait(10)
    update = start(lambda: job_services.update_work_order(instance=job, actor=None, data={"summary": "Pump replaced"}))
    wait_until_blocked(update)  # first in the queue for the order
    write = start(lambda: WRITERS[writer](org, endpoint, older))
    wait_until_blocked(write)  # its row locked, waiting for the order
    release.set()

    for session in (holder, update, write):
        session.finish()
        assert session.error is None, repr(session.error)
    assert WorkOrder.objects.get(pk=job.pk).summary == "Pump replaced"
    written = WebhookDelivery.objects.filter(event__type="work_order.updated", event__object_id=job.pk)
    if writer == "delete":
        assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists() and not written.exists()
    elif writer in ("disable", "worker_gone"):
        # The update committed first: its delivery was pending when the endpoint was disabled.
        assert not WebhookEndpoint.objects.get(pk=endpoint.pk).active
        assert written.get().status == WebhookDelivery.Status.FAILED
    else:
        assert written.get().status == WebhookDelivery.Status.PENDING
    if writer == "notification_settings":
        assert Organization.objects.get(pk=org.pk).notification_emails == ["ops@example.com"]

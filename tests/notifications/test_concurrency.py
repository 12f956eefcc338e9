"""Two `deliver_notifications` workers at once never deliver an attempt twice (DESIGN §7a).

On PostgreSQL the two workers are real OS processes on the test database, held at a barrier (a
table lock the test holds until both wait on it: their `FOR UPDATE SKIP LOCKED` claim needs a
row lock, which waits on the EXCLUSIVE table lock), then released together against one receiver
that answers slowly enough for their claims to interleave. On SQLite (an in-memory test
database one process owns) the two run one after the other, and the second finds nothing.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.db import connection

from contracts.services import create_counterparty
from notifications.models import WebhookDelivery
from tests.processes import at_barrier

from .conftest import deliver

EVENTS = 100
WORKER = ["deliver_notifications", "--once", "--batch-size", "5"]
SUMMARY = re.compile(r"^Summary: (\d+) webhook deliveries succeeded, (\d+) failed", re.MULTILINE)


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_deliver_an_attempt_twice(org, endpoint, receiver):
    for n in range(EVENTS):
        create_counterparty(organization=org, actor=None, data={"name": f"Customer {n}"})
    assert WebhookDelivery.objects.filter(status="pending").count() == EVENTS
    receiver.delay = 0.01

    if connection.vendor == "postgresql":
        outputs = at_barrier("notifications_webhookdelivery", WORKER, env={"WEBHOOKS_ALLOW_LOOPBACK": "1"})
    else:
        outputs = [deliver(), deliver()]
    succeeded = [int(SUMMARY.search(output).group(1)) for output in outputs]

    ids = Counter(request.headers["webhook-id"] for request in receiver.received)
    assert len(ids) == EVENTS and set(ids.values()) == {1}, ids.most_common(3)
    for request in receiver.received:
        request.verify(endpoint.secret)
    assert sum(succeeded) == EVENTS
    if connection.vendor == "postgresql":
        assert all(succeeded), succeeded  # both really worked, side by side
    else:
        assert succeeded[1] == 0
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("succeeded", 1)}

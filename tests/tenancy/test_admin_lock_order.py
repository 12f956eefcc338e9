"""The organization's admin page against the event order (events.feed, "Lock order"), on PostgreSQL in
a fixed interleaving.

The page saved the organization's row and then wrote its notification settings through the service,
whose event waits for the order. A slug rename is a change of a key column: it locks the row as
strongly as `FOR UPDATE`. A job update holding the order checks its event's foreign key to the
organization at commit (`FOR KEY SHARE`), which waited for the page while the page waited for the
order: a deadlock, as the webhook endpoint's writers had (tests/notifications/test_lock_order.py).
Forced here: a third transaction holds the order, the job update queues for it first, then the page;
then the third one commits.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from events.feed import hold_order
from tenancy.models import Organization
from tests.admin_forms import form_values
from tests.locking import holding, start, wait_until_blocked
from tests.workorders.factories import make_job
from workorders import services as job_services
from workorders.models import WorkOrder

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def test_a_slug_renamed_on_the_admin_page_while_a_job_updates_does_not_deadlock(admin_client, org):
    job = make_job(org, reported_at=timezone.now() - dt.timedelta(hours=1))
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    form = {**form_values(admin_client, url), "slug": "acme-field", "notification_emails": "ops@example.com"}

    release, held = threading.Event(), threading.Event()
    holder = start(holding(lambda: hold_order([org.pk]), release, held))
    assert held.wait(10)
    update = start(lambda: job_services.update_work_order(instance=job, actor=None, data={"summary": "Pump replaced"}))
    wait_until_blocked(update)  # first in the queue for the order
    page = start(lambda: admin_client.post(url, form))
    wait_until_blocked(page)  # waiting for the order
    release.set()

    for session in (holder, update, page):
        session.finish()
        assert session.error is None, repr(session.error)
    assert page.result.status_code == 302, page.result.content.decode()[:2000]
    assert WorkOrder.objects.get(pk=job.pk).summary == "Pump replaced"
    renamed = Organization.objects.get(pk=org.pk)
    assert (renamed.slug, renamed.notification_emails) == ("acme-field", ["ops@example.com"])

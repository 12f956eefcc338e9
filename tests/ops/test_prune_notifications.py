"""`prune_notifications`: the outbox's finished rows older than the retention go (webhook deliveries with
their attempts, e-mails); pending rows, recent rows and every event (the audit trail, the stream's resume
point) stay. Run twice, or by two processes at once, it deletes each row once and nothing more."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from contracts.services import create_counterparty
from events.models import Event
from notifications.models import EmailNotification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.processes import at_barrier

NOW = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=120)
RECENT = NOW - dt.timedelta(days=10)
SUMMARY = re.compile(r"^Summary: (\d+) webhook deliveries \((\d+) attempts\) and (\d+) e-mails deleted", re.M)


def prune(*args) -> str:
    out = io.StringIO()
    call_command("prune_notifications", "--now", NOW.isoformat(), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def outbox(org):
    """Deliveries and e-mails of 12 events: for each of succeeded / failed / pending, two old and two recent
    (the old ones first, as ids and creation times go together)."""
    WebhookEndpoint.objects.create(
        organization=org, url="https://hooks.example.com/in", secret="whsec_x", event_types=["*"]
    )
    for n in range(12):
        create_counterparty(organization=org, actor=None, data={"name": f"Customer {n}"})
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert len(deliveries) == 12
    for i, delivery in enumerate(deliveries):
        status = ["succeeded", "failed", "pending"][i % 3]
        when = OLD if i < 6 else RECENT
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, created_at=when, updated_at=when)
        for number in (1, 2):
            WebhookAttempt.objects.create(organization=org, delivery=delivery, number=number, attempted_at=when)
        email = EmailNotification.objects.create(organization=org, event_id=delivery.event_id, kind="breach")
        EmailNotification.objects.filter(pk=email.pk).update(status=status, created_at=when, updated_at=when)
    return deliveries


def left(model) -> set[tuple[str, bool]]:
    return set(model.objects.values_list("status", "updated_at").distinct())


@pytest.mark.django_db(transaction=True)
def test_old_finished_rows_go_and_everything_else_stays(outbox, django_assert_max_num_queries):
    events = Event.objects.count()
    output = prune("--older-than", "90")
    assert SUMMARY.search(output).groups() == ("4", "8", "4")
    kept = {("succeeded", RECENT), ("failed", RECENT), ("pending", OLD), ("pending", RECENT)}
    assert left(WebhookDelivery) == kept and left(EmailNotification) == kept
    assert WebhookDelivery.objects.count() == EmailNotification.objects.count() == 8
    assert WebhookAttempt.objects.count() == 16
    assert not WebhookAttempt.objects.exclude(delivery__in=WebhookDelivery.objects.all()).exists()
    assert Event.objects.count() == events  # the audit trail is never pruned

    # Again: nothing left to delete. Per table: its one batch read (it reaches a row created after the
    # cutoff), the locking read of the old finished rows in it (none left), no delete.
    with django_assert_max_num_queries(8):
        assert SUMMARY.search(prune("--older-than", "90")).groups() == ("0", "0", "0")

    # A shorter retention takes the recent finished rows too, never a pending one.
    assert SUMMARY.search(prune("--older-than", "5", "--batch-size", "3")).groups() == ("4", "8", "4")
    assert {s for s, _ in left(WebhookDelivery)} == {s for s, _ in left(EmailNotification)} == {"pending"}


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--older-than", "0"], "--older-than must be at least 1 day."),
    (["--older-than", "36501"], "--older-than must be at most 36500 days."),
    (["--batch-size", "0"], "--batch-size must be at least 1."),
    (["--now", "yesterday"], "--now 'yesterday' is not an ISO 8601 timestamp."),
])
def test_bad_arguments_name_the_option(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        prune(*args)


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_delete_each_row_once(outbox):
    command = ["prune_notifications", "--now", NOW.isoformat(), "--older-than", "90", "--batch-size", "2"]
    if connection.vendor == "postgresql":
        outputs = at_barrier("notifications_webhookdelivery", command)
    else:  # one process owns SQLite's in-memory test database: one after the other
        outputs = [prune("--older-than", "90", "--batch-size", "2") for _ in range(2)]
    counts = [tuple(map(int, SUMMARY.search(output).groups())) for output in outputs]
    assert tuple(map(sum, zip(*counts, strict=True))) == (4, 8, 4), outputs
    assert WebhookDelivery.objects.count() == EmailNotification.objects.count() == 8

"""The outbox is written with the events, in their transaction, set-based: deliveries for every
active endpoint whose patterns match, e-mails for escalation levels, breaches and reminders."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contracts.services import create_counterparty
from events.models import Event
from notifications.models import EmailNotification, WebhookDelivery
from notifications.outbox import email_addresses, matches
from tests.breaches.factories import T0, active_contract, make_job, make_rule, minutes, scan
from tests.notifications.test_webhooks_api import make_endpoint

from .conftest import deliver

pytestmark = pytest.mark.django_db

LEVELS = [
    {"at_percent": 50, "name": "warning", "notify": ["desk@example.com", "Team lead", "desk@example.com"]},
    {"at_percent": 80, "name": "urgent", "notify": ["boss@example.com"]},
    {"at_percent": 90, "name": "quiet"},
]


def test_patterns():
    assert matches(["*"], "breach.detected")
    assert matches(["breach.*"], "breach.detected") and not matches(["breach.*"], "breaches.x")
    assert matches(["*.detected"], "breach.detected") and not matches(["*.detected"], "breach.finalized")
    assert matches(["contract.expiring", "x"], "contract.expiring") and not matches(
        ["contract.expiring"], "contract.expiry"
    )
    assert not matches(["breach"], "breach.detected")


def test_email_addresses_keeps_only_valid_addresses_once():
    assert email_addresses(["a@example.com", "Team lead", "a@example.com", 7, "b@example.org"]) == [
        "a@example.com",
        "b@example.org",
    ]
    assert email_addresses(None) == []


def test_each_matching_active_endpoint_gets_a_delivery(org, other_org):
    every = make_endpoint(org, event_types=["*"])
    counterparties = make_endpoint(org, event_types=["counterparty.*"])
    contracts = make_endpoint(org, event_types=["contract.*"])
    make_endpoint(org, event_types=["*"], active=False)
    theirs = make_endpoint(other_org, event_types=["*"])
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    event = Event.objects.get(type="counterparty.created")
    rows = WebhookDelivery.objects.filter(event=event)
    assert {row.endpoint_id for row in rows} == {every.pk, counterparties.pk}
    assert all(row.status == "pending" and row.organization_id == org.pk for row in rows)
    assert not WebhookDelivery.objects.filter(endpoint__in=[contracts, theirs]).exists()


def test_the_outbox_rolls_back_with_the_event(org):
    make_endpoint(org)
    with pytest.raises(RuntimeError), transaction.atomic():
        create_counterparty(organization=org, actor=None, data={"name": "Customer"})
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the change fails after its event")
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()


def _notification_queries(queries) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if "notifications_" in q["sql"] or "tenancy_organization" in q["sql"]
    ]


def test_a_scans_batch_writes_its_outbox_rows_set_based(org):
    """The scan's bulk events get their deliveries and e-mails in one INSERT each, whatever the
    number of breaches: the queries on the outbox do not grow with the batch."""
    org.notification_emails = ["ops@example.com"]
    org.save()
    contract = active_contract(org)
    make_rule(contract, target_minutes=60, escalation=[{"at_percent": 50, "name": "w", "notify": ["desk@example.com"]}])
    # One endpoint: on SQLite Django splits an INSERT past about 58 rows (its 999-parameter limit).
    make_endpoint(org, event_types=["breach.*", "sla.*"])
    counts = []
    for jobs, at in ((3, 200), (30, 400)):
        for n in range(jobs):
            make_job(contract, minutes(at - 100 + n))
        with CaptureQueriesContext(connection) as queries:
            scan(minutes(at))
        counts.append(len(_notification_queries(queries)))
    assert counts[0] == counts[1], counts
    breaches = Event.objects.filter(type="breach.detected").count()
    escalations = Event.objects.filter(type="sla.escalation").count()
    assert breaches == escalations == 33
    assert WebhookDelivery.objects.filter(event__type__in=["breach.detected", "sla.escalation"]).count() == 66
    assert EmailNotification.objects.filter(kind="breach").count() == 33
    assert EmailNotification.objects.filter(kind="escalation").count() == 33


def test_escalation_levels_breaches_and_reminders_queue_e_mails_sent_only_by_the_worker(org):
    org.notification_emails = ["ops@example.com"]
    org.save()
    contract = active_contract(org)
    make_rule(contract, target_minutes=60, escalation=LEVELS)
    make_job(contract, T0)
    scan(minutes(70))
    assert mail.outbox == []  # the scan queues; it never sends
    rows = list(EmailNotification.objects.order_by("id").values_list("kind", "recipients", "event__payload__level"))
    assert rows == [
        ("escalation", ["desk@example.com"], "warning"),
        ("escalation", ["boss@example.com"], "urgent"),
        ("breach", ["ops@example.com"], None),
    ]  # the level with no address queues nothing; the levels first, as they were reached (ninth round)
    scan(minutes(80))
    assert EmailNotification.objects.count() == 3  # once per level per clock
    out = deliver()
    assert "3 e-mails sent, 0 failed" in out
    assert sorted(message.to[0] for message in mail.outbox) == [
        "boss@example.com",
        "desk@example.com",
        "ops@example.com",
    ]
    assert set(EmailNotification.objects.values_list("status", flat=True)) == {"succeeded"}
    deliver()
    assert len(mail.outbox) == 3  # never twice


def test_no_notification_emails_no_breach_e_mail(org):
    contract = active_contract(org)
    make_rule(contract, target_minutes=60)
    make_job(contract, T0)
    scan(minutes(70))
    assert Event.objects.filter(type="breach.detected").exists()
    assert not EmailNotification.objects.exists()


def test_contract_expiry_reminders_queue_an_e_mail(org):
    org.notification_emails = ["contracts@example.com"]
    org.save()
    contract = active_contract(org)
    call_command("run_lifecycle", now="2026-10-01T22:00:00Z", stdout=io.StringIO())  # 2 Oct, Amsterdam
    [row] = EmailNotification.objects.all()
    assert (row.kind, row.recipients, row.event.type, row.event.object_id) == (
        "contract_reminder", ["contracts@example.com"], "contract.expiring", contract.pk,
    )  # fmt: skip

"""The e-mails: which job, contract, target and how late, with links on SITE_URL, in plain text and
HTML; retried when the mail server fails; and once through a real SMTP server on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import io
import socket

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from events.models import Event
from notifications.models import EmailNotification
from tests.breaches.factories import T0, active_contract, make_job, make_rule, minutes, scan

from .conftest import deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(settings):
    settings.SITE_URL = "https://sla.example.com"


@pytest.fixture
def late_job(org, site):
    """A job 10 minutes past its 60-minute response target, with an escalation at 50 %."""
    org.notification_emails = ["ops@example.com"]
    org.save()
    contract = active_contract(org, reference="C-FLEET-7")
    make_rule(
        contract, target_minutes=60, escalation=[{"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]}]
    )
    job = make_job(contract, T0, reference="WO-1234")
    return job, contract


def message_to(address: str):
    [message] = [m for m in mail.outbox if m.to == [address]]
    return message


def test_the_escalation_e_mail(late_job):
    job, contract = late_job
    scan(minutes(40))
    deliver()
    message = message_to("desk@example.com")
    assert message.subject == (
        '[Acme Field Services] Escalation "warning": work order WO-1234 has used 50% of its response target'
    )
    text = message.body
    assert f"Work order: WO-1234 (id {job.pk})" in text
    assert f"Contract: C-FLEET-7 (id {contract.pk})" in text
    assert "Target: response within 60 business minutes" in text
    assert "Reached at: 2026-03-10 10:30 CET (09:30 UTC)" in text
    # As of the scan that recorded it (minute 40 of 60), not of the level's instant (minute 30).
    assert "Detected at: 2026-03-10 10:40 CET (09:40 UTC)" in text
    assert "How late: not late yet: due in 20 min (wall-clock)" in text
    assert f"https://sla.example.com/admin/workorders/workorder/{job.pk}/change/" in text
    assert f"https://sla.example.com/api/v1/work_orders/{job.pk}" in text
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'<a href="https://sla.example.com/admin/contracts/contract/{contract.pk}/change/">' in html
    assert "WO-1234" in html and "<th" in html


def test_an_escalation_found_late_says_how_late_it_is_now(late_job):
    """A scan that runs after the due time records the levels the clock passed meanwhile; their
    mails say how late the job is, as the breach mail of the same scan does (found by an outside
    sweep: "not late yet: due in 30 min" beside "15 min past due")."""
    scan(minutes(75))
    deliver()
    text = message_to("desk@example.com").body
    assert "Reached at: 2026-03-10 10:30 CET (09:30 UTC)" in text
    assert "Detected at: 2026-03-10 11:15 CET (10:15 UTC)" in text
    assert "How late: 15 min past due (wall-clock)" in text
    assert "not late yet" not in text
    assert "it is 15 min (business time) past due" in message_to("ops@example.com").body


def test_the_breach_e_mail(late_job):
    job, contract = late_job
    scan(minutes(75))
    deliver()
    message = message_to("ops@example.com")
    breach_id = EmailNotification.objects.get(kind="breach").event.object_id
    assert message.subject == "[Acme Field Services] SLA breach: work order WO-1234 missed its response target"
    assert "Work order WO-1234 on contract C-FLEET-7 missed its response target" in message.body
    assert "it is 15 min (business time) past due" in message.body
    assert "How late: 15 min over the target (business time)" in message.body
    assert "Due at: 2026-03-10 11:00 CET (10:00 UTC)" in message.body
    assert f"https://sla.example.com/api/v1/breaches/{breach_id}" in message.body
    assert "Contract: C-FLEET-7" in message.body


def test_the_contract_reminder_e_mail(org, site):
    org.notification_emails = ["contracts@example.com"]
    org.save()
    contract = active_contract(org, reference="C-99", name="Pumps")
    call_command("run_lifecycle", now="2026-12-23T23:00:00Z", stdout=io.StringIO())  # 24 Dec local: 7 days
    deliver()
    [message] = mail.outbox
    assert message.subject == "[Acme Field Services] Contract C-99 expires in 7 days (2026-12-31)"
    assert "Contract C-99 (Pumps) expires in 7 days (2026-12-31). Renew it, or let it expire." in message.body
    assert f"https://sla.example.com/api/v1/contracts/{contract.pk}" in message.body


def test_a_failing_mail_server_is_retried_on_the_schedule(late_job, settings):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    scan(minutes(40))
    start = timezone.now()
    assert "0 e-mails sent, 1 failed" in deliver(start)
    row = EmailNotification.objects.get()
    assert (row.status, row.attempts) == ("pending", 1) and "Connection" in row.last_error
    assert row.next_attempt_at > start


def test_an_e_mail_that_cannot_be_rendered_does_not_stop_the_others(late_job):
    scan(minutes(40))
    good = EmailNotification.objects.get()
    broken_event = Event.objects.create(
        organization=good.organization, type="sla.escalation", object_type="slaclock", object_id=1,
        payload={"level": "x"}, occurred_at=timezone.now(),
    )  # fmt: skip
    EmailNotification.objects.filter(event=broken_event).delete()
    broken = EmailNotification.objects.create(
        organization=good.organization, event=broken_event, kind="escalation", recipients=["a@example.com"],
        next_attempt_at=timezone.now(),
    )  # fmt: skip
    assert "1 e-mails sent, 1 failed" in deliver()
    broken.refresh_from_db()
    assert (broken.status, broken.attempts) == ("pending", 1) and broken.last_error.startswith("KeyError")
    assert [m.to for m in mail.outbox] == [["desk@example.com"]]


class Collect:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def serving(handler):
    """A real SMTP server on a free loopback port with `handler`; yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    handler = Collect()
    with serving(handler) as port:
        yield handler, port


def test_through_a_real_smtp_server_on_loopback(late_job, settings, smtp_server):
    handler, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.DEFAULT_FROM_EMAIL = "SLA service <sla@example.com>"
    scan(minutes(75))  # the escalation and the breach
    assert "2 e-mails sent, 0 failed" in deliver()
    assert sorted(tuple(e.rcpt_tos) for e in handler.envelopes) == [("desk@example.com",), ("ops@example.com",)]
    envelope = next(e for e in handler.envelopes if e.rcpt_tos == ["ops@example.com"])
    assert envelope.mail_from == "sla@example.com"
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"].startswith("[Acme Field Services] SLA breach: work order WO-1234")
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "How late: 15 min over the target" in plain and "<a href=" in html
    assert EmailNotification.objects.filter(status="succeeded").count() == 2


def test_a_line_break_in_a_reference_does_not_stop_the_alert(org, site, settings, smtp_server):
    # Found by an outside sweep: the subject carried the break, Django refused the message and the
    # alerts were retried until they failed, nobody told; it is also how a header is smuggled in.
    handler, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    org.notification_emails = ["ops@example.com"]
    org.save()
    contract = active_contract(org, reference="C-FLEET-8")
    make_rule(contract, target_minutes=60)
    make_job(contract, T0, reference="WO-9\r\nBcc: evil@example.com")
    scan(minutes(75))
    assert "1 e-mails sent, 0 failed" in deliver()
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["ops@example.com"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"].startswith(
        "[Acme Field Services] SLA breach: work order WO-9 Bcc: evil@example.com missed"
    )
    assert message["Bcc"] is None


@pytest.mark.parametrize(
    ("email_url", "expected"),
    [
        (None, {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}),
        (
            "smtp+tls://sla%40example.com:s3cret@mail.example.com:587",
            {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "mail.example.com",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "sla@example.com",
                "EMAIL_HOST_PASSWORD": "s3cret",
                "EMAIL_USE_TLS": True,
            },
        ),
        (  # django-environ drops the first slash of the path: relative to where the worker runs
            "filemail:///var/mail",
            {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": "var/mail"},
        ),
        (
            "filemail:////srv/mail",
            {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": "/srv/mail"},
        ),
    ],
)
def test_email_url_configures_the_backend(email_url, expected):
    """The settings read EMAIL_URL as django-environ does (a fresh process: settings load once)."""
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "EMAIL_URL"}
    if email_url:
        env["EMAIL_URL"] = email_url
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{k: getattr(s, k) for k in {sorted(expected)!r}}}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(output) == expected


# --- what a person reads (tenth round): names as people write them, and the API links ----------


def _smtp(settings, port):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False


def _received(handler, address, subject=""):
    """The one message to `address` (whose subject holds `subject`): it, its plain text, its HTML."""
    messages = [
        email.message_from_bytes(e.content, policy=email.policy.default)
        for e in handler.envelopes
        if e.rcpt_tos == [address]
    ]
    [message] = [m for m in messages if subject in m["Subject"]]
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return message, plain, message.get_body(("html",)).get_content()


def test_a_job_without_reference_is_named_once_and_linked_in_the_api(org, site, settings, smtp_server):
    """Found by a user: "Job: work order 31 (id 31)", "job work order 31 missed ...": the kind was
    put before a name that already says it; and the contract was linked in the admin only."""
    handler, port = smtp_server
    _smtp(settings, port)
    org.notification_emails = ["ops@example.com"]
    org.save()
    contract = active_contract(org, reference="C-FLEET-9")
    make_rule(
        contract, target_minutes=60, escalation=[{"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]}]
    )
    job = make_job(contract, T0)  # no reference
    scan(minutes(75))
    assert "2 e-mails sent, 0 failed" in deliver()
    breach_id = EmailNotification.objects.get(kind="breach").event.object_id
    api = "https://sla.example.com/api/v1"

    message, plain, html = _received(handler, "ops@example.com")
    assert message["Subject"] == f"[Acme Field Services] SLA breach: work order {job.pk} missed its response target"
    assert f"Work order {job.pk} on contract C-FLEET-9 missed its response target" in plain
    assert f"Work order: no reference (id {job.pk})" in plain
    assert f"Contract: C-FLEET-9 (id {contract.pk})" in plain
    for label, url in [
        ("Breach in the API", f"{api}/breaches/{breach_id}"),
        ("Work order in the API", f"{api}/work_orders/{job.pk}"),
        ("Contract in the API", f"{api}/contracts/{contract.pk}"),
    ]:
        assert f"{label}: {url}\n" in plain
        assert f'<a href="{url}">{label}</a>' in html

    message, plain, html = _received(handler, "desk@example.com")
    assert message["Subject"] == (
        f'[Acme Field Services] Escalation "warning": work order {job.pk} has used 50% of its response target'
    )
    assert f"The response clock of work order {job.pk} on contract C-FLEET-9 reached" in plain
    assert f"Work order in the API: {api}/work_orders/{job.pk}\n" in plain
    assert f"Contract in the API: {api}/contracts/{contract.pk}\n" in plain
    for text in (message["Subject"], plain, html):
        assert "job work order" not in text.lower() and "Job:" not in text


def test_the_notice_reminder_e_mail(org, site, settings, smtp_server):
    handler, port = smtp_server
    _smtp(settings, port)
    org.notification_emails = ["contracts@example.com"]
    org.save()
    contract = active_contract(
        org, reference="C-77", name="Pumps", auto_renew=True, renewal_term_months=12, notice_period_days=30
    )
    assert contract.notice_date.isoformat() == "2026-12-01"
    call_command("run_lifecycle", now="2026-11-24T08:00:00Z", stdout=io.StringIO())  # 7 days to the notice date
    assert "2 e-mails sent, 0 failed" in deliver()  # and the 60-day expiry reminder
    message, plain, html = _received(handler, "contracts@example.com", "notice")
    assert message["Subject"] == (
        "[Acme Field Services] Last day to give notice on contract C-77: in 7 days (2026-12-01)"
    )
    assert (
        "The last day to give notice on contract C-77 (Pumps) is in 7 days (2026-12-01). Give notice by then, "
        "or the contract renews automatically." in plain
    )
    assert f"Contract: C-77 (id {contract.pk})\nName: Pumps\nNotice date: 2026-12-01\n" in plain
    url = f"https://sla.example.com/api/v1/contracts/{contract.pk}"
    assert f"Contract in the API: {url}\n" in plain and f'<a href="{url}">Contract in the API</a>' in html


def test_a_notice_date_moved_after_its_reminder_gets_reminders_of_its_own(org, site, api):
    """Checked (tenth round): a reminder is sent once per contract, kind, window *and date*
    (`ContractReminder`), so a notice date an approved amendment moves after its reminder went out
    gets its own 30- and 7-day reminders, by e-mail too. Not a defect: this test guards it."""
    from tests.contracts.test_amendments import amend, approve_fully, approved_contract, lifecycle

    org.notification_emails = ["contracts@example.com"]
    org.save()
    managers = api("manager"), api("manager"), api("manager")
    contract = approved_contract(
        org, reference="C-88", expiry_date=dt.date(2027, 12, 31), auto_renew=True, renewal_term_months=12
    )
    assert contract.notice_date == dt.date(2027, 12, 1)
    lifecycle("2027-11-01T09:00:00+01:00")  # 30 days before it
    created = amend(managers[0], contract, effective_date="2027-11-05", changes={"notice_period_days": 20})
    assert created.status_code == 201, created.content
    approve_fully(managers, contract, created.json()["id"])
    for day in ("2027-11-06", "2027-11-11", "2027-12-04"):
        lifecycle(f"{day}T09:00:00+01:00")
    contract.refresh_from_db()
    assert contract.notice_date == dt.date(2027, 12, 11)
    deliver()
    notices = [m.subject for m in mail.outbox if "notice" in m.subject]
    assert notices == [
        "[Acme Field Services] Last day to give notice on contract C-88: in 30 days (2027-12-01)",
        "[Acme Field Services] Last day to give notice on contract C-88: in 30 days (2027-12-11)",
        "[Acme Field Services] Last day to give notice on contract C-88: in 7 days (2027-12-11)",
    ]


# --- eleventh round: the work order's summary, and one message however often it is attempted ----


def test_breach_and_escalation_mails_name_the_work_orders_summary(org, site, settings, smtp_server):
    """The lead of the tenth round: the mails named the job by its reference only, since the scan's
    payloads did not carry its summary (the title a dispatcher knows it by). Now both payloads carry
    `work_order_summary`, and the mails show it in the subject (shortened), the intro and the facts,
    encoded as the mail server receives it (non-ASCII)."""
    handler, port = smtp_server
    _smtp(settings, port)
    org.name = "Ørsted Service Ågency"
    org.notification_emails = ["ops@example.com"]
    org.save()
    contract = active_contract(org, reference="C-FLEET-11")
    make_rule(
        contract, target_minutes=60, escalation=[{"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]}]
    )
    summary = "Pompe 3 fuit – Überdruck im Kessel, Ventil öffnet nicht und der Techniker wartet auf Teile"
    job = make_job(contract, T0, reference="WO-77", summary=summary)
    scan(minutes(75))
    assert "2 e-mails sent, 0 failed" in deliver()
    for kind in ("breach.detected", "sla.escalation"):
        assert Event.objects.get(type=kind).payload["work_order_summary"] == summary
    short = summary[:59].rstrip() + "\u2026"

    # A long encoded subject is folded after "Subject:" (Django's compat32 header), which Python's
    # parser reads back with the fold's space in front (mail clients trim it): hence strip().
    message, plain, html = _received(handler, "ops@example.com")
    assert message["Subject"].strip() == (
        f"[Ørsted Service Ågency] SLA breach: work order WO-77 ({short}) missed its response target"
    )
    assert f"Work order WO-77 ({summary}) on contract C-FLEET-11 missed its response target" in plain
    assert f"Work order: WO-77 (id {job.pk})\nSummary: {summary}\n" in plain
    assert "Überdruck im Kessel" in html

    message, plain, html = _received(handler, "desk@example.com")
    assert message["Subject"].strip() == (
        f'[Ørsted Service Ågency] Escalation "warning": work order WO-77 ({short}) has used 50% of its response target'
    )
    assert f"The response clock of work order WO-77 ({summary}) on contract C-FLEET-11 reached" in plain
    assert f"Summary: {summary}\n" in plain


class FailOnceAfterTaking(Collect):
    """A mail server that stores the first message it is sent but answers it with a temporary
    failure (as when the acknowledgement of DATA is lost): the worker retries it."""

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "451 Try again later" if len(self.envelopes) == 1 else "250 Message accepted for delivery"


def test_a_retried_e_mail_is_the_same_message(late_job, settings):
    """Found in the sweep: each attempt got a new random Message-ID (Django's default), so a retry
    of a mail the server had taken reached the reader as a second, different message."""
    handler = FailOnceAfterTaking()
    with serving(handler) as port:
        _smtp(settings, port)
        settings.DEFAULT_FROM_EMAIL = "SLA service <sla@example.com>"
        scan(minutes(40))  # the escalation only
        start = timezone.now()
        assert "0 e-mails sent, 1 failed" in deliver(start)
        assert "1 e-mails sent, 0 failed" in deliver(start + dt.timedelta(minutes=5))
    row = EmailNotification.objects.get()
    first, second = (email.message_from_bytes(e.content, policy=email.policy.default) for e in handler.envelopes)
    assert first["Message-ID"] == second["Message-ID"] == f"<sla-email.{row.pk}.event-{row.event_id}@example.com>"
    assert (row.status, row.attempts) == ("succeeded", 2)


class RefuseOne(Collect):
    """A mail server that refuses one recipient (no such mailbox) and takes the others."""

    def __init__(self, refused: str):
        super().__init__()
        self.refused = refused

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refused:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_recipient_the_mail_server_refuses_is_recorded(late_job, org, settings):
    """Found in the twelfth round: Django's SMTP backend drops the recipients `sendmail` says were
    refused when the server took the message for the others, so a mistyped notification address
    was never heard of: the row read `succeeded` with no error."""
    org.notification_emails = ["ops@example.com", "nobody@example.com"]
    org.save()
    handler = RefuseOne("nobody@example.com")
    with serving(handler) as port:
        _smtp(settings, port)
        scan(minutes(75))  # the escalation (desk@) and the breach (ops@ and nobody@)
        assert "2 e-mails sent, 0 failed" in deliver()
    assert sorted(tuple(e.rcpt_tos) for e in handler.envelopes) == [("desk@example.com",), ("ops@example.com",)]
    breach = EmailNotification.objects.get(kind="breach")
    # Sent (ops@ has it; a retry would send it to ops@ again), and the refusal is on the row.
    assert (breach.status, breach.attempts) == ("succeeded", 1)
    assert breach.last_error == "Sent, but the mail server refused: nobody@example.com (550 5.1.1 No such mailbox here)"
    assert EmailNotification.objects.get(kind="escalation").last_error == ""


def test_a_mail_server_refusing_every_recipient_is_retried(late_job, settings):
    handler = RefuseOne("desk@example.com")
    with serving(handler) as port:
        _smtp(settings, port)
        scan(minutes(40))  # the escalation only
        assert "0 e-mails sent, 1 failed" in deliver()
    row = EmailNotification.objects.get()
    assert (row.status, row.attempts) == ("pending", 1) and handler.envelopes == []
    assert row.last_error.startswith("SMTPRecipientsRefused") and "desk@example.com" in row.last_error


class DeferOnce(Collect):
    """A mail server that defers one recipient once (a temporary 451, a busy mailbox), answers it
    `then` the next time, and refuses another for good (550, no such mailbox)."""

    def __init__(self, busy: str, gone: str, then: str = "250 OK"):
        super().__init__()
        self.busy, self.gone, self.then, self.deferred = busy, gone, then, 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.gone:
            return "550 5.1.1 No such mailbox here"
        if address == self.busy:
            self.deferred += 1
            if self.deferred == 1:
                return "451 4.2.0 Mailbox busy, try later"
            if not self.then.startswith("2"):
                return self.then
        envelope.rcpt_tos.append(address)
        return "250 OK"


def _three_recipients(org):
    org.notification_emails = ["ops@example.com", "busy@example.com", "nobody@example.com"]
    org.save()


def test_a_recipient_the_mail_server_defers_is_retried_alone(late_job, org, settings):
    """Thirteenth round, known gap: a temporary refusal (4xx) of one recipient among others was
    recorded as if permanent and never retried, so a busy mailbox lost the alert. Now the row is
    retried on the schedule for that recipient alone (the others have it, the permanently refused
    one is not tried again), as a real mail sender does, and reads succeeded once it is taken."""
    _three_recipients(org)
    handler = DeferOnce("busy@example.com", "nobody@example.com")
    with serving(handler) as port:
        _smtp(settings, port)
        scan(minutes(75))  # the escalation (desk@) and the breach (ops@, busy@, nobody@)
        start = timezone.now()
        assert "1 e-mails sent, 1 failed" in deliver(start)
        row = EmailNotification.objects.get(kind="breach")
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error == (
            "The mail server deferred (retried): busy@example.com (451 4.2.0 Mailbox busy, try later); "
            "refused: nobody@example.com (550 5.1.1 No such mailbox here)"
        )
        assert "1 e-mails sent, 0 failed" in deliver(start + dt.timedelta(minutes=5))
    breach_envelopes = [e.rcpt_tos for e in handler.envelopes if "desk@example.com" not in e.rcpt_tos]
    assert breach_envelopes == [["ops@example.com"], ["busy@example.com"]]  # ops@ once, nobody@ not again
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("succeeded", 2)
    assert row.last_error == "Sent, but the mail server refused: nobody@example.com (550 5.1.1 No such mailbox here)"
    assert row.recipient_outcomes == {
        "ops@example.com": "",
        "busy@example.com": "",
        "nobody@example.com": "550 5.1.1 No such mailbox here",
    }


def test_a_deferred_recipient_refused_for_good_on_the_retry_is_recorded_not_retried(late_job, org, settings):
    """The retry goes to the deferred recipient alone; refused for good then (every recipient of
    that attempt refused), it is that recipient's refusal, not a failure of the message, which
    the others have: recorded, and the row is done."""
    _three_recipients(org)
    handler = DeferOnce("busy@example.com", "nobody@example.com", then="550 5.2.1 Mailbox disabled")
    with serving(handler) as port:
        _smtp(settings, port)
        scan(minutes(75))
        start = timezone.now()
        assert "1 e-mails sent, 1 failed" in deliver(start)
        assert "1 e-mails sent, 0 failed" in deliver(start + dt.timedelta(minutes=5))
        assert "0 e-mails sent, 0 failed" in deliver(start + dt.timedelta(days=2))
    row = EmailNotification.objects.get(kind="breach")
    assert (row.status, row.attempts) == ("succeeded", 2)
    assert row.last_error == (
        "Sent, but the mail server refused: nobody@example.com (550 5.1.1 No such mailbox here); "
        "busy@example.com (550 5.2.1 Mailbox disabled)"
    )
    assert handler.deferred == 2

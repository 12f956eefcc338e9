"""The e-mails: which job, which contract, which target, how late, with links on `SITE_URL`.

Rendered when sent (by `deliver_notifications`), from the event's payload alone (the services
that write these events put in what a reader needs), in plain text and HTML from one pair of
templates. Times are shown in the organization's time zone, with UTC beside them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from .models import EmailNotification

METRICS = {"response": "response", "on_site": "on-site", "resolution": "resolution"}


@dataclass
class Content:
    subject: str
    intro: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    # Why the reader gets it (the footer); the default suits the organization's own notices.
    why: str = (
        "You get this because your address is in an escalation level or in the organization's notification e-mails."
    )


@dataclass(frozen=True)
class RegisteredEmail:
    """An e-mail a higher app sends through the outbox for one of its events (signing registers its
    signature-request e-mail). `recipients(event) -> [address]` when the outbox row is written (in
    the event's transaction); `build(event, organization) -> Content` when it is sent; `sent(event,
    now)` after the mail server took it."""

    kind: str
    recipients: Callable[..., list[str]]
    build: Callable[..., Content]
    sent: Callable[..., None] | None = None


REGISTERED: dict[str, RegisteredEmail] = {}


def register_email(event_type: str, email: RegisteredEmail) -> None:
    REGISTERED[event_type] = email


def link(name: str, pk) -> str:
    return settings.SITE_URL + reverse(name, kwargs={"pk": pk})


def admin_link(app_model: str, pk) -> str:
    return f"{settings.SITE_URL}/admin/{app_model}/{pk}/change/"


def when(value, time_zone: str) -> str:
    """An ISO instant from a payload as `2026-03-10 10:00 CET (09:00 UTC)`."""
    instant = parse_datetime(value) if isinstance(value, str) else value
    if instant is None:
        return "unknown"
    local = instant.astimezone(zoneinfo.ZoneInfo(time_zone))
    utc = instant.astimezone(dt.UTC)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc:%H:%M} UTC)"


def duration(minutes: int) -> str:
    minutes = int(minutes)
    hours, rest = divmod(abs(minutes), 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def _target(payload) -> str:
    metric = METRICS.get(payload.get("metric"), payload.get("metric") or "SLA")
    return f"{metric} within {payload.get('target_minutes')} business minutes"


def job_name(payload) -> str:
    """The job as a person names it: `work order WO-1234`, or `work order 31` when it has no
    reference. The payload's `work_order_reference` is the work order's REST name (its reference,
    else `work order <id>`), so it is not prefixed again ("job work order 31")."""
    pk, reference = payload.get("work_order"), payload.get("work_order_reference") or ""
    if not reference or reference == f"work order {pk}":
        return f"work order {pk}"
    return f"work order {reference}"


SUMMARY_IN_SUBJECT = 60  # characters of a work order's summary a subject quotes (the facts have it whole)


def titled(job: str, payload, limit: int | None = None) -> str:
    """The job's name with its summary (its title) when the payload carries one: `work order
    WO-1234 (Pump 3 leaking)`, as `contract_name` names a contract; `limit` shortens a long one
    with an ellipsis (a subject)."""
    summary = " ".join(str(payload.get("work_order_summary") or "").split())
    if limit is not None and len(summary) > limit:
        summary = summary[: limit - 1].rstrip() + "\u2026"
    return f"{job} ({summary})" if summary else job


def contract_name(reference, name: str = "") -> str:
    """`contract C-99 (Pumps)`, or `contract C-99` without a name."""
    return f"contract {reference} ({name})" if name else f"contract {reference}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _job_and_contract(payload) -> list[tuple[str, str]]:
    pk, named = payload.get("work_order"), job_name(payload)
    job = f"no reference (id {pk})" if named == f"work order {pk}" else f"{named.removeprefix('work order ')} (id {pk})"
    summary = [("Summary", payload["work_order_summary"])] if payload.get("work_order_summary") else []
    return [
        ("Work order", job),
        *summary,
        ("Contract", f"{payload.get('contract_reference')} (id {payload.get('contract')})"),
    ]


def _job_links(payload) -> list[tuple[str, str]]:
    return [
        ("Work order in the API", link("work-order-detail", payload["work_order"])),
        ("Work order in the admin", admin_link("workorders/workorder", payload["work_order"])),
        ("Contract in the API", link("contract-detail", payload["contract"])),
        ("Contract in the admin", admin_link("contracts/contract", payload["contract"])),
    ]


def escalation(event, organization) -> Content:
    p, tz = event.payload, organization.default_time_zone
    due = parse_datetime(p["due_at"]) if p.get("due_at") else None
    # How late as of the scan that recorded the escalation (the event's instant), as the breach
    # mail of the same scan says: a level reached hours before a late scan is not "not late yet"
    # (found by an outside sweep: "due in 6 min" beside a breach 5 h past due).
    detected = event.occurred_at
    if due is None:
        lateness = "no due time (the clock is paused)"
    elif detected > due:
        lateness = f"{duration((detected - due).total_seconds() // 60)} past due (wall-clock)"
    else:
        lateness = f"not late yet: due in {duration(math.ceil((due - detected).total_seconds() / 60))} (wall-clock)"
    metric = METRICS.get(p.get("metric"), "SLA")
    job = job_name(p)
    return Content(
        subject=(
            f'[{organization.name}] Escalation "{p["level"]}": {titled(job, p, SUMMARY_IN_SUBJECT)} has used '
            f"{p['at_percent']}% of its {metric} target"
        ),
        intro=(
            f"The {metric} clock of {titled(job, p)} on contract {p.get('contract_reference')} reached escalation "
            f'level "{p["level"]}" ({p["at_percent"]}% of its target). You are named in that level.'
        ),
        facts=[
            *_job_and_contract(p),
            ("Target", _target(p)),
            ("Level", f"{p['level']} at {p['at_percent']}%"),
            ("Reached at", when(p["reached_at"], tz)),
            ("Due at", when(p["due_at"], tz) if p.get("due_at") else "not set (paused)"),
            ("Detected at", when(detected, tz)),
            ("How late", lateness),
        ],
        links=_job_links(p),
    )


def breach(event, organization) -> Content:
    p, tz = event.payload, organization.default_time_zone
    metric = METRICS.get(p.get("metric"), "SLA")
    late = duration(p["overage_minutes"])
    job = job_name(p)
    return Content(
        subject=f"[{organization.name}] SLA breach: {titled(job, p, SUMMARY_IN_SUBJECT)} missed its {metric} target",
        intro=(
            f"{_capital(titled(job, p))} on contract {p.get('contract_reference')} missed its {metric} target: "
            f"it is {late} (business time) past due."
        ),
        facts=[
            *_job_and_contract(p),
            ("Target", _target(p)),
            ("Due at", when(p["due_at"], tz)),
            ("Detected at", when(event.occurred_at, tz)),
            ("How late", f"{late} over the target (business time)"),
            ("Penalty so far", f"{p.get('penalty_amount')} {p.get('currency')}"),
        ],
        links=[
            ("Breach in the API", link("breach-detail", event.object_id)),
            ("Breach in the admin", admin_link("breaches/breach", event.object_id)),
            *_job_links(p),
        ],
    )


def contract_reminder(event, organization) -> Content:
    p, tz = event.payload, organization.default_time_zone
    days = p["days_left"]
    in_days = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    contract = contract_name(p.get("reference"), p.get("name") or "")
    if event.type == "contract.notice_due":
        reference = p.get("reference")
        subject = f"[{organization.name}] Last day to give notice on contract {reference}: {in_days} ({p['date']})"
        intro = (
            f"The last day to give notice on {contract} is {in_days} ({p['date']}). Give notice by then, "
            "or the contract renews automatically."
        )
    else:
        subject = f"[{organization.name}] Contract {p.get('reference')} expires {in_days} ({p['date']})"
        intro = f"{_capital(contract)} expires {in_days} ({p['date']}). Renew it, or let it expire."
    return Content(
        subject=subject,
        intro=intro,
        facts=[
            ("Contract", f"{p.get('reference')} (id {event.object_id})"),
            *([("Name", p["name"])] if p.get("name") else []),
            ("Notice date" if event.type == "contract.notice_due" else "Expiry date", p["date"]),
            ("Days left", str(days)),
            ("Reminder", f"the {p['window_days']}-day reminder, sent {when(event.occurred_at, tz)}"),
        ],
        links=[
            ("Contract in the API", link("contract-detail", event.object_id)),
            ("Contract in the admin", admin_link("contracts/contract", event.object_id)),
        ],
    )


BUILDERS = {
    EmailNotification.Kind.ESCALATION: escalation,
    EmailNotification.Kind.BREACH: breach,
    EmailNotification.Kind.CONTRACT_REMINDER: contract_reminder,
}


def content(row: EmailNotification) -> Content:
    if row.kind in BUILDERS:
        return BUILDERS[row.kind](row.event, row.organization)
    return REGISTERED[row.event.type].build(row.event, row.organization)


def after_sent(row: EmailNotification, now) -> None:
    registered = REGISTERED.get(row.event.type) if row.kind not in BUILDERS else None
    if registered is not None and registered.sent is not None:
        registered.sent(row.event, now)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str) -> str:
    """A header's text on one line: a subject is built from references and names people typed,
    and a line break in one made Django refuse the message, so the alert was never sent (found by
    an outside sweep; it would also be how a header is smuggled in)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def message_id(row: EmailNotification) -> str:
    """The row's own Message-ID, the same on every attempt and from every worker machine: a retry
    after a send the mail server took but the worker did not hear acknowledged (a timeout after
    DATA) is the same message, which mail clients and servers show once. Django's default
    (`make_msgid`, random, on the worker's host name) made each attempt a new message. The domain
    is the sender's (`DEFAULT_FROM_EMAIL`)."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "localhost"
    return f"<sla-email.{row.pk}.event-{row.event_id}@{domain}>"


def render(row: EmailNotification, connection=None) -> EmailMultiAlternatives:
    """The message of an outbox row: plain text with an HTML alternative."""
    body = content(row)
    context = {"content": body, "organization": row.organization, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=one_line(body.subject),
        body=render_to_string("notifications/email.txt", context),
        to=list(row.recipients),
        connection=connection,
        headers={"X-SLA-Event-Id": str(row.event_id), "Message-ID": message_id(row)},
    )
    message.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    return message

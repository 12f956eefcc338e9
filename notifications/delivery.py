"""The worker's core: claim what is due, attempt it, record the outcome (`deliver_notifications`).

Claiming: a worker takes up to `limit` due rows and leases them (`lease_until`, `lease_token`)
in one short transaction, then sends outside any transaction and records each outcome under
the row's lease. On PostgreSQL the claim is `SELECT ... FOR UPDATE SKIP LOCKED` (workers never
wait on each other's rows); on SQLite, which has no row locks, the lease UPDATE re-checks that
each row is still unclaimed, and SQLite runs one writer at a time, so two workers never lease the
same row. A worker that dies leaves its rows to be claimed again when the lease runs out.

Retries follow the Standard Webhooks schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
14 h, 20 h and 24 h after each failure, each delay give or take 10 % (jitter); `Retry-After` on a
429 or 503 replaces the delay (up to 24 h). A 2xx is success; 410 Gone disables the endpoint;
an endpoint whose every attempt failed for `WEBHOOKS_DISABLE_AFTER` (5 days) is disabled with a
`webhook.disabled` event. E-mails follow the same schedule.

Attempts are the outbox's own bookkeeping, kept on the row (count, last status, duration,
response excerpt) and one `WebhookAttempt` row each, not events: an event per attempt would
itself be delivered to every `*` endpoint, without end.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import logging
import random
import secrets
import smtplib
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.message import sanitize_address
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from events.feed import hold_order
from events.services import record_event

from .emails import after_sent, render
from .models import EmailNotification, OutboxRow, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .signing import event_body, headers
from .targets import UnsafeTarget, check_url, post, storable

logger = logging.getLogger("notifications")

Status = OutboxRow.Status

# Seconds to wait before each attempt after the first (Standard Webhooks' schedule).
SCHEDULE = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
MAX_RETRY_AFTER = dt.timedelta(hours=24)
RESPONSE_LIMIT = 1024


def retry_delay(step: int) -> dt.timedelta | None:
    """The jittered wait before attempt `step` of the schedule (0-based); None past its end."""
    if step >= len(SCHEDULE):
        return None
    return dt.timedelta(seconds=SCHEDULE[step] * random.uniform(0.9, 1.1))


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """`Retry-After` as seconds or an HTTP date (RFC 9110), capped at 24 h; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # ASCII digits only (RFC 9110's delay-seconds); past the cap, not turned into a timedelta
        # (`Retry-After: 99999999999999999999` overflowed it and stopped the worker).
        delay = dt.timedelta(seconds=int(value)) if len(value) <= 9 else MAX_RETRY_AFTER
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        delay = max(when - now, dt.timedelta(0))
    return min(delay, MAX_RETRY_AFTER)


# --- claiming -----------------------------------------------------------------------------------


def lease_length(limit: int) -> dt.timedelta:
    """Long enough for `limit` sends that each take the whole timeout (a webhook's deadline or the
    mail server's timeout, whichever is longer), with a margin."""
    per_item = max(settings.WEBHOOKS_TIMEOUT_SECONDS, settings.EMAIL_TIMEOUT or 0)
    return dt.timedelta(seconds=limit * (per_item + 5) + 60)


def claim(queryset, *, now: dt.datetime, limit: int) -> tuple[str, list[int]]:
    """Lease up to `limit` due, unleased rows of `queryset` (oldest due first): (token, ids)."""
    token = secrets.token_hex(16)
    lease_until = now + lease_length(limit)
    due = (
        queryset.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .order_by("next_attempt_at", "pk")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[:limit])
            if ids:
                queryset.model.objects.filter(pk__in=ids).update(lease_until=lease_until, lease_token=token)
            return token, ids
        # SQLite: the UPDATE re-checks the due conditions, one writer at a time.
        candidates = list(due.values_list("pk", flat=True)[:limit])
        if not candidates:
            return token, []
        due.filter(pk__in=candidates).update(lease_until=lease_until, lease_token=token)
        return token, list(queryset.model.objects.filter(lease_token=token).values_list("pk", flat=True))


def _released(row: OutboxRow, now: dt.datetime) -> None:
    row.attempts += 1
    row.last_attempt_at = now
    row.lease_until = None
    row.lease_token = ""


def _schedule_retry(row: OutboxRow, now: dt.datetime, delay: dt.timedelta | None = None) -> None:
    """The next attempt on the schedule (or after `delay`); failed once the schedule is used up."""
    row.schedule_step += 1
    wait = retry_delay(row.schedule_step)
    if wait is None:
        row.status, row.next_attempt_at = Status.FAILED, None
        return
    row.next_attempt_at = now + (delay if delay is not None else wait)


# --- webhooks -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    http_status: int | None = None
    excerpt: str = ""
    retry_after: str | None = None
    duration_ms: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


def attempt(delivery: WebhookDelivery, now: dt.datetime) -> Outcome:
    """Sign and send one delivery (no database write); the outcome, whatever happened."""
    body = event_body(delivery.event)
    signed = headers(
        endpoint=delivery.endpoint, message_id=delivery.webhook_id, body=body, now=now, sent_at=timezone.now()
    )
    try:
        target = check_url(delivery.endpoint.url)  # again at connect time: DNS may have changed
    except UnsafeTarget as exc:
        return Outcome(error=storable(f"Refused: {exc}"))
    started = time.monotonic()
    try:
        response = post(target, body, signed)
    except (OSError, http.client.HTTPException) as exc:
        elapsed = time.monotonic() - started
        if elapsed >= settings.WEBHOOKS_TIMEOUT_SECONDS:
            error = f"Timed out after {settings.WEBHOOKS_TIMEOUT_SECONDS:g} s."
        else:
            error = storable(f"{type(exc).__name__}: {exc}"[:RESPONSE_LIMIT])
        return Outcome(error=error, duration_ms=int(elapsed * 1000))
    return Outcome(
        http_status=response.status,
        excerpt=response.excerpt,
        retry_after=response.retry_after,
        duration_ms=response.duration_ms,
        error="" if 200 <= response.status < 300 else f"HTTP {response.status}",
    )


def disable_endpoint(endpoint: WebhookEndpoint, *, reason: str, now: dt.datetime, actor=None) -> None:
    """Disable a (locked) endpoint: its pending deliveries fail; a `webhook.disabled` event.
    The event order first: a delivery written by an event committing meanwhile fails too."""
    hold_order([endpoint.organization_id])
    endpoint.active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:255]
    endpoint.save(update_fields=["active", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(
        status=Status.FAILED,
        next_attempt_at=None,
        lease_until=None,
        lease_token="",
        last_error="The endpoint was disabled.",
        updated_at=timezone.now(),
    )
    record_event(
        type="webhook.disabled",
        obj=endpoint,
        actor=actor,
        payload={"url": endpoint.url, "reason": endpoint.disabled_reason},
        occurred_at=now,
    )


def record_outcome(delivery_id: int, token: str, outcome: Outcome, now: dt.datetime) -> WebhookDelivery | None:
    """Write an attempt's outcome under the row's lease; None if the row is gone or not ours."""
    with transaction.atomic():
        endpoint_id = WebhookDelivery.objects.filter(pk=delivery_id).values_list("endpoint_id", flat=True).first()
        if endpoint_id is None:
            return None  # the endpoint (and its deliveries) was deleted meanwhile
        # The endpoint before the delivery, the order of every other writer of both. A success
        # only ends a failing spell (an UPDATE that touches nothing on a healthy endpoint, so
        # workers delivering to one endpoint do not queue on its row); a failure locks it.
        endpoint = None
        if outcome.ok:
            WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=False).update(
                failing_since=None, updated_at=timezone.now()
            )
        else:
            endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint_id)
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id, lease_token=token).first()
        if delivery is None:
            return None
        _released(delivery, now)
        delivery.last_http_status = outcome.http_status
        delivery.last_duration_ms = outcome.duration_ms
        delivery.response_excerpt = outcome.excerpt
        delivery.last_error = outcome.error
        WebhookAttempt.objects.create(
            organization_id=delivery.organization_id,
            delivery=delivery,
            number=delivery.attempts,
            attempted_at=now,
            http_status=outcome.http_status,
            duration_ms=outcome.duration_ms,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
        )
        if outcome.ok:
            delivery.status, delivery.next_attempt_at, delivery.delivered_at = Status.SUCCEEDED, None, now
        else:
            if outcome.http_status == 410 and endpoint.active:
                disable_endpoint(endpoint, reason="The receiver answered 410 Gone.", now=now)
            elif endpoint.active:
                if endpoint.failing_since is None:
                    endpoint.failing_since = now
                    endpoint.save(update_fields=["failing_since", "updated_at"])
                elif now - endpoint.failing_since >= settings.WEBHOOKS_DISABLE_AFTER:
                    since = endpoint.failing_since.astimezone(dt.UTC)
                    reason = f"Every attempt failed since {since:%Y-%m-%d %H:%M} UTC."
                    disable_endpoint(endpoint, reason=reason, now=now)
            if endpoint.active:
                delay = None
                if outcome.http_status in (429, 503):
                    delay = parse_retry_after(outcome.retry_after, now)
                _schedule_retry(delivery, now, delay)
            else:
                # A disabled endpoint is not retried (a ping to a disabled endpoint is sent once).
                delivery.status, delivery.next_attempt_at = Status.FAILED, None
        delivery.save()
        return delivery


def attempt_clock(now: dt.datetime, live: bool):
    """Each attempt's instant: the real time when the worker follows the clock (`live`), else the
    pass's `--now` (a run "as if it were" that instant). Found by an outside sweep: every attempt of
    a batch was recorded at the instant the pass began, so behind slow receivers the 20th attempt's
    `attempted_at` was 190 s before it was made, and its "5 s later" retry was due before it was
    recorded."""
    return timezone.now if live else (lambda: now)


def release(model, ids, token: str) -> None:
    """Give back claimed rows not attempted (a worker stopping): others may claim them at once."""
    model.objects.filter(pk__in=list(ids), lease_token=token).update(lease_until=None, lease_token="")


def deliver_claimed(
    ids: list[int], token: str, now: dt.datetime, should_stop=lambda: False, live: bool = False
) -> tuple[int, int]:
    """Attempt each claimed delivery and record it: (succeeded, failed attempts). When
    `should_stop()` turns true, the rows not yet attempted are released. `live`: each attempt at
    the real time (`attempt_clock`)."""
    succeeded = failed = 0
    rows = WebhookDelivery.objects.filter(pk__in=ids, lease_token=token).select_related("endpoint", "event__actor")
    rows = list(rows.order_by("next_attempt_at", "pk"))
    clock = attempt_clock(now, live)
    for index, delivery in enumerate(rows):
        if should_stop():
            release(WebhookDelivery, (row.pk for row in rows[index:]), token)
            break
        now = clock()
        if not WebhookDelivery.objects.filter(pk=delivery.pk, lease_token=token).exists():
            # No longer ours: its endpoint was disabled meanwhile (by an earlier row of this batch
            # or by an admin), which failed it and dropped the lease. Found by an outside sweep:
            # the worker still POSTed it, and its log showed no attempt.
            continue
        try:
            outcome = attempt(delivery, now)
        except Exception as exc:  # a bug must not stop the batch, nor make the row a poison pill
            logger.exception("webhook %s: unexpected error", delivery.webhook_id)
            outcome = Outcome(error=storable(f"Internal error: {type(exc).__name__}: {exc}"[:RESPONSE_LIMIT]))
        # Recorded at the attempt's end: the schedule's wait counts from the failure.
        recorded = _record_guarded(delivery, token, outcome, clock())
        if recorded is not None and recorded.status == Status.SUCCEEDED:
            succeeded += 1
        else:
            failed += 1
            logger.info("webhook %s to %s failed: %s", delivery.webhook_id, delivery.endpoint.url, outcome.error)
    return succeeded, failed


def _record_guarded(delivery: WebhookDelivery, token: str, outcome: Outcome, now: dt.datetime):
    """`record_outcome`, and if that fails, the outcome without what the receiver sent (its
    answer and `Retry-After`), the failure named in its error: one row that cannot be recorded as
    it went is recorded and retried on the schedule, instead of stopping the batch and staying
    leased and unrecorded, POSTed again after every lease without end (found by an outside sweep,
    with a NUL byte in an answer on PostgreSQL). If even that fails the database itself is failing:
    the error goes up to the worker, which waits and tries again."""
    try:
        return record_outcome(delivery.pk, token, outcome, now)
    except Exception as exc:
        logger.exception("webhook %s: the attempt's outcome could not be recorded", delivery.webhook_id)
        note = f"The receiver's answer could not be recorded ({type(exc).__name__}: {exc})"
        fallback = Outcome(
            http_status=outcome.http_status,
            duration_ms=outcome.duration_ms,
            error=storable(f"{outcome.error}; {note}" if outcome.error else note)[:RESPONSE_LIMIT],
        )
        return record_outcome(delivery.pk, token, fallback, now)


def deliver_now(delivery: WebhookDelivery, now: dt.datetime | None = None) -> WebhookDelivery:
    """Attempt one delivery at once (a ping), through the same claim as the worker."""
    live, now = now is None, now or timezone.now()
    token, ids = claim(WebhookDelivery.objects.filter(pk=delivery.pk), now=now, limit=1)
    deliver_claimed(ids, token, now, live=live)
    return WebhookDelivery.objects.get(pk=delivery.pk)


# --- e-mails ------------------------------------------------------------------------------------


def send_mail(message, mail) -> dict:
    """Send `message` on the backend `mail`; the recipients an SMTP server refused while it took the
    message for the others (`{address: (code, reply)}`). Django's SMTP backend drops that answer of
    `sendmail`: a mistyped address among the notification e-mails was never heard of (found by an
    outside sweep, a mail server refusing one recipient of two). A refusal of all recipients is
    still an error (`SMTPRecipientsRefused`), retried."""
    refused = {}
    opened = mail.open()  # this message's own session, so its `sendmail` can be watched
    try:
        smtp = getattr(mail, "connection", None)
        if isinstance(smtp, smtplib.SMTP):
            sendmail = smtp.sendmail

            def watched(*args, **kwargs):
                refused.update(sendmail(*args, **kwargs))
                return {}

            smtp.sendmail = watched
        message.send()
    finally:
        if opened:
            mail.close()
    return refused


def _reply(answer) -> str:
    code, text = answer
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def _refusals(refused: dict) -> str:
    return "; ".join(f"{address} ({text})" for address, text in refused.items())


def _temporary(answer) -> bool:
    """A 4xx reply (RFC 5321 §4.2.1): the server may take it later, as a real mail sender retries."""
    return 400 <= answer[0] < 500


def _send_to_the_rest(row: EmailNotification, message, mail) -> tuple[list[str], dict, dict]:
    """Send `message` to the row's recipients the mail server is not done with (all of them at
    first; after a deferral, those it deferred). Returns (the recipients it took, those it refused
    for good, those it deferred), each refusal as its reply text. A refusal of every recipient on
    a first attempt stays an error (`SMTPRecipientsRefused`, retried whole: nobody has the message
    and the server's configuration may be at fault, e.g. relaying denied); once the server took it
    for someone, a refusal is the recipient's, as a real mail sender treats it."""
    done = row.recipient_outcomes or {}
    message.to = [address for address in message.to if address not in done]
    # The envelope's addresses as the backend wrote them (an international domain in punycode).
    envelope = {sanitize_address(a, message.encoding or settings.DEFAULT_CHARSET): a for a in message.to}
    try:
        refused = send_mail(message, mail)
    except smtplib.SMTPRecipientsRefused as exc:
        if "" not in done.values():
            raise
        refused = exc.recipients
    answers = {envelope.get(address, address): answer for address, answer in refused.items()}
    took = [address for address in message.to if address not in answers]
    permanent = {a: _reply(answer) for a, answer in answers.items() if not _temporary(answer)}
    deferred = {a: _reply(answer) for a, answer in answers.items() if _temporary(answer)}
    return took, permanent, deferred


def send_claimed_emails(
    ids: list[int], token: str, now: dt.datetime, should_stop=lambda: False, live: bool = False
) -> tuple[int, int]:
    sent = failed = 0
    rows = EmailNotification.objects.filter(pk__in=ids, lease_token=token).select_related("event", "organization")
    mail = get_connection()
    try:
        rows = list(rows.order_by("next_attempt_at", "pk"))
        clock = attempt_clock(now, live)
        for index, row in enumerate(rows):
            if should_stop():
                release(EmailNotification, (r.pk for r in rows[index:]), token)
                break
            error, subject, outcomes, deferred = "", "", None, {}
            try:
                message = render(row, connection=mail)
                subject = message.subject
                took, permanent, deferred = _send_to_the_rest(row, message, mail)
                outcomes = {**(row.recipient_outcomes or {}), **dict.fromkeys(took, ""), **permanent}
                refused = {a: text for a, text in outcomes.items() if text}
                if deferred:
                    # Retried on the schedule for those alone (the others have it).
                    error = f"The mail server deferred (retried): {_refusals(deferred)}"
                    error += f"; refused: {_refusals(refused)}" if refused else ""
                elif refused:
                    # Taken for the others: not retried (they would get it twice), but recorded.
                    error = f"Sent, but the mail server refused: {_refusals(refused)}"
                error = storable(error[:RESPONSE_LIMIT])
                if error:
                    logger.warning("e-mail %s: %s", row.pk, error)
            except Exception as exc:  # SMTP, network or backend failure: retried on the schedule
                # The mail server's words, storable (smtplib quotes its replies as bytes, but a
                # backend's own errors need not).
                error = storable(f"{type(exc).__name__}: {exc}"[:RESPONSE_LIMIT])
                logger.warning("e-mail %s failed: %s", row.pk, error)
            now = clock()  # the attempt's end: the schedule's wait counts from the failure
            with transaction.atomic():
                fresh = EmailNotification.objects.select_for_update().filter(pk=row.pk, lease_token=token).first()
                if fresh is None:
                    continue
                _released(fresh, now)
                fresh.subject = storable(subject[:255])
                fresh.last_error = error
                if outcomes is not None:
                    fresh.recipient_outcomes = outcomes
                if outcomes is None or deferred:
                    _schedule_retry(fresh, now)
                    failed += 1
                else:
                    fresh.status, fresh.next_attempt_at, fresh.sent_at = Status.SUCCEEDED, None, now
                    after_sent(row, now)
                    sent += 1
                fresh.save()
    finally:
        mail.close()
    return sent, failed


# --- one pass -----------------------------------------------------------------------------------


@dataclass
class PassSummary:
    webhooks_succeeded: int = 0
    webhooks_failed: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    seen: set = field(default_factory=set)

    @property
    def attempts(self) -> int:
        return self.webhooks_succeeded + self.webhooks_failed + self.emails_sent + self.emails_failed


def deliver_due(
    *, now: dt.datetime, limit: int = 20, summary: PassSummary | None = None, should_stop=None, live: bool = False
) -> int:
    """Claim and send one batch of due webhook deliveries and one of e-mails; how many were claimed.

    `summary.seen` holds the (kind, id) already attempted in this run: a `--once` run attempts a
    row at most once, even when a `Retry-After: 0` makes it due again at once. `should_stop()`
    (a worker asked to stop) ends the pass after the attempt in hand, releasing the rest. `live`:
    each attempt is recorded at the real time, not at `now` (a worker not run with `--now`)."""
    should_stop = should_stop or (lambda: False)
    summary = summary if summary is not None else PassSummary()
    webhook_ids = [pk for kind, pk in summary.seen if kind == "webhook"]
    email_ids = [pk for kind, pk in summary.seen if kind == "email"]
    token, ids = claim(
        WebhookDelivery.objects.filter(endpoint__active=True).exclude(pk__in=webhook_ids), now=now, limit=limit
    )
    if ids:
        ok, bad = deliver_claimed(ids, token, now, should_stop, live)
        summary.webhooks_succeeded += ok
        summary.webhooks_failed += bad
        summary.seen.update(("webhook", pk) for pk in ids)
    if should_stop():
        return len(ids)
    token, mail_ids = claim(EmailNotification.objects.exclude(pk__in=email_ids), now=now, limit=limit)
    if mail_ids:
        ok, bad = send_claimed_emails(mail_ids, token, now, should_stop, live)
        summary.emails_sent += ok
        summary.emails_failed += bad
        summary.seen.update(("email", pk) for pk in mail_ids)
    return len(ids) + len(mail_ids)

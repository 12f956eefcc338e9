"""Webhook deliveries against a real HTTP receiver on 127.0.0.1, verified with `standardwebhooks`:
delivery, retries after 500s, Retry-After, 410, disabling after the failure window,
redelivery, secret rotation (both signatures), the worker's lease, SIGTERM."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import signal
import threading
import time

import pytest
from django.core.management.base import CommandError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from contracts.services import create_counterparty
from events.models import Event
from notifications import delivery as worker
from notifications import services
from notifications.models import WebhookDelivery, WebhookEndpoint
from tests.events.helpers import emit

from .conftest import deliver

pytestmark = pytest.mark.django_db
_names = itertools.count(1)


def counterparty_created(org):
    """A real write (a counterparty) and so a real `counterparty.created` event."""
    create_counterparty(organization=org, actor=None, data={"name": f"Customer {next(_names)}"})
    return Event.objects.filter(organization=org).latest("id")


def later(**delta) -> dt.datetime:
    return timezone.now() + dt.timedelta(**delta)


def test_a_delivery_is_signed_and_shaped_like_the_events_api(api, org, endpoint, receiver):
    event = counterparty_created(org)
    output = deliver()
    assert "Summary: 1 webhook deliveries succeeded, 0 failed" in output
    [request] = receiver.received
    assert request.path == "/hooks"
    assert request.verify(endpoint.secret) == api("viewer").get(f"/api/v1/events/{event.pk}").json()
    assert request.headers["webhook-id"] == f"msg_{event.pk}_{endpoint.pk}"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["Content-Type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(services.new_secret()).verify(request.body, request.headers)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_http_status, row.next_attempt_at) == ("succeeded", 1, 204, None)
    assert row.delivered_at is not None and row.last_duration_ms is not None
    assert "0 webhook deliveries" in deliver()  # nothing is sent twice
    assert len(receiver.received) == 1


def test_retries_follow_the_schedule_under_one_webhook_id(api, org, endpoint, receiver):
    receiver.answer(500, body=b"boom", times=2)
    counterparty_created(org)
    start = timezone.now()
    assert "0 webhook deliveries succeeded, 1 failed" in deliver(start)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_http_status, row.response_excerpt) == ("pending", 1, 500, "boom")
    assert dt.timedelta(seconds=4.5) <= row.next_attempt_at - start <= dt.timedelta(seconds=5.5)  # 5 s, jittered
    assert "0 webhook deliveries" in deliver(start + dt.timedelta(seconds=3))  # not due yet
    deliver(start + dt.timedelta(seconds=6))
    row.refresh_from_db()
    assert (row.attempts, row.schedule_step) == (2, 2)
    assert (
        dt.timedelta(minutes=4.5)
        <= row.next_attempt_at - (start + dt.timedelta(seconds=6))
        <= dt.timedelta(minutes=5.5)
    )
    deliver(start + dt.timedelta(minutes=6))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_http_status) == ("succeeded", 3, 204)
    ids = {request.headers["webhook-id"] for request in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1
    for request in receiver.received:
        request.verify(endpoint.secret)
    assert WebhookEndpoint.objects.get().failing_since is None  # a success ends the failing spell
    body = api("manager").get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{row.pk}").json()
    log = [(a["number"], a["http_status"], a["error"], a["response_excerpt"]) for a in body["attempt_log"]]
    assert log == [(1, 500, "HTTP 500", "boom"), (2, 500, "HTTP 500", "boom"), (3, 204, "", "")]
    assert body["attempt_log"][0]["attempted_at"] == start.isoformat().replace("+00:00", "Z")


def test_the_schedule_gives_up_after_ten_attempts(org, endpoint, receiver):
    receiver.answer(500, times=10)
    counterparty_created(org)
    at = timezone.now()
    for _ in range(10):
        deliver(at)
        row = WebhookDelivery.objects.get()
        at = row.next_attempt_at or at
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 10, None)
    assert len(receiver.received) == 10
    waits = [worker.SCHEDULE[step] for step in range(1, 10)]
    assert waits == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]


def test_jitter_is_within_ten_percent():
    delays = {worker.retry_delay(3).total_seconds() for _ in range(50)}
    assert all(1620 <= d <= 1980 for d in delays) and len(delays) > 1
    assert worker.retry_delay(0) == dt.timedelta(0) and worker.retry_delay(10) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(org, endpoint, receiver, status):
    receiver.answer(status, {"Retry-After": "120"})
    counterparty_created(org)
    start = timezone.now()
    deliver(start)
    row = WebhookDelivery.objects.get()
    assert row.last_http_status == status and row.next_attempt_at == start + dt.timedelta(seconds=120)
    deliver(start + dt.timedelta(seconds=119))
    assert len(receiver.received) == 1
    deliver(start + dt.timedelta(seconds=120))
    row.refresh_from_db()
    assert row.status == "succeeded" and len(receiver.received) == 2


def test_retry_after_as_an_http_date_and_capped():
    now = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    assert worker.parse_retry_after("Tue, 10 Mar 2026 09:05:00 GMT", now) == dt.timedelta(minutes=5)
    assert worker.parse_retry_after("999999", now) == dt.timedelta(hours=24)
    assert worker.parse_retry_after("soon", now) is None
    assert worker.parse_retry_after(None, now) is None
    assert worker.parse_retry_after("\u0663", now) is None  # delay-seconds are ASCII digits
    assert worker.parse_retry_after("Tue, 10 Mar 99999 09:05:00 GMT", now) is None


def test_a_retry_after_too_large_for_a_timedelta_is_the_cap(org, endpoint, receiver):
    # It overflowed while the outcome was recorded: the batch stopped and the worker with it.
    receiver.answer(429, {"Retry-After": "9" * 30})
    counterparty_created(org)
    start = timezone.now()
    assert "0 webhook deliveries succeeded, 1 failed" in deliver(start)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, start + dt.timedelta(hours=24))


def test_retry_after_is_ignored_on_a_500(org, endpoint, receiver):
    receiver.answer(500, {"Retry-After": "3600"})
    counterparty_created(org)
    start = timezone.now()
    deliver(start)
    assert WebhookDelivery.objects.get().next_attempt_at - start < dt.timedelta(seconds=6)


def test_410_disables_the_endpoint(org, endpoint, receiver):
    receiver.answer(410, body=b"gone")
    counterparty_created(org)
    counterparty_created(org)
    deliver(batch_size=1)
    endpoint.refresh_from_db()
    assert endpoint.active is False and "410" in endpoint.disabled_reason
    assert list(WebhookDelivery.objects.order_by("id").values_list("status", "attempts")) == [
        ("failed", 1),
        ("failed", 0),  # the other pending delivery is not attempted
    ]
    disabled = Event.objects.get(type="webhook.disabled")
    assert disabled.object_id == endpoint.pk and "410" in disabled.payload["reason"]
    assert len(receiver.received) == 1
    counterparty_created(org)  # a disabled endpoint gets no new deliveries
    assert WebhookDelivery.objects.count() == 2


def test_a_410_stops_the_rest_of_its_batch_too(org, endpoint, receiver):
    # Found by an outside sweep: the rows claimed with it were still POSTed, their log empty.
    receiver.answer(410, body=b"gone")
    for _ in range(3):
        counterparty_created(org)
    deliver()  # one batch holds all three
    assert len(receiver.received) == 1
    assert list(WebhookDelivery.objects.order_by("id").values_list("status", "attempts", "last_error")) == [
        ("failed", 1, "HTTP 410"),
        ("failed", 0, "The endpoint was disabled."),
        ("failed", 0, "The endpoint was disabled."),
    ]


def test_failing_every_attempt_for_five_days_disables_with_an_event(org, endpoint, receiver, make_member):
    other = services.create_endpoint(
        organization=org, actor=None, data={"url": receiver.url + "/other", "event_types": ["webhook.*"]}
    )
    receiver.answer(500, times=100)
    counterparty_created(org)
    start = timezone.now()
    deliver(start)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since == start
    at = start
    for day in range(1, 5):  # a new event each day, each failing
        at = start + dt.timedelta(days=day)
        counterparty_created(org)
        deliver(at)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active
    counterparty_created(org)
    deliver(start + dt.timedelta(days=5))
    endpoint.refresh_from_db()
    assert endpoint.active is False and "Every attempt failed since" in endpoint.disabled_reason
    assert not WebhookDelivery.objects.filter(endpoint=endpoint, status="pending").exists()
    [event] = Event.objects.filter(type="webhook.disabled")
    # The other endpoint (subscribed to webhook.*) is told, with a signed delivery.
    assert WebhookDelivery.objects.filter(endpoint=other, event=event).exists()
    assert other.active


def test_failure_window_is_configurable(org, endpoint, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER = dt.timedelta(hours=1)
    receiver.answer(500, times=10)
    counterparty_created(org)
    start = timezone.now()
    deliver(start)
    counterparty_created(org)
    deliver(start + dt.timedelta(hours=1))
    assert WebhookEndpoint.objects.get().active is False


def test_a_success_resets_the_failure_window(org, endpoint, receiver):
    receiver.answer(500)
    counterparty_created(org)
    start = timezone.now()
    deliver(start)
    counterparty_created(org)
    deliver(start + dt.timedelta(days=1))  # the new event succeeds (and the first one's retry)
    assert WebhookEndpoint.objects.get().failing_since is None


def test_redelivery_sends_again_under_the_same_webhook_id(api, org, endpoint, receiver):
    event = counterparty_created(org)
    deliver()
    row = WebhookDelivery.objects.get()
    client = api("admin")
    response = client.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{row.pk}/redeliver", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    deliver()
    assert [r.headers["webhook-id"] for r in receiver.received] == [f"msg_{event.pk}_{endpoint.pk}"] * 2
    assert receiver.received[1].verify(endpoint.secret)["id"] == event.pk
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("succeeded", 2)
    assert Event.objects.filter(type="webhook.redelivery_requested", object_id=row.pk).exists()


def test_redelivery_of_a_disabled_endpoint_is_a_conflict(api, org, endpoint, receiver):
    counterparty_created(org)
    deliver()
    row = WebhookDelivery.objects.get()
    services.update_endpoint(instance=endpoint, actor=None, data={"active": False})
    response = api("admin").post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{row.pk}/redeliver", {}, format="json")
    assert response.status_code == 409 and "disabled" in response.json()["message"]


def test_rotation_signs_with_both_secrets_for_24_hours(api, org, endpoint, receiver):
    old = endpoint.secret
    response = api("admin").post(f"/api/v1/webhooks/{endpoint.pk}/rotate_secret", {}, format="json")
    assert response.status_code == 200, response.content
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    counterparty_created(org)
    deliver()
    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    request.verify(old)  # receivers not yet updated still verify
    request.verify(new)
    counterparty_created(org)
    deliver(later(hours=24, minutes=1))  # the old secret has lapsed
    second = receiver.received[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    second.verify(new)
    with pytest.raises(WebhookVerificationError):
        second.verify(old)


def test_redirects_are_not_followed_and_bodies_are_cut_to_1_kb(org, endpoint, receiver):
    receiver.answer(302, {"Location": receiver.url + "/elsewhere"}, b"x" * 5000)
    counterparty_created(org)
    deliver()
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_http_status) == ("pending", 302)
    assert row.response_excerpt == "x" * 1024
    assert [r.path for r in receiver.received] == ["/hooks"]


def test_a_slow_receiver_times_out(org, endpoint, receiver, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    counterparty_created(org)
    started = time.monotonic()
    deliver()
    assert time.monotonic() - started < 1.0
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_http_status) == ("pending", None)
    assert "Timed out" in row.last_error or "timed out" in row.last_error


def test_a_body_sent_a_byte_at_a_time_is_cut_at_the_deadline(org, loopback, settings):
    """Found by an outside sweep: a receiver that answers 200 at once (HTTP/1.0, so the connection
    closes after the answer) and then sends its body a byte every half second held the worker 512 s
    on one attempt: the deadline shut only the socket `http.client` still named, and it forgets the
    socket once an answer closes the connection, while the body is still read from it."""
    import socket

    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.3
    dripped, stop = [], threading.Event()

    def drip(listener):
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)  # the request (small: one event)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set() and len(dripped) < 5000:  # a byte well within each socket timeout
                try:
                    conn.sendall(b"y")
                except OSError:
                    break
                dripped.append(1)
                stop.wait(0.01)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        thread = threading.Thread(target=drip, args=(listener,), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hooks"
        services.create_endpoint(organization=org, actor=None, data={"url": url, "event_types": ["*"]})
        counterparty_created(org)
        try:
            deliver()
        finally:
            stop.set()
            thread.join()
    row = WebhookDelivery.objects.get()
    # The answer was 200 (the receiver has the event); the excerpt is what came before the deadline,
    # not the whole kilobyte a byte at a time.
    assert (row.status, row.last_http_status) == ("succeeded", 200)
    assert 0 < len(row.response_excerpt) < 1024 and set(row.response_excerpt) == {"y"}


def test_each_attempt_of_a_batch_is_recorded_at_its_own_instant(org, endpoint, receiver):
    """Found by an outside sweep: every attempt of a batch was recorded at the instant the pass
    began, so behind a slow receiver the attempt log did not say when an attempt was made, and a
    failure's "5 s later" retry could be due before it was recorded."""
    receiver.delay = 0.2  # each answer comes at least 0.2 s after the request
    receiver.answer(500, times=2)
    counterparty_created(org), counterparty_created(org)
    deliver()  # following the clock (no --now)
    first, second = (row.attempt_log.get() for row in WebhookDelivery.objects.order_by("pk"))
    assert second.attempted_at - first.attempted_at >= dt.timedelta(seconds=0.2)
    for attempt in (first, second):
        delivery = attempt.delivery
        assert delivery.last_attempt_at == attempt.attempted_at
        assert 4.5 <= (delivery.next_attempt_at - attempt.attempted_at).total_seconds() <= 5.5


def test_a_dead_receiver_is_a_failed_attempt(org, loopback):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    services.create_endpoint(
        organization=org, actor=None, data={"url": f"http://127.0.0.1:{port}/", "event_types": ["*"]}
    )
    counterparty_created(org)
    deliver()
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == ("pending", 1) and "Connection" in row.last_error


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(org, endpoint):
    counterparty_created(org)
    now = timezone.now()
    token, ids = worker.claim(WebhookDelivery.objects.all(), now=now, limit=10)
    assert len(ids) == 1
    assert worker.claim(WebhookDelivery.objects.all(), now=now, limit=10)[1] == []
    lease_end = WebhookDelivery.objects.get().lease_until
    other, again = worker.claim(WebhookDelivery.objects.all(), now=lease_end, limit=10)
    assert again == ids and other != token
    # The first worker's lease is gone: its late outcome is not written over the second's claim.
    assert worker.record_outcome(ids[0], token, worker.Outcome(http_status=204), lease_end) is None
    assert WebhookDelivery.objects.get().lease_token == other


def test_now_needs_once_and_bad_options_are_errors(db):
    from django.core.management import call_command

    with pytest.raises(CommandError, match="--now needs --once"):
        call_command("deliver_notifications", now="2026-03-10T09:00:00Z")
    with pytest.raises(CommandError, match="batch-size"):
        call_command("deliver_notifications", once=True, batch_size=0)
    # A larger one was an OverflowError (a C int); the bound is in --help.
    with pytest.raises(CommandError, match="--batch-size must be at most 100000"):
        call_command("deliver_notifications", "--once", "--batch-size", "99999999999999999999")
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("deliver_notifications", once=True, now="tomorrow")


def run_worker_until_received(receiver, count: int) -> tuple[str, bool]:
    """Run the long-running worker in this process's main thread; a timer thread sends SIGTERM
    once `count` requests arrived (and only while the worker's own handler is installed)."""
    from django.core.management import call_command

    installed = []

    def terminate():
        receiver.wait_for(count)
        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler) and getattr(handler, "__name__", "") == "ask_to_stop":
            installed.append(handler)
            os.kill(os.getpid(), signal.SIGTERM)

    timer = threading.Timer(0, terminate)
    timer.start()
    out = io.StringIO()
    call_command("deliver_notifications", poll=0.05, stdout=out)
    timer.join()
    return out.getvalue(), bool(installed)


@pytest.mark.django_db(transaction=True)  # the worker recycles its connection between passes
def test_the_long_running_worker_delivers_and_stops_cleanly_on_sigterm(org, endpoint, receiver):
    counterparty_created(org)
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    output, terminated = run_worker_until_received(receiver, 1)
    assert terminated and time.monotonic() - started < 10
    assert "Stopped. Summary: 1 webhook deliveries succeeded, 0 failed" in output
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
    assert WebhookDelivery.objects.get().status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_the_long_running_worker_survives_a_database_error(org, endpoint, receiver, monkeypatch):
    from django.db import DatabaseError

    from notifications.management.commands import deliver_notifications as command

    real, failures = command.deliver_due, []

    def flaky(**kwargs):
        if not failures:
            failures.append(1)
            raise DatabaseError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(command, "deliver_due", flaky)
    monkeypatch.setattr(command, "RECOVER_SECONDS", 0.01)
    counterparty_created(org)
    output, terminated = run_worker_until_received(receiver, 1)
    assert terminated and failures == [1]
    assert "Stopped. Summary: 1 webhook deliveries succeeded" in output


def test_due_deliveries_are_found_through_the_partial_index(org, endpoint):
    from django.db import connection, transaction

    counterparty_created(org)
    due = WebhookDelivery.objects.filter(endpoint__active=True, status="pending", next_attempt_at__lte=timezone.now())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The tables are tiny: make the planner say whether it *can* use the index.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
        plan = due.order_by("next_attempt_at", "pk").select_for_update(skip_locked=True, of=("self",)).explain()
    assert "delivery_due" in plan, plan


def test_an_unexpected_error_fails_the_attempt_not_the_worker(org, endpoint, receiver, monkeypatch):
    counterparty_created(org)
    counterparty_created(org)
    real = worker.attempt

    def broken_once(delivery, now):
        if delivery.pk == WebhookDelivery.objects.order_by("id").first().pk:
            raise RuntimeError("a bug")
        return real(delivery, now)

    monkeypatch.setattr(worker, "attempt", broken_once)
    assert "1 webhook deliveries succeeded, 1 failed" in deliver()
    first, second = WebhookDelivery.objects.order_by("id")
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "Internal error: RuntimeError: a bug")
    assert second.status == "succeeded"


def test_a_nul_in_the_answer_is_recorded_and_retried(org, endpoint, receiver):
    """PostgreSQL refuses NUL in text: recording the answer `bad\\x00body` raised, the worker
    exited 1, and the row stayed leased and unrecorded, POSTed again after every lease (found by
    an outside sweep). It is kept with U+FFFD in its place, on either database."""
    receiver.answer(500, body=b"bad\x00body")
    counterparty_created(org)
    start = timezone.now()
    assert "0 webhook deliveries succeeded, 1 failed" in deliver(start)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_http_status) == ("pending", 1, 500)
    assert (row.response_excerpt, row.last_error) == ("bad\ufffdbody", "HTTP 500")
    assert start < row.next_attempt_at < start + dt.timedelta(seconds=6) and row.lease_until is None
    [logged] = row.attempt_log.all()
    assert (logged.http_status, logged.response_excerpt) == (500, "bad\ufffdbody")
    assert "1 webhook deliveries succeeded" in deliver(start + dt.timedelta(seconds=6))


def test_an_outcome_that_cannot_be_recorded_fails_that_row_only(org, endpoint, receiver, monkeypatch):
    from django.db import DataError

    receiver.answer(500, {"Retry-After": "60"}, b"an answer the database refuses")
    counterparty_created(org)
    counterparty_created(org)
    first = WebhookDelivery.objects.order_by("id").first()
    real, refused = worker.record_outcome, []

    def refuse_the_first_answer(delivery_id, token, outcome, now):
        if delivery_id == first.pk and outcome.excerpt:
            refused.append(outcome)
            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return real(delivery_id, token, outcome, now)

    monkeypatch.setattr(worker, "record_outcome", refuse_the_first_answer)
    assert "1 webhook deliveries succeeded, 1 failed" in deliver()
    first.refresh_from_db()
    assert len(refused) == 1
    assert (first.status, first.attempts, first.last_http_status, first.response_excerpt) == ("pending", 1, 500, "")
    assert first.last_error.startswith("HTTP 500; The receiver's answer could not be recorded (DataError: ")
    assert first.lease_until is None and first.attempt_log.count() == 1
    assert WebhookDelivery.objects.get(pk__gt=first.pk).status == "succeeded"


def test_a_lease_outlasts_a_batch_of_sends_that_each_take_the_whole_timeout(settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS, settings.EMAIL_TIMEOUT = 10, 30
    assert worker.lease_length(20) == dt.timedelta(seconds=20 * 35 + 60)
    settings.EMAIL_TIMEOUT = None  # Django's own default: the webhook deadline counts
    assert worker.lease_length(1) == dt.timedelta(seconds=15 + 60)


def test_a_worker_asked_to_stop_gives_back_what_it_has_not_attempted(org, endpoint, receiver):
    for _ in range(3):
        counterparty_created(org)
    asked = []

    def stop_after_one():
        asked.append(1)
        return len(receiver.received) >= 1

    summary = worker.PassSummary()
    assert worker.deliver_due(now=timezone.now(), summary=summary, should_stop=stop_after_one) == 3
    assert (summary.webhooks_succeeded, len(receiver.received)) == (1, 1)
    rows = WebhookDelivery.objects.order_by("id")
    assert [(r.status, r.lease_token) for r in rows] == [("succeeded", ""), ("pending", ""), ("pending", "")]
    assert all(r.lease_until is None for r in rows)  # another worker may take them at once
    assert "2 webhook deliveries succeeded" in deliver()


# --- what an endpoint missed: POST /webhooks/{id}/redeliver ------------------------------------------


def redeliver_events(api, endpoint, body, role="admin"):
    return api(role).post(f"/api/v1/webhooks/{endpoint.pk}/redeliver", body, format="json")


def test_events_recorded_while_disabled_are_delivered_after_redelivering_since(api, org, endpoint, receiver):
    """Found by an outside sweep: no delivery is written for a disabled endpoint, and redelivery
    took only an existing delivery, so what happened meanwhile was lost to the receiver although
    the docs said it could be redelivered."""
    before = counterparty_created(org)
    deliver()
    client = api("admin")
    assert client.patch(f"/api/v1/webhooks/{endpoint.pk}", {"active": False}, format="json").status_code == 200
    missed = [counterparty_created(org).pk, counterparty_created(org).pk]
    assert client.patch(f"/api/v1/webhooks/{endpoint.pk}", {"active": True}, format="json").status_code == 200
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries?event_id={missed[0]}").json() == []
    response = redeliver_events(api, endpoint, {"since": before.pk})
    assert response.status_code == 200, response.content
    # the endpoint's own webhook.disabled and webhook.updated are not sent to it
    assert response.json() == {"queued": 2, "event_ids": missed}
    assert "2 webhook deliveries succeeded, 0 failed" in deliver()
    got = [r.verify(endpoint.secret)["id"] for r in receiver.received[1:]]
    assert got == missed
    assert [r.headers["webhook-id"] for r in receiver.received[1:]] == [f"msg_{m}_{endpoint.pk}" for m in missed]
    # nothing twice: what was delivered is not queued again
    assert redeliver_events(api, endpoint, {"since": 0}).json() == {"queued": 0, "event_ids": []}
    requested = Event.objects.get(type="webhook.redelivery_requested")
    assert (requested.object_type, requested.object_id) == ("webhookendpoint", endpoint.pk)
    assert requested.payload == {"webhook": endpoint.pk, "since": before.pk, "until": None, "events": 2}


def test_redelivering_by_ids_requeues_failed_ones_of_its_types_only(api, org, receiver, loopback, other_org):
    endpoint = services.create_endpoint(
        organization=org, actor=None, data={"url": receiver.url, "event_types": ["counterparty.**"]}
    )
    failed = counterparty_created(org)
    receiver.answer(410)  # disables the endpoint, and fails the delivery
    deliver()
    services.update_endpoint(instance=endpoint, actor=None, data={"active": True})
    elsewhere = counterparty_created(other_org)
    other_type = emit(org, "thing.happened")
    for ids in ([other_type.pk], [elsewhere.pk], [failed.pk, 999999]):
        response = redeliver_events(api, endpoint, {"event_ids": ids})
        assert response.status_code == 422, response.content
        assert str(ids[-1]) in response.json()["errors"]["event_ids"][0]
    response = redeliver_events(api, endpoint, {"event_ids": [failed.pk]})
    assert response.json() == {"queued": 1, "event_ids": [failed.pk]}
    assert "1 webhook deliveries succeeded" in deliver()
    row = WebhookDelivery.objects.get(endpoint=endpoint, event=failed)
    assert (row.status, row.attempts) == ("succeeded", 2)
    assert redeliver_events(api, endpoint, {"since": 0}).json()["event_ids"] == []  # only its types


def test_redelivering_since_is_capped_per_call_with_a_way_on(api, org, endpoint, monkeypatch):
    monkeypatch.setattr(services, "MAX_REDELIVER_EVENTS", 2)
    services.update_endpoint(instance=endpoint, actor=None, data={"active": False})
    ids = [counterparty_created(org).pk for _ in range(3)]
    services.update_endpoint(instance=endpoint, actor=None, data={"active": True})
    response = redeliver_events(api, endpoint, {"since": 0})
    assert response.status_code == 422, response.content
    assert f"until={ids[1]}" in response.json()["errors"]["since"][0]
    assert not WebhookDelivery.objects.filter(event_id__in=ids).exists()
    assert redeliver_events(api, endpoint, {"since": 0, "until": ids[1]}).json()["event_ids"] == ids[:2]
    assert redeliver_events(api, endpoint, {"since": ids[1]}).json()["event_ids"] == ids[2:]


def test_redelivering_events_needs_an_admin_an_enabled_endpoint_and_one_way(api, org, endpoint):
    assert redeliver_events(api, endpoint, {"since": 0}, role="manager").status_code == 403
    for body, field in [
        ({}, "since"),
        ({"since": 1, "event_ids": [1]}, "event_ids"),
        ({"until": 5}, "until"),
        ({"since": 5, "until": 5}, "until"),
        ({"since": -1}, "since"),
        ({"event_ids": []}, "event_ids"),
        ({"event_ids": [1] * 1001}, "event_ids"),
        ({"since": 0, "color": "red"}, "color"),
    ]:
        response = redeliver_events(api, endpoint, body)
        assert response.status_code == 422 and field in response.json()["errors"], (body, response.content)
    services.update_endpoint(instance=endpoint, actor=None, data={"active": False})
    response = redeliver_events(api, endpoint, {"since": 0})
    assert response.status_code == 409 and "disabled" in response.json()["message"]


REDELIVER_EVENTS = """mutation($id: ID!, $input: RedeliverEventsInput!) {
  redeliverWebhookEvents(id: $id, input: $input) {
    __typename
    ... on RedeliveryQueued { queued eventIds }
    ... on OperationError { kind fields { path messages } }
  }
}"""


def test_graphql_redelivers_events_as_rest_does(api, org, other_org, endpoint, receiver):
    def redeliver(role, pk, body):
        response = api(role).post(
            "/api/graphql", {"query": REDELIVER_EVENTS, "variables": {"id": str(pk), "input": body}}, format="json"
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.content
        return response.json()["data"]["redeliverWebhookEvents"]

    before = counterparty_created(org)
    deliver()
    services.update_endpoint(instance=endpoint, actor=None, data={"active": False})
    missed = counterparty_created(org)
    services.update_endpoint(instance=endpoint, actor=None, data={"active": True})
    assert redeliver("manager", endpoint.pk, {"since": before.pk})["kind"] == "FORBIDDEN"
    theirs = api("admin", other_org)
    assert redeliver("admin", endpoint.pk, {"since": before.pk, "until": before.pk})["fields"] == [
        {"path": "until", "messages": ["Must be greater than since."]}
    ]
    queued = redeliver("admin", endpoint.pk, {"since": before.pk})
    assert queued == {"__typename": "RedeliveryQueued", "queued": 1, "eventIds": [str(missed.pk)]}
    assert "1 webhook deliveries succeeded" in deliver()
    assert receiver.received[-1].verify(endpoint.secret)["id"] == missed.pk
    # another organization's admin finds no such endpoint
    response = theirs.post(
        "/api/graphql",
        {"query": REDELIVER_EVENTS, "variables": {"id": str(endpoint.pk), "input": {"since": 0}}},
        format="json",
    )
    assert response.json()["data"]["redeliverWebhookEvents"]["kind"] == "NOT_FOUND"

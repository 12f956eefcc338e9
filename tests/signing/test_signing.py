"""Counterparty approval by a signed link: the API, the e-mail, the server-rendered page (with
Django's test client, CSRF enforced), every refusal, and activation waiting for the signature."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import itertools
import re
import socket
import threading
from http.server import ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from contracts.models import Contract, LineItem
from events.models import Event
from notifications import services as notification_services
from notifications.models import EmailNotification
from signing.documents import terms_hash
from signing.models import SignatureRequest
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract
from tests.notifications.conftest import Receiver, _handler, deliver
from tests.slas.factories import make_calendar, make_rule

_tokens = itertools.count(1)
LINK = re.compile(r"http://testserver(/approve/[A-Za-z0-9_\-]+)")  # the address the API was called on


def pending_contract(org, **fields) -> Contract:
    defaults = {"status": "pending_approval", "approval_round": 1, "start_date": dt.date(2026, 1, 1),
                "expiry_date": dt.date(2028, 12, 31), "contract_value": "12000.00"}  # fmt: skip
    return make_contract(org, **{**defaults, **fields})


class TestApprovalRequestsAPI(WritableResourceAPITests):
    create_data = {"name": "Jo Buyer", "email": "jo@customer.example"}
    write_role = "manager"
    default_fields = ["id", "name", "email", "status", "expires_at", "created_at", "decided_at"]
    sort_keys = ["created_at", "email"]
    default_sort = "-id"
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with created_by and the contract's state;
    # then once per response while the contract waits for a listed request's round (the terms hash):
    # 4 the contract of the route, 5 the covered assets, 6 the line items, 7 the counterparty, 8 the
    # SLA rules with their calendars.
    list_queries = 8
    filter_cases = [
        ("email", "a@x.example", ["a"]),
        ("approval_round", "2", ["b"]),
        ("created_at", ">2000-01-01", ["a", "b"]),
        ("decided_at", "", ["a", "b"]),
        ("ids", "b", ["b"]),
    ]
    malformed_filters = [("approval_round", "x"), ("decided_at", ">soon")]

    @pytest.fixture(autouse=True)
    def _contract(self, org):
        self.contract = pending_contract(org)
        self.url = f"/api/v1/contracts/{self.contract.pk}/approval_requests"

    def factory(self, org, **overrides):
        contract = self.contract if org == self.contract.organization else pending_contract(org)
        fields = {"approval_round": 1, "name": "N", "email": "n@x.example", "terms_hash": "0" * 64,
                  "token_hash": f"{next(_tokens):064d}", "expires_at": dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
                  **overrides}  # fmt: skip
        return SignatureRequest.objects.create(organization=org, contract=contract, **fields)

    def detail(self, obj):
        return f"/api/v1/contracts/{obj.contract_id}/approval_requests/{obj.pk}"

    def filter_objects(self, org):
        return {"a": self.factory(org, email="a@x.example"), "b": self.factory(org, approval_round=2)}

    def check_created(self, body, data):
        assert body["status"] == "pending" and body["email"] == data["email"]
        assert len(body["terms_hash"]) == 64

    def test_each_status_listed_as_read_alone(self, api, org):
        """A page writes a request's status from its row (the contract's state joined to it), a
        request read alone from its instance: the same states. A contract that no longer waits for
        the requests' round is neither loaded nor hashed: the list is its 3 queries."""
        current = terms_hash(self.contract)
        past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        expected = {
            self.factory(org, terms_hash=current).pk: "pending",
            self.factory(org, terms_hash="1" * 64).pk: "void",  # sent with other terms
            self.factory(org, terms_hash=current, approval_round=2).pk: "void",  # another round
            self.factory(org, terms_hash=current, expires_at=past).pk: "expired",
            self.factory(org, terms_hash=current, status="accepted", expires_at=past).pk: "accepted",
            self.factory(org, terms_hash=current, status="rejected").pk: "rejected",
        }
        client = api(self.read_role)

        def statuses() -> tuple[dict, dict]:
            listed = {row["id"]: row["status"] for row in self.get_list(client).json()}
            alone = {pk: client.get(f"{self.url}/{pk}").json()["status"] for pk in expected}
            return listed, alone

        assert statuses() == (expected, expected)
        Contract.objects.filter(pk=self.contract.pk).update(status=Contract.Status.DRAFT)
        no_longer = {pk: "void" if status == "pending" else status for pk, status in expected.items()}
        assert statuses() == (no_longer, no_longer)
        with CaptureQueriesContext(connection) as queries:
            assert self.get_list(client).status_code == 200
        assert len(queries) == 3, [query["sql"] for query in queries.captured_queries]

    def test_update(self, api, org):
        """A request is not edited: send a new one. PATCH is 405."""
        obj = self.factory(org)
        assert api("manager").patch(self.detail(obj), {"name": "x"}, format="json").status_code == 405


@pytest.fixture
def signed_contract(org):
    """A contract that requires the counterparty's signature, submitted, with a line item and an SLA rule."""
    contract = pending_contract(org, requires_counterparty_signature=True, hours_budget="40.00")
    baker.make(LineItem, organization=org, contract=contract, description="Quarterly inspection", quantity=4,
               unit_price="250.00")  # fmt: skip
    make_rule(contract, name="Critical response", metric="response", target_minutes=60)
    return contract


def send_request(api, contract):
    """Ask for the signature; the e-mail is queued in the outbox and `deliver_notifications` sends it."""
    sent_before = len(mail.outbox)
    response = api("manager").post(
        f"/api/v1/contracts/{contract.pk}/approval_requests",
        {"name": "Jo Buyer", "email": "jo@customer.example"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert len(mail.outbox) == sent_before  # nothing sent by the request itself
    queued = EmailNotification.objects.get(event__type="contract.signature_requested", status="pending")
    assert queued.kind == "signature_request" and queued.recipients == ["jo@customer.example"]
    assert "1 e-mails sent, 0 failed" in deliver()
    path = LINK.search(mail.outbox[-1].body)[1]
    return response.json(), path


def browser() -> Client:
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT="Mozilla/5.0 (test)", REMOTE_ADDR="203.0.113.7")


def form_of(page: str) -> dict:
    return {
        "csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1],
        "terms_hash": re.search(r'name="terms_hash" value="([0-9a-f]{64})"', page)[1],
    }


@pytest.mark.django_db
class TestSigningEndToEnd:
    def test_from_the_email_to_activation(self, api, org, signed_contract):
        body, path = send_request(api, signed_contract)
        message = mail.outbox[-1]
        assert message.to == ["jo@customer.example"] and signed_contract.reference in message.subject
        token = path.rsplit("/", 1)[1]
        stored = SignatureRequest.objects.get(pk=body["id"])
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
        assert stored.sent_at is not None
        # Both internal approvals: still pending, waiting for the signature.
        for _ in range(2):
            api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approve", {}, format="json")
        shown = api("viewer").get(f"/api/v1/contracts/{signed_contract.pk}").json()
        assert shown["status"] == "pending_approval"
        assert shown["waiting_for"] == ["the counterparty's signature"]

        client = browser()
        page = client.get(path)
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        html = page.content.decode()
        for expected in (signed_contract.reference, "Quarterly inspection", "Critical response", "60 business minutes",
                         "12000.00", body["terms_hash"], signed_contract.counterparty.name, "Expiry date"):  # fmt: skip
            assert expected in html, expected
        assert page["Cache-Control"].startswith("max-age=0")
        done = client.post(path, {**form_of(html), "name": "Jo Buyer", "email": "jo@customer.example",
                                  "signature": "jo buyer", "decision": "accept", "reason": ""})  # fmt: skip
        assert done.status_code == 200, done.content
        assert "You accepted the contract" in done.content.decode()

        signed_contract.refresh_from_db()
        assert signed_contract.status == "active"
        stored.refresh_from_db()
        assert (stored.status, stored.ip_address, stored.user_agent) == (
            "accepted",
            "203.0.113.7",
            "Mozilla/5.0 (test)",
        )
        assert stored.signed_terms_hash == body["terms_hash"]
        event = Event.objects.get(type="contract.counterparty_accepted", object_id=signed_contract.pk)
        assert event.payload["ip_address"] == "203.0.113.7" and event.payload["terms_hash"] == body["terms_hash"]
        assert event.actor is None
        listed = api("viewer").get(f"/api/v1/contracts/{signed_contract.pk}/approval_requests").json()
        assert listed[0]["status"] == "accepted"
        # Single use.
        again = client.get(path)
        assert again.status_code == 410 and "Link already used" in again.content.decode()

    def test_the_page_reads_as_words_not_code(self, api, signed_contract):
        _, path = send_request(api, signed_contract)
        html = browser().get(path).content.decode()
        terms = re.search(r'<table id="terms">(.*?)</table>', html, re.S)[1]

        def row(name: str) -> str:
            return re.search(rf"<th>{name}</th><td>(.*?)</td>", terms)[1]

        assert row("Requires counterparty signature") == "Yes"
        assert row("Auto renew") in ("Yes", "No")
        assert row("Contract type") == dict(Contract.Type.choices)[signed_contract.contract_type]
        assert row("Covered assets") == "None"
        assert "False" not in terms and "True" not in terms and "[]" not in terms

    def test_signature_first_then_the_second_approval_activates(self, api, signed_contract):
        _, path = send_request(api, signed_contract)
        client = browser()
        html = client.get(path).content.decode()
        client.post(path, {**form_of(html), "name": "Jo", "email": "jo@customer.example", "signature": "Jo",
                           "decision": "accept"})  # fmt: skip
        signed_contract.refresh_from_db()
        assert signed_contract.status == "pending_approval"  # no internal approval yet
        api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approve", {}, format="json")
        response = api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approve", {}, format="json")
        assert response.json()["status"] == "active"

    def test_a_rejection_is_recorded_with_its_reason(self, api, signed_contract):
        _, path = send_request(api, signed_contract)
        client = browser()
        html = client.get(path).content.decode()
        fields = {
            **form_of(html),
            "name": "Jo",
            "email": "jo@customer.example",
            "signature": "Jo",
            "decision": "reject",
        }
        missing = client.post(path, {**fields, "reason": ""})
        assert missing.status_code == 422 and "Please say why" in missing.content.decode()
        done = client.post(path, {**fields, "reason": "The penalty cap is too low."})
        assert done.status_code == 200 and "You rejected" in done.content.decode()
        event = Event.objects.get(type="contract.counterparty_rejected")
        assert event.payload["reason"] == "The penalty cap is too low."
        assert SignatureRequest.objects.get().status == "rejected"

    def test_a_contract_without_the_requirement_activates_on_two_approvals(self, api, org):
        contract = pending_contract(org)
        for _ in range(2):
            response = api("manager").post(f"/api/v1/contracts/{contract.pk}/approve", {}, format="json")
        assert response.json()["status"] == "active" and response.json()["waiting_for"] == []


@pytest.mark.django_db
class TestRefusals:
    @pytest.fixture
    def link(self, api, signed_contract):
        _, path = send_request(api, signed_contract)
        return path

    def refused(self, response, status: int, text: str) -> None:
        assert response.status_code == status, response.content
        assert response["Content-Type"].startswith("text/html")
        assert text in response.content.decode()

    def test_unknown_token(self):
        self.refused(browser().get("/approve/not-a-real-token"), 404, "Link not recognised")

    def test_expired(self, link):
        SignatureRequest.objects.update(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        self.refused(browser().get(link), 410, "Link expired")

    def test_void_once_the_terms_change(self, link, signed_contract, api):
        make_rule(signed_contract, name="On site", metric="on_site", target_minutes=240)  # a new SLA target
        self.refused(browser().get(link), 410, "The terms have changed")
        listed = api("viewer").get(f"/api/v1/contracts/{signed_contract.pk}/approval_requests").json()
        assert listed[0]["status"] == "void"

    def test_void_when_the_contract_is_rejected(self, link, signed_contract, api):
        api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/reject", {"reason": "redo"}, format="json")
        self.refused(browser().get(link), 410, "no longer waiting for this approval")

    def test_terms_changed_while_the_page_was_open(self, link, signed_contract):
        client = browser()
        html = client.get(link).content.decode()
        make_rule(signed_contract, name="Resolution", metric="resolution", target_minutes=960)
        response = client.post(link, {**form_of(html), "name": "Jo", "email": "jo@x.example", "signature": "Jo",
                                      "decision": "accept"})  # fmt: skip
        self.refused(response, 410, "The terms have changed")
        assert SignatureRequest.objects.get().status == "pending"

    def test_a_stale_hash_in_the_form_is_refused(self, link):
        client = browser()
        html = client.get(link).content.decode()
        response = client.post(link, {**form_of(html), "terms_hash": "f" * 64, "name": "Jo", "email": "jo@x.example",
                                      "signature": "Jo", "decision": "accept"})  # fmt: skip
        self.refused(response, 409, "The terms changed while the page was open")

    def test_csrf_is_enforced(self, link):
        client = browser()
        html = client.get(link).content.decode()
        fields = {**form_of(html), "name": "Jo", "email": "jo@x.example", "signature": "Jo", "decision": "accept"}
        del fields["csrfmiddlewaretoken"]
        self.refused(client.post(link, fields), 403, "Form expired")
        self.refused(browser().post(link, fields), 403, "Form expired")  # no cookie at all
        assert SignatureRequest.objects.get().status == "pending"

    def test_the_signature_must_match_the_name(self, link):
        client = browser()
        html = client.get(link).content.decode()
        response = client.post(link, {**form_of(html), "name": "Jo Buyer", "email": "jo@x.example",
                                      "signature": "Someone Else", "decision": "accept"})  # fmt: skip
        assert response.status_code == 422 and "Type your name exactly" in response.content.decode()

    def test_rate_limited(self, link, settings, monkeypatch):
        settings.SIGNING_RATE_LIMIT_GET = 3
        # The limit counts per clock minute: pin the page's clock so the requests cannot straddle two.
        monkeypatch.setattr("signing.views.time", SimpleNamespace(time=lambda: 1_800_000_030.0))
        client = browser()
        for _ in range(3):
            assert client.get(link).status_code == 200
        response = client.get(link)
        self.refused(response, 429, "Too many requests")
        assert 0 < int(response["Retry-After"]) <= 60
        other = Client(REMOTE_ADDR="198.51.100.1")
        assert other.get(link).status_code == 200  # per client address


@pytest.mark.django_db
class TestRequestRules:
    def test_only_a_contract_pending_approval(self, api, org):
        draft = make_contract(org)
        response = api("manager").post(f"/api/v1/contracts/{draft.pk}/approval_requests",
                                       {"name": "Jo", "email": "jo@x.example"}, format="json")  # fmt: skip
        assert response.status_code == 409 and "Submit it first" in response.json()["message"]

    def test_email_is_validated(self, api, org):
        contract = pending_contract(org)
        response = api("manager").post(f"/api/v1/contracts/{contract.pk}/approval_requests",
                                       {"name": "Jo", "email": "not an address"}, format="json")  # fmt: skip
        assert response.status_code == 422 and "email" in response.json()["errors"]

    def test_link_lifetime_is_configurable(self, api, org, settings):
        settings.SIGNING_LINK_DAYS = 2
        body, _ = send_request(api, pending_contract(org))
        created = SignatureRequest.objects.get(pk=body["id"])
        assert dt.timedelta(days=2) - (created.expires_at - created.created_at) < dt.timedelta(seconds=5)

    def test_a_failing_mail_server_loses_nothing_the_outbox_retries(self, api, org, signed_contract, settings):
        with socket.socket() as probe:  # a loopback port nobody listens on: the mail server is down
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
        response = api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approval_requests",
                                       {"name": "Jo", "email": "jo@x.example"}, format="json")  # fmt: skip
        assert response.status_code == 201
        assert "0 e-mails sent, 1 failed" in deliver()
        row = EmailNotification.objects.get()
        assert (row.status, row.attempts) == ("pending", 1) and "Connection" in row.last_error
        assert SignatureRequest.objects.get().sent_at is None
        # The server is back: the next attempt (on the outbox's schedule) sends the same link, which works.
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        assert "1 e-mails sent, 0 failed" in deliver(row.next_attempt_at + dt.timedelta(seconds=1))
        assert SignatureRequest.objects.get().sent_at is not None
        path = LINK.search(mail.outbox[-1].body)[1]
        client = browser()
        page = client.get(path)
        assert page.status_code == 200 and signed_contract.reference in page.content.decode()
        done = client.post(path, {**form_of(page.content.decode()), "name": "Jo", "email": "jo@x.example",
                                  "signature": "Jo", "decision": "accept"})  # fmt: skip
        assert done.status_code == 200 and SignatureRequest.objects.get().status == "accepted"

    def test_the_token_is_in_no_table_and_no_event(self, api, signed_contract):
        body, path = send_request(api, signed_contract)
        token = path.rsplit("/", 1)[1]
        stored = SignatureRequest.objects.get(pk=body["id"])
        assert token not in repr(list(SignatureRequest.objects.values()))
        assert token not in repr(list(Event.objects.values())) + repr(list(EmailNotification.objects.values()))
        assert stored.token_nonce and stored.token_hash == hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def smtp_server():
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


class Collect:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.mark.django_db
def test_through_a_real_smtp_server_on_loopback(api, signed_contract, settings, smtp_server):
    handler, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.DEFAULT_FROM_EMAIL = "SLA service <sla@example.com>"
    settings.SIGNING_BASE_URL = "https://sign.example.com"
    response = api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approval_requests",
                                   {"name": "Jo Buyer", "email": "jo@customer.example"}, format="json")  # fmt: skip
    assert response.status_code == 201 and handler.envelopes == []
    assert "1 e-mails sent, 0 failed" in deliver()
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["jo@customer.example"] and envelope.mail_from == "sla@example.com"
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == (
        f"{signed_contract.organization.name} asks you to review and accept "
        f"contract {signed_contract.reference} ({signed_contract.name})"
    )
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    path = re.search(r"https://sign\.example\.com(/approve/[A-Za-z0-9_\-]+)", plain)[1]
    assert f'href="https://sign.example.com{path}"' in html
    assert "named you as the person to approve" in plain
    client = browser()
    page = client.get(path)
    assert page.status_code == 200
    done = client.post(path, {**form_of(page.content.decode()), "name": "Jo Buyer", "email": "jo@customer.example",
                              "signature": "Jo Buyer", "decision": "accept"})  # fmt: skip
    assert done.status_code == 200
    assert SignatureRequest.objects.get().status == "accepted"
    assert "0 e-mails sent" in deliver()  # sent once


@pytest.mark.django_db
def test_the_demo_approval_mail_links_to_the_address_make_run_serves(settings):
    # `make run` sets SITE_URL to the address it serves; the mail may be sent by a worker without it.
    from django.core.management import call_command

    from events.models import Event
    from signing import mail

    settings.SITE_URL = "http://127.0.0.1:8792"
    call_command("seed_demo", "--quiet")
    event = Event.objects.get(type="contract.signature_requested")
    settings.SITE_URL = "http://127.0.0.1:8000"  # the worker's default
    link = dict(mail.build(event, event.organization).links)["Review and accept or reject"]
    assert link.startswith("http://127.0.0.1:8792/approve/"), link


# --- the e-mail going out is an event too (tenth round) -----------------------------------------


@pytest.fixture
def hooks(org, settings):
    """A real webhook receiver on loopback, subscribed to the contract's signature events."""
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks", port=server.server_address[1])
    server.RequestHandlerClass = _handler(state)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    created = notification_services.create_endpoint(
        organization=org, actor=None, data={"url": state.url, "event_types": ["contract.signature_request*"]}
    )
    yield state, created.secret
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_the_sent_e_mail_writes_an_event_that_webhooks_carry(api, signed_contract, settings, smtp_server, hooks):
    """Found by an integrator: `sent_at` was set when the mail server took the request's e-mail, but
    nothing told the feed, the streams or the webhooks (every other state change does)."""
    handler, port = smtp_server
    receiver, secret = hooks
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    manager = api("manager")
    response = manager.post(f"/api/v1/contracts/{signed_contract.pk}/approval_requests",
                            {"name": "Jo Buyer", "email": "jo@customer.example"}, format="json")  # fmt: skip
    assert response.status_code == 201
    request_url = response["Location"]
    assert not Event.objects.filter(type="contract.signature_request_sent").exists()
    # The pass sends the `signature_requested` webhook, then the e-mail; the e-mail's event is
    # queued for the endpoint in the same transaction and goes out with the next pass.
    assert "1 webhook deliveries succeeded, 0 failed; 1 e-mails sent, 0 failed" in deliver()
    assert len(handler.envelopes) == 1
    deliver()
    bodies = [r.verify(secret) for r in receiver.wait_for(2)]
    assert [b["type"] for b in bodies] == ["contract.signature_requested", "contract.signature_request_sent"]
    sent = bodies[1]
    shown = manager.get(request_url).json()
    assert shown["sent_at"] is not None
    assert sent["object_type"] == "contract" and sent["object_id"] == signed_contract.pk
    assert sent["actor"] is None
    assert sent["payload"] == {
        "request": shown["id"], "name": "Jo Buyer", "email": "jo@customer.example", "sent_at": shown["sent_at"],
    }  # fmt: skip
    # The feed says the same, once: a later pass sends nothing more.
    feed = manager.get("/api/v1/events", {"type": "contract.signature_request_sent"}).json()
    assert [(e["id"], e["payload"]) for e in feed] == [(sent["id"], sent["payload"])]
    assert "0 webhook deliveries succeeded, 0 failed; 0 e-mails sent, 0 failed" in deliver()
    assert Event.objects.filter(type="contract.signature_request_sent").count() == 1


@pytest.mark.django_db
def test_an_e_mail_not_taken_writes_no_sent_event(api, signed_contract, settings):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    response = api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approval_requests",
                                   {"name": "Jo", "email": "jo@x.example"}, format="json")  # fmt: skip
    assert response.status_code == 201
    assert "0 e-mails sent, 1 failed" in deliver()
    assert SignatureRequest.objects.get().sent_at is None
    assert not Event.objects.filter(type="contract.signature_request_sent").exists()


@pytest.mark.django_db
class TestBusinessHoursAreSigned:
    """A target is a number of business minutes: what a business minute is (the rule's calendar)
    is part of what the counterparty signs. Only the calendar's name was in the document, so a
    manager could change its hours after the counterparty accepted (24x7 work hours cut to
    Mon-Fri 08:00-17:00 triples a target's length in real time) and the contract still activated
    on that signature (eleventh round, attacker's sweep)."""

    @pytest.fixture
    def calendar(self, org, signed_contract):
        calendar = make_calendar(org, name="Office hours", time_zone="Europe/Amsterdam")
        make_rule(signed_contract, name="Office response", metric="on_site", target_minutes=240, calendar=calendar)
        return calendar

    def shorter_hours(self, api, calendar) -> None:
        hours = [{"weekday": day, "start": "09:00", "end": "12:00"} for day in range(1, 6)]
        response = api("manager").patch(f"/api/v1/calendars/{calendar.pk}", {"hours": hours}, format="json")
        assert response.status_code == 200, response.content

    def test_the_page_shows_the_business_hours(self, api, signed_contract, calendar):
        _, path = send_request(api, signed_contract)
        html = browser().get(path).content.decode()
        assert "Business hours of Office response (Office hours)" in html
        assert "Europe/Amsterdam" in html and "Mon 08:00-17:00; Tue 08:00-17:00" in html

    def test_a_link_is_void_once_the_hours_change(self, api, signed_contract, calendar):
        _, path = send_request(api, signed_contract)
        assert browser().get(path).status_code == 200
        self.shorter_hours(api, calendar)
        response = browser().get(path)
        assert response.status_code == 410 and "The terms have changed" in response.content.decode()

    def test_an_acceptance_does_not_activate_other_hours(self, api, signed_contract, calendar):
        _, path = send_request(api, signed_contract)
        client = browser()
        html = client.get(path).content.decode()
        done = client.post(path, {**form_of(html), "name": "Jo", "email": "jo@customer.example", "signature": "Jo",
                                  "decision": "accept"})  # fmt: skip
        assert done.status_code == 200
        self.shorter_hours(api, calendar)  # after the signature, before the internal approvals
        for _ in range(2):
            response = api("manager").post(f"/api/v1/contracts/{signed_contract.pk}/approve", {}, format="json")
        assert response.json()["status"] == "pending_approval"
        assert response.json()["waiting_for"] == ["the counterparty's signature"]


class TestTheBillingCalendarIsSigned:
    """The billing calendar says which hours `out_of_hours_multiplier` prices higher: money the
    counterparty signs. Only its id was in the document, so a manager could cut its hours after
    the link was sent (every hour outside 09:00-12:00 charged double) and the link, and the
    acceptance, stayed good; the page showed the calendar as a bare id (regression sweep)."""

    @pytest.fixture
    def calendar(self, org, signed_contract):
        calendar = make_calendar(org, name="Billing hours", time_zone="Europe/Amsterdam")
        Contract.objects.filter(pk=signed_contract.pk).update(billing_calendar=calendar, out_of_hours_multiplier="2.00")
        return calendar

    def test_the_page_names_it_and_shows_its_hours(self, api, signed_contract, calendar):
        _, path = send_request(api, signed_contract)
        html = browser().get(path).content.decode()
        assert "<tr><th>Billing calendar</th><td>Billing hours</td></tr>" in html
        assert "Business hours of the billing calendar (Billing hours)" in html
        assert "Mon 08:00-17:00; Tue 08:00-17:00" in html

    def test_a_link_is_void_once_its_hours_change(self, api, signed_contract, calendar):
        _, path = send_request(api, signed_contract)
        assert browser().get(path).status_code == 200
        hours = [{"weekday": day, "start": "09:00", "end": "12:00"} for day in range(1, 6)]
        edited = api("manager").patch(f"/api/v1/calendars/{calendar.pk}", {"hours": hours}, format="json")
        assert edited.status_code == 200
        response = browser().get(path)
        assert response.status_code == 410 and "The terms have changed" in response.content.decode()

    def test_a_contract_without_one_signs_what_it_signed_before(self, signed_contract):
        from signing.documents import terms_document

        assert "billing_calendar" not in terms_document(signed_contract)
        assert terms_document(signed_contract)["terms"]["billing_calendar"] is None

"""`/api/v1/webhooks`, `/api/v1/webhooks/{id}/deliveries` and `/api/v1/notification_settings`
through the shared API test base, plus what is particular to them (the secret shown once, ping)."""

from __future__ import annotations

import base64
import datetime as dt
import itertools

import pytest
from django.utils import timezone
from model_bakery import baker

from events.models import Event
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.signing import new_secret
from tests.api_base import ResourceAPITests, WritableResourceAPITests
from tests.graphql.conftest import GraphQLClient

from .conftest import PUBLIC_V4

_n = itertools.count(1)


def make_endpoint(org, **overrides) -> WebhookEndpoint:
    defaults = {"url": f"https://hooks.example.com/{next(_n)}", "event_types": ["*"], "secret": new_secret()}
    return WebhookEndpoint.objects.create(organization=org, **{**defaults, **overrides})


class TestWebhooksAPI(WritableResourceAPITests):
    url = "/api/v1/webhooks"
    create_data = {"url": "https://hooks.example.com/in", "event_types": ["breach.*", "contract.expiring"]}
    update_data = {"description": "Dispatch system", "event_types": ["contract.*"]}
    read_role = "manager"
    write_role = "admin"
    default_fields = ["id", "url", "description", "event_types", "active", "created_at"]
    sort_keys = ["url", "created_at", "active"]
    default_sort = "id"
    deletable = True
    detail_actions = [("rotate_secret", {}), ("ping", {}), ("redeliver", {"since": 0})]
    # 1 count, 2 the page's ids (issue 15), 3 the page.
    list_queries = 3
    filter_cases = [
        ("active", "false", ["off"]),
        ("active", "true", ["on"]),
        ("created_at", ">2000-01-01", ["on", "off"]),
        ("ids", "on", ["on"]),
    ]
    malformed_filters = [("active", "maybe"), ("created_at", ">yesterday")]

    @pytest.fixture(autouse=True)
    def _public_dns(self, dns):
        dns["hooks.example.com"] = [PUBLIC_V4]

    def factory(self, org, **overrides):
        return make_endpoint(org, **overrides)

    def filter_objects(self, org):
        return {"on": make_endpoint(org), "off": make_endpoint(org, active=False)}

    def test_create(self, api, org):
        """The answer to the create is the only one with the secret; a GET never shows it."""
        response = api("admin").post(self.url, self.create_data, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert response["Location"].endswith(f"{self.url}/{body['id']}")
        secret = body.pop("secret")
        assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
        fetched = api("manager").get(response["Location"])
        assert fetched.status_code == 200 and fetched.json() == body
        assert body["active"] is True and body["event_types"] == self.create_data["event_types"]
        endpoint = WebhookEndpoint.objects.get(pk=body["id"])
        assert endpoint.secret == secret and endpoint.organization == org
        event = Event.objects.get(type="webhook.created", object_id=endpoint.pk)
        assert secret not in str(event.payload)

    def test_event_types_are_validated(self, api):
        client = api("admin")
        for event_types, message in [
            ([], "at least 1"),
            (["Breach.Detected"], "Not an event type pattern"),
            (["breach.[a-z]"], "Not an event type pattern"),
            ("breach.*", "Expected a list"),
        ]:
            response = client.post(self.url, {"url": "https://hooks.example.com/", "event_types": event_types})
            assert response.status_code == 422, response.content
            assert message in response.json()["errors"]["event_types"][0]

    def test_rotate_secret_shows_the_new_one_once(self, api, org):
        endpoint = make_endpoint(org)
        old = endpoint.secret
        before = timezone.now()
        response = api("admin").post(f"{self.url}/{endpoint.pk}/rotate_secret", {}, format="json")
        assert response.status_code == 200, response.content
        endpoint.refresh_from_db()
        assert response.json()["secret"] == endpoint.secret != old
        assert endpoint.previous_secret == old
        assert endpoint.previous_secret_expires_at - before >= dt.timedelta(hours=24)
        assert "secret" not in api("manager").get(f"{self.url}/{endpoint.pk}").json()
        assert api("manager").post(f"{self.url}/{endpoint.pk}/rotate_secret", {}, format="json").status_code == 403

    def test_deactivating_fails_the_pending_deliveries_and_reactivating_starts_afresh(self, api, org):
        endpoint = make_endpoint(org, failing_since=timezone.now())
        event = baker.make(
            Event, organization=org, type="x.y", object_type="x", object_id=1, occurred_at=timezone.now()
        )
        WebhookDelivery.objects.create(organization=org, endpoint=endpoint, event=event, next_attempt_at=timezone.now())
        client = api("admin")
        response = client.patch(f"{self.url}/{endpoint.pk}", {"active": False}, format="json")
        assert response.status_code == 200 and response.json()["active"] is False
        assert response.json()["disabled_reason"] == "Disabled by an administrator."
        assert WebhookDelivery.objects.get().status == "failed"
        disabled = Event.objects.get(type="webhook.disabled")
        assert disabled.actor_id == client.membership.user_id
        response = client.patch(f"{self.url}/{endpoint.pk}", {"active": True}, format="json")
        assert response.json()["active"] is True and response.json()["disabled_reason"] == ""
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None and endpoint.disabled_at is None

    def test_enabling_again_checks_the_url_again(self, api, org, dns):
        endpoint = make_endpoint(org, active=False)
        dns["hooks.example.com"] = ["10.9.9.9"]
        response = api("admin").patch(f"{self.url}/{endpoint.pk}", {"active": True}, format="json")
        assert response.status_code == 422 and "10.9.9.9" in response.json()["errors"]["url"][0]
        assert WebhookEndpoint.objects.get().active is False

    def test_delete_keeps_the_events(self, api, org):
        endpoint = make_endpoint(org)
        assert api("admin").delete(f"{self.url}/{endpoint.pk}").status_code == 204
        assert not WebhookEndpoint.objects.exists()
        assert Event.objects.get(type="webhook.deleted").object_id == endpoint.pk


def test_ping_delivers_a_signed_event_at_once(api, org, receiver, loopback):
    client = api("admin")
    created = client.post("/api/v1/webhooks", {"url": receiver.url, "event_types": ["breach.*"]}, format="json")
    assert created.status_code == 201, created.content
    endpoint = created.json()
    response = client.post(f"/api/v1/webhooks/{endpoint['id']}/ping", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["attempts"], body["last_http_status"]) == ("succeeded", 1, 204)
    assert body["event"]["type"] == "webhook.ping"
    [request] = receiver.received  # not subscribed to webhook.*, yet pinged
    payload = request.verify(endpoint["secret"])
    assert payload["type"] == "webhook.ping" and payload["object_id"] == endpoint["id"]
    assert request.headers["webhook-id"] == body["webhook_id"]
    fetched = client.get(response["Location"]).json()
    assert (fetched["id"], fetched["status"], fetched["attempt_log"][0]["http_status"]) == (
        body["id"],
        "succeeded",
        204,
    )
    assert response["Location"].endswith(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{body['id']}")


def test_a_failed_ping_says_so_and_is_retried(api, org, receiver, loopback):
    receiver.answer(500, body=b"not today")
    client = api("admin")
    endpoint = client.post("/api/v1/webhooks", {"url": receiver.url, "event_types": ["*"]}, format="json").json()
    body = client.post(f"/api/v1/webhooks/{endpoint['id']}/ping", {}, format="json").json()
    assert (body["status"], body["last_http_status"], body["response_excerpt"]) == ("pending", 500, "not today")
    assert body["next_attempt_at"] is not None


def test_a_ping_answered_with_a_nul_byte_is_a_failed_ping_not_a_500(api, org, receiver, loopback):
    # PostgreSQL refuses NUL in text: the ping answered 500 and its delivery stayed leased, unrecorded.
    receiver.answer(500, body=b"bad\x00body")
    client = api("admin")
    endpoint = client.post("/api/v1/webhooks", {"url": receiver.url, "event_types": ["*"]}, format="json").json()
    response = client.post(f"/api/v1/webhooks/{endpoint['id']}/ping", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["attempts"], body["last_http_status"]) == ("pending", 1, 500)
    assert body["response_excerpt"] == "bad\ufffdbody"


class TestWebhookDeliveriesAPI(ResourceAPITests):
    read_role = "manager"
    default_fields = [
        "id", "webhook_id", "event", "status", "attempts", "last_http_status", "duration_ms", "next_attempt_at",
        "response_excerpt", "created_at",
    ]  # fmt: skip
    sort_keys = ["created_at", "next_attempt_at", "attempts"]
    default_sort = "-id"
    detail_actions = [("redeliver", {})]
    # 1 count, 2 the page's ids (issue 15), 3 the page with its events (joined); the route's endpoint
    # only for an empty list.
    list_queries = 3
    filter_cases = [
        ("status", "failed", ["failed"]),
        ("status", "!failed", ["ok"]),
        ("last_http_status", ">=500", ["failed"]),
        ("created_at", ">2000-01-01", ["ok", "failed"]),
        ("next_attempt_at", "", ["ok"]),
        ("event_type", "breach.detected", ["failed"]),
        ("event_id", lambda objects: str(objects["ok"].event_id), ["ok"]),
        ("ids", "ok", ["ok"]),
    ]
    malformed_filters = [("status", "lost"), ("last_http_status", "teapot"), ("event_id", "x")]

    @pytest.fixture(autouse=True)
    def _endpoint(self, org):
        self.endpoint = make_endpoint(org)
        self.url = f"/api/v1/webhooks/{self.endpoint.pk}/deliveries"

    def factory(self, org, **overrides):
        endpoint = self.endpoint if org == self.endpoint.organization else make_endpoint(org)
        event_type = overrides.pop("event_type", "contract.created")
        event = baker.make(
            Event, organization=org, type=event_type, object_type="x", object_id=1, occurred_at=timezone.now()
        )
        defaults = {"next_attempt_at": timezone.now(), "attempts": next(_n) % 5}
        return WebhookDelivery.objects.create(
            organization=org, endpoint=endpoint, event=event, **{**defaults, **overrides}
        )

    def detail(self, obj):
        return f"/api/v1/webhooks/{obj.endpoint_id}/deliveries/{obj.pk}"

    def sort_value(self, key, item):
        return item.get(key)

    def filter_objects(self, org):
        return {
            "ok": self.factory(org, status="succeeded", last_http_status=200, next_attempt_at=None),
            "failed": self.factory(org, status="failed", last_http_status=503, event_type="breach.detected"),
        }

    def test_another_endpoints_deliveries_are_not_listed(self, api, org):
        mine = self.factory(org)
        other = make_endpoint(org)
        theirs = WebhookDelivery.objects.create(
            organization=org, endpoint=other, event=mine.event, next_attempt_at=timezone.now()
        )
        body = api("manager").get(self.url).json()
        assert [d["id"] for d in body] == [mine.pk]
        assert api("manager").get(f"{self.url}/{theirs.pk}").status_code == 404
        assert api("manager").get("/api/v1/webhooks/999999/deliveries").status_code == 404

    def test_the_attempt_log_on_request(self, api, org):
        delivery = self.factory(org)
        WebhookAttempt.objects.create(
            organization=org,
            delivery=delivery,
            number=1,
            attempted_at=timezone.now(),
            http_status=500,
            error="HTTP 500",
        )
        client = api("manager")
        assert "attempt_log" not in client.get(self.url).json()[0]
        [listed] = client.get(f"{self.url}?fields=attempt_log").json()
        assert [(a["number"], a["http_status"]) for a in listed["attempt_log"]] == [(1, 500)]
        assert client.get(self.detail(delivery)).json()["attempt_log"] == listed["attempt_log"]

    def test_redeliver_needs_an_admin(self, api, org):
        delivery = self.factory(org, status="failed", next_attempt_at=None)
        response = api("manager").post(f"{self.detail(delivery)}/redeliver", {}, format="json")
        assert response.status_code == 403
        response = api("admin").post(f"{self.detail(delivery)}/redeliver", {}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "pending"


@pytest.mark.django_db
class TestNotificationSettings:
    url = "/api/v1/notification_settings"

    def test_admins_write_managers_read(self, api, org):
        client = api("admin")
        response = client.patch(self.url, {"notification_emails": ["ops@example.com", "boss@example.com"]})
        assert response.status_code == 200, response.content
        assert response.json() == {"notification_emails": ["ops@example.com", "boss@example.com"]}
        org.refresh_from_db()
        assert org.notification_emails == ["ops@example.com", "boss@example.com"]
        assert api("manager").get(self.url).json() == response.json()
        assert api("manager").patch(self.url, {"notification_emails": []}).status_code == 403
        assert api("operator").get(self.url).status_code == 403
        event = Event.objects.get(type="organization.updated")
        assert (event.object_type, event.object_id, event.organization_id) == ("organization", org.pk, org.pk)
        assert event.payload["changes"]["notification_emails"]["after"] == ["ops@example.com", "boss@example.com"]

    def test_bad_input_is_a_422_naming_the_field(self, api, org):
        client = api("admin")
        for body, field in [
            ({"notification_emails": ["not an address"]}, "notification_emails[0]"),
            ({"notification_emails": "ops@example.com"}, "notification_emails"),
            ({"notification_emails": [f"a{n}@example.com" for n in range(21)]}, "notification_emails"),
            ({"other": 1}, "other"),
        ]:
            response = client.patch(self.url, body, format="json")
            assert response.status_code == 422, (body, response.content)
            assert field in response.json()["errors"], response.json()

    def test_each_address_is_kept_once(self, api, org):
        """Found by an outside tester: a repeated address was stored and read back doubled."""
        sent = ["ops@example.com", "boss@example.com", "OPS@example.com", "boss@example.com"]
        response = api("admin").patch(self.url, {"notification_emails": sent}, format="json")
        assert response.json() == {"notification_emails": ["ops@example.com", "boss@example.com"]}
        org.refresh_from_db()
        assert org.notification_emails == ["ops@example.com", "boss@example.com"]
        data = GraphQLClient(api("admin"))(
            'mutation { updateNotificationSettings(input: {notificationEmails: ["a@example.com", "a@example.com"]}) '
            "{ ... on NotificationSettings { notificationEmails } } }"
        )
        assert data["updateNotificationSettings"] == {"notificationEmails": ["a@example.com"]}

    def test_only_the_callers_organization(self, api, org, other_org):
        api("admin", org=other_org).patch(self.url, {"notification_emails": ["them@example.com"]}, format="json")
        assert api("admin").get(self.url).json() == {"notification_emails": []}

    def test_401_without_a_token(self, anon):
        assert anon.get(self.url).status_code == 401

"""The careless-input sweep of issue 8 (tests/config/test_careless_sweep.py) runs as a manager,
who may not write webhooks; this runs the same sweep over the notifications operations as an
admin, on an endpoint and a delivery that exist, so every write path meets the careless values.
Names resolve through the stub resolver: nothing leaves loopback."""

from __future__ import annotations

import json

import pytest

from contracts.services import create_counterparty
from notifications.models import WebhookDelivery
from tests.config.test_careless_sweep import assert_client_error, careless_values, resolve

from .conftest import PUBLIC_V4
from .test_webhooks_api import make_endpoint


@pytest.mark.django_db
def test_notifications_operations_answer_careless_input_with_a_4xx_json_error(api, org, dns, connects):
    dns["hooks.example.com"] = [PUBLIC_V4]
    client = api("admin")
    endpoint = make_endpoint(org)
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    schema = client.get("/api/v1/schema?format=json").json()
    swept = 0
    for template, item in schema["paths"].items():
        if "webhooks" not in template and "notification_settings" not in template:
            continue
        path = template.replace("{webhook_pk}", str(endpoint.pk))
        path = path.replace("{id}", str(delivery.pk if "deliveries" in template else endpoint.pk))
        for method, operation in item.items():
            if method not in ("post", "patch"):
                continue
            send = getattr(client, method)
            assert_client_error(
                send(path, json.dumps({"x": "y" * (2 * 1024 * 1024)}), content_type="application/json"),
                (method, template, "oversized"),
            )
            assert_client_error(
                send(path, "[" * 20000 + "]" * 20000, content_type="application/json"), (method, template, "nested")
            )
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            properties = resolve(schema, body["schema"]).get("properties", {}) if body else {}
            for name, prop in properties.items():
                if prop.get("readOnly"):
                    continue
                for value in careless_values(resolve(schema, prop)):
                    response = send(path, {name: value}, format="json")
                    assert_client_error(response, (method, template, name, value))
                    swept += 1
    assert swept >= 40, swept  # webhooks POST and PATCH, notification_settings PATCH
    assert connects == []  # no careless input made the service connect anywhere
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"  # nothing was redelivered

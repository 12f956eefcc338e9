"""Secrets and Standard Webhooks signatures (the `standardwebhooks` package signs)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from rest_framework.renderers import JSONRenderer
from standardwebhooks.webhooks import Webhook

from events.api import EventSerializer

SECRET_BYTES = 32  # within the 24-64 the issue allows


def new_secret() -> str:
    """`whsec_` + base64 of random bytes, as Standard Webhooks libraries read it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def event_body(event) -> bytes:
    """The event in the shape of `GET /api/v1/events` (the same serializer), as JSON."""
    return JSONRenderer().render(EventSerializer(event).data)


def signing_secrets(endpoint, now: dt.datetime) -> list[str]:
    """The current secret, and the previous one while it is still valid after a rotation."""
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and now < endpoint.previous_secret_expires_at:
        keys.append(endpoint.previous_secret)
    return keys


def headers(*, endpoint, message_id: str, body: bytes, now: dt.datetime, sent_at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers: `webhook-signature` has one `v1,` signature per valid secret.

    `sent_at` is the real time of sending (receivers reject timestamps more than 5 minutes
    off), whatever instant the worker runs as (`--now`)."""
    sent_at = sent_at.astimezone(dt.UTC)
    data = body.decode()
    signatures = [Webhook(key).sign(message_id, sent_at, data) for key in signing_secrets(endpoint, now)]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "Content-Type": "application/json",
        "User-Agent": "sla-service-webhooks/1",
    }

"""Demo webhook: an endpoint of the demo organization for the breach events, at the receiver the
README starts on this machine (`python3 -m http.server 9999`), with the demo breach's events
queued to it. `WEBHOOKS_ALLOW_LOOPBACK=1 .venv/bin/python manage.py deliver_notifications --once`
sends them; without that switch each attempt fails ("Only https URLs are allowed." in its
`attempt_log`) and is retried on the schedule."""

from django.contrib.auth import get_user_model

from tenancy.models import Organization

from . import services
from .models import WebhookEndpoint

DEMO_WEBHOOK_URL = "http://127.0.0.1:9999/sla"


def seed(log) -> None:
    demo = Organization.objects.get(slug="demo")
    if WebhookEndpoint.objects.filter(organization=demo, url=DEMO_WEBHOOK_URL).exists():
        return
    admin = get_user_model().objects.get(username="demo-admin")
    # A loopback URL is taken only with WEBHOOKS_ALLOW_LOOPBACK (development): the demo's is, whatever
    # the switch says now; the worker checks it again before each attempt, as for any endpoint.
    endpoint = services.create_endpoint(
        organization=demo,
        actor=admin,
        data={"url": DEMO_WEBHOOK_URL, "event_types": ["breach.*"], "description": "Demo receiver on this machine"},
        url_checked=False,
    )
    queued = services.redeliver_events(endpoint=endpoint, actor=admin, since=0)
    log(f"a webhook endpoint for breach.* at {DEMO_WEBHOOK_URL}, {len(queued)} deliveries pending")

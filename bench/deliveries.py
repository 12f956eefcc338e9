"""Benchmark: webhook deliveries per second of one `deliver_notifications` worker against a local
receiver, on PostgreSQL.

In its own database (BENCH_DATABASE_URL's server, database `sla_bench_deliveries`, dropped WITH
(FORCE), recreated and migrated): one organization, one endpoint subscribed to `*` on an HTTP
receiver in this process (127.0.0.1, a free port, answering 204 at once, counting each
`webhook-id`), and EVENTS `counterparty.created` events written in one `record_events` batch (so
the outbox write is timed too: `outbox_write_seconds`, one INSERT of the deliveries).

Then one worker process, `manage.py deliver_notifications --once --batch-size 20` with
`WEBHOOKS_ALLOW_LOOPBACK=1`, sends them all: `deliveries_per_second` is EVENTS over the command's
own seconds (its Summary line: claim, sign, POST, record), `process_seconds` includes starting
Python and Django. Each delivery is a new TCP connection (no keep-alive), a Standard Webhooks
HMAC, a claim share and one recording transaction. A sample of signatures is verified with the
`standardwebhooks` package. The machine is shared, so the figure is only as quiet as the machine
(`load_average_1m`).

Errors (each counted): a worker exiting non-zero, a webhook-id received other than exactly once,
a delivery not `succeeded`, a signature that does not verify.

Run it with `make bench`, or alone: `.venv/bin/python bench/deliveries.py`.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import benchdb

DATABASE = "sla_bench_deliveries"
EVENTS = 2000
SUMMARY = re.compile(r"^Summary: (\d+) webhook deliveries succeeded, (\d+) failed.*in (\d+\.\d+)s\.$", re.MULTILINE)


class Receiver:
    def __init__(self):
        self.ids: Counter = Counter()
        self.samples: list = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.ids[self.headers["webhook-id"]] += 1
                    if len(receiver.samples) < 20:
                        receiver.samples.append((body, dict(self.headers.items())))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bench"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def seed(url: str, receiver_url: str) -> tuple[str, float]:
    from django.conf import settings

    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    from contracts.models import Counterparty
    from events.services import record_events
    from notifications.services import create_endpoint
    from tenancy.models import Organization

    org = Organization.objects.create(slug="bench", name="Bench")
    endpoint = create_endpoint(organization=org, actor=None, data={"url": receiver_url, "event_types": ["*"]})
    counterparties = Counterparty.objects.bulk_create(
        Counterparty(organization=org, name=f"Customer {n}") for n in range(EVENTS)
    )
    from django.db import transaction
    from django.utils import timezone

    started = time.monotonic()
    with transaction.atomic():
        record_events(
            type="counterparty.created",
            items=[(c, {"name": c.name}) for c in counterparties],
            occurred_at=timezone.now(),
        )
    return endpoint.secret, time.monotonic() - started


def run(database_url: str) -> dict:
    url = benchdb.database_url(database_url, DATABASE)
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    receiver = Receiver()
    errors = 0
    try:
        secret, write_seconds = seed(url, receiver.url)
        from django.db import connections

        connections.close_all()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "WEBHOOKS_ALLOW_LOOPBACK": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        command = [sys.executable, "manage.py", "deliver_notifications", "--once", "--batch-size", "20"]
        code, seconds, rss, output = benchdb.run_measured(command, env)
        match = SUMMARY.search(output)
        if code != 0 or match is None:
            print(output, file=sys.stderr)
            return {"errors": 1}
        succeeded, failed, command_seconds = int(match.group(1)), int(match.group(2)), float(match.group(3))
        errors += sum(1 for count in receiver.ids.values() if count != 1) + abs(EVENTS - len(receiver.ids))
        from notifications.models import WebhookDelivery

        errors += WebhookDelivery.objects.exclude(status="succeeded").count()
        from standardwebhooks.webhooks import Webhook

        for body, headers in receiver.samples:
            try:
                Webhook(secret).verify(body, headers)
            except Exception:
                errors += 1
    finally:
        receiver.close()
    return {
        "events": EVENTS,
        "outbox_write_seconds": write_seconds,
        "delivered": succeeded,
        "failed_attempts": failed,
        "command_seconds": command_seconds,
        "process_seconds": seconds,
        "deliveries_per_second": EVENTS / command_seconds,
        "worker_peak_rss_mb": rss,
        "load_average_1m": os.getloadavg()[0],
        "errors": errors,
    }


if __name__ == "__main__":
    figures = run(os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench"))
    for key, value in figures.items():
        print(f"  {key:<24} {value:.2f}" if isinstance(value, float) else f"  {key:<24} {value}")
    sys.exit(1 if figures.get("errors") else 0)

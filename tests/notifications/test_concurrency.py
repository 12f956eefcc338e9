"""Two `deliver_notifications` workers at once never deliver an attempt twice (DESIGN §7a).

On PostgreSQL the two workers are real OS processes on the test database, held at a barrier (a
table lock the test holds until both wait on it: their `FOR UPDATE SKIP LOCKED` claim needs a
row lock, which waits on the EXCLUSIVE table lock), then released together against one receiver
that answers slowly enough for their claims to interleave. On SQLite (an in-memory test
database one process owns) the two run one after the other, and the second finds nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from contracts.services import create_counterparty
from notifications.models import WebhookDelivery

from .conftest import deliver

EVENTS = 100
SUMMARY = re.compile(r"^Summary: (\d+) webhook deliveries succeeded, (\d+) failed", re.MULTILINE)


def database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{quote(db['NAME'], safe='')}"


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "WEBHOOKS_ALLOW_LOOPBACK": "1",
    }
    command = [sys.executable, "manage.py", "deliver_notifications", "--once", "--batch-size", "5"]
    return subprocess.Popen(
        command, cwd=Path(settings.BASE_DIR), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def two_workers_at_once() -> list[str]:
    import psycopg

    db = connection.settings_dict
    barrier = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )
    processes = []
    try:
        barrier.execute("LOCK TABLE notifications_webhookdelivery IN EXCLUSIVE MODE")
        processes = [start_worker(), start_worker()]
        deadline = time.monotonic() + 120
        waiting = 0
        while waiting < 2:
            crashed = [p for p in processes if p.poll() is not None]
            assert not crashed, [p.communicate() for p in crashed]
            assert time.monotonic() < deadline, "the two workers never both reached the barrier"
            time.sleep(0.05)
            waiting = barrier.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = 'notifications_webhookdelivery'::regclass "
                "AND NOT granted"
            ).fetchone()[0]
        barrier.commit()
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, (out, err)
            outputs.append(out)
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        barrier.close()


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_deliver_an_attempt_twice(org, endpoint, receiver):
    for n in range(EVENTS):
        create_counterparty(organization=org, actor=None, data={"name": f"Customer {n}"})
    assert WebhookDelivery.objects.filter(status="pending").count() == EVENTS
    receiver.delay = 0.01

    outputs = two_workers_at_once() if connection.vendor == "postgresql" else [deliver(), deliver()]
    succeeded = [int(SUMMARY.search(output).group(1)) for output in outputs]

    ids = Counter(request.headers["webhook-id"] for request in receiver.received)
    assert len(ids) == EVENTS and set(ids.values()) == {1}, ids.most_common(3)
    for request in receiver.received:
        request.verify(endpoint.secret)
    assert sum(succeeded) == EVENTS
    if connection.vendor == "postgresql":
        assert all(succeeded), succeeded  # both really worked, side by side
    else:
        assert succeeded[1] == 0
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("succeeded", 1)}

"""`generate_visits` and an edit of the plan at the same moment (PostgreSQL, real processes).

Two `manage.py generate_visits` processes and a PATCH of the plan's recurrence through the API
(a thread with a connection of its own) all wait at one barrier, the organization's event order
(`events.feed.hold_order`, which the generator takes before a plan's row and the edit before
its row); then they are released together, in either order of arrival. Whatever the order:

- the PATCH answers 200 (no 500, no deadlock), and the runners exit 0;
- each (plan, occurrence) has at most one job;
- no job is generated from the old rule after the edit committed (a job's `work_order.created`
  event after the plan's `visit_plan.updated` event is an occurrence of the new rule);
- when the edit came first, every job is an occurrence of the new rule; when the runners came
  first, the jobs are the old rule's up to the horizon, and a later run adds only the new rule's
  occurrences after it (editing a plan changes only the occurrences not yet generated).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection

from events.feed import EVENT_LOCK_CLASS, _lock_key
from events.models import Event
from tests.contracts.factories import make_contract
from tests.locking import start
from tests.processes import start_command
from tests.slas.factories import ams, make_rule
from workorders import rules
from workorders.models import WorkOrder
from workorders.visits import generate_visits

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent processes (SQLite has one writer)"),
]

NOW = ams(2026, 3, 1, 12)  # 14 days ahead: up to 2026-03-15 12:00 Amsterdam
OLD = "FREQ=DAILY;BYHOUR=9"
NEW = "FREQ=DAILY;BYHOUR=14"
DAYS = 14


def daily(hour: int, after: dt.datetime, until: dt.datetime) -> set[dt.datetime]:
    """Amsterdam's `hour`:00 of every day as instants in (after, until] (14:00 stays 14:00 across DST)."""
    days = (ams(2026, 2, 28, hour) + dt.timedelta(days=n) for n in range(60))
    return {o for o in days if after < o <= until}


def _barrier_connection():
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )


def _waiting(barrier, key) -> int:
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %s"
        " AND objid::bigint = %s AND objsubid = 2 AND NOT granted"
    )
    return barrier.execute(query, key).fetchone()[0]


def _until_waiting(barrier, key, count: int, processes) -> None:
    deadline = time.monotonic() + 120
    while _waiting(barrier, key) < count:
        crashed = [p for p in processes if p.poll() is not None]
        assert not crashed, [p.communicate() for p in crashed]
        assert time.monotonic() < deadline, f"{count} waiters never reached the barrier"
        time.sleep(0.05)


@pytest.mark.parametrize("first", ["edit", "runners"])
def test_an_edit_during_generation_is_never_lost_nor_doubled(org, api, first):
    contract = make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31))  # the PATCH runs at the real now
    make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
    plan = rules.create_visit_plan(
        contract=contract,
        actor=None,
        data={"summary": "Daily round", "recurrence": OLD, "generate_days_in_advance": DAYS},
        now=NOW - dt.timedelta(hours=1),
    )
    client = api("manager")
    path = f"/api/v1/contracts/{contract.pk}/visit_plans/{plan.pk}"
    command = ["generate_visits", "--now", NOW.isoformat()]

    key = [EVENT_LOCK_CLASS, _lock_key(org.pk)]
    barrier = _barrier_connection()
    processes, edit = [], None
    try:
        barrier.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)

        def patch():
            return client.patch(path, {"recurrence": NEW}, format="json")

        if first == "edit":
            edit = start(patch)
            _until_waiting(barrier, key, 1, processes)
        processes = [start_command(command) for _ in range(2)]
        _until_waiting(barrier, key, 3 if first == "edit" else 2, processes)
        if first == "runners":
            edit = start(patch)
            _until_waiting(barrier, key, 3, processes)
        barrier.commit()  # all three wait on the order: let them go
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, (out, err)
            outputs.append(out)
        edit.finish(60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        barrier.close()

    assert edit.error is None, edit.error
    response = edit.result
    assert response.status_code == 200, response.content
    assert response.json()["recurrence"] == NEW

    created_at, horizon = NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=DAYS)
    old = daily(9, created_at, horizon)
    new = daily(14, created_at, horizon)

    jobs = list(WorkOrder.objects.filter(visit_plan=plan).values_list("pk", "occurrence"))
    counts = Counter(occurrence for _pk, occurrence in jobs)
    assert set(counts.values()) <= {1}, counts  # never two jobs for one occurrence

    edited = Event.objects.get(type="visit_plan.updated", object_id=plan.pk).pk
    created = dict(
        Event.objects.filter(type="work_order.created", object_id__in=[pk for pk, _ in jobs]).values_list(
            "object_id", "pk"
        )
    )
    after_edit = {occurrence for pk, occurrence in jobs if created[pk] > edited}
    assert not (after_edit & old), sorted(after_edit & old)  # nothing of the old rule after the edit

    made = set(counts)
    if first == "edit":
        assert made == new, (sorted(made), outputs)
    else:
        assert made == old, (sorted(made), outputs)
        # Later runs owe only the new rule's occurrences after the horizon the runners settled.
        later = horizon + dt.timedelta(days=2)
        generate_visits(now=later)
        made = set(WorkOrder.objects.filter(visit_plan=plan).values_list("occurrence", flat=True))
        assert made == old | daily(14, horizon, later + dt.timedelta(days=DAYS))

"""One lock order: the organization's event order before a job's row (events.feed, "Lock order").

A calendar edit (or a rule that starts in the past) records its event, holding the order lock to
commit, and then recomputes the jobs, locking their rows. A job update that locked its row first
and then waited for the order lock deadlocked with it: PostgreSQL killed one of the two and the
API answered 500 (found by an outside tester, 26 of 40 requests). The interleaving is forced here:
a third transaction holds the order, the edit queues for it first, then the job update; then the
third one commits.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from events.feed import hold_order
from slas import services as sla_services
from tests.contracts.factories import make_contract
from tests.locking import holding, start, wait_until_blocked
from tests.slas.factories import make_calendar, make_rule
from tests.workorders.factories import make_job
from workorders import services
from workorders.models import SlaClock, WorkOrder

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def edit_calendar(org, contract, calendar):
    return sla_services.update_calendar(instance=calendar, actor=None, data={"time_zone": "Europe/London"})


def backdate_rule(org, contract, calendar):
    return sla_services.create_rule(
        organization=org,
        actor=None,
        data={
            "contract": contract,
            "name": "Resolve within a month",
            "metric": "resolution",
            "priorities": ["high"],
            "target_minutes": 40000,
            "calendar": calendar,
            "effective_from": timezone.now() - dt.timedelta(days=1),
        },
    )


@pytest.mark.parametrize("write", [edit_calendar, backdate_rule])
def test_a_job_update_waits_for_a_calendar_or_rule_write_instead_of_deadlocking(org, write):
    contract = make_contract(org, status="active")
    calendar = make_calendar(org)
    make_rule(contract, target_minutes=40000, calendar=calendar, effective_from=timezone.now() - dt.timedelta(days=2))
    job = make_job(org, contract=contract, reported_at=timezone.now() - dt.timedelta(hours=1))
    assert SlaClock.objects.filter(work_order=job).exists()

    release = threading.Event()
    held = threading.Event()
    holder = start(holding(lambda: hold_order([org.pk]), release, held))
    assert held.wait(10)
    other = start(lambda: write(org, contract, calendar))
    wait_until_blocked(other)  # first in the queue for the order lock
    update = start(lambda: services.update_work_order(instance=job, actor=None, data={"summary": "Pump replaced"}))
    wait_until_blocked(update)
    release.set()

    for session in (holder, other.finish(), update.finish()):
        session.finish()
        assert session.error is None, repr(session.error)
    assert WorkOrder.objects.get(pk=job.pk).summary == "Pump replaced"


def test_a_status_change_that_waited_for_the_job_happens_after_the_change_it_waited_for(org):
    """The server's stamp is taken once the job is locked: a PATCH that waited while another status
    change committed got "status_changed_at is before the job's previous status change", a 422 on a
    field it never sent (found by an outside tester)."""
    job = make_job(org, reported_at=timezone.now() - dt.timedelta(hours=1))
    go, done, locked = threading.Event(), threading.Event(), threading.Event()

    def first():
        with transaction.atomic():
            hold_order([org.pk])  # as update_work_order takes them: the order, then the row
            WorkOrder.objects.select_for_update().get(pk=job.pk)
            locked.set()
            assert go.wait(30)
            services.update_work_order(instance=job, actor=None, data={"status": "in_progress"})
        done.set()

    holder = start(first)
    assert locked.wait(10)
    second = start(
        lambda: services.update_work_order(instance=job, actor=None, data={"status": "on_hold", "hold_reason": "parts"})
    )
    wait_until_blocked(second)
    go.set()
    for session in (holder, second):
        assert session.finish().error is None, repr(session.error)
    job.refresh_from_db()
    assert job.status == "on_hold" and job.holds.get().reason == "parts"

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

from breaches import services as breach_services
from breaches.models import Breach
from breaches.services import scan_breaches
from contracts import services as contract_services
from contracts.models import Contract
from events.feed import hold_order
from slas import services as sla_services
from slas.models import SlaRule
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


# --- the breach scan ------------------------------------------------------------------------------


def past_due_job(org, contract):
    """A job whose response clock (60 minutes) ran out four hours ago."""
    return make_job(org, contract=contract, reported_at=timezone.now() - dt.timedelta(hours=5))


def detection(org, contract):
    make_rule(contract, target_minutes=60, effective_from=timezone.now() - dt.timedelta(days=2))
    return past_due_job(org, contract)


def escalation(org, contract):
    level = {"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]}
    make_rule(contract, target_minutes=600, escalation=[level], effective_from=timezone.now() - dt.timedelta(days=2))
    return make_job(org, contract=contract, reported_at=timezone.now() - dt.timedelta(hours=6))  # not due yet


def refresh(org, contract):
    """Two open breaches; one's clock stopped behind the scan's back, so the refresh batch that
    holds both finalises it and records its event. The PATCH stops the other's clock, and settling
    that breach locks it."""
    make_rule(contract, target_minutes=60, effective_from=timezone.now() - dt.timedelta(days=2))
    stopped, job = past_due_job(org, contract), past_due_job(org, contract)
    scan_breaches(now=timezone.now() - dt.timedelta(minutes=5))
    SlaClock.objects.filter(work_order=stopped).update(stopped_at=timezone.now(), elapsed_seconds=5 * 3600)
    return job


@pytest.mark.parametrize(
    "setup, event_type",
    [(detection, "breach.detected"), (escalation, "sla.escalation"), (refresh, "breach.finalized")],
)
def test_a_job_update_waits_for_a_scan_batch_instead_of_deadlocking(org, monkeypatch, setup, event_type):
    """A scan batch claimed its clocks (or breaches) with SKIP LOCKED and took the order lock only
    at its events, while a job update holds the order and then locks the job's clocks (and, as a
    clock stops, its breach): PostgreSQL killed one of them (found by an outside tester). The
    batch now holds its organizations' order before it claims anything."""
    contract = make_contract(org, status="active")
    job = setup(org, contract)
    claimed, go = threading.Event(), threading.Event()
    original = breach_services.record_events

    def slow_record_events(*, type, items, **kw):
        if type == event_type and items and not claimed.is_set():
            claimed.set()  # the batch holds its rows and is still at work when the update comes
            assert go.wait(30)
        return original(type=type, items=items, **kw)

    monkeypatch.setattr(breach_services, "record_events", slow_record_events)
    scan = start(lambda: scan_breaches(now=timezone.now()))
    assert claimed.wait(10)
    update = start(lambda: services.update_work_order(instance=job, actor=None, data={"status": "in_progress"}))
    wait_until_blocked(update)
    go.set()
    for session in (update, scan):
        assert session.finish().error is None, repr(session.error)
    assert not scan.result.failures
    assert WorkOrder.objects.get(pk=job.pk).status == "in_progress"


def test_a_contract_update_waits_for_the_lifecycle_run_instead_of_deadlocking(org, monkeypatch):
    """`run_lifecycle` claimed each contract with SKIP LOCKED before its event, while a contract
    write holds the order and then locks the contract (`contracts.services._locked`)."""
    contract = make_contract(org, status="scheduled", start_date=timezone.localdate() - dt.timedelta(days=1))
    claimed, go = threading.Event(), threading.Event()
    original = contract_services.record_event

    def slow_record_event(*, type, **kw):
        if type == "contract.state_changed" and not claimed.is_set():
            claimed.set()  # the run holds the contract and is still at work when the update comes
            assert go.wait(30)
        return original(type=type, **kw)

    monkeypatch.setattr(contract_services, "record_event", slow_record_event)
    run = start(lambda: contract_services.run_lifecycle(now=timezone.now()))
    assert claimed.wait(10)
    update = start(lambda: contract_services.update_contract(instance=contract, actor=None, data={"name": "Pumps"}))
    wait_until_blocked(update)
    go.set()
    for session in (update, run):
        assert session.finish().error is None, repr(session.error)
    assert not run.result.failures and run.result.activated == 1
    assert Contract.objects.values_list("status", "name").get(pk=contract.pk) == ("active", "Pumps")


def test_a_rule_edit_waits_for_a_scan_batch_instead_of_deadlocking(org, monkeypatch):
    """A scan batch holds the order and then locks its rules (the monthly cap); a rule edit
    locked the rule and then waited for the order (`slas.services._open_contract`)."""
    contract = make_contract(org, status="active")
    rule = make_rule(contract, target_minutes=60, effective_from=timezone.now() - dt.timedelta(days=2))
    make_job(org, contract=contract, reported_at=timezone.now() - dt.timedelta(hours=5))
    held, go = threading.Event(), threading.Event()
    original = breach_services.hold_order

    def slow_hold_order(organization_ids):
        original(organization_ids)
        # The detection batch's (the escalation batch, first since the scan escalates before it
        # detects, finds no clock past a level here and holds no organization's order).
        if organization_ids and not held.is_set():
            held.set()  # the batch holds the order and has not locked its rules yet
            assert go.wait(30)

    monkeypatch.setattr(breach_services, "hold_order", slow_hold_order)
    scan = start(lambda: scan_breaches(now=timezone.now()))
    assert held.wait(10)
    edit = start(lambda: sla_services.update_rule(instance=rule, actor=None, data={"name": "Respond in an hour"}))
    wait_until_blocked(edit)
    go.set()
    for session in (edit, scan):
        assert session.finish().error is None, repr(session.error)
    assert not scan.result.failures and scan.result.new_breaches == 1
    assert SlaRule.objects.get(pk=rule.pk).name == "Respond in an hour"


@pytest.mark.parametrize("action", ["acknowledge", "waive"])
def test_a_job_update_waits_for_a_waiver_instead_of_deadlocking(org, monkeypatch, action):
    """A waiver (or an acknowledgement) locked its breach and then waited for the order at its
    event, while a job update holds the order and then, as the job's clock stops, settles (locks)
    that breach."""
    contract = make_contract(org, status="active")
    job = detection(org, contract)
    scan_breaches(now=timezone.now())
    breach = Breach.objects.get(work_order=job)
    locked, go = threading.Event(), threading.Event()
    original = breach_services.record_event

    def slow_record_event(*, type, **kw):
        if type == f"breach.{action}d" and not locked.is_set():
            locked.set()  # the breach is locked and its event not yet recorded
            assert go.wait(30)
        return original(type=type, **kw)

    monkeypatch.setattr(breach_services, "record_event", slow_record_event)
    if action == "waive":
        decide = start(lambda: breach_services.waive_breach(breach=breach, actor=None, reason="agreed"))
    else:
        decide = start(lambda: breach_services.acknowledge_breach(breach=breach, actor=None))
    assert locked.wait(10)
    update = start(lambda: services.update_work_order(instance=job, actor=None, data={"status": "in_progress"}))
    wait_until_blocked(update)
    go.set()
    for session in (update, decide):
        assert session.finish().error is None, repr(session.error)
    assert Breach.objects.get(pk=breach.pk).state == f"{action}d"
    assert WorkOrder.objects.get(pk=job.pk).status == "in_progress"

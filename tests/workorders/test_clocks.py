"""A job's SLA clocks (workorders/clocks.py and the recomputation in workorders/services.py):
evaluation at the boundaries, pauses, cancellation, escalation instants, DST and holidays on real
rows, and a seeded comparison of live histories with the same histories replayed after the fact.

Office hours: Monday to Friday 08:00-17:00 in Europe/Amsterdam; fixed instants in 2026.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from breaches.models import Breach
from events.models import Event
from slas.models import SlaRule
from tests.contracts.factories import make_contract
from tests.slas.factories import ams, make_calendar, make_rule
from tests.workorders.factories import change, make_job
from workorders import services
from workorders.clocks import evaluate, live_elapsed_seconds, next_escalation, pauses_for, shown_state
from workorders.models import Hold, SlaClock, WorkOrder
from workorders.services import NEXT_STATUS

FRIDAY_16 = ams(2026, 1, 9, 16, 0)
MONDAY = ams(2026, 1, 12)
SECOND = dt.timedelta(seconds=1)
AFTERWARDS = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # "now" for evaluations: after every instant used


def at(day: dt.datetime, hour: int, minute: int = 0) -> dt.datetime:
    return day.replace(hour=hour, minute=minute)


@pytest.fixture
def calendar(org):
    return make_calendar(org)


@pytest.fixture
def contract(org):
    return make_contract(org, status="active")


def job_at(org, reported_at=FRIDAY_16, **fields) -> WorkOrder:
    """An unsaved job: `evaluate` reads only its fields."""
    fields.setdefault("status_changed_at", reported_at)
    return WorkOrder(organization=org, reported_at=reported_at, **fields)


def hold(start, end=None, kind=Hold.Kind.ON_HOLD) -> Hold:
    return Hold(start=start, end=end, kind=kind)


@pytest.mark.django_db
class TestEvaluate:
    def test_stopped_at_the_due_time_is_met_a_second_later_breached(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        due = at(MONDAY, 9)
        met = evaluate(rule, job_at(org, responded_at=due), [], AFTERWARDS)
        assert (met.state, met.due_at, met.stopped_at, met.elapsed_seconds) == ("met", due, due, 7200)
        late = evaluate(rule, job_at(org, responded_at=due + SECOND), [], AFTERWARDS)
        assert (late.state, late.elapsed_seconds) == ("breached", 7201)
        assert met.next_escalation_at is None and late.next_escalation_at is None

    def test_a_target_that_ends_at_closing_time_is_due_at_closing(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=60)
        assert evaluate(rule, job_at(org), [], AFTERWARDS).due_at == at(FRIDAY_16, 17)

    def test_a_start_outside_working_hours_counts_from_the_next_opening(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        saturday = ams(2026, 1, 10, 12, 0)
        assert evaluate(rule, job_at(org, reported_at=saturday), [], AFTERWARDS).due_at == at(MONDAY, 10)

    def test_no_calendar_is_24x7(self, org, contract):
        rule = make_rule(contract, target_minutes=120)
        assert evaluate(rule, job_at(org), [], AFTERWARDS).due_at == at(FRIDAY_16, 18)

    def test_daylight_saving_time(self, org, contract, calendar):
        # The last Friday before summer time (27 March, CET) to the first Monday after it (CEST).
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        result = evaluate(rule, job_at(org, reported_at=ams(2026, 3, 27, 16, 0)), [], AFTERWARDS)
        assert result.due_at == ams(2026, 3, 30, 9, 0)
        assert result.due_at == dt.datetime(2026, 3, 30, 7, 0, tzinfo=dt.UTC)

    def test_holidays_do_not_count(self, org, contract):
        calendar = make_calendar(org, holidays=[{"date": "2026-01-12", "name": "Closed"}])
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        assert evaluate(rule, job_at(org), [], AFTERWARDS).due_at == ams(2026, 1, 13, 9, 0)

    def test_running_before_its_due_time(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        now = at(MONDAY, 8, 30)
        result = evaluate(rule, job_at(org), [], now)
        assert (result.state, result.stopped_at, result.elapsed_seconds) == ("running", None, 90 * 60)

    def test_running_past_due_stays_running_until_the_scan_has_recorded_it(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        assert evaluate(rule, job_at(org), [], at(MONDAY, 9, 1)).state == "running"
        assert evaluate(rule, job_at(org), [], at(MONDAY, 9, 1), was_breached=True).state == "breached"
        # at the due time itself it is not late yet (DESIGN §6: breached when running *after* it)
        assert evaluate(rule, job_at(org), [], at(MONDAY, 9), was_breached=True).state == "running"
        # a clock whose due time moved into the future (a replayed hold) runs again
        resolution = make_rule(contract, calendar=calendar, metric="resolution", target_minutes=120)
        holds = [hold(FRIDAY_16, at(MONDAY, 8))]
        assert evaluate(resolution, job_at(org), holds, at(MONDAY, 9), was_breached=True).state == "running"

    @pytest.mark.parametrize(
        ("metric", "pause_on_hold", "kind", "pauses"),
        [
            ("resolution", True, Hold.Kind.ON_HOLD, True),
            ("resolution", False, Hold.Kind.ON_HOLD, False),
            ("response", False, Hold.Kind.ON_HOLD, False),
            ("response", True, Hold.Kind.ON_HOLD, True),
            ("on_site", True, Hold.Kind.ON_HOLD, True),
            ("resolution", False, Hold.Kind.REOPENED, True),  # time spent resolved never counts
            ("response", False, Hold.Kind.REOPENED, True),  # nor for a clock that ended unanswered
            ("on_site", True, Hold.Kind.REOPENED, True),
        ],
    )
    def test_which_holds_pause_which_clock(self, org, contract, metric, pause_on_hold, kind, pauses):
        rule = make_rule(contract, metric=metric, pause_on_hold=pause_on_hold)
        interval = hold(at(MONDAY, 9), at(MONDAY, 10), kind)
        assert pauses_for(rule, [interval]) == ([(interval.start, interval.end)] if pauses else [])

    def test_an_open_hold_pauses_a_clock_that_pauses_on_hold(self, org, contract, calendar):
        resolution = make_rule(contract, calendar=calendar, metric="resolution", target_minutes=480)
        response = make_rule(contract, calendar=calendar, metric="response", target_minutes=120)
        holds = [hold(at(FRIDAY_16, 16, 30))]
        now = at(MONDAY, 10)
        paused = evaluate(resolution, job_at(org, status="on_hold"), holds, now)
        assert (paused.state, paused.due_at, paused.elapsed_seconds) == ("paused", None, 30 * 60)
        assert paused.next_escalation_at is None
        running = evaluate(response, job_at(org, status="on_hold"), holds, at(MONDAY, 8, 30))
        assert (running.state, running.due_at) == ("running", at(MONDAY, 9))

    def test_a_hold_that_begins_after_the_target_was_reached_does_not_move_the_due_time(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, metric="resolution", target_minutes=60)
        holds = [hold(at(MONDAY, 10))]  # due Friday 17:00, on hold since Monday
        result = evaluate(rule, job_at(org, status="on_hold"), holds, at(MONDAY, 11))
        assert result.due_at == at(FRIDAY_16, 17)
        assert result.state == "running"  # past due: the scan records it (a paused state would hide it)

    def test_a_closed_hold_moves_the_due_time_by_the_business_time_it_covers(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, metric="resolution", target_minutes=480)
        holds = [hold(at(MONDAY, 12), ams(2026, 1, 13, 10, 0))]  # 5 h Monday + 2 h Tuesday
        result = evaluate(rule, job_at(org), holds, at(MONDAY, 9))
        assert result.due_at == ams(2026, 1, 13, 13, 0)

    def test_a_stopped_clock_ignores_holds_after_its_stop(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, metric="resolution", target_minutes=480)
        holds = [hold(at(MONDAY, 9)), hold(at(MONDAY, 12), at(MONDAY, 13))]
        result = evaluate(rule, job_at(org, resolved_at=at(MONDAY, 10)), holds, AFTERWARDS)
        # the open hold is cut at the stop: 1 h Friday + 1 h Monday before the hold
        assert result.elapsed_seconds == 2 * 3600 and result.state == "met"
        assert result.due_at == ams(2026, 1, 12, 16, 0)  # the hour on hold at the stop moves the due time

    def test_cancelled_before_the_due_time(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        job = job_at(org, status="cancelled", status_changed_at=at(MONDAY, 8, 30))
        result = evaluate(rule, job, [], AFTERWARDS)
        assert (result.state, result.stopped_at, result.elapsed_seconds) == ("cancelled", None, 90 * 60)
        assert result.due_at == at(MONDAY, 9) and result.next_escalation_at is None

    def test_cancelled_after_the_due_time_is_breached_and_stops_there(self, org, contract, calendar):
        rule = make_rule(contract, calendar=calendar, target_minutes=120)
        job = job_at(org, status="cancelled", status_changed_at=at(MONDAY, 9, 30))
        result = evaluate(rule, job, [], AFTERWARDS)
        assert (result.state, result.stopped_at, result.elapsed_seconds) == ("breached", at(MONDAY, 9, 30), 9000)
        at_due = evaluate(rule, job_at(org, status="cancelled", status_changed_at=at(MONDAY, 9)), [], AFTERWARDS)
        assert at_due.state == "cancelled"

    def test_escalation_instants(self, org, contract, calendar):
        rule = make_rule(
            contract,
            calendar=calendar,
            target_minutes=120,
            escalation=[{"at_percent": 90, "name": "Manager"}, {"at_percent": 50, "name": "Lead"}],
        )
        start = FRIDAY_16
        assert next_escalation(rule, start, [], 0) == at(FRIDAY_16, 17)  # 50 %: 60 minutes, at closing
        assert next_escalation(rule, start, [], 1) == at(MONDAY, 8, 48)  # 90 %: 108 minutes
        assert next_escalation(rule, start, [], 2) is None
        assert evaluate(rule, job_at(org), [], at(FRIDAY_16, 16, 10)).next_escalation_at == at(FRIDAY_16, 17)
        assert evaluate(rule, job_at(org), [], at(FRIDAY_16, 16, 10), sent=1).next_escalation_at == at(MONDAY, 8, 48)


@pytest.mark.django_db
class TestStoredClocks:
    def test_shown_state_of_a_running_clock_past_due_is_breached(self, org, contract, calendar):
        make_rule(contract, calendar=calendar, target_minutes=120)
        job = make_job(org, contract=contract)
        clock_row = SlaClock.objects.get(work_order=job)
        assert clock_row.state == "running"
        assert shown_state(clock_row, at(MONDAY, 9)) == "running"  # due now: not late yet
        assert shown_state(clock_row, at(MONDAY, 9) + SECOND) == "breached"
        clock_row.state = "paused"
        assert shown_state(clock_row, at(MONDAY, 9) + SECOND) == "paused"

    def test_live_elapsed_seconds(self, org, contract, calendar):
        make_rule(contract, calendar=calendar, metric="resolution", target_minutes=480)
        job = make_job(org, contract=contract)
        change(job, status="on_hold", status_changed_at=at(MONDAY, 9))
        change(job, status="in_progress", status_changed_at=at(MONDAY, 11))
        clock_row = SlaClock.objects.select_related("rule__calendar").get(work_order=job)
        holds = list(job.holds.all())
        # 1 h Friday + 1 h Monday before the hold + 1 h after it, to Monday 12:00
        assert live_elapsed_seconds(clock_row, holds, at(MONDAY, 12)) == 3 * 3600
        change(job, status="resolved", status_changed_at=at(MONDAY, 12))
        clock_row.refresh_from_db()
        assert live_elapsed_seconds(clock_row, holds, AFTERWARDS) == 3 * 3600 == clock_row.elapsed_seconds

    def test_the_stored_due_time_lets_the_scan_find_running_clocks_past_due(self, org, contract, calendar):
        make_rule(contract, calendar=calendar, target_minutes=120)
        late = make_job(org, contract=contract)
        in_time = make_job(org, contract=contract, responded_at=at(FRIDAY_16, 16, 30))
        past_due = SlaClock.objects.filter(state="running", due_at__lt=timezone.now())
        assert list(past_due.values_list("work_order", flat=True)) == [late.pk]
        assert SlaClock.objects.get(work_order=in_time).state == "met"

    def test_a_clock_the_scan_recorded_stays_breached_through_later_changes(self, org, contract, calendar):
        make_rule(contract, calendar=calendar, target_minutes=120)
        job = make_job(org, contract=contract)
        clock_row = SlaClock.objects.get(work_order=job)
        SlaClock.objects.filter(pk=clock_row.pk).update(state="breached")  # as the scan leaves it
        change(job, summary="Customer called again")
        clock_row.refresh_from_db()
        assert clock_row.state == "breached" and clock_row.stopped_at is None

    def test_recomputation_writes_each_clock_once_per_rule(self, org, contract, calendar):
        make_rule(contract, calendar=calendar, target_minutes=120)
        job = make_job(org, contract=contract)
        for step in range(3):
            change(job, summary=f"Update {step}")
        assert SlaClock.objects.filter(work_order=job).count() == 1


# --- live histories and the same histories replayed after the fact ----------------------------


def random_history(rng: random.Random) -> tuple[dt.datetime, list[tuple[dt.datetime, dict]]]:
    """A job's reported_at and its changes: (instant, fields), status changes without instants."""
    reported = dt.datetime(
        2026, rng.randint(1, 10), rng.randint(1, 28), rng.randint(0, 23), rng.choice((0, 7, 30, 45)), tzinfo=dt.UTC
    )
    instant, status, steps = reported, "open", []
    for _ in range(rng.randint(1, 8)):
        instant += dt.timedelta(minutes=rng.choice((1, 10, 45, 90, 240, 600, 1500, 3000)))
        roll = rng.random()
        if roll < 0.12 and status != "resolved":
            steps.append((instant, {"on_site_at": instant}))
        elif roll < 0.25:
            steps.append((instant, {"priority": rng.choice(("high", "critical"))}))
        else:
            status = rng.choice(sorted(NEXT_STATUS[status] - {"closed", "cancelled"}))
            steps.append((instant, {"status": status}))
    ending = rng.choice(("none", "closed", "cancelled"))
    instant += dt.timedelta(minutes=rng.choice((5, 120, 2000)))
    if ending == "closed" and status != "resolved":
        steps.append((instant, {"status": "resolved"}))
        instant += dt.timedelta(minutes=30)
    if ending == "closed" or (ending == "cancelled" and status != "resolved"):
        steps.append((instant, {"status": ending}))
    return reported, steps


def outcome(job: WorkOrder) -> dict:
    job.refresh_from_db()
    left_band = set(  # cancelled with no stop: the job left the rule's band (workorders.services)
        Event.objects.filter(type="sla_clock.stopped", payload__state="cancelled", payload__reason="left_band")
        .filter(object_id__in=SlaClock.objects.filter(work_order=job).values("pk"))
        .values_list("object_id", flat=True)
    )
    clocks = {
        c.rule_id: (
            c.started_at,
            c.due_at,
            c.stopped_at,
            c.state,
            c.target_minutes,
            c.next_escalation_at,
            # Elapsed time is a function of the history once a clock stopped or its job was cancelled;
            # while it runs (or after a priority change, which has no instant of its own, cancelled
            # it) it is the figure of the moment of the last computation.
            c.elapsed_seconds
            if c.stopped_at or (job.status == "cancelled" and job.priority in c.rule.priorities)
            else None,
            # So is whether a clock a priority change took out of its band was past due then, and so
            # its breach: recorded at once, final, when it was (docs/decisions.md, SLA engine).
            None if c.pk in left_band else hasattr(c, "breach") and (c.breach.final, c.breach.overage_minutes),
        )
        for c in SlaClock.objects.filter(work_order=job).select_related("breach", "rule")
    }
    return {
        "job": (job.status, job.priority, job.responded_at, job.on_site_at, job.resolved_at, job.status_changed_at),
        "holds": [(h.kind, h.start, h.end, h.reason) for h in job.holds.all()],
        "clocks": clocks,
    }


@pytest.mark.django_db
def test_replayed_histories_give_the_clocks_of_live_ones(org, contract, calendar):
    """Each history is run twice: live (every change at its own instant, `now` = that instant)
    and replayed today (status changes carry status_changed_at; `now` is the real now, long
    after every due time). Clocks, holds, stamps and recorded breaches must be the same."""
    make_rule(contract, metric="response", target_minutes=60, calendar=calendar, priorities=["high"])
    make_rule(contract, metric="response", target_minutes=30, calendar=calendar, priorities=["critical"])
    make_rule(contract, metric="on_site", target_minutes=180, pause_on_hold=True, priorities=["high", "critical"])
    make_rule(
        contract,
        metric="resolution",
        target_minutes=600,
        calendar=calendar,
        priorities=["high", "critical"],
        escalation=[{"at_percent": 50, "name": "Lead"}, {"at_percent": 80, "name": "Manager"}],
    )
    rng = random.Random(20260109)
    breached = 0
    for _ in range(30):
        reported, steps = random_history(rng)
        live = make_job(org, contract=contract, reported_at=reported, now=reported)
        replayed = make_job(org, contract=contract, reported_at=reported)
        for instant, fields in steps:
            change(live, now=instant, **fields)
            replay = {**fields, "status_changed_at": instant} if "status" in fields else fields
            change(replayed, **replay)
        expected, got = outcome(live), outcome(replayed)
        assert got == expected, (reported, steps)
        breached += Breach.objects.filter(work_order=live).count()
    assert breached  # the histories include late stops, so breaches recorded at once are compared too


@pytest.mark.django_db
def test_a_job_resolved_without_a_site_visit_ends_its_on_site_clock(org):
    """No site visit: the on-site clock ends at the resolution; cancelled when still within its
    target, breached (and stopped) when already past it. It never runs on after the job is done."""
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    contract = make_contract(org, status="active")
    make_rule(contract, metric=SlaRule.Metric.ON_SITE, target_minutes=120, effective_from=start - dt.timedelta(days=1))
    quick = services.create_work_order(
        organization=org, actor=None, data={"contract": contract, "priority": "high", "reported_at": start}, now=start
    )
    services.update_work_order(
        instance=quick,
        actor=None,
        data={"status": "resolved", "status_changed_at": start + dt.timedelta(hours=1)},
        now=start + dt.timedelta(hours=1),
    )
    slow = services.create_work_order(
        organization=org, actor=None, data={"contract": contract, "priority": "high", "reported_at": start}, now=start
    )
    services.update_work_order(
        instance=slow,
        actor=None,
        data={"status": "resolved", "status_changed_at": start + dt.timedelta(hours=3)},
        now=start + dt.timedelta(hours=3),
    )
    assert SlaClock.objects.get(work_order=quick).state == "cancelled"
    late = SlaClock.objects.get(work_order=slow)
    assert (late.state, late.stopped_at) == ("breached", start + dt.timedelta(hours=3))


@pytest.mark.django_db
def test_a_job_reported_before_its_contract_was_active_gets_no_backdated_clocks(org):
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    contract = make_contract(org, status="scheduled")
    make_rule(contract, target_minutes=60, effective_from=start - dt.timedelta(days=1))
    job = services.create_work_order(
        organization=org, actor=None, data={"contract": contract, "priority": "high", "reported_at": start}, now=start
    )
    contract.status = "active"
    contract.save(update_fields=["status"])
    services.update_work_order(instance=job, actor=None, data={"summary": "Still open"}, now=start)
    assert not SlaClock.objects.filter(work_order=job).exists()
    # A job reported (or moved) onto the active contract does get them.
    moved = services.create_work_order(
        organization=org, actor=None, data={"priority": "high", "reported_at": start}, now=start
    )
    services.update_work_order(instance=moved, actor=None, data={"contract": contract}, now=start)
    assert SlaClock.objects.filter(work_order=moved).count() == 1

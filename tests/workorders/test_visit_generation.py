"""Planned visits become work orders (issue 13): `generate_visits` and `run_lifecycle` make the job
of every occurrence inside the horizon, once, in the contract's time zone across DST changes,
only while the contract is active; a resumed contract catches up only what is still ahead.

Plans are made through the service with a fixed `now` in 2026, so nothing depends on today.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter

import pytest
from django.core.management import call_command
from model_bakery import baker

from contracts import services as contract_services
from contracts.models import Asset
from events.models import Event
from tests.contracts.factories import make_contract
from tests.slas.factories import ams, make_rule
from workorders import rules
from workorders.models import SlaClock, VisitPlan, WorkOrder
from workorders.visits import generate_visits

UTC = dt.UTC
WEEKLY_MONDAY_9 = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"


def generate(now: dt.datetime, command: str = "generate_visits") -> str:
    out = io.StringIO()
    call_command(command, now=now.isoformat(), stdout=out)
    return out.getvalue()


def make_plan(contract, *, now: dt.datetime, **data) -> VisitPlan:
    data = {"summary": "Pump inspection", "recurrence": WEEKLY_MONDAY_9, **data}
    return rules.create_visit_plan(contract=contract, actor=None, data=data, now=now)


def occurrences(plan) -> list[str]:
    jobs = WorkOrder.objects.filter(visit_plan=plan).order_by("occurrence")
    return [job.occurrence.astimezone(UTC).strftime("%m-%d %H:%M") for job in jobs]


@pytest.fixture
def contract(org):
    return make_contract(org, status="active")  # 2026-01-01 .. 2026-12-31, Europe/Amsterdam


@pytest.mark.django_db
class TestGeneration:
    def test_occurrences_inside_the_horizon_become_jobs_once(self, contract):
        plan = make_plan(contract, now=ams(2026, 3, 1, 12), generate_days_in_advance=14)
        output = generate(ams(2026, 3, 1, 12))
        assert "Summary: 2 visits generated" in output
        assert occurrences(plan) == ["03-02 08:00", "03-09 08:00"]
        assert "Summary: 0 visits generated" in generate(ams(2026, 3, 1, 12))
        # A day later the horizon has moved by a day: one more Monday is inside it.
        assert "Summary: 1 visits generated" in generate(ams(2026, 3, 2, 12))
        assert occurrences(plan) == ["03-02 08:00", "03-09 08:00", "03-16 08:00"]

    def test_wall_time_holds_across_dst_changes(self, contract):
        spring = make_plan(contract, now=ams(2026, 3, 10), generate_days_in_advance=30)
        generate(ams(2026, 3, 10))
        # 09:00 in Amsterdam is 08:00 UTC until the last Sunday of March, 07:00 UTC after it.
        assert occurrences(spring) == ["03-16 08:00", "03-23 08:00", "03-30 07:00", "04-06 07:00"]
        autumn = make_plan(contract, now=ams(2026, 10, 10), generate_days_in_advance=30)
        generate(ams(2026, 10, 10))
        assert occurrences(autumn) == ["10-12 07:00", "10-19 07:00", "10-26 08:00", "11-02 08:00"]

    def test_a_wall_time_in_the_spring_gap_happens_once_an_hour_later(self, contract):
        plan = make_plan(contract, now=ams(2026, 3, 27), recurrence="FREQ=DAILY;BYHOUR=2;BYMINUTE=30")
        generate(ams(2026, 3, 27))
        # 02:30 does not exist on 2026-03-29 in Amsterdam: that day's visit is at 03:30 (01:30 UTC).
        assert occurrences(plan)[:4] == ["03-27 01:30", "03-28 01:30", "03-29 01:30", "03-30 00:30"]

    def test_never_before_the_plan_or_outside_its_dates_and_the_term(self, org):
        contract = make_contract(org, status="active", expiry_date=dt.date(2026, 3, 20))
        # Created on Monday 2026-03-02 at 10:00: that day's 09:00 visit is not owed.
        plan = make_plan(
            contract, now=ams(2026, 3, 2, 10), active_from=dt.date(2026, 3, 1), generate_days_in_advance=60
        )
        generate(ams(2026, 3, 2, 10))
        assert occurrences(plan) == ["03-09 08:00", "03-16 08:00"]  # the term ends on the 20th
        ended = make_plan(
            contract, now=ams(2026, 3, 2, 10), active_from=dt.date(2026, 3, 2), active_to=dt.date(2026, 3, 9)
        )
        generate(ams(2026, 3, 3))
        assert occurrences(ended) == ["03-09 08:00"]

    def test_generated_jobs_carry_the_plan_and_start_their_clocks_at_the_occurrence(self, org, contract):
        asset = baker.make(Asset, organization=org, counterparty=contract.counterparty, name="Pump 7",
                           location={"type": "Point", "coordinates": [4.9, 52.37]})  # fmt: skip
        make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
        make_rule(contract, metric="resolution", target_minutes=480, priorities=["high"])
        plan = make_plan(contract, now=ams(2026, 3, 1), asset=asset, hours_allocated="2.50")
        generate(ams(2026, 3, 1))
        job = WorkOrder.objects.get(visit_plan=plan)
        assert (job.priority, job.contract, job.counterparty, job.asset) == (
            "planned",
            contract,
            contract.counterparty,
            asset,
        )
        assert job.occurrence == job.reported_at == ams(2026, 3, 2, 9) and job.location == asset.location
        assert job.contract_match["method"] == "manual" and f"visit plan {plan.pk}" in job.contract_match["explanation"]
        clock = SlaClock.objects.get(work_order=job)
        assert (clock.metric, clock.started_at, clock.due_at) == ("response", ams(2026, 3, 2, 9), ams(2026, 3, 2, 10))
        created = Event.objects.get(type="work_order.created", object_id=job.pk)
        assert created.actor is None and created.payload["visit_plan_id"] == plan.pk

    def test_editing_a_plan_changes_only_occurrences_not_yet_generated(self, contract):
        plan = make_plan(contract, now=ams(2026, 3, 1), generate_days_in_advance=10)
        generate(ams(2026, 3, 1))
        assert occurrences(plan) == ["03-02 08:00", "03-09 08:00"]
        rules.update_visit_plan(instance=plan, actor=None, data={"recurrence": "FREQ=WEEKLY;BYDAY=TU;BYHOUR=14"})
        generate(ams(2026, 3, 8))
        # Tuesday 03-10 14:00 falls before the settled horizon (03-11) and is not owed twice that week.
        assert occurrences(plan) == ["03-02 08:00", "03-09 08:00", "03-17 13:00"]

    def test_a_plan_ended_and_resumed_later_owes_nothing_of_its_pause(self, contract):
        # Tenth round: a plan paused with `active_to` and resumed (active_to cleared) two weeks
        # later generated every visit of the pause at the next run, reported in the past with
        # their clocks breached at once: the runs pass over an ended plan, so its generated_until
        # had stopped at the pause, and the edit let the new terms reach back to it.
        plan = make_plan(
            contract, now=ams(2026, 3, 1, 12), recurrence="FREQ=DAILY;BYHOUR=9", generate_days_in_advance=2
        )
        rules.update_visit_plan(
            instance=plan, actor=None, data={"active_to": dt.date(2026, 3, 3)}, now=ams(2026, 3, 1, 12)
        )
        for day in range(1, 20):
            generate(ams(2026, 3, day, 12))
        assert occurrences(plan) == ["03-02 08:00", "03-03 08:00"]
        plan.refresh_from_db()
        rules.update_visit_plan(instance=plan, actor=None, data={"active_to": None}, now=ams(2026, 3, 19, 12))
        plan.refresh_from_db()
        assert plan.generated_until == ams(2026, 3, 19, 12)  # the resumed terms start at the edit
        generate(ams(2026, 3, 19, 12, 30))
        assert occurrences(plan) == ["03-02 08:00", "03-03 08:00", "03-20 08:00", "03-21 08:00"]

    def test_an_edit_keeps_the_occurrences_its_old_terms_still_owe(self, contract):
        # Runs missed for days (cron down): the old terms' occurrences since the last horizon are
        # still owed after an edit, and generated at the next run, as without the edit.
        plan = make_plan(
            contract, now=ams(2026, 3, 1, 12), recurrence="FREQ=DAILY;BYHOUR=9", generate_days_in_advance=1
        )
        generate(ams(2026, 3, 1, 12))
        assert occurrences(plan) == ["03-02 08:00"]
        rules.update_visit_plan(instance=plan, actor=None, data={"summary": "Renamed"}, now=ams(2026, 3, 5, 10))
        plan.refresh_from_db()
        assert plan.generated_until == ams(2026, 3, 2, 12)  # not moved: 03-03 .. 03-05 are owed
        generate(ams(2026, 3, 5, 12))
        assert occurrences(plan) == ["03-02 08:00", "03-03 08:00", "03-04 08:00", "03-05 08:00", "03-06 08:00"]

    def test_a_suspended_contract_generates_nothing_and_a_resumed_one_catches_up_only_ahead(self, org):
        # The contract runs for decades: resuming happens at the real now (the services stamp it).
        contract = make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31))
        plan = make_plan(contract, now=ams(2026, 3, 1), generate_days_in_advance=7)
        generate(ams(2026, 3, 1))
        assert occurrences(plan) == ["03-02 08:00"]
        contract_services.suspend_contract(contract=contract, actor=None, reason="Unpaid invoices")
        assert "Summary: 0 visits generated" in generate(ams(2026, 3, 10))
        contract_services.resume_contract(contract=contract, actor=None)
        resumed_at = Event.objects.filter(type="contract.state_changed").latest("id").occurred_at
        plan.refresh_from_db()
        assert plan.generated_until == resumed_at  # the occurrences while suspended are not owed
        generate(resumed_at)
        later = WorkOrder.objects.filter(visit_plan=plan).exclude(occurrence=ams(2026, 3, 2, 9))
        assert later.exists() and all(resumed_at < job.occurrence <= resumed_at + dt.timedelta(days=7) for job in later)
        assert not WorkOrder.objects.filter(
            visit_plan=plan, occurrence__gt=ams(2026, 3, 2, 9), occurrence__lte=resumed_at
        ).exists()

    def test_run_lifecycle_generates_visits_too(self, contract):
        plan = make_plan(contract, now=ams(2026, 3, 1))
        output = generate(ams(2026, 3, 1), command="run_lifecycle")
        assert ", 1 visits generated" in output and occurrences(plan) == ["03-02 08:00"]

    def test_a_duplicate_insert_is_ignored_by_the_unique_constraint(self, contract):
        # A runner that read a stale horizon (generated_until moved back) makes no second job.
        plan = make_plan(contract, now=ams(2026, 3, 1), generate_days_in_advance=14)
        assert generate_visits(now=ams(2026, 3, 1)) == 2
        VisitPlan.objects.filter(pk=plan.pk).update(generated_until=ams(2026, 3, 1))
        assert generate_visits(now=ams(2026, 3, 1)) == 0
        assert Counter(WorkOrder.objects.values_list("visit_plan", "occurrence")).most_common(1)[0][1] == 1

    def test_a_bad_now_is_a_command_error(self):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError):
            call_command("generate_visits", now="tomorrow", stdout=io.StringIO())


@pytest.mark.django_db
def test_a_run_reads_only_the_plans_whose_next_occurrence_entered_their_horizon(contract, django_assert_num_queries):
    plan = make_plan(contract, now=ams(2026, 3, 1, 12), generate_days_in_advance=14)
    generate_visits(now=ams(2026, 3, 1, 12))
    plan.refresh_from_db()
    # Next: Monday 03-16 09:00, which enters the 14-day horizon on 03-02 at 09:00.
    assert plan.next_run_at == ams(2026, 3, 2, 9)
    with django_assert_num_queries(1):  # the due plans' ids: none
        assert generate_visits(now=ams(2026, 3, 2, 8, 59)) == 0
    assert generate_visits(now=ams(2026, 3, 2, 9)) == 1
    # An edit makes the plan due for a look at the next run.
    rules.update_visit_plan(instance=plan, actor=None, data={"generate_days_in_advance": 30})
    plan.refresh_from_db()
    assert plan.next_run_at is None
    assert generate_visits(now=ams(2026, 3, 2, 9)) == 2  # 03-23 and 03-30 are inside 30 days now


def daily_visits_generated_ahead(org):
    """An active contract with a 60-minute response rule for planned jobs, and the 09:00 visits of a
    daily plan generated 7 days ahead from three days ago (the API's actions happen now). Returns
    (contract, plan, its jobs, now)."""
    from django.utils import timezone

    contract = make_contract(org, status="active", expiry_date=dt.date(2099, 12, 31))
    make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
    now = timezone.now()
    earlier = now - dt.timedelta(days=3)
    plan = make_plan(contract, now=earlier, recurrence="FREQ=DAILY;BYHOUR=9", generate_days_in_advance=7)
    generate(earlier)
    jobs = WorkOrder.objects.filter(visit_plan=plan)
    assert jobs.count() == 7
    return contract, plan, jobs, now


@pytest.mark.django_db
def test_a_terminated_contract_cancels_its_visits_generated_ahead(org, api):
    # Eleventh round: visits generated a week ahead stayed open when the contract was terminated,
    # and the next scan_breaches recorded a breach (and its penalty) for each day after the end.
    # Termination happens now (the API's clock), so the plan runs around now.
    from breaches.models import Breach

    contract, plan, jobs, now = daily_visits_generated_ahead(org)
    terminated = api("manager").post(f"/api/v1/contracts/{contract.pk}/terminate", {"reason": "Sold"}, format="json")
    assert terminated.status_code == 200, terminated.content
    ended = Event.objects.get(type="contract.state_changed", object_id=contract.pk).occurred_at
    after, before = jobs.filter(occurrence__gt=ended), jobs.filter(occurrence__lte=ended)
    assert after.count() >= 3 and before.count() >= 2  # (09:00 today may fall on either side)
    assert set(after.values_list("status", flat=True)) == {"cancelled"}
    assert set(before.values_list("status", flat=True)) == {"open"}  # owed while it was in force
    cancelled = Event.objects.filter(type="work_order.updated", object_id__in=after.values("pk"))
    assert cancelled.count() == after.count()
    assert all(e.payload["changes"]["status"] == {"before": "open", "after": "cancelled"} for e in cancelled)
    assert SlaClock.objects.filter(work_order__in=after, state="cancelled").count() == after.count()
    call_command("scan_breaches", now=(now + dt.timedelta(days=9)).isoformat(), stdout=io.StringIO())
    assert Breach.objects.filter(work_order__visit_plan=plan).count() == before.count()  # none after the end


@pytest.mark.django_db
def test_a_suspension_cancels_the_visits_generated_ahead_and_a_resumption_makes_those_still_ahead_again(org, api):
    # Twelfth round (known since the eleventh, not fixed then): the visits generated ahead before a
    # suspension stayed open and breached during it, with their penalties; a resumption owes only
    # the occurrences after it. Suspension and resumption happen now (the API's clock).
    from breaches.models import Breach
    from tests.workorders.factories import change

    contract, plan, jobs, now = daily_visits_generated_ahead(org)
    # The dispatcher called off the last visit ahead before the suspension: it stays called off.
    called_off = jobs.order_by("occurrence").last()
    change(called_off, status="cancelled", now=called_off.occurrence)
    manager = api("manager")
    suspended = manager.post(f"/api/v1/contracts/{contract.pk}/suspend", {"reason": "Unpaid"}, format="json")
    assert suspended.status_code == 200, suspended.content
    at = Event.objects.filter(type="contract.state_changed", object_id=contract.pk).latest("id").occurred_at
    after = WorkOrder.objects.filter(pk__in=list(jobs.filter(occurrence__gt=at).values_list("pk", flat=True)))
    before = jobs.filter(occurrence__lte=at)
    assert after.count() >= 4 and before.count() >= 2
    assert set(after.values_list("status", flat=True)) == {"cancelled"}
    assert set(before.values_list("status", flat=True)) == {"open"}  # owed before the suspension
    assert SlaClock.objects.filter(work_order__in=after, state="running").count() == 0
    call_command("scan_breaches", now=(now + dt.timedelta(days=2)).isoformat(), stdout=io.StringIO())
    assert Breach.objects.filter(work_order__visit_plan=plan).count() == before.count()  # none while suspended

    resumed = manager.post(f"/api/v1/contracts/{contract.pk}/resume", {}, format="json")
    assert resumed.status_code == 200, resumed.content
    back = Event.objects.filter(type="contract.state_changed", object_id=contract.pk).latest("id").occurred_at
    ahead = {o for o in after.values_list("occurrence", flat=True) if o > back} - {called_off.occurrence}
    assert ahead  # the visits after the resumption are owed again, each once, with its clocks
    open_again = jobs.filter(occurrence__gt=back, status="open")
    assert sorted(open_again.values_list("occurrence", flat=True)) == sorted(ahead)
    assert SlaClock.objects.filter(work_order__in=open_again, state="running").count() == len(ahead)
    assert set(after.values_list("status", flat=True)) == {"cancelled"}  # history kept
    generate(back)  # the next run makes no second job of them, nor one of the visit called off
    assert sorted(
        jobs.filter(occurrence__in=ahead).exclude(status="cancelled").values_list("occurrence", flat=True)
    ) == sorted(ahead)
    assert not jobs.filter(occurrence=called_off.occurrence).exclude(status="cancelled").exists()
    # The visits listing shows each of them once, with its live job (not the cancelled one too).
    window = {"from": back.isoformat(), "to": (back + dt.timedelta(days=8)).isoformat(), "per_page": 100}
    listed = api("operator").get(f"/api/v1/contracts/{contract.pk}/visits", window).json()
    again = [v for v in listed if dt.datetime.fromisoformat(v["occurrence"]) in ahead]
    assert len(again) == len(ahead) and {v["work_order"]["status"] for v in again} == {"open"}


@pytest.mark.django_db
class TestAPlanForAnAssetMovedToAnotherContract:
    """Twelfth round (known since the eleventh, not fixed then): a plan of contract A for an asset
    that an amendment moved to contract B went on generating visits on A after the move, and a
    renewal of A carried it on. The asset's coverage is a term: from the move, A owes it no visit."""

    def move(self, api, org, day: dt.date, **fields):
        from tests.workorders.test_matching import move_asset

        party = baker.make("contracts.Counterparty", organization=org, name="Harbour Fire")
        pump = baker.make(Asset, organization=org, counterparty=party, name="Fire pump")
        first, _second = move_asset(api, org, party, pump, day, **fields)
        return first, pump

    def test_the_plan_generates_no_visit_on_a_from_the_move(self, api, org):
        from django.utils import timezone

        from workorders.visits import next_occurrences

        now = timezone.now()
        today = timezone.localdate(now, timezone=ams(2026, 1, 1).tzinfo)
        move_day = today + dt.timedelta(days=5)
        first, pump = self.move(api, org, move_day, expiry_date=dt.date(2099, 12, 31))
        plan = make_plan(first, now=now, recurrence="FREQ=DAILY;BYHOUR=9", generate_days_in_advance=14, asset=pump)
        other = make_plan(first, now=now, recurrence="FREQ=DAILY;BYHOUR=10", generate_days_in_advance=14)
        generate(now)
        days = [
            job.occurrence.astimezone(ams(2026, 1, 1).tzinfo).date()
            for job in WorkOrder.objects.filter(visit_plan=plan)
        ]
        assert days and max(days) < move_day  # A's visits of the pump stop at the move
        assert max(job.occurrence for job in WorkOrder.objects.filter(visit_plan=other)) > first.start_of_day(move_day)
        plan.refresh_from_db()
        assert next_occurrences(plan, after=now) == []  # nor does the plan list one to come

    def test_a_renewal_does_not_carry_the_plan_on(self, api, org):
        from django.utils import timezone

        now = timezone.now()
        today = timezone.localdate(now, timezone=ams(2026, 1, 1).tzinfo)
        first, pump = self.move(api, org, today + dt.timedelta(days=5), expiry_date=today + dt.timedelta(days=10))
        make_plan(first, now=now, asset=pump, summary="Pump")
        make_plan(first, now=now, summary="Site walk")
        renewed = api("manager").post(f"/api/v1/contracts/{first.pk}/renew", {}, format="json")
        assert renewed.status_code == 201, renewed.content
        carried = VisitPlan.objects.filter(contract_id=renewed.json()["id"])
        assert list(carried.values_list("summary", flat=True)) == ["Site walk"]


@pytest.mark.django_db
def test_an_expiry_brought_forward_cancels_the_visits_generated_beyond_it(org, make_member):
    # Twelfth round (the eleventh's "not done"): visits generated for a term an amendment then
    # shortened stayed open after the contract expired at its new end, and breached. Now the expiry
    # (run_lifecycle) cancels the open ones from the end of the last day on; those before are owed.
    from contracts import amendments
    from tests.contracts.test_amendments import approved_contract

    contract = approved_contract(org, expiry_date=dt.date(2026, 3, 31), hours_budget=None)
    make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
    plan = make_plan(contract, now=ams(2026, 3, 10), recurrence="FREQ=DAILY;BYHOUR=9", generate_days_in_advance=14)
    generate(ams(2026, 3, 10))
    assert len(occurrences(plan)) == 14  # 03-10 .. 03-23
    users = [make_member("manager", org).user for _ in range(3)]
    now = ams(2026, 3, 12, 10)
    amendment = amendments.create_amendment(
        contract=contract,
        actor=users[0],
        data={
            "effective_date": dt.date(2026, 3, 12),
            "changes": {"expiry_date": "2026-03-15"},
            "reason": "Ended early",
        },
        now=now,
    )
    amendments.submit_amendment(amendment=amendment, actor=users[0])
    amendments.approve_amendment(amendment=amendment, actor=users[1], now=now)
    amendments.approve_amendment(amendment=amendment, actor=users[2], now=now)
    generate(ams(2026, 3, 16, 1), command="run_lifecycle")
    contract.refresh_from_db()
    assert contract.status == "expired"
    end = ams(2026, 3, 16)
    jobs = WorkOrder.objects.filter(visit_plan=plan)
    assert set(jobs.filter(occurrence__gte=end).values_list("status", flat=True)) == {"cancelled"}
    assert jobs.filter(occurrence__gte=end).count() == 8  # 03-16 .. 03-23
    assert set(jobs.filter(occurrence__lt=end).values_list("status", flat=True)) == {"open"}  # in the term: owed
    assert not SlaClock.objects.filter(work_order__occurrence__gte=end, work_order__visit_plan=plan, state="running")

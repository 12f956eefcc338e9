"""`scan_breaches` and the breach services, at fixed instants (DESIGN §6, §8).

- A running clock is breached once it runs *after* its due time; the scan records it once, with
  target, actual (business minutes, a started minute counts) and overage minutes and the penalty;
- a job stopped after its due time gets its breach from the service at once, final;
- each scan refreshes the running breaches and finalises those whose clock ended;
- each escalation level is announced once per clock;
- penalties: fixed + per started unit, per-breach cap, monthly cap per rule and month of
  detection in the contract's time zone, waived breaches not counting;
- the command: `--now`, `--org`, `--batch-size`, progress lines, a summary, errors.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from breaches.models import Breach
from breaches.services import past_due_clocks, waive_breach
from events.models import Event
from slas.services import create_calendar
from tests.breaches.factories import (
    T0,
    UTC,
    active_contract,
    make_job,
    make_rule,
    minutes,
    scan,
    update_job,
)
from workorders.models import SlaClock

pytestmark = pytest.mark.django_db

SUMMARY = re.compile(
    r"^Summary: (\d+) clocks examined \((\d+) past due, (\d+) past an escalation level\), (\d+) new breaches, "
    r"(\d+) escalations, (\d+) breaches refreshed, (\d+) finalised, in \d+\.\d\ds\.$"
)
CLAUSE = {"fixed_amount": "100", "per_unit_amount": "25", "unit_minutes": 30}
LEVELS = [
    {"at_percent": 100, "name": "breach"},
    {"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]},
    {"at_percent": 80, "name": "urgent"},
]


def summary(output: str) -> dict[str, int]:
    match = SUMMARY.match(output.rstrip("\n").splitlines()[-1])
    assert match, output
    keys = ["examined", "past_due", "escalating", "new", "escalations", "refreshed", "finalised"]
    return dict(zip(keys, map(int, match.groups()), strict=True))


def figures(breach: Breach) -> tuple:
    breach.refresh_from_db()
    return breach.actual_minutes, breach.overage_minutes, breach.penalty_amount, breach.final


def events(type: str, **filters) -> list[Event]:
    return list(Event.objects.filter(type=type, **filters).order_by("id"))


@pytest.fixture
def contract(org):
    return active_contract(org, currency="EUR")


# --- detection ----------------------------------------------------------------------------------


def test_a_running_clock_past_due_gets_its_breach_with_its_figures_and_event(contract):
    rule = make_rule(contract, target_minutes=60, penalty=CLAUSE)
    job = make_job(contract, T0)
    output = scan(minutes(95))
    assert output.splitlines()[0] == "scan_breaches at 2026-03-10T10:35:00+00:00"
    assert "  breaches: 1 new of 1 clocks past due" in output.splitlines()
    assert summary(output) == {
        "examined": 1, "past_due": 1, "escalating": 0, "new": 1, "escalations": 0, "refreshed": 0, "finalised": 0,
    }  # fmt: skip
    breach = Breach.objects.get()
    assert (breach.work_order, breach.sla_rule, breach.contract, breach.metric) == (job, rule, contract, "response")
    assert (breach.target_minutes, breach.actual_minutes, breach.overage_minutes) == (60, 95, 35)
    assert breach.penalty_amount == Decimal("150.00")  # 100 + 2 started units of 30 minutes at 25
    assert (breach.currency, breach.penalty_month, breach.state) == ("EUR", "2026-03", "open")
    assert (breach.due_at, breach.detected_at) == (minutes(60), minutes(95))
    assert (breach.clock_stopped_at, breach.final) == (None, False)
    assert SlaClock.objects.get(pk=breach.clock_id).state == "breached"
    [event] = events("breach.detected")
    assert (event.object_type, event.object_id, event.occurred_at) == ("breach", breach.pk, minutes(95))
    assert event.actor is None
    assert event.payload == {
        "work_order": job.pk,
        "sla_rule": rule.pk,
        "metric": "response",
        "due_at": "2026-03-10T10:00:00Z",
        "overage_minutes": 35,
        "penalty_amount": "150.00",
        "currency": "EUR",
        "work_order_reference": str(job),
        "work_order_summary": job.summary,
        "contract": contract.pk,
        "contract_reference": contract.reference,
        "target_minutes": 60,
        "actual_minutes": 95,
    }


def test_a_clock_is_breached_only_after_its_due_time_not_at_it(contract):
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "10"})
    make_job(contract, T0)
    assert summary(scan(minutes(60)))["new"] == 0  # answered now it would be met
    assert not Breach.objects.exists()
    assert SlaClock.objects.get().state == "running"
    scan(minutes(60) + dt.timedelta(seconds=1))
    breach = Breach.objects.get()
    assert (breach.actual_minutes, breach.overage_minutes) == (61, 1)  # a started minute counts


def test_clocks_not_yet_due_paused_or_stopped_are_left_alone(contract):
    make_rule(contract, metric="response", target_minutes=60)
    make_rule(contract, metric="resolution", target_minutes=60)  # pauses on hold
    untouched = make_job(contract, T0)  # both clocks due at 10:00
    on_hold = make_job(contract, T0)
    update_job(on_hold, minutes(10), status="on_hold", hold_reason="Waiting for parts")
    answered = make_job(contract, T0)
    update_job(answered, minutes(30), status="in_progress")
    update_job(answered, minutes(40), status="resolved")
    later = make_job(contract, minutes(100))
    output = scan(minutes(120))
    # Due: the first job's two clocks, and the response clock of the job on hold (holds do not pause responses).
    assert summary(output)["new"] == 3
    assert sorted(Breach.objects.values_list("work_order_id", "metric")) == sorted(
        [(untouched.pk, "response"), (untouched.pk, "resolution"), (on_hold.pk, "response")]
    )
    assert not Breach.objects.filter(work_order__in=[answered, later]).exists()
    assert SlaClock.objects.get(work_order=on_hold, metric="resolution").state == "paused"


def test_a_second_scan_records_nothing_new_and_later_ones_refresh_the_running_figures(contract):
    make_rule(contract, target_minutes=60, penalty=CLAUSE)
    make_job(contract, T0)
    scan(minutes(95))
    breach = Breach.objects.get()
    again = summary(scan(minutes(95)))
    assert (again["new"], again["refreshed"]) == (0, 0)
    assert figures(breach) == (95, 35, Decimal("150.00"), False)
    later = summary(scan(minutes(150)))
    assert (later["new"], later["refreshed"], later["finalised"]) == (0, 1, 0)
    assert figures(breach) == (150, 90, Decimal("175.00"), False)  # 100 + 3 units
    assert breach.detected_at == minutes(95)  # detection is once
    assert Breach.objects.count() == 1 and len(events("breach.detected")) == 1


def test_a_running_breach_is_re_measured_at_most_once_a_minute(contract):
    """Its figures are whole minutes: a scan within the minute reads no breach at all."""
    make_rule(contract, target_minutes=60, penalty=CLAUSE)
    make_job(contract, T0)
    scan(minutes(95))
    breach = Breach.objects.get()
    assert breach.measured_at == minutes(95)
    soon = summary(scan(minutes(95.5)))
    assert soon["refreshed"] == 0
    breach.refresh_from_db()
    assert breach.measured_at == minutes(95) and figures(breach) == (95, 35, Decimal("150.00"), False)
    summary(scan(minutes(96)))
    breach.refresh_from_db()
    assert breach.measured_at == minutes(96) and figures(breach)[0] == 96


# --- the service records and finalises at once --------------------------------------------------


def test_a_job_stopped_after_its_due_time_has_its_final_breach_at_once(contract):
    make_rule(contract, target_minutes=60, penalty=CLAUSE)
    job = make_job(contract, T0)
    update_job(job, minutes(80), status="in_progress")  # answered 20 minutes late, no scan in between
    breach = Breach.objects.get()
    assert figures(breach) == (80, 20, Decimal("125.00"), True)
    assert (breach.detected_at, breach.clock_stopped_at) == (minutes(80), minutes(80))
    assert [e.type for e in Event.objects.filter(object_type="breach").order_by("id")] == [
        "breach.detected",
        "breach.finalized",
    ]
    assert events("breach.finalized")[0].payload["actual_minutes"] == 80
    # The scan has nothing left to do for it.
    result = summary(scan(minutes(300)))
    assert (result["new"], result["refreshed"], result["finalised"]) == (0, 0, 0)
    assert figures(breach) == (80, 20, Decimal("125.00"), True)


def test_a_job_pushed_in_after_the_fact_has_its_breach_at_once(contract):
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "10"})
    job = make_job(contract, T0, now=minutes(600), responded_at=minutes(75))
    breach = Breach.objects.get(work_order=job)
    assert figures(breach) == (75, 15, Decimal("10.00"), True)
    assert breach.detected_at == minutes(600)


def test_a_running_breach_is_finalised_when_its_job_is_answered(contract):
    make_rule(contract, target_minutes=60, penalty=CLAUSE)
    job = make_job(contract, T0)
    scan(minutes(95))
    update_job(job, minutes(130), status="in_progress")
    breach = Breach.objects.get()
    assert figures(breach) == (130, 70, Decimal("175.00"), True)
    assert breach.clock_stopped_at == minutes(130)
    [finalized] = events("breach.finalized")
    assert finalized.occurred_at == minutes(130) and finalized.payload["penalty_amount"] == "175.00"
    scan(minutes(400))
    assert figures(breach) == (130, 70, Decimal("175.00"), True)
    assert len(events("breach.finalized")) == 1


@pytest.mark.parametrize("settled_by", ["the job's answer", "the job's answer before a scan", "a scan after it"])
def test_an_open_breach_follows_its_clock_to_a_new_version_of_its_rule(contract, settled_by):
    # Found in review: a back-dated amendment moved the clock to the new version of its rule, and
    # the open breach stayed on the old one: its target, overage and penalty clause, and the month's
    # cap it counted in, were the old version's.
    from slas.services import amend_rule

    rule = make_rule(contract, target_minutes=60, penalty=CLAUSE)
    job = make_job(contract, T0)
    scan(minutes(95))
    breach = Breach.objects.get()
    assert (breach.sla_rule_id, breach.target_minutes, figures(breach)) == (
        rule.pk,
        60,
        (95, 35, Decimal("150.00"), False),
    )
    successor = amend_rule(
        rule=rule,
        actor=None,
        data={"target_minutes": 120, "penalty": {"fixed_amount": "40"}},
        effective_from=T0 - dt.timedelta(days=1),
    )
    assert SlaClock.objects.get().rule_id == successor.pk  # one clock per rule and job, across versions
    if settled_by != "the job's answer before a scan":
        scan(minutes(110))  # within the new target: no longer past due, no penalty
        breach.refresh_from_db()
        assert (breach.sla_rule_id, breach.target_minutes, figures(breach)) == (
            successor.pk,
            120,
            (110, 0, Decimal("0.00"), False),
        )
    if settled_by.startswith("the job's answer"):
        update_job(job, minutes(150), status="in_progress")
    else:
        SlaClock.objects.update(stopped_at=minutes(150), state="breached", elapsed_seconds=150 * 60)
        scan(minutes(200))
    breach.refresh_from_db()
    assert (breach.sla_rule_id, breach.target_minutes) == (successor.pk, 120)
    assert figures(breach) == (150, 30, Decimal("40.00"), True)  # the new version's clause
    [finalized] = events("breach.finalized")
    assert finalized.payload["sla_rule"] == successor.pk and finalized.payload["penalty_amount"] == "40.00"


def test_a_rules_versions_share_its_monthly_cap(contract):
    """An outside sweep found a rule amended mid-month starting a new monthly cap: 100 under the
    first version and 100 + 50 under the second, 250 against a cap of 150. The versions of one
    rule count together, each breach priced with its own version's cap; the evidence pack counts
    the other versions' breaches among the month's others."""
    from reports.evidence import breach_evidence, evidence_queryset
    from slas.services import amend_rule

    rule = make_rule(contract, target_minutes=1, penalty={"fixed_amount": "100"}, monthly_penalty_cap="150")
    make_job(contract, T0)
    scan(minutes(5))
    second = amend_rule(rule=rule, actor=None, data={"target_minutes": 2}, effective_from=minutes(10))
    third = amend_rule(rule=second, actor=None, data={"monthly_penalty_cap": "180"}, effective_from=minutes(20))
    assert (second.first_version_id, third.first_version_id) == (rule.pk, rule.pk)
    make_job(contract, minutes(12))  # under the second version
    scan(minutes(18))
    make_job(contract, minutes(25))  # under the third, whose cap is 180
    scan(minutes(40))  # the scan's refresh
    breaches = list(Breach.objects.order_by("id"))
    assert [(b.sla_rule_id, b.penalty_amount) for b in breaches] == [
        (rule.pk, Decimal("100.00")),
        (second.pk, Decimal("50.00")),  # what the first left of 150
        (third.pk, Decimal("30.00")),  # what 180 leaves of the month's 150
    ]
    steps = breach_evidence(evidence_queryset().get(pk=breaches[2].pk))["penalty"]
    assert [row["id"] for row in steps["month_other_breaches"]] == [breaches[0].pk, breaches[1].pk]
    assert (steps["month_others_total"], steps["after_monthly_cap"]) == ("150.00", "30.00")
    # A job answered at once through the service is priced against the same month.
    job = make_job(contract, minutes(30))
    update_job(job, minutes(45), status="in_progress")
    assert Breach.objects.get(work_order=job).penalty_amount == Decimal("0.00")


def test_a_breach_whose_clock_no_longer_applies_is_final_at_once(contract):
    make_rule(contract, target_minutes=60, priorities=["high"], penalty=CLAUSE)
    job = make_job(contract, T0)
    scan(minutes(95))
    update_job(job, minutes(120), priority="low")  # the job leaves the rule's band: its clock is cancelled
    clock_row = SlaClock.objects.get()
    assert (clock_row.state, clock_row.elapsed_seconds) == ("cancelled", 120 * 60)
    breach = Breach.objects.get()
    assert figures(breach) == (120, 60, Decimal("150.00"), True)  # as the clock stood when it stopped applying
    assert len(events("breach.finalized")) == 1
    result = summary(scan(minutes(200)))
    assert (result["new"], result["finalised"]) == (0, 0)
    assert len(events("breach.finalized")) == 1


@pytest.mark.parametrize("move", ["priority", "contract"])
def test_a_clock_that_stops_applying_past_due_before_any_scan_gets_its_breach_at_once(org, contract, move):
    """No scan ran between the due time and the change: the breach is recorded by the change
    itself, final, with the time the clock ran (found by an outside sweep: changing the priority
    or the contract erased a missed target, and a later scan did not find it either)."""
    make_rule(contract, target_minutes=60, priorities=["high"], penalty=CLAUSE)
    job = make_job(contract, T0)
    if move == "priority":
        update_job(job, minutes(120), priority="low")
    else:
        update_job(job, minutes(120), contract=active_contract(org, currency="EUR"))
    assert SlaClock.objects.get(rule__contract=contract).state == "cancelled"
    breach = Breach.objects.get()
    assert figures(breach) == (120, 60, Decimal("150.00"), True)
    assert [e.payload["penalty_amount"] for e in events("breach.finalized")] == ["150.00"]
    assert summary(scan(minutes(200)))["new"] == 0 and Breach.objects.count() == 1


def test_a_clock_that_stops_applying_with_its_response_in_the_same_change_counts_until_the_response(contract):
    """The priority change and the response (at minute 120) arrive together at minute 300: the
    clock counts until the response, not until the request (found by a second outside sweep)."""
    make_rule(contract, target_minutes=60, priorities=["high"], penalty=CLAUSE)
    job = make_job(contract, T0)
    update_job(job, minutes(300), priority="low", status="in_progress", status_changed_at=minutes(120))
    clock_row = SlaClock.objects.get()
    assert (clock_row.state, clock_row.elapsed_seconds) == ("cancelled", 120 * 60)
    assert figures(Breach.objects.get()) == (120, 60, Decimal("150.00"), True)


def test_a_clock_that_stops_applying_before_its_due_time_has_no_breach(contract):
    make_rule(contract, target_minutes=60, priorities=["high"], penalty=CLAUSE)
    job = make_job(contract, T0)
    update_job(job, minutes(59), priority="low")
    assert SlaClock.objects.get().state == "cancelled"
    scan(minutes(200))
    assert not Breach.objects.exists()


def test_a_breach_whose_job_times_are_corrected_to_met_carries_no_penalty(contract):
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "100"})
    job = make_job(contract, T0)
    scan(minutes(90))
    breach = Breach.objects.get()
    assert figures(breach) == (90, 30, Decimal("100.00"), False)
    # Dispatch sends the real response time: 50 minutes after the report, within the target.
    update_job(job, minutes(100), responded_at=minutes(50))
    assert SlaClock.objects.get().state == "met"
    assert figures(breach) == (50, 0, Decimal("0.00"), True)
    assert events("breach.finalized")[0].payload["penalty_amount"] == "0.00"


# --- business time and pauses -------------------------------------------------------------------


def office_calendar(org):
    """Weekdays 08:00-17:00 in Amsterdam, made through the service."""
    return create_calendar(
        organization=org,
        actor=None,
        data={
            "name": "Office",
            "time_zone": "Europe/Amsterdam",
            "hours": [{"weekday": day, "start": "08:00", "end": "17:00"} for day in range(1, 6)],
            "holidays": [],
        },
    )


def test_figures_are_business_minutes_and_a_target_running_out_at_closing_is_due_then(org, contract):
    calendar = office_calendar(org)
    make_rule(contract, target_minutes=120, calendar=calendar, penalty={"fixed_amount": "40", **CLAUSE})
    friday_15h = dt.datetime(2026, 3, 13, 14, 0, tzinfo=UTC)  # 15:00 in Amsterdam (UTC+1)
    make_job(contract, friday_15h)
    closing = dt.datetime(2026, 3, 13, 16, 0, tzinfo=UTC)  # 17:00 local: the target runs out exactly then
    assert SlaClock.objects.get().due_at == closing
    assert summary(scan(closing))["new"] == 0
    scan(dt.datetime(2026, 3, 14, 11, 0, tzinfo=UTC))  # Saturday: breached (still running after 17:00 Friday)
    breach = Breach.objects.get()
    assert figures(breach) == (120, 0, Decimal("100.00"), False)  # no business minute over yet: the fixed amount
    scan(dt.datetime(2026, 3, 16, 7, 45, tzinfo=UTC))  # Monday 08:45 local
    assert figures(breach) == (165, 45, Decimal("150.00"), False)


def test_time_on_hold_does_not_count_for_a_clock_that_pauses(contract):
    make_rule(contract, metric="resolution", target_minutes=60, penalty=CLAUSE)  # pauses on hold by default
    job = make_job(contract, T0)
    update_job(job, minutes(20), status="on_hold", hold_reason="Customer away")
    update_job(job, minutes(50), status="in_progress")
    assert SlaClock.objects.get().due_at == minutes(90)
    assert summary(scan(minutes(90)))["new"] == 0
    scan(minutes(100))
    assert figures(Breach.objects.get()) == (70, 10, Decimal("125.00"), False)


# --- escalations --------------------------------------------------------------------------------


def escalations() -> list[tuple[int, str]]:
    return [(e.object_id, e.payload["level"]) for e in events("sla.escalation")]


def test_each_escalation_level_is_announced_once_when_first_passed(contract):
    rule = make_rule(contract, target_minutes=60, escalation=LEVELS)
    job = make_job(contract, T0)
    clock = SlaClock.objects.get()
    assert summary(scan(minutes(20)))["escalations"] == 0
    first = scan(minutes(31))
    assert (summary(first)["escalations"], summary(first)["escalating"]) == (1, 1)
    assert "  escalations: 1 of 1 clocks" in first.splitlines()
    [event] = events("sla.escalation")
    assert (event.object_type, event.object_id, event.occurred_at) == ("slaclock", clock.pk, minutes(31))
    assert event.payload == {
        "work_order": job.pk,
        "sla_rule": rule.pk,
        "level": "warning",
        "at_percent": 50,
        "notify": ["desk@example.com"],
        "reached_at": "2026-03-10T09:30:00Z",
        "work_order_reference": str(job),
        "work_order_summary": job.summary,
        "contract": contract.pk,
        "contract_reference": contract.reference,
        "metric": "response",
        "target_minutes": 60,
        "due_at": "2026-03-10T10:00:00Z",
    }
    assert summary(scan(minutes(31)))["escalations"] == 0
    assert summary(scan(minutes(90)))["escalations"] == 2  # 80 % and 100 % in one scan, in order
    assert summary(scan(minutes(200)))["escalations"] == 0
    assert escalations() == [(clock.pk, "warning"), (clock.pk, "urgent"), (clock.pk, "breach")]
    assert [e.payload["reached_at"] for e in events("sla.escalation")][1:] == [
        "2026-03-10T09:48:00Z",
        "2026-03-10T10:00:00Z",
    ]


def test_a_late_scan_writes_the_levels_a_clock_passed_before_its_breach(contract, api):
    """A clock first seen past due (a late scan, a job pushed with a past reported_at): its levels
    (reached before its due time) come before its breach in the log the streams and webhooks replay."""
    make_rule(contract, target_minutes=60, escalation=LEVELS, penalty={"fixed_amount": "10"})
    job = make_job(contract, T0)
    result = summary(scan(minutes(180)))
    assert (result["escalations"], result["new"]) == (3, 1)
    log = api("viewer").get("/api/v1/events?since=0&per_page=100&sort=id&fields=id,type,payload").json()
    about_the_clock = [
        (event["type"], event["payload"].get("level"))
        for event in log
        if event["type"] in ("sla.escalation", "breach.detected") and event["payload"]["work_order"] == job.pk
    ]
    assert about_the_clock == [
        ("sla.escalation", "warning"),
        ("sla.escalation", "urgent"),
        ("sla.escalation", "breach"),
        ("breach.detected", None),
    ]


def test_a_job_update_does_not_make_an_announced_level_announce_again(contract):
    make_rule(contract, target_minutes=60, escalation=LEVELS)
    job = make_job(contract, T0)
    scan(minutes(31))
    update_job(job, minutes(35), summary="Customer called again")
    scan(minutes(40))
    assert [level for _, level in escalations()] == ["warning"]


def test_a_clock_that_stopped_before_a_level_is_not_escalated(contract):
    make_rule(contract, target_minutes=60, escalation=LEVELS)
    job = make_job(contract, T0)
    update_job(job, minutes(20), status="in_progress")
    result = summary(scan(minutes(300)))
    assert (result["escalations"], result["new"]) == (0, 0)
    assert not Event.objects.filter(type="sla.escalation").exists()


# --- penalties across breaches ------------------------------------------------------------------


def penalties(*jobs) -> list[Decimal]:
    return [Breach.objects.get(work_order=job).penalty_amount for job in jobs]


def test_the_monthly_cap_holds_across_breaches_and_a_waiver_frees_its_room(contract, make_member, org):
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "40"}, monthly_penalty_cap="100")
    jobs = [make_job(contract, minutes(n)) for n in range(4)]
    scan(minutes(70))
    assert penalties(*jobs) == [Decimal("40"), Decimal("40"), Decimal("20"), Decimal("0")]
    manager = make_member("manager", org).user
    waive_breach(breach=Breach.objects.get(work_order=jobs[0]), actor=manager, reason="Goodwill", now=minutes(75))
    scan(minutes(80))
    # The waived 40 no longer counts: the running breaches of the month take the room, in order.
    assert penalties(*jobs) == [Decimal("40"), Decimal("40"), Decimal("40"), Decimal("20")]
    counted = Breach.objects.exclude(state="waived").values_list("penalty_amount", flat=True)
    assert sum(counted) == Decimal("100")


def test_a_waived_breach_keeps_the_amount_it_was_waived_at(contract, org, make_member):
    make_rule(
        contract, target_minutes=60, penalty={"per_unit_amount": "10", "unit_minutes": 10}, monthly_penalty_cap="100"
    )
    first, second = make_job(contract, T0), make_job(contract, minutes(1))
    scan(minutes(100))  # overages 40 and 39: 40 + 40
    waived = Breach.objects.get(work_order=first)
    waive_breach(breach=waived, actor=make_member("manager", org).user, reason="Storm", now=minutes(101))
    scan(minutes(200))  # overages 140 and 139: 140 uncapped, the cap lets the second have 100
    waived.refresh_from_db()
    assert (waived.state, waived.actual_minutes, waived.penalty_amount) == ("waived", 200, Decimal("40"))
    assert penalties(second) == [Decimal("100")]


def test_running_breaches_grow_before_new_ones_take_the_months_room(contract):
    make_rule(
        contract, target_minutes=60, penalty={"per_unit_amount": "10", "unit_minutes": 10}, monthly_penalty_cap="100"
    )
    earlier, later = make_job(contract, T0), make_job(contract, minutes(5))
    scan(minutes(61))  # the earlier one is 1 minute over: 10
    assert penalties(earlier) == [Decimal("10")] and Breach.objects.count() == 1
    scan(minutes(120))  # the earlier one, 60 over, grows to 60 first; the new one (55 over: 60) gets the 40 left
    assert penalties(earlier, later) == [Decimal("60"), Decimal("40")]


def test_the_per_breach_cap_and_rounding_to_the_minor_unit(org):
    cases = {
        "JPY": ({"fixed_amount": "1000", "per_unit_amount": "0.5", "unit_minutes": 1}, "1018"),  # 1017.5 half-up
        "KWD": ({"fixed_amount": "1.0005"}, "1.001"),
        "EUR": ({"fixed_amount": "100", "per_unit_amount": "25", "unit_minutes": 1, "per_breach_cap": "500"}, "500.00"),
    }
    for currency, (clause, _) in cases.items():
        contract = active_contract(org, currency=currency)
        make_rule(contract, target_minutes=60, penalty=clause)
        make_job(contract, T0)
    scan(minutes(95))  # 35 minutes over
    stored = {b.currency: b.penalty_amount for b in Breach.objects.all()}
    assert stored == {currency: Decimal(expected) for currency, (_, expected) in cases.items()}
    announced = {e.payload["currency"]: e.payload["penalty_amount"] for e in events("breach.detected")}
    assert announced == {currency: expected for currency, (_, expected) in cases.items()}


@pytest.mark.parametrize(
    ("time_zone", "first_scan", "second_scan", "months"),
    [
        # Auckland (UTC+13): 11:30Z on 31 March is already 1 April there.
        ("Pacific/Auckland", "2026-03-31T10:30:00Z", "2026-03-31T11:30:00Z", ["2026-03", "2026-04", "2026-04"]),
        # Los Angeles (UTC-7): 06:30Z on 1 April is still 31 March there.
        ("America/Los_Angeles", "2026-04-01T05:30:00Z", "2026-04-01T06:30:00Z", ["2026-03", "2026-03", "2026-03"]),
    ],
)
def test_the_monthly_cap_is_per_month_of_detection_in_the_contracts_time_zone(
    org, time_zone, first_scan, second_scan, months
):
    contract = active_contract(org, time_zone=time_zone)
    make_rule(contract, target_minutes=60, penalty={"fixed_amount": "60"}, monthly_penalty_cap="100")
    first_at = dt.datetime.fromisoformat(first_scan)
    first = make_job(contract, first_at - dt.timedelta(minutes=90))
    scan(first_scan)
    second = make_job(contract, first_at - dt.timedelta(minutes=20))
    third = make_job(contract, first_at - dt.timedelta(minutes=15))
    scan(second_scan)
    breaches = [Breach.objects.get(work_order=job) for job in (first, second, third)]
    assert [b.penalty_month for b in breaches] == months
    expected = {"2026-03": ["60", "40", "0"], "2026-04": ["60", "60", "40"]}[months[1]]
    assert [b.penalty_amount for b in breaches] == [Decimal(v) for v in expected]


# --- the command --------------------------------------------------------------------------------


def test_the_command_freezes_what_the_process_held_out_of_the_gc_while_it_scans(contract, monkeypatch):
    """The objects alive before the scan are out of the cyclic GC's generations during it (a full
    collection would walk them again and again), and back after it, also when the scan fails."""
    from breaches.management.commands import scan_breaches as command

    make_rule(contract, target_minutes=60)
    make_job(contract, minutes(0))
    frozen_during = []
    real_scan = command.scan_breaches

    def watched(**kwargs):
        frozen_during.append(gc.get_freeze_count())
        return real_scan(**kwargs)

    monkeypatch.setattr(command, "scan_breaches", watched)
    assert gc.get_freeze_count() == 0
    assert summary(scan(minutes(100)))["new"] == 1
    assert frozen_during[0] > 1000 and gc.get_freeze_count() == 0

    def failing(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(command, "scan_breaches", failing)
    with pytest.raises(RuntimeError):
        scan(minutes(101))
    assert gc.get_freeze_count() == 0


def test_batches_print_progress_and_cover_every_clock(contract):
    make_rule(contract, target_minutes=60)
    for n in range(5):
        make_job(contract, minutes(n))
    output = scan(minutes(100), batch_size=2)
    lines = output.splitlines()
    assert [line for line in lines if "clocks past due" in line] == [
        "  breaches: 2 new of 2 clocks past due",
        "  breaches: 4 new of 4 clocks past due",
        "  breaches: 5 new of 5 clocks past due",
    ]
    assert summary(output)["new"] == 5
    assert Breach.objects.count() == 5
    refresh = scan(minutes(110), batch_size=2)
    assert [line for line in refresh.splitlines() if "open breaches" in line][-1] == (
        "  open breaches: 5 refreshed, 0 finalised"
    )


def test_org_limits_the_scan_to_one_organization(org, other_org, contract):
    theirs = active_contract(other_org)
    make_rule(contract, target_minutes=60)
    make_rule(theirs, target_minutes=60)
    make_job(contract, T0)
    make_job(theirs, T0)
    output = scan(minutes(90), org="acme")
    assert output.splitlines()[0] == "scan_breaches at 2026-03-10T10:30:00+00:00 for acme"
    assert summary(output)["new"] == 1
    assert list(Breach.objects.values_list("organization__slug", flat=True)) == ["acme"]
    assert summary(scan(minutes(90)))["new"] == 1
    assert Breach.objects.filter(organization=other_org).count() == 1


def test_now_with_an_offset_is_the_same_instant(contract):
    make_rule(contract, target_minutes=60)
    make_job(contract, T0)
    scan("2026-03-10T11:35:00+01:00")
    assert Breach.objects.get().detected_at == minutes(95)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "--batch-size must be at least 1."),
        # A larger one overflowed the LIMIT: a traceback (bigint out of range; SQLite: datatype mismatch).
        ({"batch_size": 10**20}, "--batch-size must be at most 100000."),
        ({"org": "nobody"}, "No organization 'nobody'."),
    ],
)
def test_bad_options_are_command_errors(org, options, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        scan(T0, **options)


@pytest.mark.parametrize("command", ["scan_breaches", "deliver_notifications"])
def test_help_says_the_batch_size_range(command):
    from django.core.management import load_command_class

    parser = load_command_class("breaches" if command == "scan_breaches" else "notifications", command).create_parser(
        "manage.py", command
    )
    assert "from 1 to 100,000" in " ".join(parser.format_help().split())


@pytest.mark.parametrize("now", ["yesterday", "2026-02-30T10:00:00Z"])
def test_a_malformed_now_is_a_command_error(org, now):
    with pytest.raises(CommandError, match="ISO 8601"):
        scan(now)


@pytest.mark.parametrize("command", ["scan_breaches", "run_lifecycle", "deliver_notifications"])
@pytest.mark.parametrize("now", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"])
def test_a_now_outside_the_services_dates_is_a_command_error(org, command, now):
    # The commands count days and months on from --now: at the calendar's edges that raised.
    extra = ["--once"] if command == "deliver_notifications" else []
    with pytest.raises(CommandError, match="is not from 2000-01-01 to 2999-12-31"):
        call_command(command, "--now", now, *extra, stdout=io.StringIO())


# --- one indexed query, not a walk over the open jobs -------------------------------------------


def test_the_scans_queries_do_not_grow_with_the_open_jobs_not_yet_due(contract):
    make_rule(contract, target_minutes=600, escalation=[{"at_percent": 90, "name": "late"}])
    counts = []
    for jobs in (3, 30):
        for n in range(jobs):
            make_job(contract, minutes(n))
        with CaptureQueriesContext(connection) as queries:
            scan(minutes(60))
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert not Breach.objects.exists()


def test_past_due_clocks_are_found_through_the_partial_index(contract):
    make_rule(contract, target_minutes=60)
    make_job(contract, T0)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The tables are tiny: make the planner say whether it *can* use the index.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
        plan = past_due_clocks(now=minutes(90)).select_for_update(skip_locked=True, of=("self",)).explain()
    assert "clock_running_due" in plan, plan
    assert list(past_due_clocks(now=minutes(90)).values_list("work_order__contract", flat=True)) == [contract.pk]


def test_the_migration_finds_each_versions_first(contract):
    """`slas` 0006 fills `first_version` of the rules amended before it existed."""
    import importlib

    from django.apps import apps

    from slas.models import SlaRule
    from slas.services import amend_rule

    fill = importlib.import_module("slas.migrations.0006_slarule_first_version").fill_first_versions
    rule = make_rule(contract, target_minutes=60)
    second = amend_rule(rule=rule, actor=None, data={"target_minutes": 90}, effective_from=minutes(10))
    third = amend_rule(rule=second, actor=None, data={"target_minutes": 120}, effective_from=minutes(20))
    other = make_rule(contract, metric="resolution", target_minutes=60)
    SlaRule.objects.update(first_version=None)
    fill(apps, None)
    found = dict(SlaRule.objects.values_list("pk", "first_version_id"))
    assert found == {rule.pk: None, second.pk: rule.pk, third.pk: rule.pk, other.pk: None}


# --- one unreadable rule does not stop the scan -------------------------------------------------


@pytest.mark.parametrize("batch_size", [1000, 1])
def test_a_rule_whose_calendar_cannot_be_read_is_skipped_and_reported(org, other_org, contract, batch_size):
    # Found by an outside sweep: one calendar with a time zone the machine does not know (a tzdata
    # upgrade that drops a zone) failed every scan, for every organization, rules without a calendar too.
    office = office_calendar(org)
    bad = make_rule(contract, target_minutes=60, calendar=office, escalation=LEVELS)
    round_the_clock = make_rule(contract, metric="resolution", target_minutes=60, pause_on_hold=False)
    elsewhere = make_rule(active_contract(other_org), target_minutes=60, escalation=LEVELS)
    for reported_at in (T0, minutes(100)):
        make_job(contract, reported_at)
        make_job(elsewhere.contract, reported_at)
    assert summary(scan(minutes(90), batch_size=batch_size))["new"] == 3  # the first jobs'
    # The zone goes away (updated_at too, as a fresh process would not have it compiled).
    type(office).objects.filter(pk=office.pk).update(time_zone="Bogus/Zone", updated_at=minutes(95))
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^Skipped rules \(1\): ") as failed:
        call_command("scan_breaches", now=minutes(200).isoformat(), batch_size=batch_size, stdout=out)
    assert f"rule {bad.pk} of {contract.reference} (organization acme, calendar {office.pk})" in str(failed.value)
    assert "unknown time zone 'Bogus/Zone'" in str(failed.value)
    assert str(failed.value).count("rule ") == 1
    assert summary(out.getvalue())["new"] == 2  # the new jobs' breaches of the other two rules
    assert Breach.objects.filter(sla_rule=round_the_clock).count() == 2
    assert Breach.objects.filter(sla_rule=elsewhere).count() == 2
    assert Breach.objects.filter(sla_rule=bad).count() == 1  # the first job's, before the zone went
    # The other rules' open breaches were refreshed, their escalations announced.
    assert set(Breach.objects.filter(measured_at=minutes(200)).values_list("sla_rule_id", flat=True)) == {
        round_the_clock.pk,
        elsewhere.pk,
    }
    assert len(events("sla.escalation", organization=other_org)) == 2 * len(LEVELS)
    assert f"skipped rule {bad.pk}" in out.getvalue()

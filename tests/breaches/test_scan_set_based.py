"""The scan's set-based batches (issue 15): the same figures as the per-row definition, and a
constant number of statements per batch whatever its size.

- On random data (calendars across a DST change, holds that pause, penalties with per-breach and
  monthly caps in three currencies, waived breaches, clocks stopped, cancelled or corrected to
  met behind the scan's back), the refresh writes exactly what a per-row reference computes from
  the pure clock and the pure penalty functions, breach after breach in id order.
- The refresh of 3 or 39 open breaches runs the same statements; in batches of 10 it runs those
  of one batch four times (one UPDATE of the breaches each). Escalating 3 or 30 clocks too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q, Sum
from django.test.utils import CaptureQueriesContext

from breaches.models import Breach
from breaches.penalties import breach_penalty, within_monthly_cap
from breaches.services import REFRESH_EVERY, _among, _detected_payload, waive_breach
from events.models import Event
from events.services import jsonable
from slas import clock
from slas.models import SlaRule
from slas.services import create_calendar
from tests.breaches.factories import active_contract, make_job, make_rule, minutes, scan, update_job
from workorders.clocks import calendar_of, pauses_for
from workorders.models import Hold, SlaClock

pytestmark = pytest.mark.django_db

# Saturday 28 March 2026, 22:00 UTC: Amsterdam moves its clocks forward at 01:00 UTC the next night.
BASE = dt.datetime(2026, 3, 28, 22, 0, tzinfo=dt.UTC)


def at(n: float) -> dt.datetime:
    return minutes(n, BASE)


_numbers = itertools.count(1)


def office(org, time_zone: str):
    return create_calendar(
        organization=org,
        actor=None,
        data={
            "name": f"Office {time_zone} {next(_numbers)}",  # names are unique in an organization
            "time_zone": time_zone,
            # Weekend hours too, and a night shift across midnight (and across the DST change).
            "hours": [{"weekday": d, "start": "07:00", "end": "19:00"} for d in range(1, 8)]
            + [{"weekday": 6, "start": "22:00", "end": "24:00"}, {"weekday": 7, "start": "00:00", "end": "04:00"}],
            "holidays": [{"date": "2026-03-30", "name": "Closed"}],
        },
    )


def random_world(org, manager, rng: random.Random) -> list:
    """Contracts, rules and jobs at random; a first scan at at(150) records their breaches."""
    amsterdam = active_contract(org, currency="EUR", time_zone="Europe/Amsterdam")
    tokyo = active_contract(org, currency="JPY", time_zone="Asia/Tokyo")
    kuwait = active_contract(org, currency="KWD", time_zone="Asia/Kuwait")
    make_rule(
        amsterdam, metric="response", target_minutes=30, monthly_penalty_cap="1000",
        penalty={"fixed_amount": "100", "per_unit_amount": "25", "unit_minutes": 15, "per_breach_cap": "400"},
    )  # fmt: skip
    make_rule(
        amsterdam, metric="resolution", target_minutes=90, calendar=office(org, "Europe/Amsterdam"),
        monthly_penalty_cap="700.5", penalty={"fixed_amount": "50", "per_unit_amount": "10.5", "unit_minutes": 20},
    )  # fmt: skip
    make_rule(amsterdam, metric="on_site", target_minutes=60)  # no penalty clause: zero
    make_rule(
        tokyo, metric="response", target_minutes=45, monthly_penalty_cap="12000",
        penalty={"fixed_amount": "1000.4", "per_unit_amount": "333.3", "unit_minutes": 7, "per_breach_cap": "5000.5"},
    )  # fmt: skip
    make_rule(
        kuwait, metric="resolution", target_minutes=50, calendar=office(org, "Asia/Kuwait"), pause_on_hold=False,
        penalty={"fixed_amount": "1.0005", "per_unit_amount": "0.1234", "unit_minutes": 1},
    )  # fmt: skip
    jobs = []
    for _ in range(24):
        reported = rng.randrange(0, 60)
        job = make_job(rng.choice([amsterdam, amsterdam, tokyo, kuwait]), at(reported), priority="high")
        if rng.random() < 0.4:  # a hold, closed or still open
            start = reported + rng.randrange(5, 40)
            update_job(job, at(start), status="on_hold", hold_reason="Waiting for parts")
            if rng.random() < 0.7:
                update_job(job, at(start + rng.randrange(5, 60)), status="in_progress")
        jobs.append(job)
    scan(at(150))
    breaches = list(Breach.objects.order_by("pk"))
    for breach in rng.sample(breaches, k=len(breaches) // 5):
        waive_breach(breach=breach, actor=manager, reason="Goodwill", now=at(151))
    # Behind the scan's back (as a concurrent job update would leave them): clocks stopped,
    # cancelled, or corrected so that they are no longer past due.
    for breach in rng.sample(breaches, k=len(breaches) // 3):
        change = rng.choice(["stopped", "cancelled", "met"])
        clock_row = SlaClock.objects.filter(pk=breach.clock_id)
        if change == "stopped":
            clock_row.update(stopped_at=at(160), elapsed_seconds=rng.randrange(3000, 9000))
        elif change == "cancelled":
            clock_row.update(state=SlaClock.State.CANCELLED, elapsed_seconds=rng.randrange(3000, 9000))
        else:
            clock_row.update(due_at=at(10_000))
    return breaches


def reference(now: dt.datetime) -> dict[int, tuple]:
    """The refresh at `now`, breach after breach in id order, from the definitions (DESIGN §6)."""
    totals = defaultdict(Decimal)
    for breach in Breach.objects.exclude(state=Breach.State.WAIVED):
        totals[(breach.sla_rule_id, breach.penalty_month)] += breach.penalty_amount
    due_for_refresh = Breach.objects.filter(
        Q(measured_at__isnull=True) | Q(measured_at__lte=now - REFRESH_EVERY), final=False
    )
    expected = {}
    for breach in due_for_refresh.select_related("clock", "sla_rule__calendar").order_by("pk"):
        clock_row, rule = breach.clock, breach.sla_rule
        cancelled = clock_row.state == SlaClock.State.CANCELLED
        if clock_row.stopped_at is not None or cancelled:
            seconds = clock_row.elapsed_seconds
        else:
            holds = list(Hold.objects.filter(work_order_id=breach.work_order_id))
            pauses = pauses_for(rule, holds)
            seconds = clock.business_seconds(calendar_of(rule), clock_row.started_at, now, pauses)
        actual = math.ceil(seconds / 60)
        overage = max(0, actual - breach.target_minutes)
        past_due = cancelled or (clock_row.due_at is not None and (clock_row.stopped_at or now) > clock_row.due_at)
        amount = breach.penalty_amount
        if breach.state != Breach.State.WAIVED:
            key = (rule.pk, breach.penalty_month)
            already = totals[key] - breach.penalty_amount
            full = breach_penalty(rule.penalty, overage, breach.currency) if past_due else Decimal(0)
            amount = within_monthly_cap(full, already, rule.monthly_penalty_cap, breach.currency)
            totals[key] = already + amount
        final = cancelled or clock_row.stopped_at is not None
        expected[breach.pk] = (actual, overage, amount, clock_row.stopped_at, final, clock_row.due_at or breach.due_at)
    return expected


def stored(pks) -> dict[int, tuple]:
    fields = ("actual_minutes", "overage_minutes", "penalty_amount", "clock_stopped_at", "final", "due_at")
    return {row[0]: row[1:] for row in Breach.objects.filter(pk__in=pks).values_list("pk", *fields)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_set_based_refresh_writes_what_the_per_row_definition_computes(org, make_member, seed):
    rng = random.Random(seed)
    manager = make_member("manager", org).user
    random_world(org, manager, rng)
    later = at(150 + rng.randrange(61, 400))  # across the DST change (01:00 UTC)
    expected = reference(later)
    # The data really covers the cases: finalised and running, waived, capped, zero and non-zero.
    finals = [pk for pk, figures in expected.items() if figures[4]]
    assert finals and len(finals) < len(expected)
    assert Breach.objects.filter(pk__in=expected, state="waived").exists()
    assert {figures[2] > 0 for figures in expected.values()} == {True, False}

    output = scan(later, batch_size=rng.randrange(2, 7))
    assert stored(expected) == expected
    assert set(Breach.objects.filter(pk__in=expected).values_list("measured_at", flat=True)) == {later}
    finalized = Event.objects.filter(type="breach.finalized", occurred_at=later)
    assert sorted(finalized.values_list("object_id", flat=True)) == sorted(finals)
    # Each finalised breach's event says what `_finalised` says of the stored breach (its due time
    # computed by the database when the breach becomes final, its penalty within the cap).
    for event in finalized:
        breach = Breach.objects.get(pk=event.object_id)
        assert event.payload == jsonable({**_detected_payload(breach), "actual_minutes": breach.actual_minutes})
    assert f"{len(finals)} finalised" in output
    # The month's cap holds per rule and month, without the waived breaches.
    for rule_id, month in set(Breach.objects.values_list("sla_rule_id", "penalty_month")):
        breaches = Breach.objects.filter(sla_rule_id=rule_id, penalty_month=month).exclude(state="waived")
        cap = breaches.first().sla_rule.monthly_penalty_cap if breaches.exists() else None
        if cap is not None:
            assert sum(b.penalty_amount for b in breaches) <= Decimal(cap)


# --- statements per batch --------------------------------------------------------------------


def statements(now, **options) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        scan(now, **options)
    return [q["sql"] for q in queries.captured_queries]


def breach_updates(sqls: list[str]) -> int:
    return sum(1 for sql in sqls if sql.lstrip().upper().startswith(("UPDATE", "WITH")) and "breaches_breach" in sql)


def test_the_refresh_runs_a_constant_number_of_statements_per_batch(org):
    contract = active_contract(org, currency="EUR")
    make_rule(contract, metric="response", target_minutes=30, penalty={"fixed_amount": "10"}, monthly_penalty_cap="99")
    make_rule(contract, metric="resolution", target_minutes=40, calendar=office(org, "Europe/Amsterdam"))
    held = make_job(contract, at(0))  # answered (response met), its resolution clock paused a while
    update_job(held, at(5), status="on_hold", hold_reason="Parts")
    update_job(held, at(10), status="in_progress")
    make_job(contract, at(0))
    scan(at(120))
    assert Breach.objects.filter(final=False).count() == 3
    idle = statements(at(120.5))  # within the minute: nothing to refresh
    few = statements(at(121))
    for _ in range(18):
        make_job(contract, at(60))
    scan(at(200))
    assert Breach.objects.filter(final=False).count() == 39
    many = statements(at(201))
    assert len(few) == len(many), (len(few), len(many))
    assert breach_updates(few) == breach_updates(many) == 1
    per_batch = len(few) - len(idle)
    tens = statements(at(202), batch_size=10)  # 39 open breaches: 4 batches
    assert breach_updates(tens) == 4
    # At most those of a full batch each (a batch without a calendar rule skips reading calendars).
    assert len(idle) + 4 * (per_batch - 1) <= len(tens) <= len(idle) + 4 * per_batch, (len(tens), len(idle), per_batch)


def statement_shapes(now, **options) -> list[tuple[str, int]]:
    """Each statement's text (before its parameters are bound) and its number of parameters."""
    shapes = []

    def capture(execute, sql, params, many, context):
        if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):  # named after the transaction
            shapes.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        scan(now, **options)
    return shapes


def test_on_postgresql_the_refresh_sends_the_same_statements_for_few_breaches_and_many(org):
    """The batch's id lists (its rules to lock, their month's totals, its jobs' holds) go as one
    array each on PostgreSQL: the statements' text and parameters do not grow with the batch (with
    `IN (%s, ...)` each id was one more placeholder to prepare and parse). SQLite keeps `IN`."""
    contract = active_contract(org, currency="EUR")
    make_rule(contract, metric="response", target_minutes=30, penalty={"fixed_amount": "10"}, monthly_penalty_cap="99")
    make_rule(contract, metric="resolution", target_minutes=40, calendar=office(org, "Europe/Amsterdam"))
    held = make_job(contract, at(0))
    update_job(held, at(5), status="on_hold", hold_reason="Parts")
    update_job(held, at(10), status="in_progress")
    scan(at(120))
    few = statement_shapes(at(121))
    for _ in range(18):
        make_job(contract, at(60))
    scan(at(200))
    many = statement_shapes(at(201))
    assert Breach.objects.filter(final=False).count() == 37
    assert len(few) == len(many)
    if connection.vendor == "postgresql":  # SQLite: `IN` lists and a `VALUES` row per breach
        assert few == many


def test_escalating_many_clocks_runs_the_same_statements_as_escalating_few(org, other_org):
    levels = [{"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]}, {"at_percent": 80, "name": "x"}]
    counts = []
    for organization, jobs in ((org, 3), (other_org, 30)):
        contract = active_contract(organization, currency="EUR")
        make_rule(contract, target_minutes=100, escalation=levels)
        for _ in range(jobs):
            make_job(contract, at(0))
        sqls = statements(at(60), org=organization.slug)  # past the first level only
        counts.append(len(sqls))
        sent = Event.objects.filter(type="sla.escalation", organization=organization)
        assert sent.count() == jobs
        clocks = SlaClock.objects.filter(organization=organization)
        assert set(clocks.values_list("escalations_sent", "next_escalation_at")) == {(1, at(80))}
    assert counts[0] == counts[1], counts


def test_the_refresh_keeps_the_penalty_and_due_time_where_they_did_not_move(org):
    """A refresh where the monthly cap binds, a replayed hold moves one clock's due time and another
    clock stops: the UPDATE sends the penalty and the due time only where they moved (None keeps
    the row's own), and every row ends with the figures of the per-row definition."""
    contract = active_contract(org, currency="EUR")
    make_rule(
        contract, metric="response", target_minutes=30, monthly_penalty_cap="250",
        penalty={"fixed_amount": "100", "per_unit_amount": "10", "unit_minutes": 60},
    )  # fmt: skip
    for _ in range(4):
        make_job(contract, at(0))
    scan(at(40))  # 10 minutes over: 110 each, within the month's 250
    breaches = list(Breach.objects.order_by("pk"))
    assert [b.penalty_amount for b in breaches] == [110, 110, 30, 0]
    first, second = breaches[0], breaches[1]
    # Behind the scan's back: the first clock's due time moves (a replayed hold), the second stops.
    SlaClock.objects.filter(pk=first.clock_id).update(due_at=at(35))
    SlaClock.objects.filter(pk=second.clock_id).update(stopped_at=at(41), elapsed_seconds=41 * 60)
    expected = reference(at(41))
    scan(at(41))
    assert stored(expected) == expected
    assert expected[first.pk][5] == at(35) and expected[second.pk][4] is True
    assert {pk: figures[2] for pk, figures in expected.items()} == {b.pk: b.penalty_amount for b in breaches}
    # An hour on, two started units (120 each): the cap still binds, the final one is left alone.
    expected = reference(at(100))
    assert second.pk not in expected
    scan(at(100))
    assert stored(expected) == expected
    assert Breach.objects.exclude(state="waived").aggregate(total=Sum("penalty_amount"))["total"] == 250
    assert stored([first.pk])[first.pk][5] == at(35)


def test_an_id_filter_on_no_ids_runs_no_query_as_in_does(org):
    """`_among` (`= ANY(array)` on PostgreSQL) behaves as `IN`: no ids, no query, no rows."""
    contract = active_contract(org, currency="EUR")
    rule = make_rule(contract, metric="response", target_minutes=30)
    with CaptureQueriesContext(connection) as queries:
        assert list(SlaRule.objects.filter(_among("pk", [])).values_list("pk", flat=True)) == []
    assert queries.captured_queries == []
    assert list(SlaRule.objects.filter(_among("pk", [rule.pk, rule.pk + 1000])).values_list("pk", flat=True)) == [
        rule.pk
    ]


def rule_reads(sqls: list[str]) -> int:
    """The reads of rules with their contracts (not the monthly cap's lock of the rules)."""
    return sum(1 for sql in sqls if 'FROM "slas_slarule" INNER JOIN "contracts_contract"' in sql)


def test_detecting_many_clocks_runs_the_same_statements_as_detecting_few(org, other_org):
    counts = []
    for organization, jobs in ((org, 3), (other_org, 30)):
        contract = active_contract(organization, currency="EUR")
        make_rule(contract, target_minutes=30, penalty={"fixed_amount": "10"}, monthly_penalty_cap="95")
        for _ in range(jobs):
            make_job(contract, at(0))
        sqls = statements(at(60), org=organization.slug)
        counts.append(len(sqls))
        assert Breach.objects.filter(organization=organization).count() == jobs
        assert Event.objects.filter(type="breach.detected", organization=organization).count() == jobs
    assert counts[0] == counts[1], counts
    assert sorted(Breach.objects.filter(organization=other_org).values_list("penalty_amount", flat=True)) == (
        [Decimal("0")] * 20 + [Decimal("5")] + [Decimal("10")] * 9  # the monthly cap of 95, in due order
    )


def world_for_batches(organization):
    """Two contracts in two currencies, three rules each (one on a calendar, two with escalation
    levels, one with a monthly cap); six jobs, each with its three clocks past due."""
    contracts = [
        active_contract(organization, currency="EUR"),
        active_contract(organization, currency="JPY"),
    ]
    levels = [{"at_percent": 50, "name": "warning", "notify": ["desk@example.com"]}, {"at_percent": 90, "name": "x"}]
    for contract in contracts:
        make_rule(contract, target_minutes=30, escalation=levels, penalty={"fixed_amount": "10"})
        make_rule(
            contract, metric="on_site", target_minutes=45, penalty={"fixed_amount": "20"}, monthly_penalty_cap="50"
        )
        make_rule(
            contract, metric="resolution", target_minutes=40, calendar=office(organization, "Europe/Amsterdam"),
            escalation=levels, penalty={"fixed_amount": "7", "per_unit_amount": "3", "unit_minutes": 5},
        )  # fmt: skip
        for _ in range(3):
            make_job(contract, at(0))


def outcome(organization) -> tuple[list, list]:
    """What a scan recorded, without the ids that differ between organizations."""
    breaches = Breach.objects.filter(organization=organization).order_by("id")
    figures = list(
        breaches.values_list(
            "metric", "currency", "penalty_month", "target_minutes", "actual_minutes", "overage_minutes",
            "penalty_amount", "due_at", "detected_at", "final",
        )
    )  # fmt: skip
    ids = {"work_order", "sla_rule", "contract", "work_order_reference", "contract_reference"}
    payloads = [
        (event.type, {key: value for key, value in event.payload.items() if key not in ids})
        for event in Event.objects.filter(
            organization=organization, type__in=["breach.detected", "sla.escalation"]
        ).order_by("id")
    ]
    return figures, payloads


def test_a_scan_reads_each_rule_once_and_records_what_one_batch_would(org, other_org):
    """The rules, their contracts' penalty months and escalation levels are the scan's, not the
    batch's: in batches of 2 the scan reads each rule once and records what one batch does."""
    world_for_batches(org)
    world_for_batches(other_org)
    sqls = statements(at(300), org=org.slug, batch_size=2)
    batches = [sql for sql in sqls if 'FROM "workorders_slaclock"' in sql and " LIMIT 2" in sql]
    # Each batch reads its clocks' organizations first (to hold their order), the last empty one only that.
    read = 'SELECT "workorders_slaclock"."organization_id" AS "organization_id" FROM'
    organizations = [sql for sql in batches if sql.startswith(read)]
    assert len(organizations) == 9 + 6 + 2
    assert len(batches) - len(organizations) == 9 + 6  # the claims: 18 clocks past due, 12 of them escalating
    assert rule_reads(sqls) <= 6  # each of the 6 rules read once (before: once per batch that met it)
    # Only the columns the scan uses are read, and no column it uses is left to load later (a
    # deferred field read would be one more query per rule or contract).
    reads = [sql for sql in sqls if sql.startswith("SELECT") and ('FROM "slas_slarule"' in sql or
             'FROM "contracts_contract"' in sql)]  # fmt: skip
    assert all('"slas_slarule"."name"' not in sql and '"contracts_contract"."name"' not in sql for sql in reads)
    assert [sql for sql in reads if 'FROM "contracts_contract"' in sql] == []
    # The monthly cap's lock: ids only (each rule's and its first version's, whose versions share the cap).
    lock = (
        'SELECT COALESCE("slas_slarule"."first_version_id", "slas_slarule"."id") AS "coalesce1", '
        '"slas_slarule"."id" AS "pk" FROM "slas_slarule" WHERE'
    )
    assert all('INNER JOIN "contracts_contract"' in sql or sql.startswith(lock) for sql in reads), reads
    assert Breach.objects.filter(organization=org).count() == 18  # 9 detection batches of 2
    statements(at(300), org=other_org.slug)
    assert outcome(org) == outcome(other_org)
    figures, payloads = outcome(org)
    assert {month for _metric, _currency, month, *_ in figures} == {"2026-03"}
    assert sum(1 for kind, _payload in payloads if kind == "sla.escalation") == 24  # 2 levels of 12 clocks

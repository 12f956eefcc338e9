"""The refresh's batches (issue 15, fourth pass): what makes them cheap gives the same figures.

- Batches walk the open breaches in (rule, id) order: a batch locks and totals only the rules of
  its breaches, each rule's breaches together and in id order (the order of its monthly cap's
  room), and the figures are still those of the per-row definition, also when a rule's breaches
  straddle two batches while its cap binds.
- The penalty book's shortcuts (the penalty before the cap per started unit, the cap's room taken
  as it is when it covers the penalty) give what `within_monthly_cap(breach_penalty(...))` gives.
- The clock's start is read as epoch seconds by the database as `slas.clock.epoch` converts it.
- Arrays go to PostgreSQL as one literal each, and come back as the values sent.
- A batch that records nothing commits without waiting for the disk (PostgreSQL), no other.
- A scan reads each calendar once, for its refresh batches and its detection alike.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection, transaction

from breaches.bulk import array_literal
from breaches.models import Breach
from breaches.penalties import breach_penalty, within_monthly_cap
from breaches.services import _EpochSeconds, _PenaltyBook
from events.models import Event
from slas import clock
from tests.breaches.factories import ALL_PRIORITIES, active_contract, make_job, make_rule, scan
from tests.breaches.test_scan_set_based import at, breach_updates, office, reference, statements, stored
from workorders.models import SlaClock

pytestmark = pytest.mark.django_db


def test_batches_hold_each_rules_breaches_together_and_give_the_per_row_figures(org, monkeypatch):
    contract = active_contract(org, currency="EUR")
    capped = make_rule(
        contract, metric="response", target_minutes=30, monthly_penalty_cap="320",
        penalty={"fixed_amount": "50", "per_unit_amount": "10", "unit_minutes": 20},
    )  # fmt: skip
    other = make_rule(contract, metric="resolution", target_minutes=40, penalty={"fixed_amount": "7"})
    for n in range(5):  # each job: one breach of each rule, so in id order the two rules alternate
        make_job(contract, at(n))
    scan(at(60))
    assert Breach.objects.filter(final=False).count() == 10
    locked = []
    book_init = _PenaltyBook.__init__

    def spy(self, rule_ids, months, **kwargs):
        locked.append(sorted(rule_ids))
        book_init(self, rule_ids, months, **kwargs)

    monkeypatch.setattr(_PenaltyBook, "__init__", spy)
    later = at(125)  # every breach past another started unit: the capped rule's month total binds
    expected = reference(later)
    scan(later, batch_size=3)
    # Batches of 3 in (rule, id) order: the capped rule's five breaches in two batches (the second
    # with the first of the other rule), then the other rule's remaining four.
    assert locked == [[capped.pk], [capped.pk, other.pk], [other.pk], [other.pk]]
    assert stored(expected) == expected
    amounts = [expected[b.pk][2] for b in Breach.objects.filter(sla_rule=capped).order_by("pk")]
    assert sum(amounts) == 320 and amounts == sorted(amounts, reverse=True)  # the room goes in id order


CLAUSES = [
    None,
    {"fixed_amount": "100"},
    {"fixed_amount": "100", "per_unit_amount": "25", "unit_minutes": 15, "per_breach_cap": "400"},
    {"fixed_amount": "1000.4", "per_unit_amount": "333.3", "unit_minutes": 7, "per_breach_cap": "5000.5"},
    {"fixed_amount": "1.0005", "per_unit_amount": "0.1234", "unit_minutes": 1},
    {"per_unit_amount": "0", "unit_minutes": 5, "fixed_amount": "3"},
]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_penalty_books_amounts_are_the_definitions(org, seed):
    rng = random.Random(seed)
    rules = []
    for clause in CLAUSES:
        contract = active_contract(org, currency="EUR")
        for priority, cap in zip(ALL_PRIORITIES, (None, "1000", "700.5", "12000.75"), strict=False):
            rules.append(
                make_rule(
                    contract, target_minutes=30, priorities=[priority], penalty=clause, monthly_penalty_cap=cap
                )
            )
    book = _PenaltyBook({rule.pk for rule in rules}, {"2026-03"})
    totals = {}
    for _ in range(3000):
        rule = rng.choice(rules)
        currency = rng.choice(["EUR", "JPY", "KWD"])
        overage = rng.choice([0, 1, rng.randrange(0, 400)])
        past_due = rng.random() < 0.9
        key = (rule.pk, "2026-03")
        total = totals.get(key, Decimal(0))
        old = rng.choice([Decimal(0), min(total, Decimal(rng.randrange(0, 300)))])
        already = total - old
        full = breach_penalty(rule.penalty, overage, currency) if past_due else Decimal(0)
        expected = within_monthly_cap(full, already, rule.monthly_penalty_cap, currency)
        book.totals[key] = total  # the book's month total, as this sequence left it
        assert book.amount(rule, "2026-03", old, overage, past_due, currency) == expected
        totals[key] = already + expected
        assert book.totals[key] == totals[key]


def test_the_clocks_start_is_read_as_epoch_seconds_as_the_pure_clock_converts_it(org):
    contract = active_contract(org, currency="EUR")
    make_rule(contract, metric="response", target_minutes=30)
    make_job(contract, at(0))
    clock_row = SlaClock.objects.get()
    instants = [
        dt.datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ]
    for instant in instants:
        SlaClock.objects.filter(pk=clock_row.pk).update(started_at=instant)
        read = SlaClock.objects.annotate(start=_EpochSeconds("started_at")).values_list("start", flat=True).get()
        assert read == clock.epoch(instant) and type(read) is int


def test_arrays_go_as_one_literal_each_and_come_back_as_sent():
    instant = dt.datetime(2026, 3, 29, 1, 0, 0, 250000, tzinfo=dt.UTC)
    columns = [
        ("bigint", [1, 22, 333, 2**40]),
        ("integer", [5, None, 7]),
        ("boolean", [True, False, None]),
        ("numeric", [Decimal("110.0000"), None, Decimal("0.125"), Decimal("1E+2")]),
        ("timestamptz", [instant, None]),
        ("text", ['a "quoted" word', "back\\slash", "", "NULL", "comma, brace}{", None]),
    ]
    assert array_literal([1, 22, 333]) == "{1,22,333}"
    assert array_literal([True, None, Decimal("1.50")]) == "{True,NULL,1.50}"
    assert array_literal(['a "b"\\']) == '{"a \\"b\\"\\\\"}'
    assert array_literal([dt.date(2026, 3, 1)]) == [dt.date(2026, 3, 1)]  # no literal: the list as it is
    if connection.vendor != "postgresql":
        return  # the literal is PostgreSQL's array input; SQLite's statements take no arrays
    with connection.cursor() as cursor:
        for kind, values in columns:
            cursor.execute(f"SELECT %s::{kind}[]", [array_literal(values)])
            assert cursor.fetchone()[0] == values, kind


def test_a_refresh_in_rule_order_keeps_the_walk_whole_when_rules_have_no_open_breaches(org):
    """The keyset (rule, id) moves past rules with nothing to refresh and past the last rule."""
    contracts = [active_contract(org, currency="EUR") for _ in range(4)]
    rules = [make_rule(contract, metric="response", target_minutes=30 + 10 * n) for n, contract in enumerate(contracts)]
    for contract in contracts:
        for n in range(3):
            make_job(contract, at(n))
    scan(at(100))
    Breach.objects.filter(sla_rule=rules[1]).update(final=True)
    expected = reference(at(160))
    assert {Breach.objects.get(pk=pk).sla_rule_id for pk in expected} == {rules[0].pk, rules[2].pk, rules[3].pk}
    output = scan(at(160), batch_size=2)
    assert stored(expected) == expected
    assert f"{len(expected)} breaches refreshed" in output


ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


@pytest.mark.django_db(transaction=True)
def test_only_a_batch_that_records_nothing_commits_without_waiting_for_the_disk(org):
    """On PostgreSQL a refresh batch that only re-measures figures commits asynchronously; a batch
    that finalises a breach (its events) commits durably, and so does every batch inside a caller's
    transaction (the setting would be the caller's). SQLite: never."""
    contract = active_contract(org, currency="EUR")
    make_rule(contract, metric="response", target_minutes=30, penalty={"fixed_amount": "10"})
    for n in range(4):
        make_job(contract, at(n))
    scan(at(60))
    postgres = connection.vendor == "postgresql"
    sqls = statements(at(61), batch_size=2)  # two batches, nothing final
    assert sqls.count(ASYNC_COMMIT) == (2 if postgres else 0)
    # A clock stopped behind the scan's back (as a concurrent job update leaves it): the refresh
    # finalises its breach, with its event.
    first = Breach.objects.order_by("pk").first()
    SlaClock.objects.filter(pk=first.clock_id).update(stopped_at=at(62), elapsed_seconds=62 * 60)
    sqls = statements(at(63), batch_size=2)
    assert Event.objects.filter(type="breach.finalized").count() == 1
    assert sqls.count(ASYNC_COMMIT) == (1 if postgres else 0)  # the batch with the event: durable
    with transaction.atomic():
        sqls = statements(at(64), batch_size=2)
    assert breach_updates(sqls) == 2
    assert ASYNC_COMMIT not in sqls
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1" if not postgres else "SHOW synchronous_commit")
        assert cursor.fetchone()[0] == ("on" if postgres else 1)  # the setting ended with its batch


def test_a_scan_reads_each_calendar_once_for_all_its_batches(org):
    """The calendars are the scan's, as its rules are: refresh batches of 2 over rules on two
    calendars read each calendar once (before: once per batch), and write the per-row figures."""
    contract = active_contract(org, currency="EUR")
    calendars = [office(org, "Europe/Amsterdam"), office(org, "Asia/Tokyo")]
    make_rule(contract, metric="response", target_minutes=30, calendar=calendars[0], penalty={"fixed_amount": "10"})
    make_rule(contract, metric="resolution", target_minutes=40, calendar=calendars[1])
    make_rule(contract, metric="on_site", target_minutes=50)  # 24x7
    for n in range(4):
        make_job(contract, at(n))
    scan(at(120))
    assert Breach.objects.filter(final=False).count() == 12
    later = at(190)
    expected = reference(later)
    sqls = statements(later, batch_size=2)
    assert breach_updates(sqls) == 6  # six refresh batches ...
    assert sum(1 for sql in sqls if 'FROM "slas_calendar"' in sql) == 2  # ... and each calendar read once
    assert stored(expected) == expected

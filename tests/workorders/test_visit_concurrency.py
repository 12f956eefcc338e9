"""Several `generate_visits` runners at once make each (plan, occurrence) job exactly once (issue 13).

On PostgreSQL the runners are real concurrent threads, each with its own connection, released
together at a barrier (tests.ledger.helpers.run_at_once); each takes its organization's event order
before a plan's row, a runner passes over a plan another one has locked (SKIP LOCKED), and the
unique constraint on (visit_plan, occurrence) stops any second insert. SQLite has one writer:
there the runners go one after the other and the later ones find nothing left to do. The totals
must be the same either way.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection

from events.models import Event
from tests.contracts.factories import make_contract
from tests.ledger.helpers import run_at_once
from tests.slas.factories import ams, make_rule
from workorders import rules
from workorders.models import SlaClock, WorkOrder
from workorders.visits import generate_visits

pytestmark = pytest.mark.django_db(transaction=True)

PLANS = 40
RUNNERS = 4
NOW = ams(2026, 3, 1, 12)  # 35 days ahead: Mondays 03-02 .. 03-30 (five, across the DST change)


def test_concurrent_runners_make_each_visit_once(org):
    contracts = [make_contract(org, status="active") for _ in range(4)]
    for contract in contracts:
        make_rule(contract, metric="response", target_minutes=60, priorities=["planned"])
    plans = [
        rules.create_visit_plan(
            contract=contracts[n % 4],
            actor=None,
            data={
                "summary": f"Inspection {n}",
                "recurrence": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9",
                "generate_days_in_advance": 35,
            },
            now=NOW - dt.timedelta(days=1),
        )
        for n in range(PLANS)
    ]

    running, most_at_once, lock = [0], [0], threading.Lock()

    def runner(i):
        with lock:
            running[0] += 1
            most_at_once[0] = max(most_at_once[0], running[0])
        try:
            return generate_visits(now=NOW, batch_size=5)
        finally:
            with lock:
                running[0] -= 1

    results = run_at_once(runner, RUNNERS)

    assert all(isinstance(r, int) for r in results), results
    if connection.vendor == "postgresql":
        # They really ran at once. Within one organization they take turns on its event order
        # before each plan's row (events.feed, "Lock order", ninth round: a plan's edit takes them
        # in that order, and the row first deadlocked with it), so one runner may make every job
        # and the others find each plan done when their turn comes: the totals below still hold.
        assert most_at_once[0] >= 2, most_at_once
    expected = {(plan.pk, ams(2026, 3, day, 9)) for plan in plans for day in (2, 9, 16, 23, 30)}
    made = Counter(WorkOrder.objects.values_list("visit_plan_id", "occurrence"))
    assert set(made) == expected and set(made.values()) == {1}
    assert sum(results) == len(expected) == PLANS * 5
    # One creation event per job, and one clock per job (the 'planned' response rule).
    created = Counter(Event.objects.filter(type="work_order.created").values_list("object_id", flat=True))
    assert len(created) == len(expected) and set(created.values()) == {1}
    assert SlaClock.objects.count() == len(expected)
    # A further run, even at once with others, has nothing left to do.
    assert run_at_once(lambda i: generate_visits(now=NOW), RUNNERS) == [0] * RUNNERS

"""Two `scan_breaches` at the same instant record each breach and each escalation exactly once
(DESIGN §6, §8, §10: the scheduled commands run on every node).

On PostgreSQL the two scans are real OS processes on the test database, held at a barrier (the
organization's event order, which a batch holds before it claims clocks: the test holds it until
both wait on it) so they start claiming clocks at the same time.
On SQLite (one process, in-memory test database) the two scans run one after the other, and the
second must find nothing left to do.

300 running clocks past due (150 jobs, a response and a resolution rule with three escalation
levels each), claimed in batches of 20: each clock gets one breach, each level one `sla.escalation`
event, the two summaries add up to the totals, and the response rule's monthly cap (less than
its 150 fixed penalties) is met exactly, not exceeded.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from breaches.models import Breach
from events.models import Event
from tests.breaches.factories import active_contract, make_job, make_rule, minutes, scan
from tests.processes import at_barrier
from workorders.models import SlaClock

JOBS = 150
BATCH = 20
NOW = minutes(JOBS + 120)  # every job's response (60) and resolution (90) target has passed
LEVELS = [
    {"at_percent": 25, "name": "notice"},
    {"at_percent": 75, "name": "warning"},
    {"at_percent": 100, "name": "due"},
]
SUMMARY = re.compile(
    r"^Summary: (\d+) clocks examined \((\d+) past due, (\d+) past an escalation level\), (\d+) new breaches, "
    r"(\d+) escalations, (\d+) breaches refreshed, (\d+) finalised, in \d+\.\d\ds\.$",
    re.MULTILINE,
)


def summary(output: str) -> dict[str, int]:
    match = SUMMARY.search(output)
    assert match, output
    keys = ["examined", "past_due", "escalating", "new", "escalations", "refreshed", "finalised"]
    return dict(zip(keys, map(int, match.groups()), strict=True))


def two_scans_at_once(org) -> list[str]:
    """Two scan processes held at a barrier (a batch waits for the organization's order), released together."""
    command = ["scan_breaches", "--now", NOW.isoformat(), "--batch-size", str(BATCH)]
    return at_barrier(None, command, organization=org.pk)


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_record_each_breach_and_each_escalation_once(org):
    contract = active_contract(org)
    response = make_rule(
        contract,
        metric="response",
        target_minutes=60,
        escalation=LEVELS,
        penalty={"fixed_amount": "10"},
        monthly_penalty_cap="1000",
    )
    resolution = make_rule(
        contract, metric="resolution", target_minutes=90, escalation=LEVELS, penalty={"fixed_amount": "7"}
    )
    for n in range(JOBS):
        make_job(contract, minutes(n), now=minutes(n))
    clocks = set(SlaClock.objects.filter(state="running").values_list("pk", flat=True))
    assert len(clocks) == 2 * JOBS
    assert not SlaClock.objects.filter(due_at__gte=NOW).exists()

    if connection.vendor == "postgresql":
        outputs = two_scans_at_once(org)
    else:
        outputs = [scan(NOW, batch_size=BATCH), scan(NOW, batch_size=BATCH)]
        assert summary(outputs[1])["new"] == summary(outputs[1])["escalations"] == 0
    summaries = [summary(output) for output in outputs]

    # Each clock has exactly one breach, announced once.
    assert sorted(Breach.objects.values_list("clock_id", flat=True)) == sorted(clocks)
    detected = Counter(Event.objects.filter(type="breach.detected").values_list("object_id", flat=True))
    assert sorted(detected) == sorted(Breach.objects.values_list("pk", flat=True))
    assert set(detected.values()) == {1}
    assert sum(s["new"] for s in summaries) == 2 * JOBS
    assert sum(s["past_due"] for s in summaries) == 2 * JOBS

    # Each clock's three levels, once each.
    escalated = Counter(
        (event.object_id, event.payload["level"]) for event in Event.objects.filter(type="sla.escalation")
    )
    assert set(escalated) == {(clock, level["name"]) for clock in clocks for level in LEVELS}
    assert set(escalated.values()) == {1}
    assert sum(s["escalations"] for s in summaries) == len(LEVELS) * 2 * JOBS
    assert set(SlaClock.objects.values_list("escalations_sent", flat=True)) == {len(LEVELS)}

    # The monthly cap of the response rule (100 breaches' worth) is met exactly, never exceeded.
    def total(rule):
        return Breach.objects.filter(sla_rule=rule).aggregate(total=Sum("penalty_amount"))["total"]

    assert total(response) == Decimal("1000")
    assert total(resolution) == Decimal("7") * JOBS
    assert not Breach.objects.filter(penalty_amount__lt=0).exists()

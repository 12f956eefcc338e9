"""The backtest's batch replay (`reports.backtest.run_backtest`: numpy over the clock's batch API)
against a slow reference: one job at a time through the scalar `replay`, penalties capped breach
by breach in decision order with `breaches.penalties` on Decimals, exactly as a reader of the
issue would compute them. Random data sets (holds, reopenings, cancellations, two currencies),
several proposals, every figure and the listed changes must agree."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone

from breaches.penalties import _cap, breach_penalty
from reports.api import ProposedSerializer
from reports.backtest import CHANGED_LISTED, _Months, current_terms, proposed_terms, replay, run_backtest
from reports.compliance import achieved
from slas.models import SlaRule
from tenancy.currencies import quantize
from tests.reports.factories import build_dataset
from workorders.models import Hold, WorkOrder

pytestmark = pytest.mark.django_db
WINDOW = (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
OFFICE = {
    "time_zone": "Europe/Amsterdam",
    "hours": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(1, 6)],
    "holidays": ["2026-04-03"],
}
PROPOSALS = [
    {"target_minutes": 45},
    {"target_minutes": 600, "pause_on_hold": False},
    {"calendar": OFFICE, "priorities": ["critical", "medium"]},
    {"penalty": {"fixed_amount": "70", "per_unit_amount": "15", "unit_minutes": 20}, "monthly_penalty_cap": "260"},
    {"calendar_id": None, "pause_on_hold": True, "target_minutes": 5},
]


def _epoch(value):
    return None if value is None else int(value.timestamp())


def reference(rules, proposed, now):
    contract = rules[0].contract
    zone = contract.start_of_day(dt.date(2000, 1, 1)).tzinfo
    pairs = [(current_terms(rule), proposed_terms(current_terms(rule), proposed)) for rule in rules]
    jobs = WorkOrder.objects.filter(
        contract=contract, sla_tracked=True, reported_at__gte=WINDOW[0], reported_at__lt=WINDOW[1]
    ).order_by("pk")
    holds = defaultdict(list)
    for hold in Hold.objects.filter(work_order__in=jobs).order_by("work_order_id", "start"):
        holds[hold.work_order_id].append((hold.kind, _epoch(hold.start), _epoch(hold.end)))
    counts = {"current": Counter(), "proposed": Counter()}
    breaches = {"current": [], "proposed": []}
    transitions, changed, seen = Counter(), [], 0
    for job in jobs:
        row = (
            job.pk, job.priority, job.status, _epoch(job.reported_at), _epoch(job.responded_at),
            _epoch(job.on_site_at), _epoch(job.resolved_at), _epoch(job.status_changed_at),
        )  # fmt: skip
        covered = False
        for current, new in pairs:
            before = replay(current, row, holds.get(job.pk, ()), _epoch(now))
            after = replay(new, row, holds.get(job.pk, ()), _epoch(now))
            if before[0] == after[0] == "not_covered":
                continue
            covered = True
            for side, terms, result in (("current", current, before), ("proposed", new, after)):
                counts[side][result[0]] += 1
                if result[0] == "breached":
                    breaches[side].append((result[2], terms.rule_id, terms, result[3]))
            if before[0] != after[0]:
                transitions[f"{before[0]}_to_{after[0]}"] += 1
                changed.append((job.pk, current.rule_id, before[0], after[0]))
        seen += covered
    months = _Months(zone, WINDOW[0], max(now, WINDOW[1]))

    def summary(side):
        total, spent = Decimal(0), defaultdict(Decimal)
        for decided, rule_id, terms, overage in sorted(breaches[side], key=lambda b: (b[0], b[1])):
            amount = breach_penalty(terms.penalty, overage, contract.currency)
            if terms.monthly_cap is not None:
                bucket = (rule_id, months.of(decided))
                amount = min(amount, max(Decimal(0), _cap(terms.monthly_cap, contract.currency) - spent[bucket]))
                spent[bucket] += amount
            total += amount
        c = counts[side]
        return {
            "decided": c["met"] + c["breached"],
            "met": c["met"],
            "breached": c["breached"],
            "open": c["open"],
            "cancelled": c["cancelled"],
            "achieved_percent": achieved(c["met"], c["met"] + c["breached"]),
            "penalties": {contract.currency: str(quantize(total, contract.currency))} if breaches[side] else {},
        }

    return {
        "jobs": seen,
        "current": summary("current"),
        "proposed": summary("proposed"),
        "changed": changed[:CHANGED_LISTED],
        "changed_counts": dict(sorted(transitions.items())),
    }


@pytest.mark.parametrize("seed", [3, 17])
def test_the_batch_replay_agrees_with_one_job_at_a_time(org, seed):
    data = build_dataset(org, seed=seed, jobs=70)
    now = timezone.now()
    for contract in data.contracts:
        rules = list(SlaRule.objects.select_related("contract", "calendar").filter(contract=contract).order_by("pk"))
        for proposal in PROPOSALS:
            form = ProposedSerializer(data=proposal)
            assert form.is_valid(), form.errors
            got = run_backtest(
                rules=rules, window_from=WINDOW[0], window_to=WINDOW[1], proposed=form.validated_data, now=now
            )
            expected = reference(rules, form.validated_data, now)
            assert got["jobs"] == expected["jobs"] > 0
            assert got["current"] == expected["current"], proposal
            assert got["proposed"] == expected["proposed"], proposal
            assert got["changed_counts"] == expected["changed_counts"], proposal
            listed = [(i["work_order"]["id"], i["sla_rule"]["id"], i["current"], i["proposed"]) for i in got["changed"]]
            assert listed == expected["changed"], proposal

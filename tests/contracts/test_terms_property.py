"""Property: for random amendment histories, the terms read `as_of` any date equal replaying the
history up to that date (DESIGN §10: every past question keeps its past answer).

The replay is the definition, written independently of `contracts.terms`: start from the terms
at approval; for each approved amendment, in the order of approval, whose effective date is on or
before the date asked about, set the terms it names (line items as a whole list). Amendments are
dated anywhere, before or after one another (backdated ones by an admin), and some are rejected
and never apply. Before the contract's start it reads as the terms it starts with.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing import periods
from config.api.filters import Predicate
from contracts import amendments, terms
from contracts.models import Contract
from tests.contracts.factories import make_contract

NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)
START, EXPIRY = dt.date(2026, 1, 1), dt.date(2029, 12, 31)
FIRST_DAY, LAST_DAY = dt.date(2026, 1, 1), dt.date(2028, 12, 31)

line_item = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["service", "part"]),
        "description": st.sampled_from(["Labour", "Pump seal", "Call-out"]),
        "sku": st.sampled_from(["", "PS-1"]),
        "quantity": st.sampled_from(["1.000", "2.500", "10.000"]),
        "unit": st.just(""),
        "unit_price": st.sampled_from([None, "12.5000", "80.0000"]),
        "covered": st.booleans(),
        "notes": st.just(""),
    }
)
change_values = {
    "notice_period_days": st.integers(0, 120),
    "auto_renew": st.booleans(),
    "renewal_term_months": st.integers(1, 36),
    "hours_budget": st.sampled_from(["0.00", "40.00", "125.50", "1000.00"]),
    "contract_value": st.sampled_from([None, "1000.0000", "25000.5000"]),
    "expiry_date": st.dates(dt.date(2029, 1, 1), EXPIRY).map(dt.date.isoformat),
    "contract_type": st.sampled_from(["service_contract", "maintenance_agreement", "warranty"]),
    "requires_counterparty_signature": st.booleans(),
    "line_items": st.lists(line_item, max_size=2),
    # The billing plan (billing reads it as in force on each period's first day).
    "billing_period": st.sampled_from(["monthly", "quarterly", "yearly", "none"]),
    "period_charge": st.sampled_from([None, "100.0000", "250.5000"]),
    "overage_rate": st.sampled_from([None, "80.0000", "95.5000"]),
    "hours_per_period": st.sampled_from([None, "10.00", "12.50"]),
    "invoice_timing": st.sampled_from(["in_advance", "in_arrears"]),
    "rounding_minutes": st.sampled_from([0, 15, 30]),
}
PLAN = ("billing_period", "period_charge", "overage_rate", "hours_per_period", "invoice_timing", "rounding_minutes")
MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
changes = st.dictionaries(st.sampled_from(sorted(change_values)), st.none(), min_size=1, max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({key: change_values[key] for key in keys})
)
history = st.lists(
    st.tuples(st.dates(FIRST_DAY, LAST_DAY), changes, st.sampled_from(["approve", "approve", "approve", "reject"])),
    min_size=1,
    max_size=6,
)
order = st.randoms(use_true_random=False)
probes = st.lists(st.dates(dt.date(2025, 6, 1), EXPIRY), max_size=6)


def replay(base: dict, applied: list[tuple[dt.date, dict]], day: dt.date) -> dict:
    day = max(day, START)  # before its start a contract reads as the terms it starts with
    result = dict(base)
    for effective, change in applied:
        if effective <= day:
            result.update(change)
    expiry = result["expiry_date"]
    result["notice_date"] = (
        dt.date.fromisoformat(expiry) - dt.timedelta(days=result["notice_period_days"])
    ).isoformat()
    return result


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=history, shuffle=order, extra_probes=probes)
# Found by hypothesis: yearly periods, the contract to end within the period that begins on
# 2028-05-01, extended by an amendment that takes effect inside that period.
@example(
    history=[
        (dt.date(2027, 4, 27), {"expiry_date": "2029-04-11", "billing_period": "yearly"}, "approve"),
        (dt.date(2028, 6, 3), {"expiry_date": "2029-11-07"}, "approve"),
    ],
    shuffle=random.Random(0),
    extra_probes=[],
)
def test_as_of_equals_replaying_the_history(org, make_member, history, shuffle, extra_probes):
    author, first, second = (make_member("admin", org).user for _ in range(3))
    contract = make_contract(org, status="active", start_date=START, expiry_date=EXPIRY, notice_period_days=30,
                             hours_budget="100.00", renewal_term_months=12, billing_period="monthly",
                             period_charge="100.0000", hours_per_period="10.00")  # fmt: skip
    contract.refresh_from_db()
    terms.start_versions(contract, origin="creation", now=NOW)
    base = terms.read_terms(contract)

    drafts = [
        amendments.create_amendment(
            contract=contract,
            actor=author,
            data={"effective_date": day, "changes": change, "reason": "property"},
            allow_past=True,
            now=NOW,
        )
        for day, change, _ in history
    ]
    for amendment in drafts:
        amendments.submit_amendment(amendment=amendment, actor=author)
    # Approve (or reject) in a random order: the order of approval is the order of the history.
    decisions = list(zip(drafts, (decision for _, _, decision in history), strict=True))
    shuffle.shuffle(decisions)
    applied = []
    for amendment, decision in decisions:
        amendments.approve_amendment(amendment=amendment, actor=first, allow_past=True, now=NOW)
        if decision == "reject":
            amendments.reject_amendment(amendment=amendment, actor=second, reason="no")
            continue
        amendments.approve_amendment(amendment=amendment, actor=second, allow_past=True, now=NOW)
        applied.append((amendment.effective_date, amendment.changes))

    contract = Contract.objects.get(pk=contract.pk)
    timeline = terms.Timeline(contract)
    days = {d for d, _, _ in history} | {d - dt.timedelta(days=1) for d, _, _ in history} | set(extra_probes)
    days |= {START, NOW.date(), EXPIRY}
    for day in sorted(days):
        expected = replay(base, applied, day)
        version = terms.version_on(contract, day)
        assert version.terms == expected, day
        view = terms.contract_as_of(contract, day)
        for name in ("notice_period_days", "auto_renew", "renewal_term_months", "contract_type", "notice_date"):
            assert terms.read_terms(view)[name] == expected[name], (day, name)
        assert view.terms_line_items == expected["line_items"], day
        plan = timeline.on(day)  # what billing, charging and renewal read
        for name in (*PLAN, "expiry_date", "auto_renew", "line_items"):
            assert terms.read_terms(plan)[name] == terms.read_terms(view)[name], (day, name)
        # ... and the list filters' SQL (`?as_of=&expiry_date=...`) finds it by the same terms.
        for name in ("expiry_date", "notice_date", "auto_renew", "contract_type"):
            value = terms._python(name, expected[name])
            found = Contract.objects.filter(terms.term_predicate_q(name, Predicate("in", (value,)), day, False))
            assert found.filter(pk=contract.pk).exists(), (day, name, value)

    # Billing periods: each follows the plan replayed to its first day (its length from that plan's
    # billing_period, its charge and rates from that plan); they tile the term except where the plan
    # has no periods (`none`).
    def no_periods(day):
        return replay(base, applied, day)["billing_period"] == "none"

    found = periods.spans(contract)
    assert not found or found[0].start_date == START or no_periods(START)
    for span, following in itertools.zip_longest(found, found[1:]):
        expected = replay(base, applied, span.start_date)
        plan = periods.plan_of(timeline, span)
        for name in PLAN:
            assert terms.read_terms(plan)[name] == expected[name], (span, name)
        assert expected["billing_period"] in MONTHS
        # The term's end is the one in force on the period's last day (billing.periods.spans): an
        # amendment within the period that extends the contract lets the period run on.
        last_day = replay(base, applied, span.end_date - dt.timedelta(1))
        assert span.start_date < span.end_date <= dt.date.fromisoformat(last_day["expiry_date"]) + dt.timedelta(1)
        assert span.end_date <= span.start_date + dt.timedelta(days=31 * MONTHS[expected["billing_period"]])
        charge = periods.period_charge(contract, span, timeline)
        assert charge == terms._python("period_charge", expected["period_charge"]), span
        if following is not None and following.start_date != span.end_date:
            assert no_periods(span.end_date) and no_periods(following.start_date - dt.timedelta(days=1)), span
    if found:
        after = replay(base, applied, found[-1].end_date)
        ended = found[-1].end_date > dt.date.fromisoformat(replay(base, applied, found[-1].last_day)["expiry_date"])
        assert ended or after["billing_period"] == "none", found[-1]
    # The row holds the terms in force today; versions tile time without gaps or overlaps.
    assert terms.read_terms(contract) == replay(base, applied, contract.local_today(NOW))
    spans = [(v.effective_from, v.effective_to) for v in contract.term_versions.order_by("effective_from")]
    assert spans[-1][1] is None
    assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(spans))

"""Property: for random billing plans and random postings, run through time as cron would, the
periods (`GET /contracts/{id}/periods`) and the billing lines equal an independent, slow
reference computed from the ledger's entries.

The reference shares no code with `billing` or the ledger's replay: period boundaries are
computed here, the lots are simulated with plain lists (every posting scans all the
lots), charged hours are recomputed from the plan, and the expected system postings (rollover,
overage settlement, expiries, top-ups) are derived from that simulation and checked against the
entries the services made. Runs on whichever database the suite runs on (SQLite and PostgreSQL).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import BillingLine
from contracts.models import Contract
from contracts.services import run_lifecycle
from ledger.models import LedgerEntry
from tests.contracts.factories import make_contract
from tests.ledger.helpers import job, post

pytestmark = pytest.mark.django_db

ZONE = zoneinfo.ZoneInfo("Europe/Amsterdam")
START = dt.date(2026, 1, 1)
CENT = Decimal("0.01")
FOREVER = dt.datetime.max.replace(tzinfo=dt.UTC)


def plus_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day (written here, not imported)."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def hours(low, high):
    return st.integers(low * 4, high * 4).map(lambda n: Decimal(n) / 4)


plans = st.fixed_dictionaries(
    {
        "billing_period": st.sampled_from(["monthly", "quarterly"]),
        "months": st.integers(3, 7),
        "invoice_timing": st.sampled_from(["in_advance", "in_arrears"]),
        "period_charge": st.none() | st.integers(0, 200000).map(lambda n: Decimal(n) / 100),
        "annual_increase_percent": st.none() | st.sampled_from([Decimal("2.5"), Decimal("10")]),
        "hours_per_period": st.none() | hours(1, 15),
        "rollover_percent": st.integers(0, 100),
        "overage_rate": st.none() | st.integers(0, 20000).map(lambda n: Decimal(n) / 100),
        "rounding_minutes": st.sampled_from([0, 0, 15, 30]),
        "minimum_charge_minutes": st.sampled_from([0, 0, 30, 60]),
        "prepay": st.none() | st.tuples(hours(1, 8), st.none() | st.integers(1, 3), st.integers(0, 9999)),
        "top_up": st.none() | st.tuples(hours(1, 5), st.sampled_from(["to", "by"]), hours(1, 10), st.integers(0, 999)),
    }
)
# (minutes after the start, kind, hours): work mostly, some hand credits and negative adjustments.
postings = st.lists(
    st.tuples(
        st.integers(0, 200 * 24 * 60),
        st.sampled_from(["work"] * 6 + ["credit", "adjustment"]),
        st.integers(1, 40).map(lambda n: Decimal(n) / 4),
    ),
    max_size=25,
)


def plan_terms(plan) -> dict:
    terms = {
        name: plan[name]
        for name in (
            "billing_period", "invoice_timing", "period_charge", "hours_per_period", "overage_rate",
            "rounding_minutes", "minimum_charge_minutes",
        )
    }  # fmt: skip
    terms["rollover_percent"] = plan["rollover_percent"] if plan["hours_per_period"] else 0
    if plan["period_charge"] is not None:
        terms["annual_increase_percent"] = plan["annual_increase_percent"]
    if plan["prepay"]:
        prepay_hours, months, price = plan["prepay"]
        terms |= {"prepay_hours_per_period": prepay_hours, "prepay_expiry_months": months,
                  "prepay_price_per_hour": Decimal(price) / 100}  # fmt: skip
    if plan["top_up"]:
        threshold, mode, size, price = plan["top_up"]
        size = size + threshold if mode == "to" else size
        terms["auto_top_up"] = {"threshold_hours": str(threshold), "mode": mode, "hours": str(size),
                                "price_per_hour": str(Decimal(price) / 100)}  # fmt: skip
    return terms


# --- the reference ------------------------------------------------------------------------------


def boundaries(contract: Contract) -> list[tuple[dt.datetime, dt.datetime, dt.date, dt.date]]:
    step = {"monthly": 1, "quarterly": 3}[contract.billing_period]
    term_end = contract.expiry_date + dt.timedelta(days=1)
    out, k = [], 0
    while (start := plus_months(contract.start_date, k * step)) < term_end:
        end = min(plus_months(contract.start_date, (k + 1) * step), term_end)
        out.append((dt.datetime.combine(start, dt.time(), ZONE), dt.datetime.combine(end, dt.time(), ZONE), start, end))
        k += 1
    return out


def expected_charge(contract: Contract, hours_worked: Decimal) -> Decimal:
    minutes = max(hours_worked * 60, Decimal(contract.minimum_charge_minutes))
    if contract.rounding_minutes:
        minutes = math.ceil(minutes / contract.rounding_minutes) * contract.rounding_minutes
    return (Decimal(minutes) / 60).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class RefLot:
    pk: int
    allocated: Decimal
    expires_at: dt.datetime | None
    used: Decimal = Decimal(0)
    expired_by_entry: Decimal | None = None

    def left(self) -> Decimal:
        return self.allocated - self.used


@dataclass
class Reference:
    lots: dict[int, RefLot] = field(default_factory=dict)
    debt: Decimal = Decimal(0)
    debt_before: dict[int, Decimal] = field(default_factory=dict)
    left_at_expiry: dict[int, Decimal] = field(default_factory=dict)


def simulate(contract: Contract, entries: list[LedgerEntry], periods) -> Reference:
    """Lots consumed first-expiring-first, by scanning every lot at every posting."""
    ref = Reference()
    pending_ends = list(enumerate(p[1] for p in periods))
    for entry in sorted(entries, key=lambda e: (e.occurred_at, e.pk)):
        while pending_ends and entry.occurred_at >= pending_ends[0][1]:
            ref.debt_before[pending_ends.pop(0)[0]] = ref.debt
        if entry.entry_type == "penalty":
            continue
        effect = -entry.charged_hours if entry.entry_type == "work" else entry.charged_hours
        if entry.reason_code == "lot_expired":
            lot = ref.lots[entry.lot_id]
            ref.left_at_expiry[lot.pk] = lot.left()
            lot.expired_by_entry = -effect
            continue
        if effect > 0:
            paid = min(ref.debt, effect)
            ref.debt -= paid
            ref.lots[entry.pk] = RefLot(entry.pk, effect, entry.expires_at, used=paid)
        elif effect < 0:
            need = -effect
            while need > 0:
                usable = [
                    lot for lot in ref.lots.values()
                    if lot.left() > 0 and (lot.expires_at is None or entry.occurred_at < lot.expires_at)
                ]  # fmt: skip
                if not usable:
                    break
                lot = min(usable, key=lambda x: (x.expires_at or FOREVER, x.pk))
                take = min(need, lot.left())
                lot.used += take
                need -= take
            ref.debt += need
    for index, _ in pending_ends:
        ref.debt_before[index] = ref.debt
    return ref


def expected(contract: Contract, now: dt.datetime):
    """(periods as the API shows them, billing lines as tuples), from the entries alone."""
    contract.refresh_from_db()
    periods = [p for p in boundaries(contract) if p[0] <= now]
    entries = list(LedgerEntry.objects.filter(contract=contract, occurred_at__lte=now))
    by_key = {e.system_key: e for e in entries if e.system_key}
    for entry in entries:
        if entry.entry_type == "work":
            assert entry.charged_hours == expected_charge(contract, entry.hours), entry.pk
    ref = simulate(contract, entries, periods)
    for lot_id, left in ref.left_at_expiry.items():
        assert ref.lots[lot_id].expired_by_entry == max(left, Decimal(0)), lot_id  # expiries booked right

    def index_of(instant, closed_end=False):
        for n, (start, end, _, _) in enumerate(periods):
            if (start < instant <= end) if closed_end else (start <= instant < end):
                return n
        return 0 if instant <= periods[0][0] else len(periods) - 1

    top_up = contract.auto_top_up
    # Top-ups: one after each work or hand adjustment that crossed the threshold (balance in posting order).
    running = Decimal(0)
    crossings = {}
    for entry in sorted(entries, key=lambda e: e.pk):
        before = running
        running += -entry.charged_hours if entry.entry_type == "work" else entry.charged_hours
        if top_up and entry.entry_type in ("work", "adjustment") and not entry.reason_code:
            threshold = Decimal(top_up["threshold_hours"])
            if before >= threshold > running:
                size = Decimal(top_up["hours"]) - (running if top_up["mode"] == "to" else 0)
                crossings[entry.pk] = size
    top_ups = [e for e in entries if e.reason_code == "top_up"]
    assert {int(e.system_key.rsplit(":", 1)[1]): e.hours for e in top_ups} == crossings

    out, lines = [], []
    closed_rows = dict(contract.billing_periods.values_list("index", "status"))
    row_ids = dict(contract.billing_periods.values_list("index", "pk"))  # what billing lines' periods name
    for n, (start, end, start_date, end_date) in enumerate(periods):
        closed = closed_rows.get(n) == "closed"
        last_day = end_date - dt.timedelta(days=1)
        in_period = [e for e in entries if index_of(e.occurred_at) == n]
        included = contract.hours_per_period or Decimal(0)
        rolled_in = next(
            (e.hours for e in entries if e.reason_code == "rollover" and e.occurred_at == start), Decimal(0)
        )
        rolled_out = Decimal(0)
        if closed and included and contract.rollover_percent and n + 1 < len(boundaries(contract)):
            included_lot = by_key[
                next(k for k in by_key if k.startswith("billing:included:") and by_key[k].occurred_at == start)
            ]
            unused = ref.left_at_expiry[included_lot.pk]
            rolled_out = (max(unused, 0) * contract.rollover_percent / 100).quantize(CENT, rounding=ROUND_DOWN)
        if rolled_out:
            assert any(e.reason_code == "rollover" and e.occurred_at == end and e.hours == rolled_out for e in entries)
        expired = sum(
            (max(ref.left_at_expiry.get(lot.pk, lot.left()), 0) for lot in ref.lots.values()
             if lot.expires_at is not None and start < lot.expires_at <= end and lot.expires_at <= now),
            Decimal(0),
        ) - rolled_out  # fmt: skip
        overage = max(ref.debt_before[n], Decimal(0)) if (end <= now) else max(ref.debt, Decimal(0))
        if closed and contract.overage_rate is not None and overage > 0:
            assert any(
                e.reason_code == "overage_billed" and e.occurred_at == end and e.hours == overage for e in entries
            )
        prepaid = contract.prepay_hours_per_period or Decimal(0)
        topped = sum((e.hours for e in top_ups if e in in_period), Decimal(0))
        top_up_price = Decimal(top_up["price_per_hour"]) if top_up else Decimal(0)
        top_up_money = sum((money(e.hours * top_up_price) for e in top_ups if e in in_period), Decimal(0))
        charge = None
        if contract.period_charge is not None:
            charge = money(contract.period_charge)
            years = sum(1 for y in range(1, 10) if plus_months(contract.start_date, 12 * y) <= start_date)
            for _ in range(years):
                charge = money(charge * (1 + (contract.annual_increase_percent or 0) / 100))
        figures = {
            "id": row_ids.get(n), "index": n, "number": n + 1, "start_date": start_date.isoformat(),
            "end_date": last_day.isoformat(),
            "status": "closed" if closed else "open",
            "included_hours": included, "rolled_over_in": rolled_in, "prepaid_hours_added": prepaid,
            "topped_up_hours": topped,
            "charged_hours": sum((e.charged_hours for e in in_period if e.entry_type == "work"), Decimal(0)),
            "overage_hours": overage, "expired_hours": expired, "rolled_over_out": rolled_out,
            "currency": "EUR", "period_charge": charge or Decimal(0),
            "overage_charge": money(overage * (contract.overage_rate or 0)),
            "prepay_purchases": money(prepaid * (contract.prepay_price_per_hour or 0)),
            "top_up_purchases": top_up_money, "service_credits": Decimal(0),
        }  # fmt: skip
        figures["total"] = sum(figures[k] for k in ("period_charge", "overage_charge", "prepay_purchases",
                                                    "top_up_purchases", "service_credits"))  # fmt: skip
        out.append({k: (str(money(v)) if isinstance(v, Decimal) else v) for k, v in figures.items()})
        if charge is not None and (contract.invoice_timing == "in_advance" or closed):
            date = start_date if contract.invoice_timing == "in_advance" else last_day
            lines.append(("period_charge", n, Decimal(1), charge, date))
        if prepaid:
            lines.append(("prepay_purchase", n, prepaid, money(prepaid * contract.prepay_price_per_hour), start_date))
        if closed and contract.overage_rate is not None and overage > 0:
            lines.append(("overage", n, overage, money(overage * contract.overage_rate), last_day))
        for e in top_ups:
            if e in in_period:
                lines.append(
                    ("top_up", n, e.hours, money(e.hours * top_up_price), e.occurred_at.astimezone(ZONE).date())
                )
    return out, sorted(lines, key=repr)


TRACES = {"overage": {"overage_billed"}, "prepay_purchase": {"prepay"}, "top_up": {"top_up"}}


# --- the property -------------------------------------------------------------------------------


def play(org, plan, moves) -> tuple[Contract, dt.datetime]:
    """The contract lives through its term: at every posting, cron has run just before."""
    expiry = plus_months(START, plan["months"]) - dt.timedelta(days=1)
    contract = make_contract(
        org, status=Contract.Status.ACTIVE, start_date=START, expiry_date=expiry, allow_overrun=True, **plan_terms(plan)
    )
    begin = dt.datetime.combine(START, dt.time(), ZONE)
    run_lifecycle(now=begin)
    on_site = job(contract, reported_at=begin)
    term_end = dt.datetime.combine(expiry + dt.timedelta(days=1), dt.time(), ZONE)
    for minutes, kind, amount in sorted(moves):
        at = begin + dt.timedelta(minutes=minutes)
        if at >= term_end:
            continue
        run_lifecycle(now=at)
        contract.refresh_from_db()
        if contract.books_closed_at and at < contract.books_closed_at:
            continue
        if kind == "work":
            post(contract, "work", amount, at=at, work_order=on_site)
        elif kind == "credit":
            post(contract, "credit", amount, at=at)
        else:
            post(contract, "adjustment", -amount, at=at)
    final = term_end + dt.timedelta(hours=1)
    run_lifecycle(now=final)
    return contract, final


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(plan=plans, moves=postings)
def test_periods_and_lines_equal_the_reference(api, org, plan, moves):
    with transaction.atomic():
        contract, now = play(org, plan, moves)
        want_periods, want_lines = expected(contract, now)
        response = api("viewer").get(
            f"/api/v1/contracts/{contract.pk}/periods?as_of={now.isoformat().replace('+', '%2B')}"
        )
        assert response.status_code == 200, response.content
        assert response.json() == want_periods
        stored = {row.index: row.figures for row in contract.billing_periods.filter(status="closed")}
        assert stored == {p["index"]: p for p in want_periods if p["status"] == "closed"}  # as closed, still true
        got_lines = sorted(
            (
                (line.kind, line.period.index if line.period else None, line.quantity, line.amount, line.date)
                for line in BillingLine.objects.filter(contract=contract).select_related("period")
            ),
            key=repr,
        )
        assert [(k, i, q, money(a), d) for k, i, q, a, d in got_lines] == want_lines
        # Every charge but the plan's fixed one traces to the entries behind it.
        for line in BillingLine.objects.filter(contract=contract).exclude(kind="period_charge"):
            behind = {e.reason_code or e.entry_type for e in line.entries.all()}
            assert behind >= TRACES[line.kind], (line.kind, behind)
            if line.kind in ("overage", "top_up"):
                assert behind & {"work", "adjustment"}, (line.kind, behind)  # and to what used the hours
        transaction.set_rollback(True)

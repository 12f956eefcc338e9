"""The periods of a contract's billing plan and their figures, computed from the ledger.

Periods start on the contract's start date and follow each other every 1, 3 or 12 months
(`add_months` from the start date each time, so the 31st stays the 31st where the month has
one); the term's end cuts the last one short. A period is [start, end) in the contract's time
zone: its local start date at 00:00 up to the next period's.

Which period an entry belongs to:

- an entry occurring in [start, end) belongs to that period: work, the included and prepaid lots
  (posted at the start), a rollover lot (posted at the end of the period before, so at this
  one's start), top-ups, penalties and their reversals;
- a lot's expiry belongs to the period in which the lot expired, (start, end]: the included
  hours and the rollover lot of a period expire at its end;
- a rollover lot is also the *rolled_over_out* of the period that ended when it was posted.

Figures (hours as the ledger counts them, i.e. charged hours):

- `charged_hours`: the work of the period;
- `overage_hours`: consumption no lot covered, at the period's end (the ledger's overrun just
  before the end; for the open period, now). A plan with an `overage_rate` bills it at the
  close and settles it with an `overage_billed` credit, so the next period starts at zero;
  without a rate nothing is billed and the debt carries into the next period's figure;
- `expired_hours`: unused hours of lots that expired in the period, less what rolled over.

Money in the contract's currency, each amount rounded to its minor unit (half up):
`period_charge` (with `annual_increase_percent` compounded at each anniversary of the start (a
renewal's: of its original's start), at the percentage in force on that anniversary, each year's
charge rounded), `overage_charge` =
overage x rate, `prepay_purchases` = prepaid hours x price, `top_up_purchases` = each top-up's
hours x price, `service_credits` = minus the net penalties dated in the period, and their `total`.

One pass over the ledger, in time order, with one `LotBook` (the ledger's own lot replay) whose
overrun is read at each period boundary: O(entries log lots + periods).
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from config.errors import BadRequest
from contracts.models import Contract
from contracts.services import add_months
from contracts.terms import Timeline, terminated_at
from ledger.models import LedgerEntry
from ledger.services import ZERO, LotBook, replay_rows
from tenancy.currencies import quantize, storable

MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
R = LedgerEntry.Reason
T = LedgerEntry.Type
HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class Span:
    index: int
    start_date: dt.date
    end_date: dt.date  # exclusive: the next period's start date (or the day after the term)
    start: dt.datetime
    end: dt.datetime

    @property
    def last_day(self) -> dt.date:
        return self.end_date - dt.timedelta(days=1)


def spans(contract: Contract, *, until: dt.datetime | None = None, timeline: Timeline | None = None) -> list[Span]:
    """The plan's periods that have begun by `until` (all of the term if None).

    Each period follows the plan in force on its start date (`contracts.terms`): its length from
    that version's `billing_period` (counted from the start of the run of periods of that length,
    so an amendment from monthly to quarterly starts quarters with the first period that begins
    under it: dated inside a month, from the next month's start), and the
    term's end from the version in force on its last day (an amendment that ends the contract
    sooner cuts it; one that extends it lets the periods go on). A plan amended to `none` has no
    periods from then on, until a version with periods begins (the periods start again there)."""
    timeline = timeline or Timeline(contract)
    if contract.start_date is None:
        return []
    out: list[Span] = []
    start_date, anchor, anchor_index, step = contract.start_date, contract.start_date, 0, None
    while True:
        index = len(out)
        plan = timeline.on(start_date)
        months = MONTHS.get(plan.billing_period)
        if months is None:  # no periods under this plan: they begin again with a later periodic one
            later = [v for v in timeline.versions if v.effective_from > start_date]
            later = next((v for v in later if v.terms.get("billing_period") in MONTHS), None)
            if later is None:
                return out
            start_date, step = later.effective_from, None
            continue
        if months != step:
            anchor, anchor_index, step = start_date, index, months
        end_date = add_months(anchor, (index - anchor_index + 1) * step)
        while True:  # the term's end as the version in force on the period's last day has it
            last = timeline.on(end_date - dt.timedelta(days=1))
            if last.expiry_date is None:
                break
            term_end = last.expiry_date + dt.timedelta(days=1)
            if term_end >= end_date:
                break
            end_date = term_end
            if end_date <= start_date:
                return out
        if until is None and timeline.on(end_date - dt.timedelta(days=1)).expiry_date is None:
            raise ValueError("An open-ended contract has no last period: give `until`.")
        start = contract.start_of_day(start_date)
        if until is not None and start > until:
            return out
        out.append(Span(index, start_date, end_date, start, contract.start_of_day(end_date)))
        start_date = end_date


def ended_at(contract: Contract) -> dt.datetime | None:
    """When the contract stopped running before its term's end (terminated), else None (no query).
    Only the periods begun before it are billed (`services.bill_contract`) and shown (`compute`)."""
    return terminated_at(contract)


def outside_periods(contract: Contract, instant: dt.datetime, timeline: Timeline | None = None) -> str | None:
    """Where `instant` falls when none of the contract's billing periods holds it: "before the
    first", "between" or "after the last" billing period (the term's last, cut by the version in
    force on its last day, or the last begun before a termination). None when a period holds it,
    or when the plan has periods in no version of the terms (nothing of it is billed by period)."""
    timeline = timeline or Timeline(contract)
    plans = [version.terms.get("billing_period") for version in timeline.versions] or [contract.billing_period]
    if not any(plan in MONTHS for plan in plans):
        return None
    begun = spans(contract, until=instant, timeline=timeline)
    if (ended := ended_at(contract)) is not None:
        begun = [s for s in begun if s.start < ended]
    if not begun:
        return "before the first billing period"
    if instant < begun[-1].end:
        return None
    day = contract.local_today(instant)
    later = any(v.effective_from > day and v.terms.get("billing_period") in MONTHS for v in timeline.versions)
    # A terminated contract's periods never begin again; an expiry ends the term's last period.
    return "between billing periods" if later and ended is None else "after the last billing period"


def next_span(contract: Contract, span: Span, timeline: Timeline | None = None) -> Span | None:
    """The period after `span` within the term, if any."""
    following = spans(contract, until=span.end, timeline=timeline)
    return following[span.index + 1] if len(following) > span.index + 1 else None


def plan_of(timeline: Timeline, span: Span) -> Contract:
    """The billing plan of a period: the terms in force on its first day."""
    return timeline.on(span.start_date)


def period_charge(
    contract: Contract, span: Span, timeline: Timeline | None = None, *, until: dt.date | None = None
) -> Decimal | None:
    """The charge of the plan in force on the period's start, raised at each anniversary up to the
    period's start (or `until`) since that charge was set (an amended charge is the new base from
    its effective date; the increases before it are in the amount agreed). Each anniversary raises
    it by the `annual_increase_percent` in force on that anniversary: an amended percentage applies
    from the next anniversary after it takes effect and re-prices none before (an outside test:
    10% from December raised December at once and compounded twice in January). Anniversaries are
    the agreement's (`Timeline.agreement_start`): a renewal's fall where its original's did."""
    timeline = timeline or Timeline(contract)
    plan = plan_of(timeline, span)
    if plan.period_charge is None:
        return None
    charge = quantize(plan.period_charge, contract.currency)
    since = timeline.since(span.start_date, "period_charge")
    until = until or span.start_date
    anchor = timeline.agreement_start or contract.start_date
    years = 1
    while (anniversary := add_months(anchor, 12 * years)) <= until:
        percent = timeline.on(anniversary).annual_increase_percent if anniversary > since else None
        if percent:
            charge = storable(charge * (1 + percent / 100), contract.currency)
        years += 1
    return charge


def renewal_terms(*, original: Contract, last_day: dt.date, start_date: dt.date) -> dict:
    """What a renewal charges a period (`contracts.services.register_renewal_terms`): the charge of
    the original's period in force on its last day, raised by the anniversaries up to and including
    the renewal's first day, so it continues at the price it ended at with the increases earned
    (an outside test: a renewal restarted at the year-1 base) and due on its first day (another: a
    12-month term renews on its anniversary, which neither the original, ended, nor the renewal,
    counting from its own start, applied, so it never rose). From there the renewal raises it at
    the agreement's later anniversaries. Nothing when no period is in force on the last day."""
    timeline = Timeline(original)
    found = spans(original, until=original.start_of_day(last_day), timeline=timeline)
    if not found or found[-1].end_date <= last_day:
        return {}
    charge = period_charge(original, found[-1], timeline, until=start_date)
    return {} if charge is None else {"period_charge": charge}


def top_up_price(plan: Contract) -> Decimal:
    """The top-up price of a plan (the terms in force when the top-up was bought)."""
    return Decimal(str((plan.auto_top_up or {}).get("price_per_hour", "0")))


@dataclass
class Figures:
    span: Span
    status: str = "open"
    period_id: int | None = None  # its stored row (`BillingPeriod`), once run_lifecycle opened it
    included_hours: Decimal = ZERO
    rolled_over_in: Decimal = ZERO
    prepaid_hours_added: Decimal = ZERO
    topped_up_hours: Decimal = ZERO
    charged_hours: Decimal = ZERO
    overage_hours: Decimal = ZERO
    expired_hours: Decimal = ZERO
    rolled_over_out: Decimal = ZERO
    top_up_purchases: Decimal = ZERO
    penalties: Decimal = ZERO
    money: dict = field(default_factory=dict)

    def as_dict(self, currency: str) -> dict:
        hours = {
            name: str(getattr(self, name).quantize(HUNDREDTH))
            for name in (
                "included_hours", "rolled_over_in", "prepaid_hours_added", "topped_up_hours", "charged_hours",
                "overage_hours", "expired_hours", "rolled_over_out",
            )
        }  # fmt: skip
        return {
            "id": self.period_id,
            "index": self.span.index,
            "number": self.span.index + 1,  # as its name and its lines' descriptions count
            "start_date": self.span.start_date.isoformat(),
            "end_date": self.span.last_day.isoformat(),
            "status": self.status,
            **hours,
            "currency": currency,
            **{name: str(value) for name, value in self.money.items()},
        }


def _money(contract: Contract, figures: Figures, timeline: Timeline) -> dict[str, Decimal]:
    """The period's money at the rates of the plan in force on its first day, each amount as its
    billing line holds it (`storable`: an absurd plan reads as the largest amount, not more)."""
    currency = contract.currency
    plan = plan_of(timeline, figures.span)
    charge = period_charge(contract, figures.span, timeline) or Decimal(0)
    overage = storable(figures.overage_hours * (plan.overage_rate or 0), currency)
    prepay = storable(figures.prepaid_hours_added * (plan.prepay_price_per_hour or 0), currency)
    credits = storable(-figures.penalties, currency)
    parts = {
        "period_charge": storable(charge, currency),
        "overage_charge": overage,
        "prepay_purchases": prepay,
        "top_up_purchases": storable(figures.top_up_purchases, currency),
        "service_credits": credits,
    }
    return {**parts, "total": storable(sum(parts.values(), Decimal(0)), currency)}


# How far ahead of now the periods may be asked for (`as_of`): none, beyond a client's clock being
# a little ahead of ours. A period's figures are the ledger's, and a period that has not begun yet
# has none of its hours posted (its included hours, rollover, prepay come when it begins): asked
# ahead, it showed its charge and no hours (found by an outside sweep). And an open-ended monthly
# plan asked as of 2999 computed 12,000 periods for one request (12 s for a viewer; 82 s for three
# GraphQL aliases).
AHEAD = dt.timedelta(minutes=5)


def check_as_of(as_of: dt.datetime | None, now: dt.datetime, name: str = "as_of") -> dt.datetime:
    """The instant the periods are computed at: `as_of` (default now), not in the future (400)."""
    if as_of is None:
        return now
    if as_of > now + AHEAD:
        message = "the periods' figures are the ledger's, and a period ahead has none of its hours posted yet"
        raise BadRequest(f"{name} may not be in the future: {message}.", {name: ["Must not be in the future."]})
    return as_of


def compute(
    contract: Contract, *, now: dt.datetime, closed: set[int] | None = None, timeline: Timeline | None = None
) -> list[Figures]:
    """Every period begun by `now`, with its figures from the ledger as of `now`.

    `closed` holds the indexes of the periods `run_lifecycle` has closed (their status); by
    default they are read from the database, with the ids of the stored periods (one query).
    Each figure of money is at the terms in force then.
    """
    timeline = timeline or Timeline(contract)
    periods = spans(contract, until=now, timeline=timeline)
    if (ended := ended_at(contract)) is not None:
        # A terminated contract's periods end with the last one begun before the termination, as
        # billing opens them (found by a finance sweep: the months after it showed their charge).
        periods = [s for s in periods if s.start < ended]
    if not periods:
        return []
    ids: dict[int, int] = {}
    if closed is None:
        stored = list(contract.billing_periods.values_list("index", "pk", "status"))
        ids = {index: pk for index, pk, _ in stored}
        closed = {index for index, _, status in stored if status == "closed"}
    figures = [
        Figures(span=s, status="closed" if s.index in closed else "open", period_id=ids.get(s.index)) for s in periods
    ]
    # In UTC: comparing datetimes of one zone is much cheaper than across zones.
    starts = [s.start.astimezone(dt.UTC) for s in periods]
    ends = [s.end.astimezone(dt.UTC) for s in periods]
    last = len(periods) - 1

    def at_start(instant) -> int:  # [start, end)
        return min(max(bisect.bisect_right(starts, instant) - 1, 0), last)

    def at_end(instant) -> int:  # (start, end]
        return min(max(bisect.bisect_left(starts, instant) - 1, 0), last)

    book = LotBook()
    booked: set[int] = set()
    boundary = 0  # the next period end to read the overrun at
    # Overage an ended period bills at its close whose settlement is not posted yet (cron is late):
    # the overrun still holds it, but it is that period's to bill, not the next one's too (found
    # by an outside sweep: the open period showed it again).
    unsettled = ZERO

    def read_overage(index: int) -> None:
        nonlocal unsettled
        figures[index].overage_hours = max(book.overrun - unsettled, ZERO)
        if plan_of(timeline, figures[index].span).overage_rate is not None:
            unsettled += figures[index].overage_hours

    for row in replay_rows(contract, as_of=now, boundaries=[starts[0], *ends]):
        pk, kind, reason, hours, occurred_at, expires_at, lot_id = row
        while boundary <= last and occurred_at >= ends[boundary]:
            read_overage(boundary)
            boundary += 1
        book.apply(*row)
        if reason == R.OVERAGE_BILLED:
            unsettled = max(unsettled - hours, ZERO)
        if kind == T.WORK:
            # Rows come in time order: the period is the one the boundary walk has reached.
            figures[min(boundary, last)].charged_hours += hours
        elif reason == R.LOT_EXPIRED:
            booked.add(lot_id)
            figures[at_end(occurred_at)].expired_hours += -hours
        elif reason == R.INCLUDED_HOURS:
            figures[at_start(occurred_at)].included_hours += hours
        elif reason == R.ROLLOVER:
            figures[at_start(occurred_at)].rolled_over_in += hours
            if occurred_at > periods[0].start:
                figures[at_end(occurred_at)].rolled_over_out += hours
        elif reason == R.PREPAY:
            figures[at_start(occurred_at)].prepaid_hours_added += hours
        elif reason == R.TOP_UP:
            target = figures[at_start(occurred_at)]
            target.topped_up_hours += hours
            price = top_up_price(timeline.at(occurred_at))
            target.top_up_purchases += storable(hours * price, contract.currency)
    while boundary <= last:
        read_overage(boundary)
        boundary += 1
    # Lots that have expired by now whose expiry is not booked yet: their unused hours are lost all the same.
    for lot in book.lots:
        if lot.entry.pk not in booked and lot.expired_by(now) and lot.remaining > 0:
            figures[at_end(lot.entry.expires_at)].expired_hours += lot.remaining
    for row in (
        LedgerEntry.objects.filter(contract=contract, entry_type=T.PENALTY, occurred_at__lte=now)
        .values("occurred_at")
        .annotate(total=Sum("amount"))
        .values_list("occurred_at", "total")
    ):
        # In the period whose [start, end) holds it, as its service-credit line takes it
        # (`services.close_period`): one dated outside every period (after the term, in a stretch
        # under a plan without periods) was counted in the nearest one, and changed a closed one.
        index = bisect.bisect_right(starts, row[0]) - 1
        if index >= 0 and row[0] < ends[index]:
            figures[index].penalties += row[1]
    for item in figures:
        item.expired_hours -= item.rolled_over_out
        item.money = _money(contract, item, timeline)
    return figures

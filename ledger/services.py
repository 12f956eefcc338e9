"""Posting to the hour ledger, the balance and the prepaid lots.

Hours are stored as posted (`hours`), and the ledger counts them as charged (`charged_hours`:
work after the billing plan's minimum, rounding and out-of-hours multiplier, see
`ledger.charging`; every other entry's charged hours are its hours): positive for allocations
(initial allocation, renewal, credit) and for work; an adjustment is signed (+ gives hours
back, - takes them); the expiry of a lot is an `adjustment` with reason `lot_expired`, negative, linked to its lot. So

    remaining = allocated + adjustments - work

`Contract.remaining_hours` keeps that figure as a running balance. Every posting locks the
contract row first, so postings on one contract are serialised and the overdraw check can
never be passed by two writers at once; `verify_ledger` proves the running balance against a
fresh sum. System postings (allocations, penalties, their reversals, lot expiries) carry a
unique `system_key`, so each happens exactly once however often the triggering code runs.

Lots: every entry that adds hours is a lot (with `expires_at` or without). Work, and negative
manual adjustments, consume the lots that are still valid first-expiring-first (lots without an
expiry last); what no lot covers is overrun, a debt that the next lot to arrive pays first. So
the lots' remaining hours, less the overrun, always equal the balance's remaining hours, and the
overrun is the balance's overrun. The lot view replays the entries in time order, so it always
agrees with them.

A lot that has expired keeps its unused hours in the running balance until `run_lifecycle`
books their expiry; the overdraw check does not count them, so work after a lot's expiry can
never draw on its hours, whenever the expiry is booked. The balance and the lots as of an
instant (`balance`, `lot_book`) count such an expiry as booked already: they answer what the
ledger says once `run_lifecycle` has caught up, and a read never writes an entry.
"""

from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, DecimalField, Exists, F, Max, Min, OuterRef, Q, Sum, Value, When
from django.utils import timezone

from breaches.models import Breach
from config.errors import Conflict, Unprocessable
from contracts.models import Contract
from contracts.terms import Timeline, contract_as_of, terminated_at
from events.feed import hold_order, locked
from events.services import record_event
from tenancy.currencies import finer_than_currency, quantize

from .charging import charged_hours_for
from .models import LedgerEntry

T = LedgerEntry.Type
ZERO = Decimal("0.00")
ALLOCATIONS = (T.INITIAL_ALLOCATION, T.RENEWAL, T.CREDIT)
WITH_EXPIRY = ALLOCATIONS
WITH_MONEY = (T.PENALTY, T.CREDIT)
WORKABLE = (Contract.Status.ACTIVE, Contract.Status.SUSPENDED)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
EXPIRING_WINDOW = dt.timedelta(days=30)

# The signed effect of an entry on the remaining hours, in SQL.
HOUR_EFFECT = Case(
    When(entry_type=T.WORK, then=-F("charged_hours")),
    default=F("charged_hours"),
    output_field=DecimalField(max_digits=14, decimal_places=2),
)


def hour_effect(entry: LedgerEntry) -> Decimal:
    return -entry.charged_hours if entry.entry_type == T.WORK else entry.charged_hours


def set_charged_hours(entry: LedgerEntry, contract: Contract) -> None:
    """Work is charged by the billing plan in force when it was done (an amended rounding or
    multiplier does not reach back); anything else counts as posted."""
    if entry.entry_type == T.WORK and entry.hours > 0:
        plan = Timeline(contract).at(entry.occurred_at)
        entry.charged_hours = charged_hours_for(plan, entry.hours, entry.occurred_at)
    else:
        entry.charged_hours = entry.hours


# --- validation ---------------------------------------------------------------------------------


def _term_date_errors(entry: LedgerEntry, contract: Contract) -> dict[str, list[str]]:
    """A hand posting is dated within its contract's term, as an amendment's date is: nothing is
    used, given or owed under a contract before it starts (before, a penalty was billed by no line
    and a credit opened a lot no work could reach). After its last day (as its approved terms
    have it) only money: a claim settled once the term is over is dated then (the closed periods
    refuse an earlier date) and billed by a line of its own, but hours there are used by nothing.
    A terminated contract's term ends at its termination, not on the last day it had agreed."""
    if contract.start_date is not None and entry.occurred_at < contract.start_of_day(contract.start_date):
        return {"occurred_at": [f"Must not be before the contract's start ({contract.start_date.isoformat()})."]}
    if hour_effect(entry) == 0:
        return {}
    ends = []  # (the first instant after the term, what the message calls it)
    if (last_day := Timeline(contract).last_day()) is not None:
        ends.append((contract.start_of_day(last_day + dt.timedelta(days=1)), f"end ({last_day.isoformat()})"))
    if (ended := terminated_at(contract)) is not None:
        ends.append((ended, f"termination ({ended.isoformat()})"))
    if ends and entry.occurred_at >= (end := min(ends))[0]:
        return {
            "occurred_at": [
                f"Must not be after the contract's {end[1]} for an entry that moves hours: "
                "no hours are used or given after the term (a penalty or a money credit may be dated then)."
            ]
        }
    return {}


def _work_date_errors(entry: LedgerEntry, contract: Contract) -> dict[str, list[str]]:
    """Work happens after its job was reported (issue 8), within the term (`_term_date_errors`)."""
    work_order = entry.work_order
    if work_order is not None and work_order.contract_id == contract.pk and entry.occurred_at < work_order.reported_at:
        reported = work_order.reported_at.isoformat()
        return {"occurred_at": [f"Must not be before the work order was reported ({reported})."]}
    return {}


def check_entry(entry: LedgerEntry, now: dt.datetime) -> None:
    """The rules of a hand-made posting; 422 naming the field, 409 for the contract's state."""
    contract, kind = entry.contract, entry.entry_type
    errors: dict[str, list[str]] = {}
    if entry.work_order is not None and entry.work_order.contract_id != contract.pk:
        errors["work_order_id"] = ["The work order belongs to another contract."]
    if entry.breach is not None:
        if kind != T.PENALTY:
            errors["breach_id"] = ["Only a penalty is linked to a breach."]
        elif entry.breach.contract_id != contract.pk:
            errors["breach_id"] = ["The breach belongs to another contract."]
    if kind == T.WORK:
        if entry.work_order is None:
            errors["work_order_id"] = ["Required for work."]
        if entry.hours <= 0:
            errors["hours"] = ["Work is a positive number of hours."]
        errors |= _work_date_errors(entry, contract)
    elif kind in ALLOCATIONS:
        if entry.hours < 0 or (entry.hours == 0 and not (kind == T.CREDIT and entry.amount)):
            errors["hours"] = ["An allocation is a positive number of hours (a credit may be money only)."]
    elif kind == T.ADJUSTMENT:
        if entry.hours == 0:
            errors["hours"] = ["An adjustment changes the hours: + gives hours back, - takes them."]
        if not entry.description.strip():
            errors["description"] = ["Say why (an adjustment corrects an earlier entry)."]
    elif kind == T.PENALTY:
        if entry.hours != 0:
            errors["hours"] = ["A penalty is money: it moves no hours."]
        if not entry.amount or entry.amount <= 0:
            errors["amount"] = ["Required: the penalty's amount."]
    if entry.expires_at is not None:
        if kind not in WITH_EXPIRY or entry.hours <= 0:
            errors["expires_at"] = ["Only allocated hours (initial allocation, renewal, credit) expire."]
        elif entry.expires_at <= entry.occurred_at:
            errors["expires_at"] = ["Must be after occurred_at."]
        elif entry.expires_at <= now:
            errors["expires_at"] = ["Must be in the future: these hours would have expired already."]
    if entry.amount is not None:
        if kind not in WITH_MONEY:
            errors["amount"] = ["Only penalties and credits carry money."]
        elif entry.amount < 0:
            errors["amount"] = ["Must not be negative."]
        if entry.currency != contract.currency:
            errors["currency"] = [f"Money on this contract is in {contract.currency}."]
        elif fault := finer_than_currency(entry.amount, entry.currency):
            errors.setdefault("amount", []).append(fault)
        else:
            entry.amount = quantize(entry.amount, entry.currency)
    elif entry.currency:
        errors["currency"] = ["Only with an amount."]
    if entry.occurred_at > now + FUTURE_TOLERANCE:
        errors["occurred_at"] = ["Must not be in the future."]
    elif "occurred_at" not in errors:
        errors |= _term_date_errors(entry, contract)
    if errors:
        raise Unprocessable(f"Invalid ledger entry: {', '.join(errors)}.", errors)
    if kind == T.WORK and contract.status not in WORKABLE:
        raise Conflict(f"Work is posted on active or suspended contracts; this one is {contract.status}.")
    closed = lots_closed_at(contract)
    if closed is not None and entry.occurred_at < closed and hour_effect(entry) != 0:
        # Hours posted before a booked expiry (or a lot's move) would change what that lot left over.
        raise Conflict(f"The books of this contract are closed up to {closed.isoformat()} (a lot expired then).")
    billed = contract.books_closed_at
    if billed is not None and entry.occurred_at < billed and (hour_effect(entry) != 0 or kind == T.PENALTY):
        # A closed billing period's figures and lines are final: a correction goes into an open period.
        raise Conflict(f"The books of this contract are closed up to {billed.isoformat()} (a billing period closed).")


def lots_closed_at(contract: Contract) -> dt.datetime | None:
    """The last instant a lot was closed (its expiry booked, or its hours moved to an amended
    expiry): what the lot left over was fixed then, so no hours may be posted before it."""
    last = [
        LedgerEntry.objects.filter(contract=contract, reason_code=reason).aggregate(last=Max("occurred_at"))["last"]
        for reason in (LedgerEntry.Reason.LOT_EXPIRED, LedgerEntry.Reason.LOT_MOVED)
    ]
    return max((x for x in last if x is not None), default=None)


def unbooked_expiries(contract: Contract, at: dt.datetime) -> Decimal:
    """Unused hours of lots that expired by `at` whose expiry `run_lifecycle` has not booked yet:
    still in the running balance, but no longer available to anything posted at `at`."""
    pending = LedgerEntry.objects.filter(contract=contract, expires_at__lte=at, hours__gt=0).exclude(
        expiries__reason_code__in=(LedgerEntry.Reason.LOT_EXPIRED, LedgerEntry.Reason.LOT_MOVED)
    )
    if not pending.exists():
        return ZERO
    book = replay(contract, as_of=at)
    return sum((lot.remaining for lot in book.lots if lot.expired_by(at)), ZERO)


def _may_overrun(contract: Contract, overage_rate) -> bool:
    """Whether the contract may use more hours than it has: it allows overrun, or an overage rate
    (the one in force, or an amendment's) bills what no lot covers."""
    return contract.allow_overrun or overage_rate is not None


def budget_cut_faults(*, contract: Contract, effective_date: dt.date, changes: dict) -> dict[str, str]:
    """An amendment's hours budget is posted on its date (`on_contract_terms_changed`): a cut
    larger than the hours left would overdraw a contract that allows no overrun. Checked when it
    is made, edited and approved (the hours left may have gone meanwhile), against what remains now."""
    if "hours_budget" not in changes:
        return {}
    in_force = contract_as_of(contract, effective_date)
    if _may_overrun(contract, changes.get("overage_rate", in_force.overage_rate)):
        return {}
    allocated = LedgerEntry.objects.filter(
        organization_id=contract.organization_id, system_key=f"allocation:contract:{contract.pk}"
    ).exists()
    if not allocated:
        return {}  # the allocation reads the terms in force when the contract starts
    cut = (in_force.hours_budget or ZERO) - Decimal(str(changes["hours_budget"] or 0))
    if cut <= contract.remaining_hours:
        return {}
    return {
        "changes.hours_budget": (
            f"Cuts the budget by {cut} hours but only {contract.remaining_hours} remain; "
            "the contract does not allow overrun."
        )
    }


def check_overdraw(entry: LedgerEntry, contract: Contract) -> None:
    """409 if the entry takes more hours than remain (and the contract does not allow overrun)."""
    effect = hour_effect(entry)
    if effect >= 0 or contract.allow_overrun or contract.overage_rate is not None:
        return  # (an overage rate bills what no lot covers: overrun is allowed)
    remaining = contract.remaining_hours
    if remaining + effect >= 0:
        expired = unbooked_expiries(contract, entry.occurred_at)
        if remaining - expired + effect >= 0:
            return
        remaining = f"{remaining - expired} ({expired} more expired at or before {entry.occurred_at.isoformat()})"
    raise Conflict(
        f"Not enough hours: {remaining} remain and this takes {-effect}; the contract does not allow overrun."
    )


# --- posting ------------------------------------------------------------------------------------


def _lock(contract: Contract) -> Contract:
    return locked(Contract, contract, order=False)  # the callers hold the order (post_entry, expire_lot, handlers)


def _book(entry: LedgerEntry, contract: Contract, actor, at: dt.datetime | None = None) -> LedgerEntry:
    """Save the entry, move the running balance, write the events. The contract is locked.

    `actor`, `at`: who and when caused the posting (the request's, the run's `--now`, the event a
    handler reacts to), so its events agree with the others of the same transaction; `at` defaults
    to the moment the entry was saved. Hours go into the payloads with two places, as REST shows
    them, whatever the entry was given (a default, a computed figure)."""
    before = contract.remaining_hours
    entry.save()
    contract.remaining_hours = before + hour_effect(entry)
    Contract.objects.filter(pk=contract.pk).update(remaining_hours=contract.remaining_hours)
    record_event(
        type="ledger.entry_posted",
        obj=entry,
        actor=actor,
        object_type="ledger_entry",
        payload={
            "contract": contract.pk,
            "entry_type": entry.entry_type,
            "reason_code": entry.reason_code,
            "hours": _hours(entry.hours),
            "charged_hours": _hours(entry.charged_hours),
            "amount": entry.amount,
            "currency": entry.currency,
            "remaining_hours": _hours(contract.remaining_hours),
        },
        occurred_at=at or entry.created_at,
    )
    threshold = contract.low_balance_threshold_hours
    if threshold is not None and before >= threshold > contract.remaining_hours:
        record_event(
            type="contract.balance_low",
            obj=contract,
            actor=actor,
            payload={
                "remaining_hours": _hours(contract.remaining_hours),
                "threshold_hours": _hours(threshold),
                "entry": entry.pk,
            },
            occurred_at=at or entry.created_at,
        )
    return entry


@transaction.atomic
def post_entry(*, organization, actor, data: dict, now: dt.datetime | None = None) -> LedgerEntry:
    """A hand-made posting (API, admin). Overdrawing is a 409 unless the contract allows overrun."""
    now = now or timezone.now()
    hold_order([organization.pk])  # before the contract's row: events.feed, "Lock order"
    contract = _lock(data["contract"])
    entry = LedgerEntry(
        organization=organization,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **{"occurred_at": now, **data, "contract": contract},
    )
    set_charged_hours(entry, contract)
    check_entry(entry, now)
    check_overdraw(entry, contract)
    return _book(entry, contract, actor, now)


@transaction.atomic
def post_system_entry(
    *, contract: Contract, system_key: str, actor=None, at: dt.datetime | None = None, **fields
) -> LedgerEntry | None:
    """A posting the system makes itself, exactly once per `system_key` (None if already made).
    `actor`, `at`: of what caused it (`_book`): a handler passes its event's."""
    contract = _lock(contract)
    if LedgerEntry.objects.filter(organization_id=contract.organization_id, system_key=system_key).exists():
        return None
    entry = LedgerEntry(organization_id=contract.organization_id, contract=contract, system_key=system_key, **fields)
    entry.occurred_at = entry.occurred_at or timezone.now()
    if contract.books_closed_at is not None and entry.occurred_at < contract.books_closed_at:
        # A closed billing period is final: what the system posts late (a penalty finalized by a
        # late scan, ...) is dated into the first open period instead.
        entry.occurred_at = contract.books_closed_at
    set_charged_hours(entry, contract)
    try:
        with transaction.atomic():
            return _book(entry, contract, actor, at)
    except IntegrityError:
        return None  # another process posted it first


# --- reactions to lower apps' events (registered in LedgerConfig.ready) -------------------------


def _caused_by(event) -> dict:
    """A reaction's posting is the event's doing: its actor and instant (`post_system_entry`)."""
    return {"actor": event.actor, "at": event.occurred_at}


def on_contract_state_changed(event) -> bool:
    """A contract becoming active for the first time gets its hours: initial allocation, or
    renewal for a renewal contract. (Resuming from suspension is not a first activation.)"""
    if event.payload.get("to") != Contract.Status.ACTIVE or event.payload.get("from") == Contract.Status.SUSPENDED:
        return False
    contract = Contract.objects.get(pk=event.object_id)
    if not contract.hours_budget:
        return False
    expires_at = contract.start_of_day(contract.expiry_date + dt.timedelta(days=1)) if contract.expiry_date else None
    kind = T.RENEWAL if contract.renewed_from_id else T.INITIAL_ALLOCATION
    # The hours belong to the contract's period: approved after its start, they date from the start.
    occurred_at = min(event.occurred_at, contract.start_of_day(contract.start_date))
    entry = post_system_entry(
        contract=contract,
        system_key=f"allocation:contract:{contract.pk}",
        entry_type=kind,
        reason_code=LedgerEntry.Reason.SYSTEM,
        hours=contract.hours_budget,
        expires_at=expires_at,
        occurred_at=occurred_at,
        description=f"{kind.label} of the contract's hours budget",
        **_caused_by(event),
    )
    return entry is not None


def _term_end(contract: Contract, expiry) -> dt.datetime | None:
    """When a lot tied to the contract's term expires: the start of the day after the expiry date."""
    if expiry is None:
        return None
    return contract.start_of_day(dt.date.fromisoformat(str(expiry)) + dt.timedelta(days=1))


# The lots that hold the contract's hours budget (they follow its expiry when an amendment moves it).
TERM_LOT_KEYS = ("allocation:contract:", "budget:terms_changed:", "lot_moved:to:")


def _term_lots(contract: Contract, expires_at: dt.datetime | None, at: dt.datetime):
    """The contract's hours-budget lots still open at `at` that expire with the term (`expires_at`)."""
    keys = Q()
    for prefix in TERM_LOT_KEYS:
        keys |= Q(system_key__startswith=prefix)
    return (
        LedgerEntry.objects.filter(keys, contract=contract, hours__gt=0, expires_at=expires_at)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .exclude(expiries__reason_code__in=(LedgerEntry.Reason.LOT_EXPIRED, LedgerEntry.Reason.LOT_MOVED))
        .order_by("pk")
    )


def _move_lot(contract: Contract, lot: LedgerEntry, expires_at: dt.datetime | None, at: dt.datetime, event) -> bool:
    """Close `lot` at `at` and carry its unused hours to a new lot expiring at `expires_at`: two
    entries that net to zero, so the balance at any instant is unchanged and nothing before `at` moves."""
    book = replay(contract, as_of=at)
    remainder = next((x.remaining for x in book.lots if x.entry.pk == lot.pk), ZERO)
    if remainder <= 0:
        return False  # nothing left to carry: the lot runs out as it was
    common = {
        "entry_type": T.ADJUSTMENT,
        "reason_code": LedgerEntry.Reason.LOT_MOVED,
        "lot": lot,
        "occurred_at": at,
        **_caused_by(event),
    }
    closed = post_system_entry(
        contract=contract,
        system_key=f"lot_moved:from:{lot.pk}",
        hours=-remainder,
        description=f"Unused hours of lot {lot.pk} carried to the amended expiry",
        **common,
    )
    if closed is None:
        return False
    post_system_entry(
        contract=contract,
        system_key=f"lot_moved:to:{lot.pk}",
        hours=remainder,
        expires_at=expires_at,
        description=f"Hours of lot {lot.pk} with the amended expiry",
        **common,
    )
    return True


def on_contract_terms_changed(event) -> int:
    """The terms in force changed (an amendment reached its date): the ledger follows them from the
    version's first day, without touching what was posted before (issue 14).

    - expiry moved: each hours-budget lot expiring with the old term is closed on that day and its
      unused hours go on in a new lot expiring with the new term (`_move_lot`);
    - hours budget changed: the difference is posted that day (once per change), an increase as a
      lot expiring with the term in force.

    A contract not yet allocated needs nothing: its allocation reads the terms in force when it
    starts. Returns how many postings were made."""
    changes = event.payload.get("changes", {})
    if "expiry_date" not in changes and "hours_budget" not in changes:
        return 0
    contract = Contract.objects.get(pk=event.object_id)
    allocated = LedgerEntry.objects.filter(
        organization_id=contract.organization_id, system_key=f"allocation:contract:{contract.pk}"
    ).exists()
    if not allocated:
        return 0
    at = event.occurred_at
    if event.payload.get("effective_from"):
        # From the version's first day (a late lifecycle run does not shift it), but never before a
        # closed lot or billing period: what they settled is final.
        at = contract.start_of_day(dt.date.fromisoformat(str(event.payload["effective_from"])))
        closures = [lots_closed_at(contract), contract.books_closed_at]
        at = max([at, *(c for c in closures if c is not None)])
    posted = 0
    if "expiry_date" in changes:
        before, after = (_term_end(contract, changes["expiry_date"][k]) for k in ("before", "after"))
        for lot in list(_term_lots(contract, before, at)):
            posted += 2 * _move_lot(contract, lot, after, at, event)
    change = changes.get("hours_budget")
    delta = ZERO if change is None else Decimal(change["after"] or 0) - Decimal(change["before"] or 0)
    description = f"Hours budget amended from {change['before']} to {change['after']}" if delta else ""
    if delta < 0 and not _may_overrun(contract, contract_as_of(contract, at.date()).overage_rate):
        # The cut was checked when it was made and approved, but work may have used the hours
        # since: it takes what is left, never overdrawing a contract that allows no overrun
        # (found by an outside sweep: -167 h, and every later posting a 409).
        left = max(contract.remaining_hours, ZERO)
        if -delta > left:
            delta = -left
            description += f" (the cut limited to the {left} hours that remained)"
    if delta:
        entry = post_system_entry(
            contract=contract,
            system_key=f"budget:terms_changed:{event.pk}",
            entry_type=T.ADJUSTMENT,
            reason_code=LedgerEntry.Reason.SYSTEM,
            hours=delta,
            # An increase is hours of the term: it expires with it (a decrease is not a lot).
            expires_at=_term_end(contract, contract.expiry_date) if delta > 0 else None,
            occurred_at=at,
            description=description,
            **_caused_by(event),
        )
        posted += entry is not None
    return posted


def on_breach_finalized(event) -> bool:
    """A breach's penalty is final: post it (not for a breach already waived, nor a zero one)."""
    breach = Breach.objects.select_related("contract").get(pk=event.object_id)
    if breach.state == Breach.State.WAIVED or breach.penalty_amount <= 0:
        return False
    entry = post_system_entry(
        contract=breach.contract,
        system_key=f"penalty:breach:{breach.pk}",
        entry_type=T.PENALTY,
        reason_code=LedgerEntry.Reason.SYSTEM,
        amount=quantize(breach.penalty_amount, breach.currency),
        currency=breach.currency,
        breach=breach,
        work_order_id=breach.work_order_id,
        occurred_at=event.occurred_at,
        description=f"Penalty for the {breach.metric} breach of work order {breach.work_order_id}",
        **_caused_by(event),
    )
    return entry is not None


def on_breach_waived(event) -> bool:
    """A waived breach's penalty, if it was posted, is reversed."""
    penalty = LedgerEntry.objects.filter(
        organization_id=event.organization_id, system_key=f"penalty:breach:{event.object_id}"
    ).first()
    if penalty is None:
        return False
    entry = post_system_entry(
        contract=penalty.contract,
        system_key=f"penalty_reversal:breach:{event.object_id}",
        entry_type=T.PENALTY,
        reason_code=LedgerEntry.Reason.PENALTY_REVERSAL,
        amount=-penalty.amount,
        currency=penalty.currency,
        breach_id=penalty.breach_id,
        work_order_id=penalty.work_order_id,
        reverses=penalty,
        occurred_at=event.occurred_at,
        description=f"Reversal: breach {event.object_id} was waived",
        **_caused_by(event),
    )
    return entry is not None


# --- lots ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotEntry:
    """The allocation entry a lot comes from (what the lot view shows of it)."""

    pk: int
    entry_type: str
    occurred_at: dt.datetime
    expires_at: dt.datetime | None


@dataclass
class Lot:
    entry: LotEntry
    allocated: Decimal
    consumed: Decimal = ZERO
    expired: Decimal = ZERO
    moved: Decimal = ZERO  # carried to a lot with an amended expiry (`LOT_MOVED`)

    @property
    def remaining(self) -> Decimal:
        return self.allocated - self.consumed - self.expired - self.moved

    def valid_at(self, instant: dt.datetime) -> bool:
        return self.entry.expires_at is None or instant < self.entry.expires_at

    def expired_by(self, instant: dt.datetime) -> bool:
        return self.entry.expires_at is not None and self.entry.expires_at <= instant


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)
# The columns `LotBook.apply` takes, in its argument order.
REPLAY_COLUMNS = ("id", "entry_type", "reason_code", "charged_hours", "occurred_at", "expires_at", "lot_id")


@dataclass
class LotBook:
    """Lots, their consumption first-expiring-first, and expiries, fed entries in time order.

    The lots that can still be drawn on sit in a heap keyed on (expiry, id); time only moves
    forward, so a lot found expired at the top is dropped for good. O(log lots) per entry.
    """

    lots: list[Lot] = field(default_factory=list)
    overrun: Decimal = ZERO  # consumption no lot covered
    by_id: dict[int, Lot] = field(default_factory=dict, repr=False)
    drawable: list[tuple[dt.datetime, int, Lot]] = field(default_factory=list, repr=False)

    def apply(self, pk, kind, reason, hours, occurred_at, expires_at, lot_id) -> None:
        """One entry (its columns as in `REPLAY_COLUMNS`; `hours` are its charged hours)."""
        if kind == T.PENALTY:
            return
        effect = -hours if kind == T.WORK else hours
        if reason == LedgerEntry.Reason.LOT_EXPIRED:
            self.by_id[lot_id].expired += -effect
        elif reason == LedgerEntry.Reason.LOT_MOVED and effect < 0:
            self.by_id[lot_id].moved += -effect
        elif effect > 0:
            # A new lot pays the overrun (consumption no lot covered) first.
            paid = min(self.overrun, effect)
            lot = Lot(entry=LotEntry(pk, kind, occurred_at, expires_at), allocated=effect, consumed=paid)
            self.overrun -= paid
            self.lots.append(lot)
            self.by_id[pk] = lot
            if lot.remaining > 0:
                heapq.heappush(self.drawable, (expires_at or _NEVER, pk, lot))
        elif effect < 0:
            need = -effect
            while need and self.drawable:
                lot = self.drawable[0][2]
                if not lot.valid_at(occurred_at) or lot.remaining <= 0:
                    heapq.heappop(self.drawable)
                    continue
                take = min(need, lot.remaining)
                lot.consumed += take
                need -= take
            self.overrun += need

    def close_expired(self, at: dt.datetime) -> Decimal:
        """Count as expired what each lot expired by `at` still holds: the expiry `expire_lot` posts
        (or has posted: then nothing is left) at the lot's `expires_at`. Nothing draws on a lot after
        its expiry, so what it holds at `at` is what it held then. For reads as of `at` (a replay
        that stays usable for posting never calls it); returns the hours so counted."""
        closed = ZERO
        for lot in self.lots:
            if lot.expired_by(at) and lot.remaining > 0:
                closed += lot.remaining
                lot.expired += lot.remaining
        return closed


# Beyond this many lot events in a ledger, the work is streamed row by row instead of summed per segment.
MAX_SEGMENTS = 400


def replay_rows(contract: Contract, *, as_of: dt.datetime | None = None, boundaries=()):
    """The rows the lot replay needs, in (occurred_at, id) order, with the work *summed* between
    events: every entry that is not work (lots, expiries, adjustments), the work at the exact
    instant of an event or boundary one by one, and the work strictly between two such instants
    as one row per stretch (its first id and instant, its total). Within a stretch no lot starts
    or expires and no period ends, so consuming the total at once leaves the lots, the overrun
    and the period sums exactly as consuming each entry would: O(events) rows from the database
    instead of O(entries), one GROUP BY doing the rest. (`boundaries`: more instants to cut at,
    e.g. billing periods' ends, so that no stretch spans one.)"""
    entries = LedgerEntry.objects.filter(contract=contract).exclude(entry_type=T.PENALTY)
    if as_of is not None:
        entries = entries.filter(occurred_at__lte=as_of)
    now = as_of or _NEVER
    events = list(entries.exclude(entry_type=T.WORK).order_by("occurred_at", "id").values_list(*REPLAY_COLUMNS))
    instants = {b for b in boundaries if b <= now}
    for row in events:
        instants.add(row[4])
        if row[5] is not None and row[5] <= now:
            instants.add(row[5])
    if len(instants) > MAX_SEGMENTS:
        yield from entries.order_by("occurred_at", "id").values_list(*REPLAY_COLUMNS).iterator(chunk_size=5000)
        return
    cuts = sorted(instants)
    work = entries.filter(entry_type=T.WORK)
    exact = list(work.filter(occurred_at__in=cuts).values_list(*REPLAY_COLUMNS)) if cuts else []
    stretch = Case(*(When(occurred_at__lt=cut, then=Value(n)) for n, cut in enumerate(cuts)), default=Value(len(cuts)))
    summed = (
        work.exclude(occurred_at__in=cuts)
        .annotate(stretch=stretch if cuts else Value(0))
        .values("stretch")
        .annotate(first_id=Min("id"), first_at=Min("occurred_at"), total=Sum("charged_hours"))
        .order_by()
        .values_list("first_id", "first_at", "total")
    )
    # (Grouping by a constant, with no cut, is one aggregate: a row of NULLs when there is no work.)
    stretches = [(pk, T.WORK, "", total, at, None, None) for pk, at, total in summed if pk is not None]
    yield from sorted([*events, *exact, *stretches], key=lambda row: (row[4], row[0]))


def replay(contract: Contract, as_of: dt.datetime | None = None) -> LotBook:
    """Replay the entries in time order (occurred_at, id) into a `LotBook`: one pass."""
    book = LotBook()
    for row in replay_rows(contract, as_of=as_of):
        book.apply(*row)
    return book


def lot_book(contract: Contract, *, as_of: dt.datetime | None = None) -> LotBook:
    """The lots as of an instant (default now) as the ledger states them: the replay, with every lot
    expired by then closed as its booked expiry closes it, whether `run_lifecycle` has posted that
    expiry yet or not (a read writes nothing). What `GET /contracts/{id}/lots` shows."""
    book = replay(contract, as_of=as_of)
    book.close_expired(as_of or timezone.now())
    return book


def expire_lot(lot_id: int, contract_id: int, log=lambda message: None, at=None) -> LedgerEntry | None:
    """Post the expiry of one expired lot's unused remainder, once (None if it was posted already)."""
    with transaction.atomic():
        # The order before the contract's row (events.feed, "Lock order"): a posting holds it and
        # then locks the contract, while this would hold the row and wait for it at its event.
        hold_order(Contract.objects.filter(pk=contract_id).values_list("organization_id", flat=True))
        contract = _lock(Contract(pk=contract_id))
        lot = LedgerEntry.objects.get(pk=lot_id)
        book = replay(contract, as_of=lot.expires_at)
        remainder = next((x.remaining for x in book.lots if x.entry.pk == lot_id), ZERO)
        entry = post_system_entry(
            contract=contract,
            system_key=f"lot_expiry:entry:{lot_id}",
            entry_type=T.ADJUSTMENT,
            reason_code=LedgerEntry.Reason.LOT_EXPIRED,
            hours=ZERO - max(remainder, ZERO),
            lot=lot,
            occurred_at=lot.expires_at,
            description=f"Unused hours of lot {lot_id} expired",
            at=at,
        )
        if entry is not None:
            log(f"lot {lot_id} of contract {contract_id}: {-entry.hours} hours expired")
        return entry


def unexpired_lots(*, now: dt.datetime, contract: Contract | None = None):
    """(lot id, contract id) of the lots expired by `now` whose expiry is not booked, oldest first."""
    lots = LedgerEntry.objects.filter(expires_at__lte=now, hours__gt=0)
    if contract is not None:
        lots = lots.filter(contract=contract)
    return (
        # A moved lot has nothing left to expire: its hours went on in the lot with the amended expiry.
        lots.exclude(expiries__reason_code__in=(LedgerEntry.Reason.LOT_EXPIRED, LedgerEntry.Reason.LOT_MOVED))
        .values_list("pk", "contract_id")
        .order_by("expires_at", "pk")
    )


def expire_lots(*, now: dt.datetime, log=lambda message: None, failures: list[str] | None = None) -> int:
    """Post the expiry of each expired lot's unused remainder, once (a step of run_lifecycle;
    `failures`: `contracts.services.skipping_failures`)."""
    from contracts.services import contract_label, skipping_failures

    expired = 0
    for lot_id, contract_id in list(unexpired_lots(now=now)):
        with skipping_failures(failures, lambda lot=lot_id, of=contract_id: f"lot {lot} of {contract_label(of)}", log):
            expired += expire_lot(lot_id, contract_id, log, at=now) is not None
    return expired


# --- balance ------------------------------------------------------------------------------------


def _hours(value: Decimal) -> Decimal:
    """Two places, whatever the backend's sums return (SQLite drops trailing zeros; no -0.00)."""
    return (value + ZERO).quantize(ZERO)


MICROSECONDS_A_DAY = 86_400_000_000


def _days(delta: dt.timedelta) -> Decimal:
    return Decimal(delta // dt.timedelta(microseconds=1)) / MICROSECONDS_A_DAY


def days_to_exhaustion(lots, *, as_of: dt.datetime, per_day: Decimal) -> Decimal:
    """Days from `as_of` until the usable hours run out, consumed at `per_day` hours a day (> 0) the
    way the ledger consumes: `lots` are (expires_at or None, hours) in the order `LotBook` draws them
    (first-expiring-first, lots without an expiry last). A lot is drawn from when the ones before it
    are used up or gone; what it still holds at its expiry is lost (the exhaustion does not wait
    for it); hours without an expiry are all used."""
    days = ZERO
    for expires_at, hours in lots:
        used_up = days + hours / per_day
        days = used_up if expires_at is None else max(days, min(used_up, _days(expires_at - as_of)))
    return days


def burning_days(contract: Contract, as_of: dt.datetime, window_days: int) -> int:
    """The days the burn rate is spread over: the window, or the days the contract has run by
    `as_of` (its local dates from the start, today included) when fewer. No work is posted before
    the start, so a contract 10 days old that used 50 hours burns 5 a day, not 50 / 30 (which put its
    exhaustion three times as far off)."""
    if contract.start_date is None:
        return window_days
    run = (contract.local_today(as_of) - contract.start_date).days + 1
    return run if 1 <= run < window_days else window_days


def balance(contract: Contract, *, as_of: dt.datetime | None = None, window_days: int = 30) -> dict:
    """The contract's hours as of an instant, summed fresh from the entries.

    A lot expired by `as_of` whose expiry `run_lifecycle` has not posted yet counts as posted: its
    remainder at its expiry (what `expire_lot` will post) is expired, not remaining. So a balance as
    of a future instant says what the ledger will say then, and the figures never depend on when
    cron ran. (The running balance on the contract row keeps those hours until the posting.)

    The burn rate is the charged work of the last `window_days` days, per day (per day the contract
    has run, when that is fewer: `burning_days`). The projected
    exhaustion is the local date (contract's time zone) of the instant the usable hours run out at
    that rate, drawn as the ledger draws them (`days_to_exhaustion`): hours of a lot that expire
    before the rate reaches them are not usable. None when nothing is burning; today when nothing
    remains. No new lots are assumed.

    The lot replay (O(events) rows, see `replay_rows`) runs only when a lot with an expiry is open
    (its expiry not posted by `as_of`) and it matters: an expiry by `as_of` not posted yet, a lot
    expiring within `EXPIRING_WINDOW` (`expiring_hours`), or a burning contract whose remaining
    hours would not all be used before the first open lot expires. Otherwise three queries."""
    as_of = as_of or timezone.now()
    entries = LedgerEntry.objects.filter(contract=contract, occurred_at__lte=as_of)
    window_start = as_of - dt.timedelta(days=window_days)
    figures = entries.aggregate(
        # A moved lot's pair of entries nets to zero: neither allocated nor consumed hours.
        allocated=Sum(
            "charged_hours",
            filter=Q(charged_hours__gt=0) & ~Q(entry_type=T.WORK) & ~Q(reason_code=LedgerEntry.Reason.LOT_MOVED),
            default=Value(ZERO),
        ),
        taken=Sum(
            "charged_hours",
            filter=Q(charged_hours__lt=0)
            & ~Q(reason_code__in=(LedgerEntry.Reason.LOT_EXPIRED, LedgerEntry.Reason.LOT_MOVED)),
            default=Value(ZERO),
        ),
        work=Sum("charged_hours", filter=Q(entry_type=T.WORK), default=Value(ZERO)),
        expired=Sum("charged_hours", filter=Q(reason_code=LedgerEntry.Reason.LOT_EXPIRED), default=Value(ZERO)),
        recent=Sum("charged_hours", filter=Q(entry_type=T.WORK, occurred_at__gt=window_start), default=Value(ZERO)),
    )
    total, consumed, expired = figures["allocated"], figures["work"] - figures["taken"], -figures["expired"]
    remaining = total - consumed - expired
    recent = figures["recent"] or ZERO
    days = burning_days(contract, as_of, window_days)
    # Half up, as every figure of the ledger (the context's default is half-even: 0.625 read 0.62).
    burn_rate = (recent / days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    per_day = recent / days

    # The lots with an expiry that is not closed (booked or moved) by `as_of`: the first of their
    # expiries, and the first still ahead.
    closing = LedgerEntry.objects.filter(
        lot=OuterRef("pk"),
        reason_code__in=(LedgerEntry.Reason.LOT_EXPIRED, LedgerEntry.Reason.LOT_MOVED),
        occurred_at__lte=as_of,
    )
    open_lots = entries.filter(hours__gt=0, expires_at__isnull=False).exclude(Exists(closing))
    first = open_lots.aggregate(any=Min("expires_at"), ahead=Min("expires_at", filter=Q(expires_at__gt=as_of)))
    unposted = first["any"] is not None and first["any"] <= as_of
    ahead = first["ahead"]
    expiring_soon = ahead is not None and ahead <= as_of + EXPIRING_WINDOW
    # All the remaining hours used before the first open lot expires: no lot loses any, no replay.
    may_lose = per_day > 0 and ahead is not None and remaining > per_day * _days(ahead - as_of)

    expiring = ZERO
    drawable: list[tuple[dt.datetime | None, Decimal]] = [(None, remaining)]
    if unposted or expiring_soon or may_lose:
        book = replay(contract, as_of=as_of)
        closed = book.close_expired(as_of)
        expired, remaining = expired + closed, remaining - closed
        expiring = sum(
            (
                lot.remaining
                for lot in book.lots
                if lot.entry.expires_at and as_of < lot.entry.expires_at <= as_of + EXPIRING_WINDOW
            ),
            ZERO,
        )
        drawable = [
            (lot.entry.expires_at, lot.remaining)
            for lot in sorted(book.lots, key=lambda lot: (lot.entry.expires_at or _NEVER, lot.entry.pk))
            if lot.remaining > 0 and lot.valid_at(as_of)
        ]
    exhaustion = None
    if per_day > 0:
        days_left = days_to_exhaustion(drawable, as_of=as_of, per_day=per_day) if remaining > 0 else ZERO
        try:
            # To the microsecond, not through a float: hours lost at a lot's expiry run out at that
            # very instant (a term's lot expires at local midnight, the first day without hours).
            left = dt.timedelta(microseconds=int((days_left * MICROSECONDS_A_DAY).to_integral_value()))
            exhaustion = contract.local_today(as_of + left)
        except OverflowError:
            exhaustion = None  # beyond the calendar (year 9999): not in any foreseeable future
    penalties: dict[str, dict[str, str]] = {}
    for row in (
        entries.filter(entry_type=T.PENALTY)
        .values("currency")
        .annotate(
            accrued=Sum("amount", filter=Q(amount__gt=0), default=Value(Decimal(0))),
            waived=Sum("amount", filter=Q(amount__lt=0), default=Value(Decimal(0))),
        )
        .order_by("currency")
    ):
        penalties[row["currency"]] = {
            "accrued": str(quantize(row["accrued"], row["currency"])),
            "waived": str(quantize(-row["waived"], row["currency"])),
        }
    return {
        "contract": contract.pk,
        "as_of": as_of,
        "total_hours": _hours(total),
        "consumed_hours": _hours(consumed),
        "remaining_hours": _hours(remaining),
        "expired_hours": _hours(expired),
        "overrun_hours": _hours(max(-remaining, ZERO)),
        "expiring_hours": _hours(expiring),
        "window_days": window_days,
        "burn_rate_hours_per_day": burn_rate,
        "projected_exhaustion_date": exhaustion,
        "penalties": penalties,
    }


def running_balance_errors(contracts=None) -> list[tuple[int, Decimal, Decimal]]:
    """Contracts whose running balance differs from the sum of their entries: (id, kept, summed)."""
    contracts = Contract.objects.all() if contracts is None else contracts
    sums = dict(
        LedgerEntry.objects.filter(contract__in=contracts)
        .values("contract_id")
        .annotate(total=Sum(HOUR_EFFECT))
        .values_list("contract_id", "total")
    )
    return [
        (pk, kept, sums.get(pk, ZERO))
        for pk, kept in contracts.values_list("pk", "remaining_hours").order_by("pk")
        if kept != sums.get(pk, ZERO)
    ]

"""Billing writes: opening and closing periods (a `run_lifecycle` step), auto top-up (a reaction
to `ledger.entry_posted`), exports, and contract templates.

Exactly once, everywhere: a period's start postings and its close happen under the contract's
row lock, taken with SKIP LOCKED by `run_billing` (a second machine moves on to other contracts)
and re-checked against the period's row; every ledger posting carries a unique system key and
every billing line a unique `key`, so a repeated run writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q

from config.errors import Conflict, Unprocessable
from contracts import services as contract_services
from contracts.billing_plan import BILLING_PLAN_MODEL_FIELDS
from contracts.models import Contract, LineItem, TermVersion
from contracts.terms import Timeline
from events.feed import locked
from events.services import apply_changes, record_event, snapshot
from ledger import services as ledger
from ledger.models import LedgerEntry
from slas.models import Calendar
from slas.services import create_rule
from tenancy.currencies import finer_than_currency, is_currency, quantize, storable

from . import periods as P
from .models import BillingLine, BillingPeriod, ContractTemplate, ExportBatch, TemplateUse

T = LedgerEntry.Type
R = LedgerEntry.Reason
K = BillingLine.Kind
HUNDREDTH = Decimal("0.01")
OPENS = (Contract.Status.ACTIVE, Contract.Status.SUSPENDED)


# --- billing lines ------------------------------------------------------------------------------


def _line(contract: Contract, *, key: str, kind: str, period, description: str, quantity, unit_price, amount,
          date: dt.date, entries=(), breaches=()) -> BillingLine | None:  # fmt: skip
    """Write one billing line, once per `key` (None if it exists already)."""
    if BillingLine.objects.filter(organization_id=contract.organization_id, key=key).exists():
        return None
    try:
        with transaction.atomic():
            line = BillingLine.objects.create(
                organization_id=contract.organization_id,
                contract=contract,
                period=period,
                kind=kind,
                description=description[:255],
                quantity=quantity,
                unit_price=storable(unit_price),
                amount=storable(amount, contract.currency),
                currency=contract.currency,
                date=date,
                key=key,
            )
    except IntegrityError:
        return None  # another runner wrote it first
    if entries:
        BillingLine.entries.through.objects.bulk_create(
            [BillingLine.entries.through(billingline_id=line.pk, ledgerentry_id=pk) for pk in entries],
            batch_size=2000,
        )
    if breaches:
        line.breaches.set(breaches)
    return line


def _credit_wording(contract: Contract) -> str:
    """What a service-credit line is, seen from the contract's side."""
    supplier = contract.counterparty_role == Contract.Role.CUSTOMER
    return "service credit to the customer" if supplier else "claim on the vendor"


def _period_row(contract: Contract, span: P.Span) -> BillingPeriod:
    row, _ = BillingPeriod.objects.get_or_create(
        contract=contract,
        index=span.index,
        defaults={
            "organization_id": contract.organization_id,
            "start_date": span.start_date,
            "end_date": span.last_day,
        },
    )
    return row


def _system_entry(contract: Contract, key: str, **fields) -> LedgerEntry:
    """Post once (or find the posting made before)."""
    entry = ledger.post_system_entry(contract=contract, system_key=key, **fields)
    return entry or LedgerEntry.objects.get(organization_id=contract.organization_id, system_key=key)


def _charge_line(
    contract: Contract, row: BillingPeriod, span: P.Span, date: dt.date, timeline: Timeline
) -> BillingLine | None:
    charge = P.period_charge(contract, span, timeline)
    if charge is None:
        return None
    plan = P.plan_of(timeline, span)
    return _line(
        contract,
        key=f"period_charge:period:{row.pk}",
        kind=K.PERIOD_CHARGE,
        period=row,
        description=f"{contract.reference}: {plan.billing_period} charge, {span.start_date} to {span.last_day}",
        quantity=Decimal(1),
        unit_price=charge,
        amount=charge,
        date=date,
    )


# --- opening and closing periods ----------------------------------------------------------------


def open_period(contract: Contract, span: P.Span, *, now: dt.datetime, timeline: Timeline | None = None) -> bool:
    """At a period's start: its included hours and prepaid lot, the prepay line, an in-advance
    charge, all by the plan in force on the period's first day."""
    row = _period_row(contract, span)
    if row.opened_at is not None:
        return False
    timeline = timeline or Timeline(contract)
    plan = P.plan_of(timeline, span)
    if plan.hours_per_period:
        _system_entry(
            contract,
            f"billing:included:period:{row.pk}",
            entry_type=T.CREDIT,
            reason_code=R.INCLUDED_HOURS,
            hours=plan.hours_per_period,
            occurred_at=span.start,
            expires_at=span.end,
            at=now,
            description=f"Hours included in period {span.index + 1} ({span.start_date} to {span.last_day})",
        )
    if plan.prepay_hours_per_period:
        months = plan.prepay_expiry_months
        lot = _system_entry(
            contract,
            f"billing:prepay:period:{row.pk}",
            entry_type=T.CREDIT,
            reason_code=R.PREPAY,
            hours=plan.prepay_hours_per_period,
            occurred_at=span.start,
            at=now,
            expires_at=contract.start_of_day(contract_services.add_months(span.start_date, months)) if months else None,
            description=f"Prepaid hours of period {span.index + 1}",
        )
        price = plan.prepay_price_per_hour or Decimal(0)
        _line(
            contract,
            key=f"prepay_purchase:period:{row.pk}",
            kind=K.PREPAY_PURCHASE,
            period=row,
            description=f"{contract.reference}: {lot.hours} prepaid hours for period {span.index + 1}",
            quantity=lot.hours,
            unit_price=price,
            amount=lot.hours * price,
            date=span.start_date,
            entries=[lot.pk],
        )
    if plan.invoice_timing == Contract.InvoiceTiming.IN_ADVANCE:
        _charge_line(contract, row, span, span.start_date, timeline)
    if span.index == 0:
        _bill_penalties_before(contract, span)
    row.opened_at = now
    row.save(update_fields=["opened_at"])
    record_event(
        type="billing.period_opened",
        obj=row,
        # The stored row's id and number, as /periods and the period_closed payload give them.
        payload={
            "contract": contract.pk,
            "id": row.pk,
            "index": span.index,
            "number": span.index + 1,
            "start_date": span.start_date,
        },
        occurred_at=now,
    )
    return True


def close_period(contract: Contract, span: P.Span, *, now: dt.datetime, timeline: Timeline | None = None) -> bool:
    """At a period's end: book the expiries, the rollover lot and the overage settlement; write the
    overage, service-credit and in-arrears lines; close the books up to the end. The rates are
    those of the plan in force on the period's first day."""
    row = _period_row(contract, span)
    if row.status == BillingPeriod.Status.CLOSED:
        return False
    timeline = timeline or Timeline(contract)
    plan = P.plan_of(timeline, span)
    for lot_id, contract_id in list(ledger.unexpired_lots(now=span.end, contract=contract)):
        ledger.expire_lot(lot_id, contract_id, at=now)
    included = LedgerEntry.objects.filter(
        organization_id=contract.organization_id, system_key=f"billing:included:period:{row.pk}"
    ).first()
    following = P.next_span(contract, span, timeline)
    ended = P.ended_at(contract)
    if following is not None and ended is not None and following.start >= ended:
        following = None  # terminated: no period follows to take a rollover (it would never open)
    if included is not None and plan.rollover_percent and following is not None:
        expiry = LedgerEntry.objects.get(lot=included, reason_code=R.LOT_EXPIRED)
        rollover = (-expiry.hours * plan.rollover_percent / 100).quantize(HUNDREDTH, rounding=ROUND_DOWN)
        if rollover > 0:
            _system_entry(
                contract,
                f"billing:rollover:period:{row.pk}",
                entry_type=T.CREDIT,
                reason_code=R.ROLLOVER,
                hours=rollover,
                occurred_at=span.end,
                at=now,
                expires_at=following.end,
                lot=included,
                description=f"{plan.rollover_percent}% of period {span.index + 1}'s unused included hours",
            )
    # The period's figures are final now: what follows is posted at its end, into the next period.
    figures = P.compute(contract, now=span.end, closed={span.index}, timeline=timeline)[span.index]
    in_period = LedgerEntry.objects.filter(contract=contract, occurred_at__gte=span.start, occurred_at__lt=span.end)
    if plan.overage_rate is not None and figures.overage_hours > 0:
        settlement = _system_entry(
            contract,
            f"billing:overage:period:{row.pk}",
            entry_type=T.CREDIT,
            reason_code=R.OVERAGE_BILLED,
            hours=figures.overage_hours,
            occurred_at=span.end,
            at=now,
            description=f"Overage of period {span.index + 1} billed",
        )
        # What used the hours: the period's work and hand adjustments that took hours.
        used = Q(entry_type=T.WORK) | Q(entry_type=T.ADJUSTMENT, reason_code="", hours__lt=0)
        work = in_period.filter(used).values_list("pk", flat=True)
        hours = figures.overage_hours.quantize(HUNDREDTH, rounding=ROUND_HALF_UP)  # as the ledger keeps them
        _line(
            contract,
            key=f"overage:period:{row.pk}",
            kind=K.OVERAGE,
            period=row,
            description=f"{contract.reference}: {hours} hours beyond the available hours",
            quantity=hours,
            unit_price=plan.overage_rate,
            amount=hours * plan.overage_rate,
            date=span.last_day,
            entries=[settlement.pk, *work],
        )
    # Not one a line of its own bills already (dated in no period when posted, before an
    # amendment dated back gave it one): billed once.
    in_period_penalties = in_period.filter(entry_type=T.PENALTY, billing_lines__isnull=True)
    penalties = list(in_period_penalties.values_list("pk", "amount", "breach_id", "reason_code"))
    net = sum((amount for _, amount, _, _ in penalties), Decimal(0))
    if net:
        # Named by what it holds: penalties posted by hand, with or without a breach, are the
        # statement's `posted_penalties`; the system's are the breaches' own.
        linked = [reason != R.MANUAL for _, _, _, reason in penalties]
        what = " and ".join(
            part
            for part, present in (("SLA breaches", any(linked)), ("penalties posted by hand", not all(linked)))
            if present
        )
        _line(
            contract,
            key=f"service_credit:period:{row.pk}",
            kind=K.SERVICE_CREDIT,
            period=row,
            description=f"{contract.reference}: {_credit_wording(contract)} for {what} in period {span.index + 1}",
            quantity=Decimal(1),
            unit_price=-net,
            amount=-net,
            date=span.last_day,
            entries=[pk for pk, _, _, _ in penalties],
            breaches=sorted({breach for _, _, breach, _ in penalties if breach}),
        )
    if plan.invoice_timing == Contract.InvoiceTiming.IN_ARREARS:
        _charge_line(contract, row, span, span.last_day, timeline)
    row.status, row.closed_at = BillingPeriod.Status.CLOSED, now
    figures.period_id = row.pk  # as the API shows the period (`periods.compute` reads it from the rows)
    row.figures = figures.as_dict(contract.currency)
    row.save(update_fields=["status", "closed_at", "figures"])
    Contract.objects.filter(pk=contract.pk).update(books_closed_at=span.end)
    contract.books_closed_at = span.end
    record_event(
        type="billing.period_closed",
        obj=row,
        payload={"contract": contract.pk, **row.figures},
        occurred_at=now,
    )
    return True


def bill_contract(contract: Contract, *, now: dt.datetime, log=lambda message: None) -> int:
    """Open every begun period and close every ended one, in order. The contract is locked.

    A run after the contract expired (cron was down) still opens the periods of its term; a
    terminated contract's periods open only if they began before the termination."""
    done = 0
    rows = {r.index: r for r in BillingPeriod.objects.filter(contract=contract)}
    ended = P.ended_at(contract)
    timeline = Timeline(contract)
    for span in P.spans(contract, until=now, timeline=timeline):
        row = rows.get(span.index)
        opened = row is not None and row.opened_at is not None
        runs = contract.status in (*OPENS, Contract.Status.EXPIRED, Contract.Status.RENEWED) or (
            ended is not None and span.start < ended
        )
        if not opened and runs and open_period(contract, span, now=now, timeline=timeline):
            opened = True
            log(f"{contract.reference}: period {span.index + 1} opened ({span.start_date})")
        closed = row is not None and row.status == BillingPeriod.Status.CLOSED
        if opened and not closed and span.end <= now and close_period(contract, span, now=now, timeline=timeline):
            done += 1
            log(f"{contract.reference}: period {span.index + 1} closed ({span.start_date} to {span.last_day})")
    return done


def run_billing(*, now: dt.datetime, log=lambda message: None, failures: list[str] | None = None) -> int:
    """The `run_lifecycle` step: every contract with a billing plan, each under its lock (SKIP
    LOCKED, so runners on several machines share the work). Returns the periods closed."""
    horizon = (now + dt.timedelta(hours=14)).date()
    # A plan with periods today, or in any version of the terms (amended to or from `none`).
    periodic = [p for p in Contract.BillingPeriod.values if p != Contract.BillingPeriod.NONE]
    due = Contract.objects.filter(
        Q(billing_period__in=periodic)
        | Q(pk__in=TermVersion.objects.filter(terms__billing_period__in=periodic).values("contract_id")),
        start_date__lte=horizon,
        status__in=[*OPENS, *contract_services.CLOSED],
    )
    closed = 0
    for pk in contract_services._candidates(due):
        label = partial(contract_services.contract_label, pk)
        with contract_services.skipping_failures(failures, label, log), transaction.atomic():
            contract = contract_services._lock_if(pk)
            if contract is not None:
                closed += bill_contract(contract, now=now, log=log)
    return closed


def closed_period_fault(*, contract: Contract, effective_date: dt.date) -> str | None:
    """An amendment never takes effect inside or before a closed period: its figures and lines are
    final (the guard `contracts.amendments` asks, for admins too)."""
    last_closed = (
        BillingPeriod.objects.filter(contract_id=contract.pk, status=BillingPeriod.Status.CLOSED)
        .order_by("-end_date")
        .values_list("end_date", flat=True)
        .first()
    )
    if last_closed is not None and effective_date <= last_closed:
        return (
            f"Must be after {last_closed}, the last day of a closed billing period: "
            "its figures and billing lines are final."
        )
    return None


# What `open_period` posts and writes from the plan in force on the period's first day: the
# period's length (its row and the included lot's expiry), the included and prepaid lots, the
# prepay line and an in-advance charge (with its anniversary increase).
OPENING_TERMS = (
    "billing_period", "period_charge", "annual_increase_percent", "invoice_timing", "hours_per_period",
    "prepay_hours_per_period", "prepay_price_per_hour", "prepay_expiry_months",
)  # fmt: skip


def opened_period_faults(*, contract: Contract, effective_date: dt.date, changes: dict) -> dict[str, str]:
    """What an opened, not yet closed period cannot take any more (the guard `contracts.amendments`
    asks, for admins too). Its lots, prepay line and in-advance charge were written by the plan in
    force on its first day, and its included hours expire at its last day's end (found by a finance
    sweep, both):

    - an amendment of those terms effective on or before its first day (one effective today, the 1st,
      approved after `run_lifecycle` opened the month) changed its plan afterwards: `/periods` showed
      the new charge and hours while the exported line and the ledger kept the old. A change inside a
      period takes effect from the next period, so such an amendment is dated after the first day;
    - an expiry before its last day cut it after it was opened: it closed at the new end with its
      included hours still unexpired, and their expiry at the old end then changed the closed period's
      figures (expired hours) after its close. Ending sooner than that is a termination (the period
      begun is billed in full, as the last, shorter period of a term is)."""
    named = sorted(name for name in OPENING_TERMS if name in changes)
    expiry = changes.get("expiry_date") if "expiry_date" in changes else None
    if not named and expiry is None:
        return {}
    opened = (
        BillingPeriod.objects.filter(contract_id=contract.pk, opened_at__isnull=False)
        .exclude(status=BillingPeriod.Status.CLOSED)
        .order_by("-start_date")
        .values_list("start_date", "end_date")
        .first()
    )
    if opened is None:
        return {}
    start, end = opened
    faults = {}
    if named and effective_date <= start:
        faults["effective_date"] = (
            f"Must be after {start}: the billing period {start} to {end} was opened with the terms this "
            f"changes ({', '.join(named)}), and its lots and lines are written; an amendment dated inside "
            "a period changes the billing plan from the next period."
        )
    if expiry is not None and dt.date.fromisoformat(str(expiry)) < end:
        faults["changes.expiry_date"] = (
            f"Must not be before {end}, the last day of the opened billing period {start} to {end} (its "
            "included hours expire then); to stop the contract sooner, terminate it."
        )
    return faults


# --- auto top-up --------------------------------------------------------------------------------


def on_entry_posted(event) -> bool:
    """A posting that uses hours (work, a negative adjustment) and brings the remaining hours below
    the plan's threshold buys one top-up lot. Runs under the contract's lock (in the posting's
    transaction), so concurrent postings see one crossing each; a lot's expiry buys nothing."""
    payload = event.payload
    if payload.get("entry_type") not in (T.WORK, T.ADJUSTMENT) or payload.get("reason_code"):
        return False
    contract = Contract.objects.get(pk=payload["contract"])
    trigger = LedgerEntry.objects.get(pk=event.object_id)
    timeline = Timeline(contract)
    terms = timeline.at(trigger.occurred_at)  # the plan in force when the hours were used
    plan = terms.auto_top_up
    if not plan:
        return False
    charged = Decimal(payload["charged_hours"])
    effect = -charged if payload["entry_type"] == T.WORK else charged
    after = Decimal(payload["remaining_hours"])
    threshold = Decimal(str(plan["threshold_hours"]))
    if not after - effect >= threshold > after:
        return False
    hours = Decimal(str(plan["hours"])) - (after if plan["mode"] == "to" else 0)
    lot = ledger.post_system_entry(
        contract=contract,
        system_key=f"top_up:entry:{trigger.pk}",
        entry_type=T.CREDIT,
        reason_code=R.TOP_UP,
        hours=hours.quantize(HUNDREDTH, rounding=ROUND_HALF_UP),
        occurred_at=trigger.occurred_at,
        # The posting that crossed the threshold bought it: its actor and instant.
        actor=event.actor,
        at=event.occurred_at,
        description=f"Automatic top-up: {after} hours remained, below the threshold of {threshold}",
    )
    if lot is None:
        return False
    price = P.top_up_price(terms)
    begun = P.spans(contract, until=lot.occurred_at, timeline=timeline)
    span = next((s for s in reversed(begun) if s.start <= lot.occurred_at), None)
    line = _line(
        contract,
        key=f"top_up:entry:{lot.pk}",
        kind=K.TOP_UP,
        period=_period_row(contract, span) if span else None,
        description=f"{contract.reference}: automatic top-up of {lot.hours} hours",
        quantity=lot.hours,
        unit_price=price,
        amount=lot.hours * price,
        date=contract.local_today(lot.occurred_at),
        entries=[lot.pk, trigger.pk],
    )
    record_event(
        type="ledger.topped_up",
        obj=lot,
        object_type="ledger_entry",
        payload={
            "contract": contract.pk,
            "hours": lot.hours,
            "remaining_before": after.quantize(HUNDREDTH),
            "threshold_hours": threshold.quantize(HUNDREDTH),  # as the plan was written: "2" is "2.00"
            "trigger": trigger.pk,
            "billing_line": line.pk if line else None,
        },
        actor=event.actor,
        occurred_at=event.occurred_at,
    )
    return True


# --- penalties in no period ---------------------------------------------------------------------


def on_penalty_posted(event) -> bool:
    """A penalty (or a waiver's reversal) dated in no billing period of the contract: no period's
    close takes it (`close_period` takes those dated in the period), so it gets a `service_credit`
    line of its own, without a period. Found by finance sweeps: a breach settled or waived after
    the term, before the first period or in a stretch under a plan without periods, or a goodwill
    penalty posted then, was on the statement and the balance but in no billing line. Runs in the
    posting's transaction, once per entry (`key`)."""
    if event.payload.get("entry_type") != T.PENALTY:
        return False
    entry = LedgerEntry.objects.select_related("contract").get(pk=event.object_id)
    where = P.outside_periods(entry.contract, entry.occurred_at) if entry.amount else None
    return where is not None and _penalty_line(entry.contract, entry, where) is not None


def _penalty_line(contract: Contract, entry: LedgerEntry, where: str) -> BillingLine | None:
    what = "a penalty posted by hand" if entry.reason_code == R.MANUAL else "an SLA breach"
    if entry.reverses_id is not None:
        what = f"the reversal of the penalty for {what} (waived)"
    return _line(
        contract,
        key=f"service_credit:entry:{entry.pk}",
        kind=K.SERVICE_CREDIT,
        period=None,
        description=f"{contract.reference}: {_credit_wording(contract)} for {what}, {where}",
        quantity=Decimal(1),
        unit_price=-entry.amount,
        amount=-entry.amount,
        date=contract.local_today(entry.occurred_at),
        entries=[entry.pk],
        breaches=[entry.breach_id] if entry.breach_id else (),
    )


def _bill_penalties_before(contract: Contract, span: P.Span) -> None:
    """At the first period's opening: the penalties dated before it that no line bills yet. They
    were posted while no version of the terms had periods (a plan amended from `none` later), so
    `on_penalty_posted` left them, as a contract billed elsewhere; now that it is billed here,
    they are not dropped."""
    unbilled = LedgerEntry.objects.filter(
        contract=contract, entry_type=T.PENALTY, occurred_at__lt=span.start, billing_lines__isnull=True
    ).exclude(Q(amount=0) | Q(amount__isnull=True))
    for entry in unbilled.order_by("occurred_at", "pk"):
        _penalty_line(contract, entry, "before the first billing period")


# --- exports ------------------------------------------------------------------------------------


@transaction.atomic
def export_pending(
    *, organization, actor, contract: Contract | None = None, date_from=None, date_to=None, line_ids=None
) -> ExportBatch:
    """Every pending line (optionally of one contract, dated within [date_from, date_to], or among
    `line_ids`) into one new batch, atomically: a line is in exactly one batch, however many
    exports run at once (the lines are locked; a second export finds them exported)."""
    lines = BillingLine.objects.filter(organization=organization, status=BillingLine.Status.PENDING)
    if contract is not None:
        lines = lines.filter(contract=contract)
    if date_from is not None:
        lines = lines.filter(date__gte=date_from)
    if date_to is not None:
        lines = lines.filter(date__lte=date_to)
    if line_ids is not None:
        lines = lines.filter(pk__in=line_ids)
    ids = list(lines.select_for_update().order_by("pk").values_list("pk", flat=True))
    batch = ExportBatch.objects.create(
        organization=organization,
        contract=contract,
        date_from=date_from,
        date_to=date_to,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    taken = BillingLine.objects.filter(pk__in=ids, status=BillingLine.Status.PENDING)
    batch.line_count = taken.update(status=BillingLine.Status.EXPORTED, batch=batch)
    totals: dict[str, Decimal] = {}
    for currency, amount in batch.lines.values_list("currency", "amount").iterator(chunk_size=5000):
        totals[currency] = totals.get(currency, Decimal(0)) + quantize(amount, currency)  # as the lines show
    batch.totals = {currency: str(quantize(total, currency)) for currency, total in sorted(totals.items())}
    batch.save(update_fields=["line_count", "totals"])
    record_event(
        type="billing.exported",
        obj=batch,
        actor=actor,
        object_type="export_batch",
        payload={"lines": batch.line_count, "totals": batch.totals, "contract": contract, "date_to": date_to},
    )
    return batch


# --- contract templates -------------------------------------------------------------------------

TEMPLATE_SNAPSHOT = ["name", "contract_type", "term_months", "currency", "active", *BILLING_PLAN_MODEL_FIELDS]


def _check_template_money(template: ContractTemplate, written) -> None:
    """A template's period charge is money of its currency, as a contract's (422 naming it)."""
    if "period_charge" not in written and "currency" not in written:
        return
    if template.period_charge is None or not is_currency(template.currency):
        return
    if fault := finer_than_currency(template.period_charge, template.currency):
        raise Unprocessable(f"period_charge: finer than {template.currency} allows.", {"period_charge": [fault]})


@transaction.atomic
def create_template(*, organization, actor, data: dict) -> ContractTemplate:
    _check_template_money(ContractTemplate(organization=organization, **data), written=data)
    template = ContractTemplate.objects.create(organization=organization, **data)
    record_event(
        type="contract_template.created", obj=template, actor=actor, payload=snapshot(template, TEMPLATE_SNAPSHOT)
    )
    return template


@transaction.atomic
def update_template(*, instance: ContractTemplate, actor, data: dict) -> ContractTemplate:
    """A later change to a template changes no contract made from it (they hold their own copy)."""
    # The row as it is now, locked: `instance` was read before this transaction (concurrent
    # PATCHes of different fields lost each other's).
    template = locked(ContractTemplate, instance)
    changes = apply_changes(template, data)
    _check_template_money(template, written=changes)
    if changes:
        template.save()
        record_event(type="contract_template.updated", obj=template, actor=actor, payload={"changes": changes})
    return template


@transaction.atomic
def delete_template(*, instance: ContractTemplate, actor) -> None:
    template = locked(ContractTemplate, instance)
    record_event(
        type="contract_template.deleted", obj=template, actor=actor, payload=snapshot(template, TEMPLATE_SNAPSHOT)
    )
    try:
        template.delete()
    except ProtectedError:
        raise Conflict(
            f"Contract template {template.pk} has contracts made from it; deactivate it (active: false) instead."
        ) from None


def _nested(exc: Unprocessable, prefix: str) -> Unprocessable:
    errors = {f"{prefix}.{name}": messages for name, messages in (exc.errors or {}).items()}
    return Unprocessable(f"{prefix}: {exc.message}", errors or {prefix: [exc.message]})


@transaction.atomic
def instantiate_template(*, template: ContractTemplate, actor, contract_data: dict) -> Contract:
    """A draft contract with the template's terms, line items and SLA rules (validated contract
    fields in `contract_data`: the template's values with the caller's overrides)."""
    if not template.active:
        raise Conflict(f"Contract template {template.pk} is not active.")
    organization = template.organization
    contract = contract_services.create_contract(organization=organization, actor=actor, data=contract_data)
    LineItem.objects.bulk_create(
        LineItem(organization=organization, contract=contract, **item) for item in template.line_items
    )
    for n, rule in enumerate(template.sla_rules):
        data = {key: value for key, value in rule.items() if key != "calendar_id"}
        if rule.get("calendar_id") is not None:
            calendar = Calendar.objects.filter(organization=organization, pk=rule["calendar_id"]).first()
            if calendar is None:
                raise Unprocessable(
                    "The template refers to a calendar that no longer exists.",
                    {f"sla_rules[{n}].calendar_id": [f"Calendar {rule['calendar_id']} does not exist."]},
                )
            data["calendar"] = calendar
        try:
            create_rule(organization=organization, actor=actor, data={**data, "contract": contract})
        except Unprocessable as exc:
            raise _nested(exc, f"sla_rules[{n}]") from None
    TemplateUse.objects.create(organization=organization, contract=contract, template=template)
    record_event(
        type="contract_template.instantiated",
        obj=template,
        actor=actor,
        payload={"contract": contract.pk, "reference": contract.reference},
    )
    return contract


def template_contract_data(template: ContractTemplate) -> dict:
    """The contract fields a template gives (before the caller's overrides), as API input."""
    data = {
        "name": template.name,
        "contract_type": template.contract_type,
        "currency": template.currency,
        **{name: getattr(template, name) for name in BILLING_PLAN_MODEL_FIELDS},
    }
    data = {key: value for key, value in data.items() if value is not None}
    return {key: str(value) if isinstance(value, Decimal) else value for key, value in data.items()}


def template_amounts(template: ContractTemplate) -> list[str]:
    """The template's terms that state money (in its currency), by their paths: the plan's prices,
    the top-up's price, line items' unit prices, SLA rules' penalty clauses and monthly caps."""
    prices = ("period_charge", "overage_rate", "prepay_price_per_hour")
    found = [name for name in prices if getattr(template, name) is not None]
    if (template.auto_top_up or {}).get("price_per_hour") is not None:
        found.append("auto_top_up.price_per_hour")
    items = enumerate(template.line_items or [])
    found += [f"line_items[{n}].unit_price" for n, item in items if item.get("unit_price") is not None]
    for n, rule in enumerate(template.sla_rules or []):
        found += [f"sla_rules[{n}].{name}" for name in ("penalty", "monthly_penalty_cap") if rule.get(name) is not None]
    return found

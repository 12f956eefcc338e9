"""Writes on counterparties (and contracts). Each writes its event in the same transaction."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import logging
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django_fsm import can_proceed

from config import dates
from config.errors import Conflict, Forbidden, NotFound, Unprocessable
from events.feed import hold_order, locked
from events.services import apply_changes, record_event, snapshot
from tenancy.currencies import finer_than_currency, is_currency, quantize

from .billing_plan import BILLING_PLAN_FIELDS, BILLING_PLAN_MODEL_FIELDS
from .geo import bounding_box
from .models import Asset, Contract, ContractApproval, ContractReminder, Counterparty, LineItem, TermVersion
from .references import delete_draft_parts, refuse_if_named
from .terms import Timeline, start_versions

logger = logging.getLogger("contracts")

COUNTERPARTY_FIELDS = ["name", "kind", "reference", "email", "phone", "address", "remarks", "source", "source_id"]


@transaction.atomic
def create_counterparty(*, organization, actor, data: dict) -> Counterparty:
    counterparty = Counterparty.objects.create(organization=organization, **data)
    record_event(
        type="counterparty.created",
        obj=counterparty,
        actor=actor,
        payload=snapshot(counterparty, COUNTERPARTY_FIELDS),
    )
    return counterparty


@transaction.atomic
def update_counterparty(*, instance: Counterparty, actor, data: dict) -> Counterparty:
    # The row as it is now, locked: `instance` was read before this transaction, and saving it
    # whole lost what a concurrent PATCH had changed meanwhile.
    counterparty = locked(Counterparty, instance)
    changes = apply_changes(counterparty, data)
    if changes:
        counterparty.save()
        record_event(
            type="counterparty.updated",
            obj=counterparty,
            actor=actor,
            payload={"changes": changes},
        )
    return counterparty


@transaction.atomic
def delete_counterparty(*, instance: Counterparty, actor) -> None:
    counterparty = locked(Counterparty, instance)
    refuse_if_named(counterparty)
    record_event(
        type="counterparty.deleted",
        obj=counterparty,
        actor=actor,
        payload=snapshot(counterparty, COUNTERPARTY_FIELDS),
    )
    try:
        counterparty.delete()
    except ProtectedError as exc:
        used_by = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise Conflict(
            f"Counterparty {counterparty.pk} is still used by {', '.join(used_by)}; it cannot be deleted."
        ) from None


# --- contracts ----------------------------------------------------------------------------------

TERM_FIELDS = frozenset(
    {
        "contract_type", "counterparty", "counterparty_role", "currency", "contract_value", "start_date",
        "expiry_date", "time_zone", "notice_period_days", "auto_renew", "renewal_term_months", "hours_budget",
        "covered_assets",
        "requires_counterparty_signature",
    }
    | BILLING_PLAN_FIELDS
)  # fmt: skip
CLOSED = (Contract.Status.EXPIRED, Contract.Status.TERMINATED, Contract.Status.RENEWED)
# The lifecycle actions of the API and the admin; the others (activate, expire, mark_renewed) are the clock's.
API_ACTIONS = ("submit", "approve", "reject", "suspend", "resume", "terminate", "give_notice", "renew")
CONTRACT_SNAPSHOT = [
    "reference", "name", "contract_type", "counterparty_id", "counterparty_role", "status", "start_date",
    "expiry_date", "time_zone", "notice_period_days", "auto_renew", "renewal_term_months", "currency",
    "contract_value", "hours_budget", "renewed_from_id", "requires_counterparty_signature",
]  # fmt: skip
REMINDER_WINDOWS = {"expiring": (90, 60, 30, 7), "notice_due": (30, 7)}
# The widest UTC offset (+14:00): a local date has begun somewhere once UTC is this far behind.
_MAX_OFFSET = dt.timedelta(hours=14)


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_end(start: dt.date, months: int) -> dt.date:
    """The last day of a term of `months` months from `start`: the day before the same day of the
    month `months` later or, when that month lacks the day (a term from 31 January or 29 February),
    that month's last day, so the next term starts on the 1st rather than a day early."""
    same_day = add_months(start, months)
    return same_day if same_day.day < start.day else same_day - dt.timedelta(days=1)


def whole_months(start: dt.date, last_day: dt.date) -> int | None:
    """The months of a term from `start` to `last_day` when it is a whole number of them (as
    `term_end` counts), else None."""
    months = (last_day.year - start.year) * 12 + last_day.month - start.month
    return next((m for m in (months, months + 1) if m >= 1 and term_end(start, m) == last_day), None)


# The amounts a contract states in its currency, billed as they stand: its value and the charge of
# a period (nothing multiplies it). Rates and unit prices (`overage_rate`, `prepay_price_per_hour`,
# a top-up's and a line item's price) may be finer: a line's amount is computed and rounded.
STATED_AMOUNTS = ("contract_value", "period_charge")


def _check_money(contract: Contract, written=STATED_AMOUNTS) -> None:
    """The contract's stated amounts are money of its currency: no finer than the minor unit (422
    naming each; found by outside testers, they were rounded: 0.001 EUR to 0.00, a charge of
    1000.5 JPY billed 1001). Those `written`, or all when the currency changes."""
    if not is_currency(contract.currency):
        return
    names = STATED_AMOUNTS if "currency" in written else [n for n in STATED_AMOUNTS if n in written]
    errors = {}
    for name in names:
        value = getattr(contract, name)
        if value is not None and (fault := finer_than_currency(value, contract.currency)):
            errors[name] = [fault]
    if errors:
        raise Unprocessable(f"{', '.join(errors)}: finer than {contract.currency} allows.", errors)


def _derive(contract: Contract) -> None:
    """Fields the contract keeps for queries: notice date, coverage bounding box, rounded money."""
    contract.notice_date = contract.compute_notice_date()
    if contract.contract_value is not None:
        contract.contract_value = quantize(contract.contract_value, contract.currency)
    box = bounding_box(contract.coverage_areas) if contract.coverage_areas else (None, None, None, None)
    (contract.coverage_min_lon, contract.coverage_min_lat, contract.coverage_max_lon, contract.coverage_max_lat) = box


# The ledger keeps `remaining_hours` under the contract's row lock; a contract write from here
# never carries it, so a stale in-memory copy can never overwrite a posting's balance.
# The same holds for `books_closed_at`, which the billing close keeps under the same lock.
_KEPT_ELSEWHERE = ("remaining_hours", "books_closed_at")
_WRITABLE = [f.name for f in Contract._meta.concrete_fields if not f.primary_key and f.name not in _KEPT_ELSEWHERE]


def _save(contract: Contract) -> None:
    contract.save(update_fields=_WRITABLE)


def _locked(contract: Contract) -> Contract:
    return locked(Contract.objects.select_related("organization"), contract)


def allowed_actions(contract: Contract, now: dt.datetime | None = None) -> list[str]:
    """The API actions open to the contract in its current state."""
    transitions = {t.name for t in contract.get_available_status_transitions()}
    allowed = [name for name in API_ACTIONS if name in transitions]
    if contract.status == Contract.Status.ACTIVE and contract.auto_renew and contract.notice_given_at is None:
        allowed.append("give_notice")
    if contract.status in (Contract.Status.ACTIVE, Contract.Status.SUSPENDED, Contract.Status.EXPIRED):
        allowed.append("renew")
    return allowed


def _illegal(contract: Contract, action: str) -> Conflict:
    allowed = allowed_actions(contract)
    return Conflict(
        f"Cannot {action} a contract that is {contract.status}; "
        f"allowed now: {', '.join(allowed) if allowed else 'none'}."
    )


def _move(contract: Contract, action: str, *, actor, reason: str = "", now=None, **kwargs) -> Contract:
    """Apply one transition, save, and write its `contract.state_changed` event."""
    method = getattr(contract, action)
    if not can_proceed(method):
        raise _illegal(contract, action)
    before = contract.status
    method(**kwargs)
    _save(contract)
    record_event(
        type="contract.state_changed",
        obj=contract,
        actor=actor,
        payload={"from": before, "to": contract.status, "action": action, "reason": reason},
        occurred_at=now,
    )
    return contract


def _on_active(contract: Contract, *, actor, now=None) -> None:
    """A contract has become active: the contract it renews becomes `renewed`."""
    original = contract.renewed_from
    if original is not None and can_proceed(original.mark_renewed):
        _move(_locked(original), "mark_renewed", actor=actor, reason=f"renewed by {contract.reference}", now=now)


def _check_counterparty_role(contract: Contract) -> None:
    """A vendor cannot be the customer side of a contract, nor a customer the vendor side; a
    counterparty of kind `both` can be either (422 naming counterparty_role)."""
    counterparty = contract.counterparty
    if counterparty is None or not contract.counterparty_role:
        return
    if counterparty.kind not in (Counterparty.Kind.BOTH, contract.counterparty_role):
        raise Unprocessable(
            f"Counterparty {counterparty.pk} is a {counterparty.kind}; it cannot be the {contract.counterparty_role} "
            "on a contract.",
            {"counterparty_role": [f"Must be {counterparty.kind} for this counterparty (or use one of kind both)."]},
        )


@transaction.atomic
def create_contract(*, organization, actor, data: dict) -> Contract:
    # The order before the checks: an asset's move holds it while it checks that no contract covers
    # the asset, so the covered assets' counterparties are read as they are (`_check_covered_assets`).
    hold_order([organization.pk])
    data = {"time_zone": organization.default_time_zone, "currency": organization.default_currency, **data}
    assets = data.pop("covered_assets", None) or []
    contract = Contract(organization=organization, **data)
    _check_counterparty_role(contract)
    _check_notice(contract)
    _check_covered_assets(contract, assets)
    _check_money(contract)
    _derive(contract)
    contract.save()
    contract.covered_assets.set(assets)
    payload = {**snapshot(contract, CONTRACT_SNAPSHOT), "covered_assets": sorted(a.pk for a in assets)}
    record_event(type="contract.created", obj=contract, actor=actor, payload=payload)
    return contract


def _check_notice(contract: Contract) -> None:
    """The notice date falls in the term: notice due before the contract has begun cannot be given
    (found by an outside sweep: 400 days' notice on a one-year term); 422 naming the period."""
    notice = contract.compute_notice_date()
    if notice is not None and contract.start_date is not None and notice < contract.start_date:
        raise Unprocessable(
            "The notice period is longer than the term: notice would be due before the contract starts.",
            {"notice_period_days": [f"At most {(contract.expiry_date - contract.start_date).days} for this term."]},
        )


def _check_covered_assets(contract: Contract, assets) -> None:
    """A contract covers assets of its own counterparty only (422 naming `covered_asset_ids`). Their
    counterparties as they are now, under the organization's order, which an asset's move holds:
    `assets` were read before the transaction, and a move committed since was not seen."""
    ids = [a.pk for a in assets]
    others = Asset.objects.filter(pk__in=ids).exclude(counterparty_id=contract.counterparty_id) if ids else None
    foreign = sorted(others.values_list("pk", flat=True)) if others is not None else []
    if foreign:
        raise Unprocessable(
            "A contract covers only assets of its own counterparty.",
            {"covered_asset_ids": [f"Asset {pk} belongs to another counterparty." for pk in foreign]},
        )


def _covered_asset_changes(contract: Contract, data: dict) -> dict:
    """Pop `covered_assets` out of `data`; the change of the set as `{"before": ids, "after": ids}`."""
    before = sorted(contract.covered_assets.values_list("pk", flat=True)) if contract.pk else []
    if "covered_assets" not in data:
        return {}
    after = sorted(a.pk for a in data.pop("covered_assets"))
    return {} if after == before else {"before": before, "after": after}


@transaction.atomic
def update_contract(*, instance: Contract, actor, data: dict) -> Contract:
    contract = _locked(instance)
    data = dict(data)
    assets = data.get("covered_assets")
    asset_change = _covered_asset_changes(contract, data)
    changing = {name for name, value in data.items() if getattr(contract, name) != value}
    if asset_change:
        changing.add("covered_assets")
    if contract.status in CLOSED and changing:
        raise Conflict(f"The contract is {contract.status}; it can no longer be edited.")
    terms = sorted(changing & TERM_FIELDS)
    if terms and contract.status != Contract.Status.DRAFT:
        raise Conflict(
            f"Terms ({', '.join(terms)}) can only be changed while the contract is a draft; it is {contract.status}. "
            f"Change them from a date with POST /api/v1/contracts/{contract.pk}/amendments.",
            {name: ["Only editable in draft."] for name in terms},
        )
    changes = apply_changes(contract, data)
    if asset_change or "counterparty" in changes:
        _check_covered_assets(contract, assets if asset_change else contract.covered_assets.all())
    if asset_change:
        contract.covered_assets.set(assets)
        changes["covered_assets"] = asset_change
    if changes:
        _check_counterparty_role(contract)
        _check_notice(contract)
        _check_renewal_start(contract)
        _check_money(contract, written=changes)
        _derive(contract)
        _save(contract)
        record_event(type="contract.updated", obj=contract, actor=actor, payload={"changes": changes})
    return contract


def _check_renewal_start(contract: Contract) -> None:
    """A renewal starts after the contract it renews ends (its last day as its approved terms
    stand), or began when that one is open-ended; 422 naming start_date. Found by outside sweeps:
    a renewal's draft could start before its original, and one starting within the original's
    term cut that term short when it activated, without notice or termination (an amendment of
    the original's expiry was already refused from reaching its renewal's start)."""
    original = contract.renewed_from
    if original is None or contract.start_date is None:
        return
    last_day = Timeline(original).last_day()
    if last_day is not None and contract.start_date <= last_day:
        raise Unprocessable(
            "A renewal starts after the contract it renews ends.",
            {
                "start_date": [
                    f"Must be after {last_day.isoformat()}, when {original.reference} ends "
                    "(to renew early, amend its expiry date first)."
                ]
            },
        )
    if original.start_date and contract.start_date <= original.start_date:
        raise Unprocessable(
            "A renewal starts after the contract it renews began.",
            {"start_date": [f"Must be after {original.start_date.isoformat()}, when {original.reference} began."]},
        )


@transaction.atomic
def delete_contract(*, instance: Contract, actor) -> None:
    contract = _locked(instance)
    if contract.status != Contract.Status.DRAFT:
        raise Conflict(f"Only a draft can be deleted; this contract is {contract.status}.")
    refuse_if_named(contract)
    record_event(type="contract.deleted", obj=contract, actor=actor, payload=snapshot(contract, CONTRACT_SNAPSHOT))
    delete_draft_parts(contract, actor=actor)  # its visit plans (a renewal's, carried), as its SLA rules
    try:
        contract.delete()
    except ProtectedError as exc:  # its visit plans, a contract rule that assigns it, signature requests
        used_by = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise Conflict(
            f"Contract {contract.pk} is still used by {', '.join(used_by)}; it cannot be deleted "
            "(contract rules can be deleted first; signature requests are kept)."
        ) from None


@transaction.atomic
def submit_contract(*, contract: Contract, actor) -> Contract:
    contract = _locked(contract)
    if not can_proceed(contract.submit):
        raise _illegal(contract, "submit")
    missing = {}
    if contract.start_date is None:
        missing["start_date"] = ["Required to submit."]
    if contract.auto_renew:
        if contract.expiry_date is None:
            missing["expiry_date"] = ["Required to submit a contract with auto_renew."]
        if not contract.renewal_term_months:
            missing["renewal_term_months"] = ["Required to submit a contract with auto_renew."]
    if missing:
        raise Unprocessable(f"Cannot submit: missing {', '.join(missing)}.", missing)
    contract.submitted_by = actor
    contract.submitted_at = timezone.now()
    contract.approval_round += 1
    return _move(contract, "submit", actor=actor)


def _decide(
    contract: Contract, actor, decision: str, comment: str, at: dt.datetime, amendment=None
) -> ContractApproval:
    """One approver's decision in the current approval round of the contract (or of an amendment)."""
    return ContractApproval.objects.create(
        organization_id=contract.organization_id,
        contract=contract,
        amendment=amendment,
        approval_round=(amendment or contract).approval_round,
        approver=actor,
        decision=decision,
        comment=comment,
        decided_at=at,
    )


def record_approval(*, contract: Contract, actor, comment: str, now: dt.datetime, amendment=None) -> bool:
    """Dual approval, for a contract and for each of its amendments alike: two different managers
    or admins, neither the submitter. Records the actor's approval in the current round; True
    once the round has its two approvals."""
    subject = amendment or contract
    what = "amendment" if amendment is not None else "contract"
    if subject.submitted_by_id == actor.pk:
        raise Forbidden(f"You submitted this {what}, so you cannot approve it: two other approvers are needed.")
    approvals = ContractApproval.objects.filter(
        contract=contract,
        amendment=amendment,
        approval_round=subject.approval_round,
        decision=ContractApproval.Decision.APPROVED,
    )
    if approvals.filter(approver=actor).exists():
        raise Forbidden(f"You have already approved this {what}; a second, different approver is needed.")
    _decide(contract, actor, ContractApproval.Decision.APPROVED, comment, now, amendment=amendment)
    return approvals.count() >= 2


# Conditions of higher apps that must hold before an approved contract leaves pending approval:
# `gate(contract) -> str | None` (None: satisfied; else what is still missing), registered in the
# app's AppConfig.ready() (the signing app: a counterparty signature where the terms require one).
APPROVAL_GATES: dict[str, Callable[[Contract], str | None]] = {}


def register_approval_gate(name: str, gate: Callable[[Contract], str | None]) -> None:
    APPROVAL_GATES[name] = gate


def approval_missing(contract: Contract) -> list[str]:
    """What still keeps a dually approved contract pending (empty: nothing)."""
    return [reason for gate in APPROVAL_GATES.values() if (reason := gate(contract))]


def waiting_for(contract: Contract) -> list[str]:
    """While pending approval, what the contract still waits for: the internal approvals of its
    current round (read from `contract.approvals.all()`, so a page prefetches them once) and the
    gates of `approval_missing`; empty in any other state. REST's and GraphQL's `waiting_for`."""
    if contract.status != Contract.Status.PENDING_APPROVAL:
        return []
    approved = sum(
        1
        for a in contract.approvals.all()
        if a.approval_round == contract.approval_round and a.amendment_id is None and a.decision == "approved"
    )
    missing = [f"{2 - approved} more internal approval{'s' if approved == 0 else ''}"] if approved < 2 else []
    return missing + approval_missing(contract)


def _complete_approval(contract: Contract, *, actor, reason: str, now: dt.datetime) -> Contract:
    """Dual approval is complete and no gate holds it back: scheduled or active, versions begin."""
    target = Contract.Status.ACTIVE
    if contract.start_date > contract.local_today(now):
        target = Contract.Status.SCHEDULED
    _move(contract, "approve", actor=actor, reason=reason, now=now, target=target)
    origin = "renewal" if contract.renewed_from_id else "creation"
    start_versions(contract, origin=origin, now=now)
    if target == Contract.Status.ACTIVE:
        _on_active(contract, actor=actor, now=now)
    return contract


@transaction.atomic
def complete_approval_if_ready(*, contract: Contract, actor=None, reason: str, now: dt.datetime | None = None) -> bool:
    """For a gate that has just been satisfied (a counterparty signed): move the contract on if
    its current round already has both internal approvals. True when it moved."""
    now = now or timezone.now()
    contract = _locked(contract)
    if contract.status != Contract.Status.PENDING_APPROVAL or approval_missing(contract):
        return False
    approved = ContractApproval.objects.filter(
        contract=contract,
        amendment=None,
        approval_round=contract.approval_round,
        decision=ContractApproval.Decision.APPROVED,
    ).count()
    if approved < 2:
        return False
    _complete_approval(contract, actor=actor, reason=reason, now=now)
    return True


@transaction.atomic
def approve_contract(*, contract: Contract, actor, comment: str = "", now: dt.datetime | None = None) -> Contract:
    """Dual approval: two different managers or admins, neither the submitter (and, where the terms
    require it, the counterparty's signature: the contract then waits for it)."""
    now = now or timezone.now()
    contract = _locked(contract)
    if not can_proceed(contract.approve):
        raise _illegal(contract, "approve")
    complete = record_approval(contract=contract, actor=actor, comment=comment, now=now)
    record_event(type="contract.approved", obj=contract, actor=actor, payload={"comment": comment}, occurred_at=now)
    if not complete or approval_missing(contract):
        return contract
    return _complete_approval(contract, actor=actor, reason=comment, now=now)


@transaction.atomic
def reject_contract(*, contract: Contract, actor, reason: str) -> Contract:
    contract = _locked(contract)
    if not can_proceed(contract.reject):
        raise _illegal(contract, "reject")
    _decide(contract, actor, ContractApproval.Decision.REJECTED, reason, timezone.now())
    return _move(contract, "reject", actor=actor, reason=reason)


@transaction.atomic
def suspend_contract(*, contract: Contract, actor, reason: str) -> Contract:
    return _move(_locked(contract), "suspend", actor=actor, reason=reason)


@transaction.atomic
def resume_contract(*, contract: Contract, actor, reason: str = "") -> Contract:
    return _move(_locked(contract), "resume", actor=actor, reason=reason)


@transaction.atomic
def terminate_contract(*, contract: Contract, actor, reason: str) -> Contract:
    return _move(_locked(contract), "terminate", actor=actor, reason=reason)


@transaction.atomic
def give_notice(*, contract: Contract, actor, reason: str = "", now: dt.datetime | None = None) -> Contract:
    """Record notice of non-renewal; after the notice date it is too late."""
    now = now or timezone.now()
    contract = _locked(contract)
    if contract.status != Contract.Status.ACTIVE:
        raise _illegal(contract, "give_notice")
    if not contract.auto_renew:
        raise Conflict("This contract has no auto_renew: there is no renewal to give notice of.")
    if contract.notice_given_at is not None:
        raise Conflict(f"Notice was already given at {contract.notice_given_at.isoformat()}.")
    if contract.local_today(now) > contract.notice_date:
        raise Conflict(f"Too late: the notice date was {contract.notice_date}; the contract will renew.")
    contract.notice_given_at, contract.notice_reason = now, reason
    contract.save(update_fields=["notice_given_at", "notice_reason", "updated_at"])
    record_event(type="contract.notice_given", obj=contract, actor=actor, payload={"reason": reason}, occurred_at=now)
    return contract


def _renewal_reference(contract: Contract) -> str:
    """The original's reference with the first free `-R2`, `-R3`, ... suffix (within 64 characters);
    a renewal of a renewal continues the count (C-1-R2 renews as C-1-R3)."""
    base = re.sub(r"-R\d+$", "", contract.reference)
    candidates = (f"{base[: 62 - len(str(n))]}-R{n}" for n in itertools.count(2))
    taken = Contract.objects.filter(organization_id=contract.organization_id)
    return next(c for c in candidates if not taken.filter(reference=c).exists())


def _renewal_dates(contract, start_date, expiry_date, term_months, now) -> tuple[dt.date, dt.date | None]:
    if start_date is None:
        start_date = contract.expiry_date + dt.timedelta(days=1) if contract.expiry_date else contract.local_today(now)
    if expiry_date is None:
        term = term_months or contract.renewal_term_months
        if term:
            expiry_date = term_end(start_date, term)
        elif contract.start_date and contract.expiry_date:
            # The original's length: in months when it ran whole months (a year from 1 November
            # renews to 31 October, across a leap day too), else in days.
            months = whole_months(contract.start_date, contract.expiry_date)
            if months:
                expiry_date = term_end(start_date, months)
            else:
                expiry_date = start_date + (contract.expiry_date - contract.start_date)
    if expiry_date is not None and expiry_date < start_date:
        raise Unprocessable("The renewal cannot expire before it starts.", {"expiry_date": ["Before start_date."]})
    if expiry_date is not None and not dates.in_range(expiry_date):  # a term added to a late start
        raise Unprocessable(
            f"The renewal would expire on {expiry_date.isoformat()}, out of range.",
            {"expiry_date": [f"Must be {dates.RANGE}: give an earlier expiry_date or a shorter term_months."]},
        )
    _check_renewal_start(Contract(renewed_from=contract, start_date=start_date))
    return start_date, expiry_date


LINE_ITEM_FIELDS = ("kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes")


# Billing plan terms a higher app derives for a renewal from the terms it renews:
# `derive(original=, last_day=, start_date=) -> {plan field: value}`, registered in the app's
# AppConfig.ready() (billing: the charge of the last day, with the annual increases due by the
# renewal's first day).
RENEWAL_TERMS: dict[str, Callable[..., dict]] = {}


def register_renewal_terms(name: str, derive: Callable[..., dict]) -> None:
    RENEWAL_TERMS[name] = derive


def _create_renewal(contract: Contract, *, actor, start_date, expiry_date, status, now) -> Contract:
    plan = {name: getattr(contract, name) for name in BILLING_PLAN_MODEL_FIELDS}
    last_day = contract.expiry_date or start_date - dt.timedelta(days=1)
    for derive in RENEWAL_TERMS.values():
        plan.update(derive(original=contract, last_day=last_day, start_date=start_date))
    renewal = Contract.objects.create(
        organization_id=contract.organization_id,
        reference=_renewal_reference(contract),
        name=contract.name,
        description=contract.description,
        contract_type=contract.contract_type,
        counterparty_id=contract.counterparty_id,
        counterparty_role=contract.counterparty_role,
        status=status,
        start_date=start_date,
        expiry_date=expiry_date,
        time_zone=contract.time_zone,
        notice_period_days=contract.notice_period_days,
        notice_date=(expiry_date - dt.timedelta(days=contract.notice_period_days)) if expiry_date else None,
        auto_renew=contract.auto_renew,
        renewal_term_months=contract.renewal_term_months,
        renewed_from=contract,
        currency=contract.currency,
        contract_value=contract.contract_value,
        hours_budget=contract.hours_budget,
        requires_counterparty_signature=contract.requires_counterparty_signature,
        low_balance_threshold_hours=contract.low_balance_threshold_hours,
        allow_overrun=contract.allow_overrun,
        coverage_areas=contract.coverage_areas,
        coverage_min_lon=contract.coverage_min_lon,
        coverage_min_lat=contract.coverage_min_lat,
        coverage_max_lon=contract.coverage_max_lon,
        coverage_max_lat=contract.coverage_max_lat,
        service_territory_id=contract.service_territory_id,
        dispatch_agreement_id=contract.dispatch_agreement_id,
        **plan,
    )
    version = getattr(contract, "terms_version", None)
    if version is not None:  # a view of the terms in force on a date (`terms.Timeline`)
        renewal.covered_assets.set(version.terms.get("covered_assets", []))
        items = [{**item, "organization_id": contract.organization_id} for item in contract.terms_line_items]
    else:
        renewal.covered_assets.set(contract.covered_assets.all())
        items = [
            {"organization_id": item.organization_id, **{name: getattr(item, name) for name in LINE_ITEM_FIELDS}}
            for item in contract.line_items.all()
        ]
    LineItem.objects.bulk_create(LineItem(contract=renewal, **item) for item in items)
    record_event(
        type="contract.created", obj=renewal, actor=actor, payload=snapshot(renewal, CONTRACT_SNAPSHOT), occurred_at=now
    )
    return renewal


def renewal_handover(renewal: Contract) -> tuple[dt.datetime, dt.datetime]:
    """For a renewal: when its original's term ends (the end of its expiry date; the renewal's
    start when the original is open-ended) and when the renewal begins. What was in force at the
    first instant (SLA rules, visit plans) carries on from the second (their apps' handlers of
    `contract.created`)."""
    original = renewal.renewed_from
    starts = renewal.start_of_day(renewal.start_date)
    if original.expiry_date is None:
        return starts, starts
    return original.start_of_day(original.expiry_date + dt.timedelta(days=1)), starts


@transaction.atomic  # it locks the contract (a live server runs in autocommit: a 500 without it)
def renew_contract(
    *, contract: Contract, actor, start_date=None, expiry_date=None, term_months=None, now=None
) -> Contract:
    """Draft the renewal: a new contract with the same terms and line items, linked both ways."""
    now = now or timezone.now()
    contract = _locked(contract)
    if contract.status not in (Contract.Status.ACTIVE, Contract.Status.SUSPENDED, Contract.Status.EXPIRED):
        raise _illegal(contract, "renew")
    existing = Contract.objects.filter(renewed_from=contract).values_list("pk", flat=True).first()
    if existing is not None:
        raise Conflict(f"This contract already has a renewal (id {existing}).")
    # The terms in force on the last day of the term, as auto-renewal reads them (`expire_due`):
    # an approved amendment that takes effect before then is part of what is renewed.
    from .terms import Timeline

    terms = Timeline(contract).on(contract.expiry_date) if contract.expiry_date else contract
    start_date, expiry_date = _renewal_dates(terms, start_date, expiry_date, term_months, now)
    return _create_renewal(
        terms, actor=actor, start_date=start_date, expiry_date=expiry_date, status=Contract.Status.DRAFT, now=now
    )


# --- the clock: run_lifecycle -------------------------------------------------------------------


@dataclass
class LifecycleSummary:
    activated: int = 0
    expired: int = 0
    auto_renewed: int = 0
    reminders: int = 0
    # Counts of the steps higher apps add (e.g. the ledger's expiry of prepaid lots).
    more: dict = field(default_factory=dict)
    # What the run skipped, one line each (`skipping_failures`): the command then exits non-zero.
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """For people: `1 activated, 1 expired, 0 auto-renewed, 2 reminders, 0 lots expired`."""
        counts = {
            "activated": self.activated,
            "expired": self.expired,
            "auto-renewed": self.auto_renewed,
            "reminders": self.reminders,
            **self.more,
        }
        return ", ".join(f"{count} {name}" for name, count in counts.items())


# Time-driven work of higher apps, run by `run_lifecycle` after the contracts' own steps:
# `step(now=..., log=..., failures=...) -> int`, registered in the app's AppConfig.ready();
# `failures`: `skipping_failures`'s list (None: an error propagates).
LIFECYCLE_STEPS: dict[str, Callable[..., int]] = {}


def register_lifecycle_step(name: str, step: Callable[..., int]) -> None:
    LIFECYCLE_STEPS[name] = step


def contract_label(pk: int) -> str:
    """`contract 7 DEMO-MS-001 (organization demo)`, for a failure's report (read afresh: the
    contract's own transaction was rolled back)."""
    row = Contract.objects.filter(pk=pk).values_list("reference", "organization__slug").first()
    return f"contract {pk}" if row is None else f"contract {pk} {row[0]} (organization {row[1]})"


@contextmanager
def skipping_failures(failures: list[str] | None, label: Callable[[], str], log=lambda message: None):
    """One unit of a run's work (a contract, a plan, a lot), around its transaction. With a
    `failures` list, an error is logged with `label()` (the contract and its organization), added
    to the list, and the run goes on with the next: one unreadable row (a time zone that a tzdata
    upgrade removed) stopped `run_lifecycle` for every organization, every run (found by an
    outside sweep). As `deliver_notifications` does; the command exits non-zero after its
    summary. Without a list (a direct call), the error propagates as before."""
    if failures is None:
        yield
        return
    try:
        yield
    except Exception as exc:  # whatever it is, it is this unit's: the others go on
        message = f"{label()}: {type(exc).__name__}: {exc}"
        logger.error("run_lifecycle skipped %s", message, exc_info=exc)
        log(f"skipped {message}")
        failures.append(message)


def _candidates(queryset, batch_size: int = 500):
    """Ids of the candidates, in batches, so memory does not grow with the table."""
    last = 0
    while True:
        ids = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        yield from ids
        last = ids[-1]


def _lock_if(pk: int, **conditions) -> Contract | None:
    """The contract, locked, if it still meets the conditions; None if another runner got there first.
    Its organization's event order first (events.feed, "Lock order"): a contract write holds it and
    then waits for the row, while the runner would hold the row and wait for it at its event."""
    organization_id = Contract.objects.filter(pk=pk).values_list("organization_id", flat=True).first()
    if organization_id is None:
        return None
    hold_order([organization_id])
    return (
        Contract.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("organization", "renewed_from")
        .filter(pk=pk, **conditions)
        .first()
    )


def activate_due(*, now: dt.datetime, log=lambda message: None, failures: list[str] | None = None) -> int:
    """Scheduled contracts become active at the start of their start date (contract time zone)."""
    count = 0
    horizon = (now + _MAX_OFFSET).date()
    due = Contract.objects.filter(status=Contract.Status.SCHEDULED, start_date__lte=horizon)
    for pk in _candidates(due):
        with skipping_failures(failures, lambda pk=pk: contract_label(pk), log), transaction.atomic():
            contract = _lock_if(pk, status=Contract.Status.SCHEDULED)
            if contract is None or now < contract.start_of_day(contract.start_date):
                continue
            _move(contract, "activate", actor=None, reason="start date reached", now=now)
            _on_active(contract, actor=None, now=now)
            count += 1
            log(f"activated {contract.reference}")
    return count


def expire_due(*, now: dt.datetime, log=lambda message: None, failures: list[str] | None = None) -> tuple[int, int]:
    """At the end of the expiry date: auto-renew (active, auto_renew, no notice), else expire."""
    expired = renewed = 0
    horizon = (now + _MAX_OFFSET).date()
    live = (Contract.Status.ACTIVE, Contract.Status.SUSPENDED)
    due = Contract.objects.filter(status__in=live, expiry_date__lt=horizon)
    for pk in _candidates(due):
        with skipping_failures(failures, lambda pk=pk: contract_label(pk), log), transaction.atomic():
            contract = _lock_if(pk, status__in=live)
            if contract is None or now < contract.start_of_day(contract.expiry_date + dt.timedelta(days=1)):
                continue
            # The renewal clause and terms in force on the last day of the term (the row holds
            # today's, and a run after a gap may be past a version that began after the expiry).
            from .terms import Timeline

            last_terms = Timeline(contract).on(contract.expiry_date)
            renews = (
                contract.status == Contract.Status.ACTIVE
                and last_terms.auto_renew
                and contract.notice_given_at is None
                and last_terms.renewal_term_months
                and not Contract.objects.filter(renewed_from=contract).exists()
                and contract.expiry_date < dates.LATEST  # the service's dates end there
            )
            if renews:
                start = contract.expiry_date + dt.timedelta(days=1)
                # Within the service's dates, as a renewal by hand must be (it is refused there).
                expiry = min(term_end(start, last_terms.renewal_term_months), dates.LATEST)
                renewal = _create_renewal(
                    last_terms, actor=None, start_date=start, expiry_date=expiry, status=Contract.Status.ACTIVE, now=now
                )
                record_event(
                    type="contract.state_changed",
                    obj=renewal,
                    actor=None,
                    payload={"from": None, "to": "active", "action": "auto_renew", "reason": "renewal clause"},
                    occurred_at=now,
                )
                start_versions(renewal, origin="renewal", now=now)
                _on_active(renewal, actor=None, now=now)
                renewed += 1
                log(f"auto-renewed {contract.reference} as {renewal.reference}")
            else:
                _move(contract, "expire", actor=None, reason="expiry date passed", now=now)
                expired += 1
                log(f"expired {contract.reference}")
    return expired, renewed


def _send_reminder(contract: Contract, kind: str, due_date: dt.date, days_left: int, now) -> bool:
    """Record the tightest window reached (and the wider ones as done), exactly once."""
    reached = [w for w in REMINDER_WINDOWS[kind] if days_left <= w]
    if not reached:
        return False
    sent = set(
        ContractReminder.objects.filter(contract=contract, kind=kind, due_date=due_date).values_list(
            "window_days", flat=True
        )
    )
    tightest = min(reached)
    if tightest in sent:
        return False
    try:
        with transaction.atomic():
            ContractReminder.objects.bulk_create(
                ContractReminder(
                    organization_id=contract.organization_id,
                    contract=contract,
                    kind=kind,
                    window_days=w,
                    due_date=due_date,
                )
                for w in reached
                if w not in sent
            )
    except IntegrityError:
        return False  # another runner sent it
    record_event(
        type=f"contract.{kind}",
        obj=contract,
        actor=None,
        payload={
            "window_days": tightest,
            "date": due_date,
            "days_left": days_left,
            "reference": contract.reference,
            "name": contract.name,
        },
        occurred_at=now,
    )
    return True


def send_reminders(*, now: dt.datetime, log=lambda message: None, failures: list[str] | None = None) -> int:
    """`contract.expiring` at 90/60/30/7 days before expiry, `contract.notice_due` at 30/7 before the
    notice date. Each date is the one in force *on that date* (issue 14): an approved amendment
    effective before it (a new expiry, a longer notice period) moves the reminder to the amended
    date, even while today's row still holds the old one."""
    count = 0
    widest = max(REMINDER_WINDOWS["expiring"])
    horizon = (now + _MAX_OFFSET).date() + dt.timedelta(days=widest)
    live = (Contract.Status.ACTIVE, Contract.Status.SUSPENDED)
    # The row's dates, or a version still to come (it may bring the date within the window).
    pending = TermVersion.objects.filter(applied_at__isnull=True).values("contract_id")
    due = Contract.objects.filter(Q(expiry_date__lte=horizon) | Q(pk__in=pending), status__in=live)
    for pk in _candidates(due):
        with skipping_failures(failures, lambda pk=pk: contract_label(pk), log), transaction.atomic():
            contract = _lock_if(pk, status__in=live)
            if contract is None:
                continue
            today = contract.local_today(now)
            timeline = Timeline(contract)
            expiry, _ = timeline.date_when_due(today, "expiry_date")
            days_to_expiry = None if expiry is None else (expiry - today).days
            if days_to_expiry is not None and _send_reminder(contract, "expiring", expiry, days_to_expiry, now):
                count += 1
                log(f"{contract.reference}: expires in {days_to_expiry} days")
            notice, terms = timeline.date_when_due(today, "notice_date")
            if notice is not None and terms.auto_renew and contract.notice_given_at is None:
                days_to_notice = (notice - today).days
                if _send_reminder(contract, "notice_due", notice, days_to_notice, now):
                    count += 1
                    log(f"{contract.reference}: notice of non-renewal due in {days_to_notice} days")
    return count


def run_lifecycle(*, now: dt.datetime, log=lambda message: None) -> LifecycleSummary:
    from .terms import apply_due_terms

    summary = LifecycleSummary()
    failures = summary.failures  # each contract (plan, lot) that fails is skipped and reported
    # First the terms in force today (amendments reaching their date), so that activation,
    # expiry, renewal and reminders read the version in force at the instant they concern.
    terms_applied = apply_due_terms(now=now, log=log, failures=failures)
    summary.activated = activate_due(now=now, log=log, failures=failures)
    summary.expired, summary.auto_renewed = expire_due(now=now, log=log, failures=failures)
    summary.reminders = send_reminders(now=now, log=log, failures=failures)
    if terms_applied:
        summary.more["terms applied"] = terms_applied
    for name, step in LIFECYCLE_STEPS.items():
        # A step that fails as a whole (not one of its contracts) does not stop the next ones.
        with skipping_failures(failures, lambda name=name: f"step {name!r}", log):
            summary.more[name] = step(now=now, log=log, failures=failures)
    return summary


# --- line items ---------------------------------------------------------------------------------

LINE_ITEM_SNAPSHOT = ["contract_id", "kind", "description", "sku", "quantity", "unit", "unit_price", "covered"]


def contract_for_line_items(*, organization, contract_id) -> Contract:
    """The contract of a line-item route, within the caller's organization (else 404)."""
    contract = Contract.objects.for_organization(organization).filter(pk=contract_id).first()
    if contract is None:
        raise NotFound()
    return contract


def _draft_only(contract: Contract) -> None:
    if contract.status != Contract.Status.DRAFT:
        raise Conflict(f"Line items are terms: editable only while the contract is a draft; it is {contract.status}.")


@transaction.atomic
def create_line_item(*, contract: Contract, actor, data: dict) -> LineItem:
    _draft_only(_locked(contract))
    item = LineItem.objects.create(organization_id=contract.organization_id, contract=contract, **data)
    record_event(type="line_item.created", obj=item, actor=actor, payload=snapshot(item, LINE_ITEM_SNAPSHOT))
    return item


def _line_item_now(item: LineItem) -> LineItem:
    """`item` re-read under its contract's lock (every writer of a line item holds it): it may be
    stale, or gone (a concurrent delete: 404, and no second `line_item.deleted`)."""
    item = LineItem.objects.filter(pk=item.pk).first()
    if item is None:
        raise NotFound()
    return item


@transaction.atomic
def update_line_item(*, item: LineItem, actor, data: dict) -> LineItem:
    _draft_only(_locked(item.contract))
    item = _line_item_now(item)
    changes = apply_changes(item, data)
    if changes:
        item.save()
        record_event(type="line_item.updated", obj=item, actor=actor, payload={"changes": changes})
    return item


@transaction.atomic
def delete_line_item(*, item: LineItem, actor) -> None:
    _draft_only(_locked(item.contract))
    item = _line_item_now(item)
    record_event(type="line_item.deleted", obj=item, actor=actor, payload=snapshot(item, LINE_ITEM_SNAPSHOT))
    item.delete()

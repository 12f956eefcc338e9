"""Amendments: a change of an approved contract's terms from a date, dually approved like the
contract itself (the same `record_approval`), then laid over the term versions (`terms`).

Each write is `@transaction.atomic` under the contract's row lock and writes one event:
`amendment.created`, `amendment.updated`, `amendment.submitted`, `amendment.approved` (each
approval), `amendment.rejected`; the approval that completes the round also lays the changes
over the versions and, when the date has come, brings the contract row to them
(`contract.terms_changed`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from config.errors import Conflict, Unprocessable
from events.feed import locked
from events.services import apply_changes, record_event, snapshot
from tenancy.currencies import finer_than_currency

from . import services, terms
from .models import Amendment, Asset, Contract, ContractApproval

AMENDABLE_STATUSES = (Contract.Status.SCHEDULED, Contract.Status.ACTIVE, Contract.Status.SUSPENDED)
# Terms an amendment cannot change: money already posted is in the contract's currency, and the
# contract's days (expiry, notice, billing) are counted in its time zone. A new contract changes these.
NOT_AMENDABLE = frozenset({"currency", "time_zone"})
AMENDMENT_SNAPSHOT = ["contract_id", "number", "status", "effective_date", "changes", "reason"]


@dataclass(frozen=True)
class AmendmentPart:
    """Something a higher app lets an amendment change besides the contract's own terms (the SLA
    rules: slas registers `sla_rules`). `validate(contract=, value=, context=)` returns the JSON to
    store or raises a serializer ValidationError; `apply(contract=, amendment=, value=, effective_at=,
    actor=)` carries it out when the amendment is approved, aligned to the same instant."""

    validate: Callable[..., object]
    apply: Callable[..., None]


AMENDMENT_PARTS: dict[str, AmendmentPart] = {}

# Checks higher apps make on an amendment's effective date, for everyone (admins too): billing
# refuses a date inside or before a closed period. `guard(contract=, effective_date=)` returns the
# fault (a 422 on effective_date) or None; registered in the app's AppConfig.ready().
EFFECTIVE_DATE_GUARDS: dict[str, Callable[..., str | None]] = {}


def register_effective_date_guard(name: str, guard: Callable[..., str | None]) -> None:
    EFFECTIVE_DATE_GUARDS[name] = guard


# Checks higher apps make on an amendment's changes, for everyone: the ledger refuses a budget cut
# the hours left cannot cover. `guard(contract=, effective_date=, changes=)` returns the faults as
# {field: message} (each a 422); registered in the app's AppConfig.ready().
CHANGE_GUARDS: dict[str, Callable[..., dict[str, str]]] = {}


def register_change_guard(name: str, guard: Callable[..., dict[str, str]]) -> None:
    CHANGE_GUARDS[name] = guard


def register_amendment_part(name: str, part: AmendmentPart) -> None:
    AMENDMENT_PARTS[name] = part


def term_changes(changes: dict) -> dict:
    """The changes of the contract's own terms (what the term versions hold)."""
    return {name: value for name, value in changes.items() if name not in AMENDMENT_PARTS}


def amendable_terms(contract: Contract) -> list[str]:
    """The terms an amendment of this contract may change: the one list that `_check` holds the
    changes to and that the 422 for an unknown term names. Not those of NOT_AMENDABLE, and the
    start date only while the contract has not started (scheduled)."""
    names = set(services.TERM_FIELDS) - NOT_AMENDABLE
    if contract.status != Contract.Status.SCHEDULED:
        names.discard("start_date")
    return sorted(names)


def _check(contract: Contract, *, effective_date: dt.date, changes: dict, allow_past: bool, now: dt.datetime) -> None:
    """The amendment's date and changes against the contract as it stands (422 naming the field)."""
    if contract.status not in AMENDABLE_STATUSES:
        raise Conflict(f"Only a scheduled, active or suspended contract can be amended; this one is {contract.status}.")
    errors: dict[str, list[str]] = {}
    if not changes:
        errors["changes"] = ["Name at least one term to change."]
    for name in sorted(set(changes) - {"line_items", *AMENDMENT_PARTS, *amendable_terms(contract)}):
        if name in NOT_AMENDABLE:
            errors[f"changes.{name}"] = [f"{name} cannot be amended; make a new contract."]
        elif name == "start_date":
            errors["changes.start_date"] = ["The contract has started; its start date cannot move."]
        else:
            errors[f"changes.{name}"] = ["Not a term of the contract."]
    today = contract.local_today(now)
    if effective_date < today and not allow_past:
        errors["effective_date"] = [f"Must be today ({today}) or later; only an admin may backdate an amendment."]
    moved_start = None if "changes.start_date" in errors else _day(changes.get("start_date"))
    # A start moved before the amendment's own date would date the contract back past what the
    # date rules allow (term versions begin at the effective date; past periods billed at activation).
    if moved_start is not None and moved_start < effective_date:
        errors["changes.start_date"] = [f"Must not be before the amendment's effective date ({effective_date})."]
    elif moved_start is not None and moved_start < today and not allow_past:
        errors["changes.start_date"] = [f"Must be today ({today}) or later; only an admin may date a start back."]
    in_force = terms.contract_as_of(contract, effective_date)
    start = changes.get("start_date", jsonable_date(in_force.start_date))
    if start is not None and effective_date < dt.date.fromisoformat(str(start)):
        errors.setdefault("effective_date", []).append(f"Must not be before the contract's start date ({start}).")
    expiry = changes["expiry_date"] if "expiry_date" in changes else jsonable_date(in_force.expiry_date)
    if expiry is not None and effective_date > dt.date.fromisoformat(str(expiry)):
        errors.setdefault("effective_date", []).append(f"Must not be after the contract's expiry date ({expiry}).")
    for guard in EFFECTIVE_DATE_GUARDS.values():
        fault = guard(contract=contract, effective_date=effective_date)
        if fault:
            errors.setdefault("effective_date", []).append(fault)
    if expiry is not None and start is not None and str(expiry) < str(start):
        errors["changes.expiry_date"] = ["Must not be before start_date."]
    _check_resulting_terms(contract, in_force, changes, errors)
    for guard in CHANGE_GUARDS.values():
        for name, fault in guard(contract=contract, effective_date=effective_date, changes=changes).items():
            errors.setdefault(name, []).append(fault)
    if errors:
        raise Unprocessable(f"Invalid amendment: {', '.join(errors)}.", errors)


def _check_resulting_terms(contract: Contract, in_force: Contract, changes: dict, errors: dict) -> None:
    """What a contract's own edits and its submission require, of the terms the amendment would
    leave in force (found by an outside sweep: an amendment could cover another counterparty's
    assets, switch auto_renew on without a renewal term, or stretch the term over its renewal)."""
    if "covered_assets" in changes or "counterparty" in changes:
        counterparty = changes.get("counterparty", in_force.counterparty_id)
        version = getattr(in_force, "terms_version", None)
        if "covered_assets" in changes:
            covered = changes["covered_assets"]
        elif version is not None:
            covered = version.terms.get("covered_assets", [])
        else:
            covered = list(contract.covered_assets.values_list("pk", flat=True))
        foreign = Asset.objects.filter(pk__in=covered).exclude(counterparty_id=counterparty)
        foreign = foreign.values_list("pk", flat=True)
        if foreign:
            name = "changes.covered_asset_ids" if "covered_assets" in changes else "changes.counterparty_id"
            errors[name] = [f"Asset {pk} is not an asset of counterparty {counterparty}." for pk in sorted(foreign)]
    for name in services.STATED_AMOUNTS:  # in the contract's currency, which is not amendable
        if changes.get(name) is not None:
            fault = finer_than_currency(Decimal(str(changes[name])), contract.currency)
            if fault:
                errors.setdefault(f"changes.{name}", []).append(fault)
    renewal_terms = {"auto_renew", "expiry_date", "renewal_term_months"}
    if renewal_terms & set(changes) and changes.get("auto_renew", in_force.auto_renew):
        expiry = changes.get("expiry_date", in_force.expiry_date)
        if expiry is None:
            errors.setdefault("changes.expiry_date", []).append("Required while auto_renew is on.")
        if not changes.get("renewal_term_months", in_force.renewal_term_months):
            errors.setdefault("changes.renewal_term_months", []).append("Required while auto_renew is on.")
    if {"notice_period_days", "expiry_date", "start_date"} & set(changes):
        start = _day(changes.get("start_date", in_force.start_date))
        expiry = _day(changes.get("expiry_date", in_force.expiry_date))
        notice_days = changes.get("notice_period_days", in_force.notice_period_days) or 0
        if start and expiry and expiry - dt.timedelta(days=notice_days) < start:
            errors.setdefault("changes.notice_period_days", []).append("Notice would be due before the start date.")
    if changes.get("expiry_date") is not None:
        renewal = Contract.objects.filter(renewed_from=contract).only("reference", "start_date").first()
        if renewal is not None and renewal.start_date and str(changes["expiry_date"]) >= str(renewal.start_date):
            errors.setdefault("changes.expiry_date", []).append(
                f"Must be before {renewal.start_date.isoformat()}, when its renewal {renewal.reference} starts."
            )


def _day(value) -> dt.date | None:
    """A date of the terms or of an amendment's changes (stored as JSON text)."""
    return None if value is None else dt.date.fromisoformat(str(value))


def jsonable_date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _open(amendment: Amendment) -> tuple[Amendment, Contract]:
    contract = services._locked(amendment.contract)
    return locked(Amendment, amendment, order=False), contract  # the order: taken with the contract


def _illegal(amendment: Amendment, action: str) -> Conflict:
    allowed = {
        Amendment.Status.DRAFT: "submit, update",
        Amendment.Status.PENDING_APPROVAL: "approve, reject",
    }.get(amendment.status, "none")
    return Conflict(f"Cannot {action} an amendment that is {amendment.status}; allowed now: {allowed}.")


@transaction.atomic
def create_amendment(
    *, contract: Contract, actor, data: dict, allow_past: bool = False, now: dt.datetime | None = None
) -> Amendment:
    """A draft amendment: `effective_date`, `changes` (terms as JSON, `line_items` as a whole list), `reason`."""
    now = now or timezone.now()
    contract = services._locked(contract)
    _check(contract, effective_date=data["effective_date"], changes=data["changes"], allow_past=allow_past, now=now)
    number = (contract.amendments.aggregate(last=Max("number"))["last"] or 0) + 1
    amendment = Amendment.objects.create(
        organization_id=contract.organization_id,
        contract=contract,
        number=number,
        effective_date=data["effective_date"],
        changes=data["changes"],
        reason=data["reason"],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record_event(type="amendment.created", obj=amendment, actor=actor, payload=snapshot(amendment, AMENDMENT_SNAPSHOT))
    return amendment


@transaction.atomic
def update_amendment(*, instance: Amendment, actor, data: dict, allow_past: bool = False) -> Amendment:
    amendment, contract = _open(instance)
    if amendment.status != Amendment.Status.DRAFT:
        raise _illegal(amendment, "update")
    effective_date = data.get("effective_date", amendment.effective_date)
    changes = data.get("changes", amendment.changes)
    _check(contract, effective_date=effective_date, changes=changes, allow_past=allow_past, now=timezone.now())
    diff = apply_changes(amendment, data)
    if diff:
        amendment.save()
        record_event(type="amendment.updated", obj=amendment, actor=actor, payload={"changes": diff})
    return amendment


@transaction.atomic
def submit_amendment(*, amendment: Amendment, actor) -> Amendment:
    amendment, contract = _open(amendment)
    if amendment.status != Amendment.Status.DRAFT:
        raise _illegal(amendment, "submit")
    if contract.status not in AMENDABLE_STATUSES:  # it would wait for an approval that cannot come
        raise Conflict(f"Only a scheduled, active or suspended contract can be amended; this one is {contract.status}.")
    amendment.status = Amendment.Status.PENDING_APPROVAL
    amendment.submitted_by = actor
    amendment.submitted_at = timezone.now()
    amendment.approval_round += 1
    amendment.save()
    record_event(type="amendment.submitted", obj=amendment, actor=actor, payload={"round": amendment.approval_round})
    return amendment


@transaction.atomic
def approve_amendment(
    *, amendment: Amendment, actor, comment: str = "", allow_past: bool = False, now: dt.datetime | None = None
) -> Amendment:
    """Dual approval, as for the contract; the second approval lays the changes over the terms
    from the effective date (and brings the contract to them now if that date has come)."""
    now = now or timezone.now()
    amendment, contract = _open(amendment)
    if amendment.status != Amendment.Status.PENDING_APPROVAL:
        raise _illegal(amendment, "approve")
    # The contract may have moved on while the amendment waited; the date is checked when it takes
    # effect (the completing approval): a date that is past by then needs an admin.
    _check(contract, effective_date=amendment.effective_date, changes=amendment.changes, allow_past=True, now=now)
    complete = services.record_approval(contract=contract, actor=actor, comment=comment, now=now, amendment=amendment)
    if complete and not allow_past:
        _check(contract, effective_date=amendment.effective_date, changes=amendment.changes, allow_past=False, now=now)
    record_event(
        type="amendment.approved",
        obj=amendment,
        actor=actor,
        payload={"comment": comment, "complete": complete},
        occurred_at=now,
    )
    if not complete:
        return amendment
    amendment.status = Amendment.Status.APPROVED
    amendment.decided_at = now
    amendment.save(update_fields=["status", "decided_at", "updated_at"])
    effective_at = contract.start_of_day(amendment.effective_date)  # read before the terms move
    if term_changes(amendment.changes):
        terms.lay_amendment(contract, amendment, now)
        # A moved start is the contract's at once: it has not started (only a scheduled one may).
        if amendment.effective_date <= contract.local_today(now) or "start_date" in amendment.changes:
            terms.sync_contract(contract, actor=actor, now=now, amendment=amendment)
    for name, part in AMENDMENT_PARTS.items():
        if name in amendment.changes:
            part.apply(
                contract=contract,
                amendment=amendment,
                value=amendment.changes[name],
                effective_at=effective_at,
                actor=actor,
            )
    return amendment


@transaction.atomic
def reject_amendment(*, amendment: Amendment, actor, reason: str) -> Amendment:
    """Back to draft (like a rejected contract): edit and submit again for a new round."""
    amendment, contract = _open(amendment)
    if amendment.status != Amendment.Status.PENDING_APPROVAL:
        raise _illegal(amendment, "reject")
    services._decide(contract, actor, ContractApproval.Decision.REJECTED, reason, timezone.now(), amendment=amendment)
    amendment.status = Amendment.Status.DRAFT
    amendment.save(update_fields=["status", "updated_at"])
    record_event(type="amendment.rejected", obj=amendment, actor=actor, payload={"reason": reason})
    return amendment

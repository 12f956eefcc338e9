"""Writes on calendars and SLA rules. Each writes its event; the work-order clocks that an edit
affects are recomputed by the workorders app's handlers for these events (events.handlers)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone

from config.errors import Conflict, Unprocessable
from contracts.models import Contract
from events.feed import locked
from events.services import apply_changes, record_event, snapshot

from .models import Calendar, SlaRule

# A calendar lists at most this many holidays, and as many working days: a century of a country's
# public and regional days and more (an unbounded list made a 1 MB PATCH minutes of work).
MAX_CALENDAR_DATES = 5000
CALENDAR_SNAPSHOT = ["name", "time_zone", "hours", "holidays", "holiday_country", "holiday_subdivision", "working_days"]
RULE_SNAPSHOT = [
    "contract_id", "name", "metric", "priorities", "target_minutes", "calendar_id", "pause_on_hold", "escalation",
    "penalty", "monthly_penalty_cap", "active", "effective_from", "effective_to", "previous_version_id",
]  # fmt: skip
# What an amendment may change; `name` may always be edited in place.
RULE_TERMS = frozenset(
    {
        "metric", "priorities", "target_minutes", "calendar", "pause_on_hold", "escalation", "penalty",
        "monthly_penalty_cap", "active", "effective_from", "effective_to",
    }
)  # fmt: skip
CLOSED = (Contract.Status.EXPIRED, Contract.Status.TERMINATED, Contract.Status.RENEWED)


# --- calendars ----------------------------------------------------------------------------------


@transaction.atomic
def create_calendar(*, organization, actor, data: dict) -> Calendar:
    calendar = Calendar.objects.create(organization=organization, **data)
    record_event(type="calendar.created", obj=calendar, actor=actor, payload=snapshot(calendar, CALENDAR_SNAPSHOT))
    return calendar


@transaction.atomic
def update_calendar(*, instance: Calendar, actor, data: dict) -> Calendar:
    """Edit a calendar; the running clocks that use it are recomputed in the same transaction.

    `calendar.recomputed_clocks` says how many (from the handlers' reactions).
    """
    calendar = locked(Calendar, instance)
    changes = apply_changes(calendar, data)
    calendar.recomputed_clocks = 0
    if changes:
        calendar.save()
        event = record_event(type="calendar.updated", obj=calendar, actor=actor, payload={"changes": changes})
        calendar.recomputed_clocks = _reaction_count(event)
    return calendar


def _reaction_count(event) -> int:
    """How many clocks the handlers of an event recomputed (the X-Recomputed-Clocks header)."""
    return sum(v for v in event.reactions.values() if isinstance(v, int))


@transaction.atomic
def import_holidays(*, calendar: Calendar, actor, holidays: list[dict]) -> Calendar:
    """Add `holidays` (``[{"date", "name"}]``) to the calendar's own; a date already listed keeps its
    name, a date listed as a working day stops being one. `calendar.imported_holidays` says how many
    dates were new."""
    calendar = locked(Calendar, calendar)
    listed = {h["date"]: h for h in calendar.holidays}
    new = [h for h in holidays if h["date"] not in listed]
    merged = sorted([*calendar.holidays, *new], key=lambda h: h["date"])
    if len(merged) > MAX_CALENDAR_DATES:
        raise Unprocessable(
            f"The calendar would list {len(merged)} holidays; at most {MAX_CALENDAR_DATES}.",
            {"holidays": [f"At most {MAX_CALENDAR_DATES} dates: remove past ones before importing more."]},
        )
    data = {"holidays": merged}
    added = {h["date"] for h in new}
    if added & set(calendar.working_days):
        data["working_days"] = [day for day in calendar.working_days if day not in added]
    updated = update_calendar(instance=calendar, actor=actor, data=data)
    updated.imported_holidays = len(new)
    return updated


@transaction.atomic
def delete_calendar(*, instance: Calendar, actor) -> None:
    calendar = locked(Calendar, instance)
    record_event(type="calendar.deleted", obj=calendar, actor=actor, payload=snapshot(calendar, CALENDAR_SNAPSHOT))
    try:
        calendar.delete()
    except ProtectedError:
        raise Conflict(
            f"Calendar {calendar.pk} is used by SLA rules, contracts or visit plans; it cannot be deleted."
        ) from None


# --- rules --------------------------------------------------------------------------------------


def default_effective_from(contract: Contract, now: dt.datetime | None = None) -> dt.datetime:
    """While a draft: the start of the contract's start date (its time zone); afterwards: now."""
    if contract.status == Contract.Status.DRAFT and contract.start_date is not None:
        return contract.start_of_day(contract.start_date)
    return now or timezone.now()


def _check_overlap(rule: SlaRule) -> None:
    """Two active rules of a contract with one metric, overlapping bands and periods: 422."""
    if not rule.active:
        return
    others = SlaRule.objects.filter(contract_id=rule.contract_id, metric=rule.metric, active=True).exclude(pk=rule.pk)
    if rule.effective_to is not None:
        others = others.filter(effective_from__lt=rule.effective_to)
    others = others.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=rule.effective_from))
    for other in others:
        shared = sorted(set(other.priorities) & set(rule.priorities))
        if shared:
            raise Unprocessable(
                f"Overlaps rule {other.pk} ({other.name}): same metric, priorities {', '.join(shared)}, "
                "and overlapping effective periods.",
                {"priorities": [f"Overlaps rule {other.pk} for {', '.join(shared)}."]},
            )


def _check_period(rule: SlaRule) -> None:
    """effective_to after effective_from, whichever of them was defaulted (422, not the DB's check)."""
    if rule.effective_to is not None and rule.effective_to <= rule.effective_from:
        raise Unprocessable(
            "effective_to must be after effective_from.",
            {"effective_to": [f"Must be after effective_from ({rule.effective_from.isoformat()})."]},
        )


def _open_contract(contract: Contract, *, terms: bool = True) -> Contract:
    """The rule's contract, locked; 409 once closed and, for a change of terms (a rule created,
    amended or restated), while it waits for approval: the approvers decide on the rules as they
    stand, as on its other terms (reject it to edit; found by an outside sweep)."""
    contract = locked(Contract, contract)
    if contract.status in CLOSED:
        raise Conflict(f"The contract is {contract.status}: its rules can no longer change.")
    if terms and contract.status == Contract.Status.PENDING_APPROVAL:
        raise _pending_approval()
    return contract


def _pending_approval() -> Conflict:
    return Conflict(
        "The contract is pending approval: its SLA rules are part of what the approvers decide on. "
        "Reject it (back to draft) to change them."
    )


@transaction.atomic
def create_rule(*, organization, actor, data: dict) -> SlaRule:
    contract = _open_contract(data["contract"])
    data = {"pause_on_hold": data.get("metric") == SlaRule.Metric.RESOLUTION, **data}
    data.setdefault("effective_from", default_effective_from(contract))
    rule = SlaRule(organization=organization, **data)
    _check_period(rule)
    _check_overlap(rule)
    rule.save()
    event = record_event(type="sla_rule.created", obj=rule, actor=actor, payload=snapshot(rule, RULE_SNAPSHOT))
    # From the handlers' reactions: the clocks attached to open jobs reported since effective_from.
    rule.recomputed_clocks = _reaction_count(event)
    return rule


def carry_rules_into_renewal(event) -> int:
    """A renewal carries on the SLA rules in force at the end of its original's term, from its own
    start (handler of `contract.created`): an evergreen contract stays monitored once it renews.
    A rule that ends before the renewal begins stays behind; one that ends later keeps its end."""
    from contracts.services import renewal_handover

    if not event.payload.get("renewed_from_id"):
        return 0
    renewal = Contract.objects.select_related("renewed_from", "organization").get(pk=event.object_id)
    ended, starts = renewal_handover(renewal)
    rules = SlaRule.objects.filter(contract_id=renewal.renewed_from_id, active=True, effective_from__lt=ended).filter(
        Q(effective_to__isnull=True) | Q(effective_to__gt=max(ended, starts))
    )
    carried = 0
    for rule in rules.select_related("calendar").order_by("id"):
        terms = {name: getattr(rule, name) for name in RULE_TERMS}
        create_rule(
            organization=renewal.organization,
            actor=event.actor,
            data={**terms, "name": rule.name, "contract": renewal, "effective_from": starts},
        )
        carried += 1
    return carried


@transaction.atomic
def update_rule(*, instance: SlaRule, actor, data: dict) -> SlaRule:
    """Edit in place while the contract is a draft; past draft only the name (terms: `amend`)."""
    rule = locked(SlaRule, instance)
    contract = _open_contract(rule.contract, terms=False)  # terms: only in draft, below
    if "contract" in data and data["contract"].pk != rule.contract_id:
        raise Unprocessable(
            "A rule belongs to its contract; it cannot move to another one.",
            {"contract_id": ["Cannot change; create a rule on the other contract instead."]},
        )
    data = {name: value for name, value in data.items() if name != "contract"}
    terms = sorted(name for name, value in data.items() if name in RULE_TERMS and getattr(rule, name) != value)
    if terms and contract.status == Contract.Status.PENDING_APPROVAL:
        raise _pending_approval()
    if terms and contract.status != Contract.Status.DRAFT:
        raise Conflict(
            f"The contract is {contract.status}: terms never rewrite history. Change {', '.join(terms)} with "
            f"POST /api/v1/sla_rules/{rule.pk}/amend, which ends this rule and starts its successor.",
            {name: ["Use amend."] for name in terms},
        )
    return _write_changes(rule, data, actor)


@transaction.atomic
def delete_rule(*, instance: SlaRule, actor) -> None:
    """Delete a rule of a draft contract (its terms are still being written; no clock cites it).
    Past draft a rule is history: clocks and breaches cite it; it ends with an amendment (409)."""
    rule = locked(SlaRule.objects.select_related("contract"), instance)
    if rule.contract.status != Contract.Status.DRAFT:
        raise Conflict(
            f"The contract is {rule.contract.status}: a rule is history past draft. End it with "
            f"POST /api/v1/sla_rules/{rule.pk}/amend (active: false).",
        )
    record_event(type="sla_rule.deleted", obj=rule, actor=actor, payload=snapshot(rule, RULE_SNAPSHOT))
    rule.delete()


def _write_changes(rule: SlaRule, data: dict, actor) -> SlaRule:
    """Apply `data` to the (locked) rule, checked, with its `sla_rule.updated` event if it changed."""
    changes = apply_changes(rule, data)
    if changes:
        _check_period(rule)
        _check_overlap(rule)
        rule.save()
        record_event(type="sla_rule.updated", obj=rule, actor=actor, payload={"changes": changes})
    return rule


@transaction.atomic
def restate_rule(*, rule: SlaRule, actor, data: dict) -> SlaRule:
    """Change a rule's terms over its whole life, in place: what an approved contract amendment
    does to a rule that takes effect at or after the amendment's own date (there is no earlier
    part of it to keep as a version; found by an outside sweep: such an amendment could never be
    approved). Its jobs' clocks are recomputed by the workorders handler of `sla_rule.updated`."""
    rule = locked(SlaRule, rule)
    _open_contract(rule.contract)
    return _write_changes(rule, {name: value for name, value in data.items() if name in RULE_TERMS}, actor)


@transaction.atomic
def amend_rule(*, rule: SlaRule, actor, data: dict, effective_from: dt.datetime | None = None) -> SlaRule:
    """End `rule` at `effective_from` (default now) and create its successor with `data` applied.

    Jobs reported before that instant keep the old version; those reported at or after it
    switch to the successor (their clocks are recomputed by the workorders handler).
    """
    rule = locked(SlaRule, rule)
    _open_contract(rule.contract)
    effective_from = effective_from or timezone.now()
    if hasattr(rule, "next_version"):
        raise Conflict(f"Rule {rule.pk} was already amended by rule {rule.next_version.pk}; amend that one.")
    if effective_from <= rule.effective_from or (rule.effective_to and effective_from >= rule.effective_to):
        raise Unprocessable(
            "effective_from must fall within the rule's effective period.",
            {"effective_from": [f"Must be after {rule.effective_from.isoformat()} and before the rule's end."]},
        )
    successor = SlaRule(
        organization_id=rule.organization_id,
        contract_id=rule.contract_id,
        **{name: getattr(rule, name) for name in ("name", *RULE_TERMS) if name != "effective_from"},
    )
    successor.previous_version = rule
    successor.first_version_id = rule.series_id
    successor.effective_from = effective_from
    apply_changes(successor, data)
    _check_period(successor)
    rule.effective_to = effective_from
    rule.save(update_fields=["effective_to", "updated_at"])
    _check_overlap(successor)
    successor.save()
    record_event(
        type="sla_rule.amended",
        obj=successor,
        actor=actor,
        payload={"previous_version": rule.pk, "effective_from": effective_from, **snapshot(successor, RULE_SNAPSHOT)},
    )
    return successor

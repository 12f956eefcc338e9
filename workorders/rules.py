"""Writes on contract rules and visit plans (issue 13); each writes its event in the same transaction."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone

from config.errors import Conflict, Unprocessable
from contracts.models import Contract
from contracts.services import CLOSED
from contracts.terms import Timeline
from events.feed import hold_order, locked
from events.services import record_event, save_changes, snapshot

from . import matching, recurrence, visits
from .models import ContractRule, VisitPlan

RULE_FIELDS = ["name", "sequence", "enabled", "criteria", "outcome", "contract_id"]
PLAN_FIELDS = [
    "contract_id", "summary", "recurrence", "duration_minutes", "hours_allocated", "priority", "asset_id", "site",
    "generate_days_in_advance", "tolerance_minutes", "on_holiday", "calendar_id", "active_from", "active_to",
]  # fmt: skip


def _check_named(organization_id: int, criteria) -> None:
    """What the criteria name by id still exists (a 422 on the value, the serializer's words). Read
    under the organization's order, which a delete holds while it looks for the rules naming its row
    (`rules_naming`): the serializer read them before this transaction, and a rule written meanwhile
    named a row deleted under it."""
    errors = {}
    for n, criterion in enumerate(criteria or []):
        field = criterion.get("field")
        model = matching.ID_FIELDS.get(field) or (Contract if field == "location" else None)
        if model is None:
            continue
        value = criterion.get("value")
        values = value if isinstance(value, list) else [value]
        found = set(model.objects.filter(organization_id=organization_id, pk__in=values).values_list("pk", flat=True))
        missing = [pk for pk in values if pk not in found]
        if missing:
            name = model._meta.verbose_name.capitalize()
            errors[f"criteria[{n}].value"] = [f"{name} {pk} does not exist." for pk in missing]
    if errors:
        raise Unprocessable(f"Invalid contract rule: {', '.join(errors)}.", errors)


@transaction.atomic
def create_contract_rule(*, organization, actor, data: dict) -> ContractRule:
    hold_order([organization.pk])  # before `_check_named` (and before the row's event, as ever)
    _check_named(organization.pk, data.get("criteria"))
    rule = ContractRule.objects.create(organization=organization, **data)
    record_event(type="contract_rule.created", obj=rule, actor=actor, payload=snapshot(rule, RULE_FIELDS))
    return rule


@transaction.atomic
def update_contract_rule(*, instance: ContractRule, actor, data: dict) -> ContractRule:
    rule = locked(ContractRule, instance)  # the order first, then `_check_named`
    if "criteria" in data:
        _check_named(rule.organization_id, data["criteria"])
    return save_changes(rule, data, actor=actor, event_type="contract_rule.updated")


@transaction.atomic
def delete_contract_rule(*, instance: ContractRule, actor) -> None:
    rule = locked(ContractRule, instance)
    record_event(type="contract_rule.deleted", obj=rule, actor=actor, payload=snapshot(rule, RULE_FIELDS))
    rule.delete()


def rules_naming(obj) -> str | None:
    """The contract rules whose criteria name `obj` (a counterparty or an asset by id, a contract as
    the area of `location within`), for `contracts.references`. An organization's rules are few and
    their criteria JSON: read in Python (one query), the same on SQLite and PostgreSQL."""
    fields = [name for name, model in matching.ID_FIELDS.items() if isinstance(obj, model)]
    if isinstance(obj, Contract):
        fields.append("location")
    if not fields:
        return None
    found = []
    rules = ContractRule.objects.filter(organization_id=obj.organization_id).order_by("id")
    for pk, criteria in rules.values_list("pk", "criteria"):
        for criterion in criteria if isinstance(criteria, list) else []:
            if not isinstance(criterion, dict) or criterion.get("field") not in fields:
                continue
            value = criterion.get("value")
            if obj.pk in (value if isinstance(value, list) else [value]):
                found.append(pk)
                break
    return f"the criteria of contract rules {', '.join(map(str, found))}" if found else None


# --- visit plans --------------------------------------------------------------------------------


def check_plan(plan: VisitPlan, contract: Contract, *, dates: bool = True, anchor: bool = True) -> None:
    """A plan's rule parses, its asset is the contract's counterparty's, its dates lie in the term
    (`dates=False`: an edit that leaves them as they were; a draft's term may have moved since).
    `anchor`: the rule or its start is being written, so a month-end day taken from the start
    that would skip months is refused (`recurrence.anchor_skips`); a stored plan's edit of
    something else, and a renewal's copy of a plan, are not refused for it."""
    if contract.status in CLOSED:
        raise Conflict(f"The contract is {contract.status}; it plans no more visits.")
    errors: dict[str, list[str]] = {}
    try:
        plan.recurrence = recurrence.validate(plan.recurrence, plan.active_from)
        skips = recurrence.anchor_skips(plan.recurrence, plan.active_from) if anchor else None
        if skips:
            errors["recurrence"] = [skips]
    except ValueError as exc:
        errors["recurrence"] = [str(exc)]
    if plan.on_holiday != VisitPlan.OnHoliday.KEEP:
        if plan.calendar is None:
            errors["calendar_id"] = [
                f"Needed with on_holiday {plan.on_holiday}: the calendar whose business days the visits fall on."
            ]
        elif not plan.calendar.hours:
            errors["calendar_id"] = [f"Calendar {plan.calendar.pk} has no working hours: it has no business day."]
    if plan.asset is not None and plan.asset.counterparty_id != contract.counterparty_id:
        errors["asset_id"] = [f"Asset {plan.asset.pk} is not an asset of the contract's counterparty."]
    if dates and contract.start_date and plan.active_from < contract.start_date:
        errors["active_from"] = [f"Before the contract's start date {contract.start_date}."]
    last_day = Timeline(contract).last_day() if dates else None  # an approved extension effective later counts
    if last_day and plan.active_from > last_day:
        errors["active_from"] = [f"After the contract's expiry date {last_day}."]
    if plan.active_to is not None:
        if plan.active_to < plan.active_from:
            errors["active_to"] = ["Before active_from."]
        elif last_day and plan.active_to > last_day:
            errors["active_to"] = [f"After the contract's expiry date {last_day}."]
    if errors:
        raise Unprocessable(f"Invalid visit plan: {', '.join(errors)}.", errors)


@transaction.atomic
def create_visit_plan(
    *, contract, actor, data: dict, now: dt.datetime | None = None, carried: bool = False
) -> VisitPlan:
    """Occurrences before the plan's creation are never generated (`generated_until` starts now).
    `active_from` defaults to today in the contract's time zone (or its start date, if later)."""
    now = now or timezone.now()
    today = contract.local_today(now)
    default_from = max(today, contract.start_date) if contract.start_date else today
    data = {"active_from": default_from, **data}
    plan = VisitPlan(organization_id=contract.organization_id, contract=contract, generated_until=now, **data)
    check_plan(plan, contract, anchor=not carried)  # a renewal's copy runs the rule its original ran
    plan.save()
    record_event(type="visit_plan.created", obj=plan, actor=actor, payload=snapshot(plan, PLAN_FIELDS))
    return plan


# What a renewal's copy of a plan takes from the original (its dates are the renewal's).
CARRIED_PLAN_FIELDS = [name for name in PLAN_FIELDS if name not in ("contract_id", "active_from", "active_to")]


def carry_plans_into_renewal(event) -> int:
    """A renewal carries on the visit plans that ran to the end of its original's term, from its
    own start date to its end (handler of `contract.created`); its recurrence is anchored anew at
    that date. A plan whose rule has no occurrence in the new term (an UNTIL that has passed), or
    whose asset an amendment took out of the original's coverage before its end, stays behind."""
    from contracts.services import renewal_handover

    if not event.payload.get("renewed_from_id"):
        return 0
    renewal = Contract.objects.select_related("renewed_from").get(pk=event.object_id)
    original = renewal.renewed_from
    last_day = original.expiry_date or renewal.start_date
    plans = VisitPlan.objects.filter(contract=original).filter(Q(active_to__isnull=True) | Q(active_to__gte=last_day))
    _, starts = renewal_handover(renewal)
    carried = 0
    for plan in plans.select_related("asset").order_by("id"):
        left = visits.asset_left_on(plan, original)
        if left is not None and left(last_day):
            continue  # its asset had left the original's coverage by its end: not the renewal's to visit
        data = {name: getattr(plan, name) for name in CARRIED_PLAN_FIELDS}
        try:
            create_visit_plan(
                contract=renewal,
                actor=event.actor,
                data={**data, "active_from": renewal.start_date},
                now=starts,
                carried=True,
            )
        except Unprocessable:
            continue  # check_plan refused it in the new term: no occurrence any more (or a refused rule)
        carried += 1
    return carried


@transaction.atomic
def update_visit_plan(*, instance: VisitPlan, actor, data: dict, now: dt.datetime | None = None) -> VisitPlan:
    """Occurrences already generated keep their jobs; the edit applies to the later ones, and never
    to one before the edit: the edited terms start at `now` (default: the present), as a new
    plan's do. An occurrence the replaced terms still owe (a run has not come by since) is kept
    owed: then the plan's `generated_until` stays where it was."""
    now = now or timezone.now()
    plan = locked(VisitPlan.objects.select_related("contract"), instance)
    # Asked of the terms before the edit. A plan ended by `active_to` and resumed later (PATCH
    # `active_to` later or null) generated every occurrence of its pause, in the past, their clocks
    # breached at once: its `generated_until` had stopped where it ended (the runs pass over an
    # ended plan), and nothing was owed in between.
    settled = not visits.owes_before(plan, now)

    def check(plan: VisitPlan) -> None:
        # The dates against the term only when the edit sets them: a draft's term moved since the
        # plan was made must not refuse a change of its summary (found by an outside sweep); its
        # occurrences stay within the term whatever its dates (`visits.plan_window`).
        check_plan(
            plan,
            plan.contract,
            dates=bool({"active_from", "active_to"} & set(data)),
            anchor=bool({"active_from", "recurrence"} & set(data)),
        )
        plan.next_run_at = None  # the next run looks at it again
        if settled and plan.generated_until < now:
            plan.generated_until = now

    return save_changes(plan, data, actor=actor, event_type="visit_plan.updated", check=check)


def delete_draft_plans(contract: Contract, *, actor) -> None:
    """A draft's visit plans go with it (`contracts.references.DRAFT_PARTS`), each with its
    `visit_plan.deleted` event: a draft generates nothing, so they have no job (one that had would
    still refuse). A renewal's draft carries its original's plans, and was undeletable without
    deleting each first."""
    for plan in VisitPlan.objects.filter(contract=contract).order_by("id"):
        delete_visit_plan(instance=plan, actor=actor)


@transaction.atomic
def delete_visit_plan(*, instance: VisitPlan, actor) -> None:
    plan = locked(VisitPlan, instance)
    record_event(type="visit_plan.deleted", obj=plan, actor=actor, payload=snapshot(plan, PLAN_FIELDS))
    try:
        plan.delete()
    except ProtectedError:
        raise Conflict(
            f"Visit plan {plan.pk} has generated work orders; end it with active_to instead of deleting it."
        ) from None

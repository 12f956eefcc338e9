"""Writes on work orders, and keeping their SLA clocks true.

Every change to a job, its holds, its rules or their calendars recomputes the clocks it affects
in the same transaction. A clock that turns breached writes `sla_clock.breached` and one that
stops writes `sla_clock.stopped`; the breaches app records and finalises breaches in its
handlers for those events (events.handlers), so a job stopped after its due time (or cancelled
after it) gets its breach at once, not at the next scan. A clock still running after its due
time is the scan's to record (see `clocks.evaluate`), so a history replayed one change at a time
records the breaches it would have recorded live, and no others.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import Conflict, Unprocessable
from contracts.models import Contract
from events.feed import locked
from events.services import apply_changes, record_event, record_events, snapshot
from slas.models import SlaRule

from . import matching
from .clocks import STOPS, evaluate, live_elapsed_seconds
from .models import Hold, SlaClock, WorkOrder

FUTURE_TOLERANCE = dt.timedelta(minutes=5)
TIMESTAMPS = ("reported_at", "responded_at", "on_site_at", "resolved_at")
SNAPSHOT = [
    "reference", "summary", "contract_id", "priority", "status", *TIMESTAMPS, "location", "source", "source_id",
    "counterparty_id", "asset_id", "contract_match", "visit_plan_id", "occurrence",
]  # fmt: skip
# What the automatic contract match looks at: a change re-matches a job without a manual contract.
MATCH_INPUTS = ("counterparty_id", "asset_id", "location", "priority", "reported_at", "summary")
TERMINAL = (WorkOrder.Status.CLOSED, WorkOrder.Status.CANCELLED)
# Where a job may go from each status (reopening a resolved job included).
NEXT_STATUS = {
    WorkOrder.Status.OPEN: {"in_progress", "on_hold", "resolved", "cancelled"},
    WorkOrder.Status.IN_PROGRESS: {"open", "on_hold", "resolved", "cancelled"},
    WorkOrder.Status.ON_HOLD: {"open", "in_progress", "resolved", "cancelled"},
    WorkOrder.Status.RESOLVED: {"open", "in_progress", "closed"},
    WorkOrder.Status.CLOSED: set(),
    WorkOrder.Status.CANCELLED: set(),
}
RECOMPUTE_BATCH = 500
# The earliest plausible instant of a job (issue 8): a reported_at of year 0001 is a client's bug.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


# --- clocks -------------------------------------------------------------------------------------


def rules_for(work_order: WorkOrder) -> list[SlaRule]:
    """The rules in force at the job's reported_at whose band holds its priority."""
    if work_order.contract_id is None:
        return []
    rules = SlaRule.objects.select_related("calendar", "contract").filter(
        Q(effective_to__isnull=True) | Q(effective_to__gt=work_order.reported_at),
        contract_id=work_order.contract_id,
        active=True,
        effective_from__lte=work_order.reported_at,
    )
    return [rule for rule in rules if work_order.priority in rule.priorities]


@dataclass(frozen=True)
class Recomputed:
    clock: SlaClock
    was_running: bool  # neither stopped nor cancelled before the recomputation


def _running(clock_row: SlaClock) -> bool:
    return clock_row.stopped_at is None and clock_row.state != SlaClock.State.CANCELLED


def recompute_clocks(work_order: WorkOrder, *, now: dt.datetime | None = None, actor=None) -> list[Recomputed]:
    """Bring the job's clocks up to date; returns the clocks it wrote.

    A job gets clocks when it was reported (or moved) onto an active contract (`sla_tracked`);
    they then follow every change (a new priority band, an amended rule, an edited calendar)
    whatever the contract does next.
    """
    now = now or timezone.now()
    # Locked: a scan committing between this read and the save below must not have its
    # escalation bookkeeping overwritten (it would announce a level twice).
    existing = {
        c.rule_id: c for c in work_order.sla_clocks.select_for_update(of=("self",)).select_related("rule__calendar")
    }
    if not work_order.sla_tracked and not existing:
        return []
    wanted = {rule.pk: rule for rule in rules_for(work_order)} if work_order.sla_tracked else {}
    _follow_new_versions(existing, wanted)
    holds = list(work_order.holds.all())
    written = []
    for rule_id, clock_row in existing.items():
        if rule_id not in wanted and clock_row.state != SlaClock.State.CANCELLED and clock_row.stopped_at is None:
            # The job left this rule's band (or the rule's version changed): the clock no longer
            # applies. It keeps the time it ran until now, and says so, so that a breach of it
            # is settled at once.
            was_running = _running(clock_row)
            # Until now, or the job's own stop for this metric when it came first (a response
            # sent in the same request as the priority change; found by an outside sweep).
            stop = getattr(work_order, STOPS[clock_row.metric])
            until = now if stop is None else min(now, max(stop, clock_row.started_at))
            clock_row.elapsed_seconds = live_elapsed_seconds(clock_row, holds, until)
            clock_row.state, clock_row.next_escalation_at = SlaClock.State.CANCELLED, None
            clock_row.save(update_fields=["state", "elapsed_seconds", "next_escalation_at", "updated_at"])
            written.append(Recomputed(clock_row, was_running))
            record_event(
                type="sla_clock.stopped",
                obj=clock_row,
                actor=actor,
                payload={
                    "work_order": clock_row.work_order_id,
                    "state": clock_row.state,
                    "stopped_at": None,
                    "reason": "left_band",
                },
                occurred_at=now,
            )
    for rule in wanted.values():
        clock_row = existing.get(rule.pk)
        before = (clock_row.state, clock_row.stopped_at) if clock_row else (None, None)
        was_running = clock_row is not None and _running(clock_row)
        result = evaluate(
            rule,
            work_order,
            holds,
            now,
            sent=clock_row.escalations_sent if clock_row else 0,
            was_breached=clock_row is not None and clock_row.state == SlaClock.State.BREACHED,
        )
        if clock_row is None:
            clock_row = SlaClock(
                organization_id=work_order.organization_id,
                work_order=work_order,
                rule=rule,
                metric=rule.metric,
                target_minutes=rule.target_minutes,
            )
        clock_row.target_minutes = rule.target_minutes
        clock_row.started_at, clock_row.due_at, clock_row.stopped_at = (
            result.started_at,
            result.due_at,
            result.stopped_at,
        )
        clock_row.state, clock_row.elapsed_seconds = result.state, result.elapsed_seconds
        clock_row.next_escalation_at = result.next_escalation_at
        clock_row.save()
        written.append(Recomputed(clock_row, was_running))
        _announce(clock_row, before, actor=actor, now=now)
    return written


def _follow_new_versions(existing: dict[int, SlaClock], wanted: dict[int, SlaRule]) -> None:
    """A job's clock moves to the version of its rule that now applies (an amendment, back-dated
    too, or a reported_at moved across one): one clock per rule and job, running or stopped,
    recomputed under that version, so a retroactive version never measures a job twice nor
    breaches it twice (found by an outside sweep: two breaches, two penalties)."""
    for rule in wanted.values():
        if rule.pk in existing:
            continue
        for rule_id, clock_row in list(existing.items()):
            if (
                rule_id not in wanted
                and clock_row.metric == rule.metric
                and clock_row.state != SlaClock.State.CANCELLED
                and clock_row.rule.series_id == rule.series_id  # versions of one rule
            ):
                clock_row.rule = rule
                existing[rule.pk] = existing.pop(rule_id)
                break


def _announce(clock_row: SlaClock, before: tuple, *, actor, now) -> None:
    """A clock that turned breached, a clock that stopped or was cancelled: the events the breaches
    app reacts to and a consumer mirrors clock states from."""
    was_state, was_stopped = before
    if clock_row.state == SlaClock.State.BREACHED and was_state != SlaClock.State.BREACHED:
        record_event(
            type="sla_clock.breached",
            obj=clock_row,
            actor=actor,
            payload={"work_order": clock_row.work_order_id, "due_at": clock_row.due_at},
            occurred_at=now,
        )
    # A clock ends stopped (its stop came) or cancelled (the job ended without it: the on-site
    # clock of a job resolved unvisited), each once; a cancelled one says so with `stopped_at`
    # null, as when the job leaves the rule's band (`recompute_clocks`).
    stopped = clock_row.stopped_at is not None and clock_row.stopped_at != was_stopped
    cancelled = clock_row.state == SlaClock.State.CANCELLED and was_state != SlaClock.State.CANCELLED
    if stopped or cancelled:
        record_event(
            type="sla_clock.stopped",
            obj=clock_row,
            actor=actor,
            payload={
                "work_order": clock_row.work_order_id,
                "state": clock_row.state,
                "stopped_at": clock_row.stopped_at,
                # Why a cancelled clock ended: its job ended (resolved or cancelled) before its stop.
                **({"reason": "job_ended"} if cancelled and not stopped else {}),
            },
            occurred_at=now,
        )


def recompute_where(work_orders, *, now: dt.datetime | None = None, counts=lambda recomputed: True) -> int:
    """Recompute the clocks of many jobs, in batches of ids so memory stays flat; returns how
    many of the clocks written `counts` accepts (default: all).

    Each batch of jobs is locked (in id order) the way a job update locks its job, so a
    concurrent update is never overwritten with clocks computed from the job as it was.
    """
    now = now or timezone.now()
    written, last = 0, 0
    work_orders = work_orders.exclude(status__in=TERMINAL)
    while True:
        batch = list(
            work_orders.filter(pk__gt=last)
            .select_related("contract")
            .select_for_update(of=("self",))
            .order_by("pk")[:RECOMPUTE_BATCH]
        )
        if not batch:
            return written
        for work_order in batch:
            written += sum(1 for recomputed in recompute_clocks(work_order, now=now) if counts(recomputed))
        last = batch[-1].pk


# --- handlers of lower apps' events (registered in WorkordersConfig.ready) -----------------------

# What a calendar's clocks depend on; a new name changes no due time.
CALENDAR_TERMS = frozenset({"time_zone", "hours", "holidays", "holiday_country", "holiday_subdivision", "working_days"})


def on_calendar_updated(event) -> int:
    """A calendar changed: recompute the running and paused clocks of the rules that use it;
    returns how many of those clocks were recomputed (the X-Recomputed-Clocks header)."""
    if not CALENDAR_TERMS & set(event.payload.get("changes", {})):
        return 0
    calendar_id = event.object_id
    running = SlaClock.objects.filter(rule__calendar_id=calendar_id, stopped_at__isnull=True).exclude(
        state=SlaClock.State.CANCELLED
    )
    jobs = WorkOrder.objects.filter(pk__in=running.values("work_order_id"))
    return recompute_where(
        jobs, counts=lambda recomputed: recomputed.was_running and recomputed.clock.rule.calendar_id == calendar_id
    )


def on_rule_changed(event) -> int:
    """A rule was created, edited or amended: the jobs of its contract reported since it took
    effect may now fall under it (or under its successor). A new name changes no clock."""
    if event.type == "sla_rule.updated" and set(event.payload.get("changes", {})) <= {"name"}:
        return 0
    rule = SlaRule.objects.get(pk=event.object_id)
    jobs = WorkOrder.objects.filter(contract_id=rule.contract_id, reported_at__gte=rule.effective_from)
    # Counted: the clocks of this rule (a rule with a past effective_from attaches clocks to the
    # open jobs in its band reported since then: a retroactive start).
    return recompute_where(jobs, counts=lambda recomputed: recomputed.clock.rule_id == rule.pk)


# --- writes -------------------------------------------------------------------------------------


def _validate_timestamps(work_order: WorkOrder, now: dt.datetime) -> None:
    errors = {}
    for name in TIMESTAMPS:
        value = getattr(work_order, name)
        if value is None:
            continue
        if value > now + FUTURE_TOLERANCE and not (name == "reported_at" and work_order.visit_plan_id):
            # (A planned visit's job is generated ahead and reported at its occurrence.)
            errors[name] = ["Must not be more than 5 minutes in the future."]
        elif value < EARLIEST:
            errors[name] = [f"Must not be before {EARLIEST.date().isoformat()}: no job in this system is older."]
        elif name != "reported_at" and value < work_order.reported_at:
            errors[name] = ["Must not be before reported_at."]
    if (
        "resolved_at" not in errors
        and work_order.resolved_at
        and work_order.on_site_at
        and work_order.resolved_at < work_order.on_site_at
    ):
        errors["resolved_at"] = ["Must not be before on_site_at."]
    # A response after the job was done would run its response clock past the resolution, into a
    # breach (found by an outside tester). A reopen clears resolved_at, so a reopened job can
    # still be answered; it is checked again against the next resolution.
    if (
        not {"responded_at", "resolved_at"} & set(errors)
        and work_order.responded_at
        and work_order.resolved_at
        and work_order.responded_at > work_order.resolved_at
    ):
        errors["responded_at"] = ["Must not be after resolved_at."]
    if errors:
        raise Unprocessable(f"Invalid timestamps: {', '.join(errors)}.", errors)


# The stamp a status sets, and so the change's instant of a job created in that status with the
# stamp and without status_changed_at (pushed in as resolved at 12:00, it changed status at 12:00,
# not when it arrived; found by an outside sweep: its replayed close at the real time was then
# refused). So is a later change that sets the stamp (`PATCH {"status": "resolved", "resolved_at":
# ...}`); one that finds it set already (a reopened job's response) happens now.
STATUS_STAMPS = {WorkOrder.Status.IN_PROGRESS: "responded_at", WorkOrder.Status.RESOLVED: "resolved_at"}


def _stamp_sent(data: dict, status: str, job: WorkOrder | None = None) -> dt.datetime | None:
    """The stamp sent with a change to `status`, when the change sets it (`job`: as stored). On an
    update, only a stamp at or after the job's last status change and its resolution dates the
    change: an earlier one is a time recorded late (a response from before a hold), and the
    change happens now, as it did before stamps dated changes (found by a regression sweep)."""
    name = STATUS_STAMPS.get(status)
    if name is None or (job is not None and getattr(job, name) is not None):
        return None
    stamp = data.get(name)
    if job is not None and stamp is not None:
        settled = [at for at in (job.status_changed_at, job.resolved_at) if at is not None]
        if any(stamp < at for at in settled):
            return None
    return stamp


def _check_against_status_and_holds(work_order: WorkOrder, *, reported_at_moved: bool) -> None:
    """Times the job's status and holds must agree with, once its status has changed (found by
    outside sweeps): a `resolved_at` on a job that is not resolved (its resolution clock stopped
    while the job stayed open), none on one that is (the clock ran again and breached), and a
    `reported_at` moved after a hold began."""
    errors = {}
    done = work_order.status in (WorkOrder.Status.RESOLVED, WorkOrder.Status.CLOSED)
    if work_order.resolved_at is not None and not done:
        errors["resolved_at"] = [
            f"The job is {work_order.status}: send status resolved (with status_changed_at) to resolve it."
        ]
    elif work_order.resolved_at is None and done:  # its resolution clock would run again, unended
        errors["resolved_at"] = [f"The job is {work_order.status}: reopen it (status open) rather than clear this."]
    if reported_at_moved:
        first = work_order.holds.filter(start__lt=work_order.reported_at).order_by("start").first()
        if first is not None:
            errors["reported_at"] = [f"Must not be after the start of the job's hold at {first.start.isoformat()}."]
    if errors:
        raise Unprocessable(f"Invalid timestamps: {', '.join(errors)}.", errors)


def _retried_end(work_order: WorkOrder, data: dict) -> bool:
    """The request only repeats the change that closed or cancelled the job (its status, and its
    instant if sent): a retry after a timeout, answered as the first was rather than a 409."""
    return (
        set(data) <= {"status", "status_changed_at"}
        and data.get("status") == work_order.status
        and data.get("status_changed_at", work_order.status_changed_at) == work_order.status_changed_at
    )


def _check_status_repeated(work_order: WorkOrder, changed_at, hold_reason: str) -> None:
    """The status sent is the job's already: a retry of the change that made it so is a no-op, but
    a different instant or hold reason is refused (found by an outside sweep: they were dropped
    without a word). The hold's reason is not editable; an instant is corrected by the status
    change it belongs to."""
    errors = {}
    if changed_at is not None and changed_at != work_order.status_changed_at:
        when = work_order.status_changed_at.isoformat()
        errors["status_changed_at"] = [f"The job has been {work_order.status} since {when}: no status change."]
    if hold_reason:
        hold = work_order.holds.filter(end__isnull=True, kind=Hold.Kind.ON_HOLD).first()
        if hold is None or hold.reason != hold_reason:
            errors["hold_reason"] = [f"The job is already {work_order.status}: its hold's reason is not changed."]
    if errors:
        raise Unprocessable(f"No status change: the job is already {work_order.status}.", errors)


def _change_status(
    work_order: WorkOrder,
    new: str,
    *,
    at: dt.datetime,
    hold_reason: str,
    now,
    resolved_at=None,
    at_field: str = "status_changed_at",
) -> None:
    """Move the job to `new` at instant `at`, opening and closing holds and stamping times.
    `resolved_at`: the job's resolution as stored before this request's changes (a reopen's hold
    starts there, whatever the request says of resolved_at). `at_field`: the field `at` was sent
    as (errors name it)."""
    old = work_order.status
    if new not in NEXT_STATUS[old]:
        allowed = ", ".join(sorted(NEXT_STATUS[old])) or "none"
        raise Conflict(f"A work order cannot go from {old} to {new}; from {old} it can go to: {allowed}.")
    if at < work_order.status_changed_at:
        raise Unprocessable(
            f"{at_field} is before the job's previous status change.",
            {at_field: [f"Must not be before {work_order.status_changed_at.isoformat()}."]},
        )
    if at > now + FUTURE_TOLERANCE:
        raise Unprocessable(f"{at_field} is in the future.", {at_field: ["Must not be in the future."]})
    if old == WorkOrder.Status.ON_HOLD:
        work_order.holds.filter(kind=Hold.Kind.ON_HOLD, end__isnull=True).update(end=at)
    if new == WorkOrder.Status.ON_HOLD:
        Hold.objects.create(
            organization_id=work_order.organization_id, work_order=work_order, start=at, reason=hold_reason
        )
    if old == WorkOrder.Status.RESOLVED and new in (WorkOrder.Status.OPEN, WorkOrder.Status.IN_PROGRESS):
        # Reopened: the clocks resume; the time spent resolved does not count.
        resolved = resolved_at or work_order.resolved_at or work_order.status_changed_at
        if at < resolved:  # a hold cannot end before it starts (found by an outside sweep: a 500)
            raise Unprocessable(
                "status_changed_at is before the job was resolved.",
                {"status_changed_at": [f"Must not be before {resolved.isoformat()}, when the job was resolved."]},
            )
        Hold.objects.create(
            organization_id=work_order.organization_id,
            work_order=work_order,
            kind=Hold.Kind.REOPENED,
            start=resolved,
            end=at,
            reason="resolved, then reopened",
        )
        work_order.resolved_at = None
    if new == WorkOrder.Status.IN_PROGRESS and work_order.responded_at is None:
        work_order.responded_at = at
    if new == WorkOrder.Status.RESOLVED and work_order.resolved_at is None:
        work_order.resolved_at = at
    work_order.status, work_order.status_changed_at = new, at


def _on_active_contract(work_order: WorkOrder) -> bool:
    return work_order.contract is not None and work_order.contract.status == Contract.Status.ACTIVE


def _is_manual(work_order: WorkOrder) -> bool:
    """Whether the job's contract was given (jobs from before matching existed count as manual)."""
    if work_order.contract_match:
        return work_order.contract_match.get("method") == "manual"
    return work_order.contract_id is not None


def check_asset_counterparty(asset, counterparty_id: int) -> None:
    if asset.counterparty_id != counterparty_id:
        raise Unprocessable(
            "The asset belongs to another counterparty.",
            {"asset_id": [f"Asset {asset.pk} is not an asset of counterparty {counterparty_id}."]},
        )


def _settle_parties(work_order: WorkOrder) -> None:
    """The counterparty follows from the asset (or a manual contract) when not given; an asset
    of another counterparty is a 422 naming `asset_id`."""
    if work_order.asset is not None:
        if work_order.counterparty_id is None:
            work_order.counterparty = work_order.asset.counterparty
        else:
            check_asset_counterparty(work_order.asset, work_order.counterparty_id)
    if work_order.counterparty_id is None and work_order.contract is not None and _is_manual(work_order):
        work_order.counterparty = work_order.contract.counterparty


def _match(work_order: WorkOrder) -> None:
    """Find the contract that covers the job (workorders.matching) and record how."""
    result = matching.match_contract(organization=work_order.organization, job=matching.Job.of(work_order))
    work_order.contract, work_order.contract_match = result.contract, result.record()


@transaction.atomic
def create_work_order(*, organization, actor, data: dict, now: dt.datetime | None = None) -> WorkOrder:
    """A manual `contract` always wins; without one the job is matched (workorders.matching)."""
    now = now or timezone.now()
    data = dict(data)
    status = data.pop("status", WorkOrder.Status.OPEN)
    hold_reason = data.pop("hold_reason", "")
    changed_at = data.pop("status_changed_at", None)
    work_order = WorkOrder(organization=organization, status_changed_at=data["reported_at"], **data)
    if work_order.contract is not None:
        work_order.contract_match = data.get("contract_match") or matching.manual_record(work_order.contract)
        _settle_parties(work_order)
    else:
        _settle_parties(work_order)
        _match(work_order)
    work_order.sla_tracked = _on_active_contract(work_order)
    _validate_timestamps(work_order, now)
    work_order.save()
    if status != WorkOrder.Status.OPEN:
        at = changed_at or _stamp_sent(data, status) or now
        _change_status(work_order, status, at=at, hold_reason=hold_reason, now=now)
        _validate_timestamps(work_order, now)
        work_order.save()
    _check_against_status_and_holds(work_order, reported_at_moved=False)
    record_event(type="work_order.created", obj=work_order, actor=actor, payload=snapshot(work_order, SNAPSHOT))
    recompute_clocks(work_order, now=now, actor=actor)
    return work_order


@transaction.atomic
def update_work_order(*, instance: WorkOrder, actor, data: dict, now: dt.datetime | None = None) -> WorkOrder:
    # The event order before the job's row (events.feed, "Lock order"): a calendar edit's
    # recomputation locks jobs while holding it.
    work_order = locked(WorkOrder.objects.select_related("contract"), instance)
    # Only now: a change committed while this one waited for the lock happened before it.
    now = now or timezone.now()
    if work_order.status in TERMINAL:
        if _retried_end(work_order, data):
            return work_order  # a dispatch system's retry of the change that ended it
        raise Conflict(f"The work order is {work_order.status}; it can no longer change.")
    data = dict(data)
    status = data.pop("status", None)
    hold_reason = data.pop("hold_reason", "")
    changed_at = data.pop("status_changed_at", None)
    before = snapshot(work_order, SNAPSHOT)
    resolved_before = work_order.resolved_at
    stamp = _stamp_sent(data, status, work_order) if changed_at is None and status is not None else None
    apply_changes(work_order, data)
    _settle_parties(work_order)
    if "contract" in data and data["contract"] is not None:
        if work_order.contract_id != before["contract_id"] or not _is_manual(work_order):
            work_order.contract_match = matching.manual_record(work_order.contract)
    elif "contract" in data or (
        not _is_manual(work_order) and any(before[k] != getattr(work_order, k) for k in MATCH_INPUTS)
    ):
        # contract_id: null hands the job back to matching; so does a change of what it looks at.
        _match(work_order)
    if work_order.contract_id != before["contract_id"]:
        work_order.sla_tracked = _on_active_contract(work_order)
    if status is not None and status != work_order.status:
        at, field = (stamp, STATUS_STAMPS[status]) if stamp else (changed_at or now, "status_changed_at")
        _change_status(
            work_order, status, at=at, at_field=field, hold_reason=hold_reason, now=now, resolved_at=resolved_before
        )
    elif status is not None:
        _check_status_repeated(work_order, changed_at, hold_reason)
    _validate_timestamps(work_order, now)
    _check_against_status_and_holds(work_order, reported_at_moved=work_order.reported_at != before["reported_at"])
    after = snapshot(work_order, SNAPSHOT)
    changes = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if not changes:
        return work_order
    work_order.save()
    record_event(type="work_order.updated", obj=work_order, actor=actor, payload={"changes": changes})
    recompute_clocks(work_order, now=now, actor=actor)
    return work_order


@transaction.atomic
def create_planned_jobs(*, contract: Contract, data: list[dict], now: dt.datetime) -> list[WorkOrder]:
    """The jobs of planned visits, set-based: one INSERT for the jobs, one for their
    `work_order.created` events and one for their clocks, whatever the number of occurrences.

    Each job is what `create_work_order` makes of the same data: open, on its (manual) contract,
    tracked when the contract is active, with the clocks of the rules in force at its
    `reported_at` whose band holds its priority. A job this new has no hold and no stop, so no
    clock of it can have stopped or breached: there is no clock event to write.
    """
    rules = list(SlaRule.objects.select_related("calendar", "contract").filter(contract=contract, active=True))
    tracked = contract.status == Contract.Status.ACTIVE
    jobs = [
        WorkOrder(
            organization_id=contract.organization_id,
            status_changed_at=item["reported_at"],
            sla_tracked=tracked,
            **item,
        )
        for item in data
    ]
    WorkOrder.objects.bulk_create(jobs)
    record_events(
        type="work_order.created", items=[(job, snapshot(job, SNAPSHOT)) for job in jobs], occurred_at=timezone.now()
    )
    clocks = []
    for job in jobs if tracked else ():
        for rule in rules:
            if rule.in_force_at(job.reported_at) and job.priority in rule.priorities:
                result = evaluate(rule, job, [], now)
                clocks.append(
                    SlaClock(
                        organization_id=job.organization_id,
                        work_order=job,
                        rule=rule,
                        metric=rule.metric,
                        target_minutes=rule.target_minutes,
                        started_at=result.started_at,
                        due_at=result.due_at,
                        stopped_at=result.stopped_at,
                        state=result.state,
                        elapsed_seconds=result.elapsed_seconds,
                        next_escalation_at=result.next_escalation_at,
                    )
                )
    SlaClock.objects.bulk_create(clocks)
    return jobs

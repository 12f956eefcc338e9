"""Planned visits become work orders (issue 13): `generate_visits`, run by `run_lifecycle` (a step
registered in WorkordersConfig.ready) and by `manage.py generate_visits`.

For each plan of an active contract, the occurrences after the plan's `generated_until` and up
to `now + generate_days_in_advance` (within the plan's active dates and the contract's term)
become jobs, reported at the occurrence's start, on the plan's contract, with the SLA clocks of
the contract's rules for the plan's priority. Then `generated_until` moves to that horizon.

Exactly once per (plan, occurrence), even with several runners: a runner locks the plan row
(`SELECT ... FOR UPDATE SKIP LOCKED`, so another runner passes over it) and reads
`generated_until` under that lock; and the unique constraint on (visit_plan, occurrence) turns
any duplicate insert into a no-op (the plan's jobs are inserted set-based in a savepoint; if one
already exists, they are inserted one by one and the existing ones skipped).

A run reads only the plans that are due: each keeps `next_run_at`, when its next occurrence
enters its horizon (null after an edit or a resumption: look again).

A plan whose stored rule `recurrence.refusal` refuses (written before a check, e.g. one visit per
second) generates nothing and lists no occurrences: each run skips it with a log line, leaving its
`generated_until`, so that correcting the rule (PATCH) generates what is owed from there on.

A suspended contract generates nothing, and the visits generated ahead before its suspension are
cancelled (still open ones). When it is resumed (`contract.state_changed` to active from
suspended), its plans' `generated_until` moves to the instant of resumption, so only the
occurrences still ahead are caught up, and those of the cancelled visits still ahead get a job again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

from django.db import IntegrityError, transaction
from django.db.models import Q

from contracts.models import Contract
from contracts.services import CLOSED, skipping_failures
from contracts.terms import Timeline
from events.feed import hold_order

from . import matching, recurrence
from .models import VisitPlan, WorkOrder
from .services import create_planned_jobs, create_work_order, update_work_order

BATCH = 200
# A plan may not flood the service: at most this many jobs per plan and run.
MAX_PER_RUN = 1000
_EARLIEST = dt.timedelta(hours=14)
# How far ahead `next_run` looks for the next occurrence; a plan with none by then is not due.
_LOOKAHEAD = dt.timedelta(days=3660)
NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def plan_window(plan: VisitPlan, contract: Contract) -> tuple[dt.datetime, dt.datetime | None]:
    """[first instant, end instant) a plan's occurrences may fall in: its active dates within the
    contract's term as agreed (an approved extension effective later counts), as instants of the
    contract's time zone."""
    first_day = max(plan.active_from, contract.start_date or plan.active_from)
    last_days = [d for d in (plan.active_to, Timeline(contract).last_day()) if d is not None]
    first = contract.start_of_day(first_day)
    end = contract.start_of_day(min(last_days) + dt.timedelta(days=1)) if last_days else None
    return first, end


# An occurrence on a date that is no business day moves at most this far (`next_business_day`);
# one with no business day within it (a calendar closed for longer) is not visited.
MAX_SHIFT_DAYS = 31
_TICK = dt.timedelta(microseconds=1)
_FIRST_CHUNK = dt.timedelta(days=40)
_LAST_CHUNK = dt.timedelta(days=366)


def _mover(plan: VisitPlan, contract: Contract):
    """The plan's holiday rule as a function from an occurrence to the instant it is visited (None:
    skipped), or None when every occurrence is visited where it falls (`keep`). The occurrence's
    local date in the contract's time zone is read against the calendar's business days; a moved
    visit keeps the rule's wall time (`wall`: 02:30 even where that date's 02:30 fell in a
    spring-forward gap and became 03:30), read as the rule reads one (a gap time with the offset
    before it)."""
    if plan.on_holiday == VisitPlan.OnHoliday.KEEP or plan.calendar_id is None:
        return None
    spec, tz = plan.calendar.spec, zoneinfo.ZoneInfo(contract.time_zone)
    skip = plan.on_holiday == VisitPlan.OnHoliday.SKIP

    def move(occurrence: dt.datetime, wall: dt.time) -> dt.datetime | None:
        local = occurrence.astimezone(tz)
        if spec.is_business_day(local.date()):
            return occurrence
        if skip:
            return None
        for days in range(1, MAX_SHIFT_DAYS + 1):
            day = local.date() + dt.timedelta(days=days)
            if spec.is_business_day(day):
                return dt.datetime.combine(day, wall, tzinfo=tz).astimezone(dt.UTC)
        return None

    return move


def asset_left_on(plan: VisitPlan, contract: Contract):
    """None, or a function from a local date to whether the plan's asset has left the contract's
    coverage by then: the terms in force on that date (`covered_assets`) no longer name it while an
    earlier version of the same contract did (an amendment moved it to another contract, or took it
    out). A plan for an asset its contract never named is the counterparty's, as before."""
    if plan.asset_id is None:
        return None
    timeline = Timeline(contract)
    covered = [plan.asset_id in (version.terms.get("covered_assets") or []) for version in timeline.versions]
    if not any(covered):
        return None
    index = {version.pk: i for i, version in enumerate(timeline.versions)}

    def left(day: dt.date) -> bool:
        i = index[timeline.version(day).pk]
        return not covered[i] and any(covered[:i])

    return left


def _slots(plan: VisitPlan, contract: Contract, after: dt.datetime, until: dt.datetime, chunk=_FIRST_CHUNK):
    """(occurrence, visit) for each occurrence of the rule in (after, until], in order, lazily:
    `visit` is the instant it is visited, the occurrence itself unless the plan's holiday rule moves
    it (later) or skips it (None). A visit moved past the plan's window is None too, and so is one
    on a date when the plan's asset has left the contract's coverage (`asset_left_on`). Settling is by
    the occurrence (`generated_until`), so changing the holiday rule never owes a settled one twice."""
    if recurrence.refusal(plan.recurrence):  # a stored rule from before a check: never run
        return
    first, end = plan_window(plan, contract)
    after = max(after, first - _TICK)
    if end is not None:
        until = min(until, end - _TICK)
    move = _mover(plan, contract)
    left = asset_left_on(plan, contract)
    tz = zoneinfo.ZoneInfo(contract.time_zone)
    rule = {"time_zone": contract.time_zone, "anchor": plan.active_from}
    # In growing chunks (`chunk`, None: at once), so asking for the next few of a ten-year
    # lookahead does not compute them all.
    step, low = chunk or until - after, after
    while low < until:
        high = min(until, low + step)
        for occurrence, wall in recurrence.occurrences(
            plan.recurrence, after=low, until=high, limit=None, walls=True, **rule
        ):
            visit = occurrence if move is None else move(occurrence, wall.time())
            if visit is not None and end is not None and visit >= end:
                visit = None
            if visit is not None and left is not None and left(visit.astimezone(tz).date()):
                visit = None  # its asset is another contract's (or none's) by then: not this one's visit
            yield occurrence, visit
        low, step = high, min(step * 2, _LAST_CHUNK)


def _visits(plan: VisitPlan, contract: Contract, after: dt.datetime, until: dt.datetime, limit: int | None):
    """The instants visited in (after, until] (not earlier occurrences moved into it), in order,
    at most `limit`: occurrences after max(after less the longest move, `generated_until`)."""
    moves = plan.on_holiday == VisitPlan.OnHoliday.NEXT_BUSINESS_DAY
    lookback = dt.timedelta(days=MAX_SHIFT_DAYS if moves else 0)
    found: set[dt.datetime] = set()
    last = None  # the limit-th visit found so far (None: not known)
    chunk = _FIRST_CHUNK if limit is not None and limit <= MAX_PER_RUN else None
    for occurrence, visit in _slots(plan, contract, max(after - lookback, plan.generated_until), until, chunk):
        if limit is not None and len(found) >= limit:
            last = last or sorted(found)[limit - 1]
            if occurrence > last:
                break  # a later occurrence is visited later still
        if visit is not None and after < visit <= until:
            found.add(visit)
            if last is not None and visit < last:
                last = None
    return sorted(found)[:limit]


def upcoming(plan: VisitPlan, *, after: dt.datetime, until: dt.datetime, limit: int | None = None):
    """The plan's visits in (after, until] that its current rule would generate (occurrences after
    its `generated_until`, where its holiday rule puts them): all of them (at most
    `recurrence.max_occurrences(after, until)`, 24 a day), or the first `limit`."""
    return _visits(plan, plan.contract, after, until, limit)


def next_occurrences(plan: VisitPlan, *, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next `count` visits after an instant that are not generated yet: none once the
    contract is closed (expired, terminated, renewed), which generates and lists no more visits."""
    if plan.contract.status in CLOSED:
        return []
    after = max(after, plan.generated_until)
    return _visits(plan, plan.contract, after, after + _LOOKAHEAD, count)


def owes_before(plan: VisitPlan, now: dt.datetime) -> bool:
    """Whether the plan's terms as they stand owe an occurrence not generated yet by `now` (one in
    (`generated_until`, `now`] that is visited: a run has not come by since, or the contract is
    suspended). An edit asks it of the terms it replaces: when none is owed, the edited terms start
    at the edit (`rules.update_visit_plan`), as a new plan starts at its creation."""
    if plan.generated_until >= now:
        return False
    if recurrence.refusal(plan.recurrence):
        return True  # a stored rule refused since: correcting it generates what is owed from there on
    return any(visit is not None for _occurrence, visit in _slots(plan, plan.contract, plan.generated_until, now))


def _job_data(plan: VisitPlan, contract: Contract, occurrence: dt.datetime, now: dt.datetime) -> dict:
    local = occurrence.astimezone(zoneinfo.ZoneInfo(contract.time_zone))
    explanation = f"Planned visit: generated by visit plan {plan.pk} of {contract.reference}."
    if occurrence < now:
        # A run missed it (cron down, a plan corrected): made late, with its real due times.
        late = (now - occurrence) // dt.timedelta(minutes=1)
        explanation += f" Generated late, {late} minutes after its occurrence: its clocks count from the occurrence."
    return {
        "reference": f"VISIT-{plan.pk}-{local:%Y%m%d-%H%M}",
        "summary": plan.summary,
        "priority": plan.priority,
        "contract": contract,
        "counterparty": contract.counterparty,
        "asset": plan.asset,
        "location": plan.asset.location if plan.asset else None,
        "reported_at": occurrence,
        "visit_plan": plan,
        "occurrence": occurrence,
        "contract_match": matching.manual_record(contract, explanation),
    }


def next_run(plan: VisitPlan, contract: Contract) -> dt.datetime:
    """When the plan's next occurrence after `generated_until` enters its horizon (NEVER if none)."""
    window = _slots(plan, contract, plan.generated_until, plan.generated_until + _LOOKAHEAD)
    ahead = next((occurrence for occurrence, visit in window if visit is not None), None)
    if ahead is not None:  # generation settles by occurrence: due when it enters the horizon
        return ahead - dt.timedelta(days=plan.generate_days_in_advance)
    _first, end = plan_window(plan, contract)
    if end is not None and end <= plan.generated_until + _LOOKAHEAD:
        return NEVER  # its window closes first: nothing more to come
    # None within the lookahead but the plan goes on (a 12-yearly test): look again before one can
    # enter the horizon (before, such a plan was never due again).
    return plan.generated_until + _LOOKAHEAD - dt.timedelta(days=plan.generate_days_in_advance)


def generate_for_plan(plan: VisitPlan, *, now: dt.datetime, log=lambda message: None) -> int:
    """Generate the plan's due occurrences; the caller holds the plan's row lock."""
    contract = plan.contract
    if contract.status != Contract.Status.ACTIVE:
        return 0
    refused = recurrence.refusal(plan.recurrence)
    if refused:
        log(f"visit plan {plan.pk} ({contract.reference}) skipped, its recurrence is refused: {refused}")
        return 0
    horizon = now + dt.timedelta(days=plan.generate_days_in_advance)
    if horizon <= plan.generated_until:
        if plan.next_run_at is None:
            plan.next_run_at = next_run(plan, contract)
            plan.save(update_fields=["next_run_at", "updated_at"])
        return 0
    slots = list(itertools.islice(_slots(plan, contract, plan.generated_until, horizon), MAX_PER_RUN))
    due = sorted({visit for _occurrence, visit in slots if visit is not None})
    try:
        # All at once (a few statements per plan, not per job) ...
        created = len(
            create_planned_jobs(contract=contract, data=[_job_data(plan, contract, o, now) for o in due], now=now)
        )
    except IntegrityError:
        # ... unless some occurrence already has its job (a runner that read an older horizon):
        # then one by one, the unique constraint skipping each job that exists.
        created = 0
        for occurrence in due:
            try:
                create_work_order(
                    organization=contract.organization,
                    actor=None,
                    data=_job_data(plan, contract, occurrence, now),
                    now=now,
                )
            except IntegrityError:
                continue
            created += 1
    # Capped runs resume from the last occurrence made; otherwise the whole horizon is settled.
    plan.generated_until = slots[-1][0] if len(slots) >= MAX_PER_RUN else horizon
    plan.next_run_at = next_run(plan, contract)
    plan.save(update_fields=["generated_until", "next_run_at", "updated_at"])
    if created:
        late = sum(1 for visit in due if visit < now)
        note = f" ({late} late, after their occurrence: their clocks count from it)" if late else ""
        log(f"visit plan {plan.pk} ({contract.reference}): {created} visits generated{note}")
    return created


def _due_plans(now: dt.datetime):
    """Plans of active contracts whose next occurrence has entered their horizon (or that were
    changed since the last run): an index scan on `next_run_at`; each plan decides under its lock."""
    return VisitPlan.objects.filter(
        Q(next_run_at__isnull=True) | Q(next_run_at__lte=now),
        Q(active_to__isnull=True) | Q(active_to__gte=(now - _EARLIEST).date()),
        contract__status=Contract.Status.ACTIVE,
    )


def _plan_label(pk: int) -> str:
    from contracts.services import contract_label

    contract_id = VisitPlan.objects.filter(pk=pk).values_list("contract_id", flat=True).first()
    return f"visit plan {pk}" + ("" if contract_id is None else f" of {contract_label(contract_id)}")


def generate_visits(
    *, now: dt.datetime, log=lambda message: None, batch_size: int = BATCH, failures: list[str] | None = None
) -> int:
    """Generate every due occurrence of every plan; returns how many jobs were made."""
    created, last = 0, 0
    plans = _due_plans(now)
    while True:
        ids = list(plans.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return created
        for pk in ids:
            # `failures`: a plan that fails is skipped and reported (contracts.services.skipping_failures).
            with skipping_failures(failures, lambda pk=pk: _plan_label(pk), log), transaction.atomic():
                # The order before the plan's row, as its edit and delete take them (events.feed,
                # "Lock order"): its jobs' events would wait for the order while holding the row.
                hold_order(VisitPlan.objects.filter(pk=pk).values_list("organization_id", flat=True))
                plan = (
                    VisitPlan.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("contract__organization", "contract__counterparty", "asset", "calendar")
                    .filter(pk=pk)
                    .first()
                )
                if plan is not None:
                    created += generate_for_plan(plan, now=now, log=log)
        last = ids[-1]


def on_contract_resumed(event) -> int:
    """A resumed contract catches up only the occurrences still ahead of now; the visits its
    suspension cancelled for occurrences after now are owed again (`_restore_visits`)."""
    payload = event.payload
    if payload.get("to") != Contract.Status.ACTIVE or payload.get("from") != Contract.Status.SUSPENDED:
        return 0
    plans = VisitPlan.objects.filter(contract_id=event.object_id)
    plans.update(next_run_at=None)
    moved = plans.filter(generated_until__lt=event.occurred_at).update(generated_until=event.occurred_at)
    _restore_visits(event)
    return moved


def _cancel_visits_ahead(event, *, since: dt.datetime | None = None) -> int:
    """Cancel, through `update_work_order`, the jobs the contract's plans generated ahead
    (`generate_days_in_advance`) for occurrences after the event's instant (or from `since`) that
    are still open (nobody has started them): their clocks stop as cancelled (`sla_clock.stopped`,
    reason job_ended) and each change is a `work_order.updated` event. A job already in progress,
    on hold or resolved is the dispatcher's. Returns how many were cancelled."""
    after = Q(occurrence__gt=event.occurred_at) if since is None else Q(occurrence__gte=since)
    jobs = WorkOrder.objects.filter(
        after,
        contract_id=event.object_id,
        visit_plan__isnull=False,
        status=WorkOrder.Status.OPEN,
    ).order_by("occurrence", "id")
    cancelled = 0
    for job in jobs:
        # A job ahead was reported (its status set) at its occurrence: it is cancelled as of then,
        # a status change never going back before the previous one.
        at = max(event.occurred_at, job.status_changed_at)
        update_work_order(instance=job, actor=event.actor, data={"status": WorkOrder.Status.CANCELLED}, now=at)
        cancelled += 1
    return cancelled


def on_contract_terminated(event) -> int:
    """A terminated contract owes no visit after its termination: its visits generated ahead are
    cancelled (`_cancel_visits_ahead`). Before, they stayed open on a terminated contract and every
    one of them breached at the next `scan_breaches`, with its penalty."""
    if event.payload.get("to") != Contract.Status.TERMINATED:
        return 0
    return _cancel_visits_ahead(event)


def on_contract_ended(event) -> int:
    """An expired (or renewed) contract owes no visit after its term's end: the visits generated
    beyond it are cancelled. Generation stops at the end, so they exist only when an amendment
    brought the end forward after they were generated (the term as approved then reached further);
    before, they stayed open on the ended contract and breached, with their penalties."""
    if event.payload.get("to") not in (Contract.Status.EXPIRED, Contract.Status.RENEWED):
        return 0
    contract = Contract.objects.get(pk=event.object_id)
    last_day = Timeline(contract).last_day()
    if last_day is None:
        return 0
    return _cancel_visits_ahead(event, since=contract.start_of_day(last_day + dt.timedelta(days=1)))


def on_contract_suspended(event) -> int:
    """A suspended contract owes no visit while it is suspended (it generates none, and a resumption
    does not owe the occurrences in between): the visits generated ahead before the suspension are
    cancelled as at a termination. Before, they stayed open and breached during the suspension,
    with their penalties. Those still ahead when the contract is resumed are made again then."""
    if event.payload.get("to") != Contract.Status.SUSPENDED:
        return 0
    return _cancel_visits_ahead(event)


def _restore_visits(resumed) -> int:
    """At a resumption: a new job for each visit the last suspension cancelled whose occurrence is
    still ahead (and inside its plan's window), as generation would have left it. The cancelled job
    stays, with its history; only jobs not cancelled are one per occurrence. The suspension's own
    cancellations are told from a dispatcher's by the events: open -> cancelled, between the
    suspension's `contract.state_changed` and the resumption's (the suspension left no open visit
    ahead for anyone else to cancel); one called off before the suspension stays called off."""
    from events.models import Event

    suspended = (
        Event.objects.filter(
            type="contract.state_changed",
            object_type="contract",
            object_id=resumed.object_id,
            id__lt=resumed.pk,
            payload__to=Contract.Status.SUSPENDED,
        )
        .order_by("-id")
        .first()
    )
    if suspended is None:
        return 0
    ahead = WorkOrder.objects.filter(
        contract_id=resumed.object_id,
        visit_plan__isnull=False,
        occurrence__gt=resumed.occurred_at,
        status=WorkOrder.Status.CANCELLED,
    )
    by_suspension = Event.objects.filter(
        type="work_order.updated",
        object_type="workorder",
        object_id__in=ahead.values("pk"),
        id__gt=suspended.pk,
        id__lt=resumed.pk,
        occurred_at__gte=suspended.occurred_at,
        payload__changes__status__before=WorkOrder.Status.OPEN,
        payload__changes__status__after=WorkOrder.Status.CANCELLED,
    ).values("object_id")
    jobs = ahead.filter(pk__in=by_suspension).select_related("visit_plan", "contract").order_by("occurrence", "id")
    made = 0
    for job in jobs:
        plan, contract = job.visit_plan, job.contract
        first, end = plan_window(plan, contract)
        if job.occurrence < first or (end is not None and job.occurrence >= end):
            continue  # the plan was ended (or the term shortened) meanwhile
        left = asset_left_on(plan, contract)
        if left is not None and left(contract.local_today(job.occurrence)):
            continue  # its asset has left the contract's coverage by then
        if WorkOrder.objects.filter(visit_plan=plan, occurrence=job.occurrence).exclude(status="cancelled").exists():
            continue
        data = _job_data(plan, contract, job.occurrence, resumed.occurred_at)
        create_work_order(organization=contract.organization, actor=resumed.actor, data=data, now=resumed.occurred_at)
        made += 1
    return made

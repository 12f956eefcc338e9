"""The evidence pack of a breach (issue 11): its whole derivation, recomputed with the pure clock.

Everything a counterparty needs to check the breach by hand, and nothing that changes with the
moment it is asked (so the SHA-256 of its canonical JSON is a stable citation):

- the job's instants and status history (each change as the event log recorded it), its holds
  (with reasons, and whether this rule pauses on them);
- the rule version in force (for a final breach, the one it was settled under): target, calendar
  (time zone, weekly hours, holidays), pause setting, penalty clause and monthly cap;
- every working interval of the calendar between the clock's start and the instant the breach
  was measured to (its stop; for a clock still running, the last measurement), with the
  business seconds counted in each (pauses taken out), the holidays and the DST changes in that
  span;
- the due time (the instant the target was reached), the stop, actual and overage minutes;
- the penalty step by step: the fixed amount, the amount per started unit, the per-breach cap,
  the month's other breaches of the rule that counted when this one was priced, and the monthly cap.

`recomputed` holds the figures derived here and `agrees_with_stored` compares each with the
stored breach. Pricing order within a month is the order in which the breaches were last priced:
the settled (final) ones in the order the log recorded their settlement, then the running ones in
id order (the refresh's walk), and a settled breach also counts the running ones detected before
its settlement (the month's total it was priced against had them); a breach counts the month's
other breaches priced before it that were not waived by then (a waiver the log recorded before
this breach's settlement or detection, then for a running breach one before its last measurement).
Not `measured_at`, which a replayed scan sets to its past `--now`.

The canonical JSON is the pack without `sha256`, keys sorted, no whitespace, UTF-8; `sha256` is
its hex digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q

from breaches.models import Breach
from breaches.penalties import ZERO, _cap, breach_penalty, started_units, within_monthly_cap
from config.api.serializers import cap_text, price_text
from events.models import Event
from slas import clock
from tenancy.currencies import quantize
from workorders.clocks import calendar_of, pauses_for
from workorders.models import SlaClock

from .statement import measured_until, penalty_before_caps


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _at(epoch: int) -> str:
    return iso(dt.datetime.fromtimestamp(epoch, dt.UTC))


def _epoch(value: dt.datetime) -> int:
    return math.floor(value.timestamp())


def canonical_json(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def with_digest(data: dict) -> dict:
    return {**data, "sha256": hashlib.sha256(canonical_json(data)).hexdigest()}


def evidence_queryset():
    return Breach.objects.select_related(
        "clock__rule__calendar",
        "clock__work_order",
        "sla_rule__calendar",
        "contract",
        "waived_by",
        "acknowledged_by",
    ).prefetch_related("clock__work_order__holds")


def measured_under(breach: Breach):
    """The rule version and target the breach is derived with: a final breach keeps the version it
    was measured and priced under (a later, back-dated version moves the job's clock, not a settled
    measurement: docs/decisions.md); an open one follows its clock."""
    if breach.final:
        return breach.sla_rule, breach.target_minutes
    return breach.clock.rule, breach.clock.target_minutes


def _status_history(job) -> list[dict]:
    history = []
    events = Event.objects.filter(
        organization_id=job.organization_id, object_type="workorder", object_id=job.pk
    ).order_by("id")
    for event in events:
        payload = event.payload or {}
        if event.type == "work_order.created":
            status = payload.get("status")
        else:
            status = ((payload.get("changes") or {}).get("status") or {}).get("after")
        if status:
            history.append({"status": status, "recorded_at": iso(event.occurred_at)})
    return history


def _dst_changes(zone_name: str, a: int, b: int) -> list[dict]:
    """The UTC-offset changes of a zone in [a, b) (epoch seconds), each to the second."""
    zone = ZoneInfo(zone_name)

    def offset(t: int) -> dt.timedelta:
        return dt.datetime.fromtimestamp(t, zone).utcoffset()

    changes, t, before = [], a, offset(a)
    while t < b:
        n = min(t + 86400, b)
        after = offset(n)
        if after != before:
            lo, hi = t, n  # offset(lo) == before, offset(hi) != before
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            changes.append({"at": _at(hi), "offset_before": _offset(before), "offset_after": _offset(offset(hi))})
            before = offset(hi)
        t = n
    return changes


def _offset(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _intervals(calendar: clock.Calendar, a: int, b: int, pauses: list[tuple[int, int | None]]) -> list[dict]:
    rows = []
    for start, end in calendar.intervals(a, b):
        paused = calendar.business_seconds(start, end) - calendar.business_seconds(start, end, pauses)
        rows.append(
            {
                "start": _at(start),
                "end": _at(end),
                "seconds": end - start,
                "paused_seconds": paused,
                "business_seconds": end - start - paused,
            }
        )
    return rows


def _money(amount, currency: str) -> str:
    return str(quantize(amount, currency))


def _rule_cap(cap, currency: str) -> str | None:
    if cap is None:
        return None
    return cap_text(cap, currency) if currency else str(cap)


SETTLED = "breach.finalized"


DETECTED, WAIVED = "breach.detected", "breach.waived"


def _log_positions(breach_ids, organization_id) -> dict[str, dict[int, int]]:
    """The id of each breach's `breach.detected`, `breach.finalized` and `breach.waived` event, by
    type, in one query (the log's order is the order in which the scan, the job updates and the
    waivers really happened, whatever `--now` a replayed scan or `waived_at` says)."""
    rows = Event.objects.filter(
        organization_id=organization_id,
        object_type="breach",
        object_id__in=breach_ids,
        type__in=(DETECTED, SETTLED, WAIVED),
    ).values_list("type", "object_id", "id")
    positions: dict[str, dict[int, int]] = {DETECTED: {}, SETTLED: {}, WAIVED: {}}
    for kind, object_id, pk in rows:
        positions[kind][object_id] = pk
    return positions


def _pricing_position(breach: Breach, settled: dict[int, int]) -> tuple:
    """Where a breach's last pricing comes in the order the month's cap was met: a final breach
    when it was settled (its `breach.finalized` event; one settled before the log had it, first),
    a breach still running at every refresh, after every settled one, the running ones in id order
    (the refresh's walk)."""
    if breach.final:
        return (0, settled.get(breach.pk, 0), breach.pk)
    return (1, 0, breach.pk)


def _counted_before(breach: Breach, rule) -> list[Breach]:
    """The month's other breaches of the rule (of any of its versions: they share the cap) that
    counted toward its cap when this one was priced, in the order they were priced.

    The order is the log's, not the breaches' `measured_at`: a scan replayed with an earlier
    `--now` (cron catching up) measures a breach at that past instant, after breaches that later
    instants had already priced and settled; those kept the room they took (a settled penalty
    never moves) and the replayed one got what was left."""
    at = breach.measured_at or breach.detected_at
    series = rule.series_id
    month = list(
        Breach.objects.filter(Q(sla_rule_id=series) | Q(sla_rule__first_version_id=series))
        .filter(penalty_month=breach.penalty_month)
        .only("id", "final", "state", "waived_at", "penalty_amount", "measured_at")
    )
    log = _log_positions([other.pk for other in month] + [breach.pk], breach.organization_id)
    settled, waivers = log[SETTLED], log[WAIVED]
    position = _pricing_position(breach, settled)
    # The log's record of this breach's last pricing: its settlement; for a running one, its
    # detection (the refreshes since write no event).
    priced_event = (settled if breach.final else log[DETECTED]).get(breach.pk)

    def waived_after_pricing(other: Breach) -> bool:
        # A waiver the log recorded before this breach was priced freed its room, whatever instants
        # `waived_at` and a replayed scan's `measured_at` carry. One after a settlement did not (a
        # settled penalty never moves); one after a running breach's detection did if a refresh came
        # after it: the instants (both of the moment they were written) tell.
        if priced_event is not None and other.pk in waivers:
            if waivers[other.pk] < priced_event:
                return False
            if breach.final:
                return True
        return other.waived_at is not None and other.waived_at > at

    def priced_before(other: Breach) -> bool:
        # A breach still running when this one was settled counted with it (the refresh and the
        # settlement read the month's total, running breaches included) if it had been detected.
        if breach.final and not other.final and priced_event is not None:
            return log[DETECTED].get(other.pk, priced_event) < priced_event
        return _pricing_position(other, settled) < position

    return sorted(
        (
            other
            for other in month
            if other.pk != breach.pk
            and priced_before(other)
            and (other.state != Breach.State.WAIVED or waived_after_pricing(other))
        ),
        key=lambda other: _pricing_position(other, settled),
    )


def _penalty_steps(breach: Breach, rule, overage: int, past_due: bool) -> dict:
    currency = breach.currency
    clause = rule.penalty or {}
    units = started_units(overage, int(clause["unit_minutes"])) if clause.get("per_unit_amount") else 0
    after_breach_cap = breach_penalty(rule.penalty, overage, currency) if past_due else quantize(ZERO, currency)
    others = [
        {"id": other.pk, "penalty_amount": other.penalty_amount, "measured_at": other.measured_at}
        for other in _counted_before(breach, rule)
    ]
    others_total = sum((row["penalty_amount"] for row in others), ZERO)
    cap = rule.monthly_penalty_cap
    after_monthly = within_monthly_cap(after_breach_cap, others_total, cap, currency)
    return {
        "clause": clause or None,
        "past_due": past_due,
        # As the clause states them, like unit prices (`price_text`): rounded to the minor unit,
        # fixed + per unit x units no longer gave before_caps (found by an outside tester).
        "fixed_amount": price_text(Decimal(str(clause.get("fixed_amount") or 0)), currency),
        "per_unit_amount": price_text(Decimal(str(clause.get("per_unit_amount") or 0)), currency),
        "unit_minutes": clause.get("unit_minutes"),
        "started_units": units,
        "before_caps": _money(penalty_before_caps(rule.penalty, overage, currency) if past_due else ZERO, currency),
        "per_breach_cap": None
        if clause.get("per_breach_cap") is None
        else _money(_cap(clause["per_breach_cap"], currency), currency),
        "after_breach_cap": _money(after_breach_cap, currency),
        "month": breach.penalty_month,
        "monthly_cap": None if cap is None else _money(_cap(cap, currency), currency),
        "month_other_breaches": [
            {"id": row["id"], "penalty": _money(row["penalty_amount"], currency), "priced_at": iso(row["measured_at"])}
            for row in others
        ],
        "month_others_total": _money(others_total, currency),
        "after_monthly_cap": _money(after_monthly, currency),
        "waived": breach.state == Breach.State.WAIVED,
        "owed": _money(ZERO if breach.state == Breach.State.WAIVED else after_monthly, currency),
        "currency": currency,
    }


def _holidays_between(spec: clock.CalendarSpec | None, first: dt.date, last: dt.date) -> list[str]:
    """The calendar's holidays from `first` to `last` (local dates): its own, and its country's
    public holidays, less the dates it works regardless."""
    if spec is None:
        return []
    days = {day for day in spec.holidays if first <= day <= last}
    if spec.country:
        for year in range(first.year, last.year + 1):
            days |= {day for day in clock.public_holidays(spec.country, spec.subdivision, year) if first <= day <= last}
    return sorted(day.isoformat() for day in days - spec.working_days)


def breach_evidence(breach: Breach) -> dict:
    """The evidence pack (with its `sha256`) of a breach fetched with `evidence_queryset()`."""
    clock_row = breach.clock
    job = clock_row.work_order
    rule, target = measured_under(breach)
    holds = list(job.holds.all())
    calendar = calendar_of(rule) or clock.TWENTY_FOUR_SEVEN
    spec = calendar.spec if isinstance(calendar, clock.CompiledCalendar) else None
    start = clock_row.started_at
    until = measured_until(breach)
    pauses = [(s, until if e is None or e > until else e) for s, e in pauses_for(rule, holds) if s < until]
    due_at = clock.due(calendar, start, target, pauses)
    a, b = _epoch(start), _epoch(until)
    epoch_pauses = [(_epoch(s), _epoch(e)) for s, e in pauses]
    seconds = calendar.business_seconds(a, b, epoch_pauses)
    actual = math.ceil(seconds / 60)
    overage = max(0, actual - target)
    cancelled = clock_row.state == SlaClock.State.CANCELLED
    past_due = cancelled or (due_at is not None and until > due_at)
    steps = _penalty_steps(breach, rule, overage, past_due)
    zone = spec.time_zone if spec else "UTC"
    local_start, local_end = (
        dt.datetime.fromtimestamp(a, ZoneInfo(zone)).date(),
        dt.datetime.fromtimestamp(b, ZoneInfo(zone)).date(),
    )
    recomputed = {
        "due_at": iso(due_at),
        "business_seconds": seconds,
        "actual_minutes": actual,
        "overage_minutes": overage,
        "penalty_amount": steps["after_monthly_cap"],
    }
    stored = {
        "due_at": iso(breach.due_at),
        "actual_minutes": breach.actual_minutes,
        "overage_minutes": breach.overage_minutes,
        "penalty_amount": _money(breach.penalty_amount, breach.currency),
    }
    return with_digest(
        {
            "breach": {
                "id": breach.pk,
                "state": breach.state,
                "final": breach.final,
                "detected_at": iso(breach.detected_at),
                "measured_at": iso(breach.measured_at),
                "waived_by": None if breach.waived_by is None else breach.waived_by.get_username(),
                "waived_at": iso(breach.waived_at),
                "waiver_reason": breach.waiver_reason,
                **{f"stored_{key}": value for key, value in stored.items()},
            },
            "contract": {
                "id": breach.contract_id,
                "reference": breach.contract.reference,
                "name": breach.contract.name,
            },
            "work_order": {
                "id": job.pk,
                "reference": job.reference,
                "priority": job.priority,
                "status": job.status,
                "reported_at": iso(job.reported_at),
                "responded_at": iso(job.responded_at),
                "on_site_at": iso(job.on_site_at),
                "resolved_at": iso(job.resolved_at),
                "status_history": _status_history(job),
            },
            "holds": [
                {
                    "kind": hold.kind,
                    "start": iso(hold.start),
                    "end": iso(hold.end),
                    "reason": hold.reason,
                    "pauses_this_rule": bool(pauses_for(rule, [hold])),  # the clock's own rule
                }
                for hold in holds
            ],
            "rule": {
                "id": rule.pk,
                "name": rule.name,
                "metric": rule.metric,
                "priorities": rule.priorities,
                "target_minutes": target,
                "effective_from": iso(rule.effective_from),
                "effective_to": iso(rule.effective_to),
                "previous_version": rule.previous_version_id,
                "pause_on_hold": rule.pause_on_hold,
                "calendar": None
                if spec is None
                else {
                    "id": rule.calendar_id,
                    "name": rule.calendar.name,
                    "time_zone": spec.time_zone,
                    "hours": [list(triple) for triple in spec.hours],
                    "holidays": sorted(day.isoformat() for day in spec.holidays),
                    "holiday_country": spec.country,
                    "holiday_subdivision": spec.subdivision,
                    "working_days": sorted(day.isoformat() for day in spec.working_days),
                },
                "penalty": rule.penalty,
                # As `/sla_rules/{id}` writes it (its `Meta.cap_fields`): as enforced, in the minor unit.
                "monthly_penalty_cap": _rule_cap(rule.monthly_penalty_cap, breach.contract.currency),
            },
            "clock": {
                "metric": clock_row.metric,
                "state": clock_row.state,
                "start": iso(start),
                "stop": iso(breach.clock_stopped_at),
                "measured_until": iso(until),
                # Where the clock stands now, if a reopening moved its stop after the breach was settled.
                "clock_stopped_at_now": iso(clock_row.stopped_at),
                # The version the job's clock follows now: a later one than `rule` if a back-dated
                # amendment came after this breach was settled.
                "rule_now": clock_row.rule_id,
                "pauses": [{"start": iso(s), "end": iso(e)} for s, e in pauses],
                "time_zone": zone,
                "working_intervals": _intervals(calendar, a, b, epoch_pauses),
                "holidays_in_span": _holidays_between(spec, local_start, local_end),
                "dst_changes": _dst_changes(zone, a, b) if spec else [],
                "due_at": iso(due_at),
                "business_seconds": seconds,
                "actual_minutes": actual,
                "overage_minutes": overage,
            },
            "penalty": steps,
            "recomputed": recomputed,
            "agrees_with_stored": {key: recomputed[key] == stored[key] for key in stored},
        }
    )

"""The monthly service-credit statement of a contract (issue 11).

For a month in the contract's time zone:

- the breaches detected in that month (the month their penalty counts in: `penalty_month`),
  each with its job, the rule version in force, target, actual and overage minutes, and the
  penalty step by step: before any cap, after the per-breach cap, and after the monthly cap
  (what is owed). A breach waived by the month's end is listed at zero, with who waived it, when
  and why; one waived later keeps its penalty here (a month once over does not change);
- the waiver corrections: the breaches of earlier months waived in this month, each taking its
  penalty off this month's (the month the waiver was made in, as the ledger reverses it then);
- the penalties posted by hand in the month (a ledger `penalty` a person posted, with or without a
  breach: the period's service credit includes them, so the statement lists them, with who posted
  them);
- the totals per currency (owed: the breaches' and the posted penalties' less the corrections, of
  which `posted`; `corrections`, negative; and `waived`: what was waived in the month, the month's
  own breaches' and the corrected ones'), so the months' `penalties` add up;
- the hours of the month: the opening balance, allocations (initial, renewal, credit),
  work, adjustments, expiries (unused hours of lots that expired) and the closing balance,
  with the jobs behind the work. Work counts as charged (the billing plan's rounding, minimum
  and multipliers applied: what the balance moves by, so one month's closing balance is the
  next one's opening); `worked` beside it is the hours as worked. A lot expired in the month (or
  before it) whose expiry `run_lifecycle` has not posted yet counts as posted (`unbooked_before`).

All sums are SQL aggregates over the month's rows; the listed breaches and jobs are the
month's own (a statement is read by a person, one month at a time).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q, Sum, Value
from django.utils import timezone

from breaches.models import Breach
from breaches.penalties import ZERO, breach_penalty, started_units
from contracts.models import Contract
from ledger.models import LedgerEntry
from ledger.services import ALLOCATIONS, HOUR_EFFECT, unbooked_expiries
from tenancy.currencies import quantize

from .compliance import local_midnight

T = LedgerEntry.Type
HOURS_ZERO = Decimal("0.00")


def month_bounds(contract: Contract, month: str) -> tuple[dt.datetime, dt.datetime]:
    """The instants a month ("YYYY-MM") begins and ends in the contract's time zone."""
    first = dt.date.fromisoformat(f"{month}-01")
    following = (first + dt.timedelta(days=32)).replace(day=1)
    zone = contract.start_of_day(first).tzinfo
    return local_midnight(first, zone), local_midnight(following, zone)


def penalty_before_caps(clause: dict | None, overage_minutes: int, currency: str) -> Decimal:
    """Fixed amount plus the per-unit amount for every started unit, before any cap."""
    if not clause:
        return quantize(ZERO, currency)
    amount = Decimal(str(clause.get("fixed_amount") or 0))
    if clause.get("per_unit_amount"):
        amount += Decimal(str(clause["per_unit_amount"])) * started_units(overage_minutes, int(clause["unit_minutes"]))
    return quantize(amount, currency)


def measured_until(breach: Breach) -> dt.datetime:
    """The instant the breach's actual minutes run to: the stop it was settled with (a final
    breach keeps it even if the job is reopened and its clock later stops again), else its
    last measurement."""
    return breach.clock_stopped_at or breach.measured_at or breach.detected_at


def past_due(breach: Breach) -> bool:
    """Whether the breach's clock was past its due time when measured: a breach whose job's times
    were corrected back within the target carries no penalty at any step (the evidence pack's
    `past_due`). Not `overage_minutes > 0`: a stop after the due time in closed hours adds no
    business minute, and is still late."""
    return breach.due_at is not None and measured_until(breach) > breach.due_at


def _money(amount, currency: str) -> str:
    return str(quantize(amount, currency))


def _hours(value) -> str:
    return str((Decimal(value or 0) + HOURS_ZERO).quantize(HOURS_ZERO))


def _user(user) -> dict | None:
    return None if user is None else {"id": user.pk, "name": user.get_username()}


# The columns of a statement's CSV: one row per breach line (the rule version as its start), then
# one per posted penalty (`kind` tells them apart; `id` is the breach's or the ledger entry's).
CSV_FIELDS = [
    "id", "work_order", "sla_rule", "rule_effective_from", "metric", "detected_at", "due_at", "target_minutes",
    "actual_minutes", "overage_minutes", "penalty_before_caps", "penalty_after_breach_cap",
    "penalty_after_monthly_cap", "penalty", "currency", "final", "state", "waived_by", "waived_at", "waiver_reason",
    "kind", "description", "posted_by", "occurred_at", "breach_id",
]  # fmt: skip


def waived_by_end(breach: Breach, end: dt.datetime) -> bool:
    """The breach was waived before the month's end: a waiver after it leaves the month as it was
    and is a correction of the month it was made in (`waiver_corrections`)."""
    return breach.state == Breach.State.WAIVED and breach.waived_at is not None and breach.waived_at < end


def breach_line(breach: Breach, end: dt.datetime) -> dict:
    rule = breach.sla_rule
    currency = breach.currency
    waived = waived_by_end(breach, end)
    late = past_due(breach)
    return {
        "id": breach.pk,
        "work_order": {"id": breach.work_order_id, "name": str(breach.work_order)},
        "sla_rule": {"id": rule.pk, "name": rule.name},
        "rule_version": {
            "effective_from": rule.effective_from,
            "effective_to": rule.effective_to,
            "previous_version": rule.previous_version_id,
        },
        "metric": breach.metric,
        "detected_at": breach.detected_at,
        "due_at": breach.due_at,
        "target_minutes": breach.target_minutes,
        "actual_minutes": breach.actual_minutes,
        "overage_minutes": breach.overage_minutes,
        # Each step as the breach was priced: nothing at all for a clock no longer past due (it read
        # 100.00 before caps and after the per-breach cap, as if the monthly cap had taken it).
        "penalty_before_caps": _money(
            penalty_before_caps(rule.penalty, breach.overage_minutes, currency) if late else ZERO, currency
        ),
        "penalty_after_breach_cap": _money(
            breach_penalty(rule.penalty, breach.overage_minutes, currency) if late else ZERO, currency
        ),
        "penalty_after_monthly_cap": _money(breach.penalty_amount, currency),
        "penalty": _money(ZERO if waived else breach.penalty_amount, currency),
        "currency": currency,
        "final": breach.final,
        "state": breach.state,
        "waived_by": _user(breach.waived_by),
        "waived_at": breach.waived_at,
        "waiver_reason": breach.waiver_reason,
    }


def waiver_corrections(contract: Contract, month: str, start: dt.datetime, end: dt.datetime):
    """The month's waivers of breaches of earlier months: their months' statements keep the penalty
    they showed, and this month takes it off."""
    return Breach.objects.filter(
        contract=contract,
        state=Breach.State.WAIVED,
        waived_at__gte=start,
        waived_at__lt=end,
        penalty_month__lt=month,
    )


def correction_line(breach: Breach) -> dict:
    return {
        "id": breach.pk,
        "work_order": {"id": breach.work_order_id, "name": str(breach.work_order)},
        "month": breach.penalty_month,
        "amount": _money(-breach.penalty_amount, breach.currency),
        "currency": breach.currency,
        "waived_by": _user(breach.waived_by),
        "waived_at": breach.waived_at,
        "waiver_reason": breach.waiver_reason,
    }


def posted_penalties(contract: Contract, start: dt.datetime, end: dt.datetime):
    """The month's penalties posted by hand, dated in [start, end): every `penalty` entry but the
    system's (a breach's own penalty and its reversal are the breach lines). One a manager linked to
    a breach (`breach_id`) is owed on top of the breach's penalty, as the ledger, the balance and the
    period's service credit count it; keyed on the breach it was left off the statement."""
    return LedgerEntry.objects.filter(
        contract=contract,
        entry_type=T.PENALTY,
        reason_code=LedgerEntry.Reason.MANUAL,
        occurred_at__gte=start,
        occurred_at__lt=end,
    )


def posted_line(entry: LedgerEntry) -> dict:
    return {
        "id": entry.pk,
        "breach": None if entry.breach is None else {"id": entry.breach_id, "name": str(entry.breach)},
        "description": entry.description,
        "amount": _money(entry.amount, entry.currency),
        "currency": entry.currency,
        "occurred_at": entry.occurred_at,
        "posted_by": _user(entry.created_by),
        "posted_at": entry.created_at,
    }


def monthly_statement(*, contract: Contract, month: str) -> dict:
    start, end = month_bounds(contract, month)
    breaches = list(
        Breach.objects.filter(contract=contract, penalty_month=month)
        .select_related("sla_rule", "work_order", "waived_by")
        .order_by("detected_at", "id")
    )
    lines = [breach_line(breach, end) for breach in breaches]
    corrections = waiver_corrections(contract, month, start, end)
    correction_lines = [
        correction_line(breach)
        for breach in corrections.select_related("work_order", "waived_by").order_by("waived_at", "id")
    ]
    posted = posted_penalties(contract, start, end)
    posted_lines = [
        posted_line(entry) for entry in posted.select_related("created_by", "breach").order_by("occurred_at", "id")
    ]
    blank = {"owed": ZERO, "waived": ZERO, "posted": ZERO, "corrections": ZERO}
    sums: dict[str, dict[str, Decimal]] = {}
    # Waived by the month's end: a waiver after it is the later month's correction.
    waived = Q(state=Breach.State.WAIVED, waived_at__lt=end)
    for row in (
        Breach.objects.filter(contract=contract, penalty_month=month)
        .values("currency")
        .annotate(
            owed=Sum("penalty_amount", filter=~waived, default=Value(ZERO)),
            waived=Sum("penalty_amount", filter=waived, default=Value(ZERO)),
        )
        .order_by("currency")
    ):
        sums[row["currency"]] = {**blank, "owed": row["owed"], "waived": row["waived"]}
    for row in corrections.values("currency").annotate(total=Sum("penalty_amount")).order_by("currency"):
        figures = sums.setdefault(row["currency"], dict(blank))
        figures["corrections"] = row["total"]
        figures["waived"] += row["total"]
    for row in posted.values("currency").annotate(total=Sum("amount")).order_by("currency"):
        sums.setdefault(row["currency"], dict(blank))["posted"] = row["total"]
    totals = {
        currency: {
            "penalties": _money(figures["owed"] + figures["posted"] - figures["corrections"], currency),
            "posted": _money(figures["posted"], currency),
            "waived": _money(figures["waived"], currency),
            "corrections": _money(-figures["corrections"], currency),
        }
        for currency, figures in sorted(sums.items())
    }
    return {
        "contract": {"id": contract.pk, "name": contract.name, "reference": contract.reference},
        "counterparty": {"id": contract.counterparty_id, "name": contract.counterparty.name},
        "month": month,
        "time_zone": contract.time_zone,
        "period": {"from": start.astimezone(dt.UTC), "to": end.astimezone(dt.UTC)},
        "breaches": lines,
        "posted_penalties": posted_lines,
        "waiver_corrections": correction_lines,
        "totals": totals,
        "hours": month_hours(contract, start, end),
    }


def unbooked_before(contract: Contract, instant: dt.datetime) -> Decimal:
    """Unused hours of lots that expired before `instant` (up to now) whose expiry `run_lifecycle`
    has not posted yet: expired all the same, as `/balance` counts them (a read never posts). Before
    it, not at it: the posting is dated at the lot's expiry, so a lot expiring at a month's end is
    the next month's expiry."""
    at = min(instant, timezone.now()) - dt.timedelta(microseconds=1)
    return unbooked_expiries(contract, at)


def month_hours(contract: Contract, start: dt.datetime, end: dt.datetime) -> dict:
    entries = LedgerEntry.objects.filter(contract=contract)
    opening = entries.filter(occurred_at__lt=start).aggregate(total=Sum(HOUR_EFFECT, default=Value(HOURS_ZERO)))
    month = entries.filter(occurred_at__gte=start, occurred_at__lt=end)
    expired = Q(reason_code=LedgerEntry.Reason.LOT_EXPIRED)
    # Charged hours, as HOUR_EFFECT sums them: they differ from the hours worked for work only.
    figures = month.aggregate(
        allocations=Sum("charged_hours", filter=Q(entry_type__in=ALLOCATIONS), default=Value(HOURS_ZERO)),
        work=Sum("charged_hours", filter=Q(entry_type=T.WORK), default=Value(HOURS_ZERO)),
        worked=Sum("hours", filter=Q(entry_type=T.WORK), default=Value(HOURS_ZERO)),
        adjustments=Sum("charged_hours", filter=Q(entry_type=T.ADJUSTMENT) & ~expired, default=Value(HOURS_ZERO)),
        expiries=Sum("charged_hours", filter=Q(entry_type=T.ADJUSTMENT) & expired, default=Value(HOURS_ZERO)),
    )
    # A lot's expiry not posted yet counts as posted, so a month's figures do not depend on when cron
    # ran (a hand credit expiring on the 20th read as unexpired hours until the posting).
    unbooked_at_start = unbooked_before(contract, start)
    figures["expiries"] -= unbooked_before(contract, end) - unbooked_at_start
    opening_balance = (opening["total"] or HOURS_ZERO) - unbooked_at_start
    closing = opening_balance + figures["allocations"] - figures["work"] + figures["adjustments"] + figures["expiries"]
    jobs = (
        month.filter(entry_type=T.WORK)
        .values("work_order_id", "work_order__reference")
        .annotate(charged=Sum("charged_hours"), worked=Sum("hours"))
        .order_by("work_order_id")
    )
    return {
        "opening_balance": _hours(opening_balance),
        "allocations": _hours(figures["allocations"]),
        "work": _hours(figures["work"]),
        "worked": _hours(figures["worked"]),
        "adjustments": _hours(figures["adjustments"]),
        "expiries": _hours(figures["expiries"]),
        "closing_balance": _hours(closing),
        "work_by_job": [
            {
                "work_order": None
                if row["work_order_id"] is None
                else {
                    "id": row["work_order_id"],
                    "name": row["work_order__reference"] or f"work order {row['work_order_id']}",
                },
                "hours": _hours(row["charged"]),
                "worked": _hours(row["worked"]),
            }
            for row in jobs
        ],
    }

"""Recording, refreshing and finalising breaches exactly once; acknowledging and waiving them.

Exactly once: a breach is unique per clock in the database, and the scan claims the clocks it
records with `SELECT ... FOR UPDATE SKIP LOCKED` and flips them to `breached` in the same
transaction, so two scanners (or a scanner and a live job update) never record a clock twice.
A clock is past due when it still runs *after* its due time (DESIGN §6: stopped at the due time
is met), so a scan at exactly the due time records nothing yet.

Figures: actual = business minutes from the clock's start to its stop (or to now while it
runs), counting a started minute as a minute; overage = actual - target. The penalty follows
`breaches.penalties`; the monthly cap is per rule and month of detection in the contract's
time zone, over the breaches that are not waived. A breach is final once its clock stopped (or
was cancelled: the job left the rule's band; it then keeps the figures it was last measured
with); its penalty is then fixed (and, with the ledger, posted).

- A waived breach's penalty is frozen at the amount waived and no longer counts toward the
  monthly cap; its minutes keep following the clock.
- A breach whose clock is no longer past due (the job's times were corrected, e.g. an earlier
  response time or a later reported_at) carries no penalty while that holds, as long as it is not
  final. A final breach keeps its figures and its posted penalty whatever later corrections say:
  undoing it is a waiver, a person's decision with a reason, which reverses the penalty.
- The scan refreshes the running breaches before it records new ones, so within a month's cap
  the earlier breaches' growth comes before the newly detected ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, BooleanField, Case, DateTimeField, F, Func, Q, Sum, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import In
from django.utils import timezone

from config.bulk_insert import builder, bulk_insert
from config.errors import Conflict, Unprocessable
from events.feed import hold_order, locked
from events.services import record_event, record_events
from slas import clock
from slas.models import Calendar, SlaRule
from tenancy.currencies import quantize
from workorders.clocks import calendar_of, live_elapsed_seconds, next_escalation, pauses_for
from workorders.models import Hold, SlaClock

from .bulk import array_literal, update_from_values
from .models import Breach
from .penalties import ZERO, breach_penalty, cap_in_minor_unit, per_unit_minutes, started_units, within_monthly_cap

logger = logging.getLogger("breaches")


def _minutes(seconds: int) -> int:
    return math.ceil(seconds / 60)


def _month(contract, instant: dt.datetime) -> str:
    return contract.local_today(instant).strftime("%Y-%m")


def _claimed_clocks(queryset):
    return (
        queryset.select_related("rule__calendar", "rule__contract", "work_order")
        .prefetch_related("work_order__holds")
        .annotate(job_reference=F("work_order__reference"), job_summary=F("work_order__summary"))
    )


def _attach_calendars(rules, known: dict | None = None) -> None:
    """Give rules their calendar rows, one query for the batch and one instance per calendar (its
    compiled form memoised on it), rather than a joined copy of the row, JSON decoded, per rule.
    `known`: the calendars already read (a scan's, by id): only the others are read, and added."""
    known = {} if known is None else known
    missing = {rule.calendar_id for rule in rules if rule.calendar_id}.difference(known)
    if missing:
        known.update(Calendar.objects.in_bulk(missing))
    for rule in rules:
        if rule.calendar_id:
            rule.calendar = known[rule.calendar_id]


class _AnyOf(In):
    """`IN (ids)`, sent to PostgreSQL as `= ANY(array)`: one parameter rather than one placeholder
    per id (each prepared by Django and parsed by psycopg on the client, and no cached statement
    text); the index on the column is used the same way. Elsewhere a plain `IN`."""

    def as_postgresql(self, compiler, connection):
        if not self.rhs:
            raise EmptyResultSet  # as `IN ()`: no query at all
        column, params = self.process_lhs(compiler, connection)
        return f"{column} = ANY(%s::bigint[])", (*params, array_literal(self.rhs))


def _among(field: str, ids) -> _AnyOf:
    """A filter: `field` (an id column) is one of `ids`."""
    return _AnyOf(F(field), list(ids))


class _RuleTerms:
    """What the refresh needs of a rule, read as one row (no model instance, no JSON but the
    penalty clause decoded): its clock's calendar and pauses (`calendar_of`, `pauses_for`) and its
    penalty with the monthly cap (`_PenaltyBook.amount`); its contract (`breach.finalized`)."""

    __slots__ = (
        "pk", "metric", "pause_on_hold", "penalty", "monthly_penalty_cap", "calendar_id", "contract_id", "calendar"
    )  # fmt: skip
    FIELDS = __slots__[:-1]

    def __init__(self, pk, metric, pause_on_hold, penalty, monthly_penalty_cap, calendar_id, contract_id):
        self.pk, self.metric, self.pause_on_hold, self.penalty = pk, metric, pause_on_hold, penalty
        self.monthly_penalty_cap, self.calendar_id, self.calendar = monthly_penalty_cap, calendar_id, None
        self.contract_id = contract_id  # what a finalised breach's event names


class _PenaltyBook:
    """The month's penalties so far per (rule, month), read once per batch under a rule lock. A
    rule's versions (an amendment's) share its monthly cap: their penalties are counted together
    (by `SlaRule.series_id`), each priced with the cap of its own version.

    `rules`: the locked rules' terms by id (`_RuleTerms`) with their calendars (`load=True`, for
    the refresh, which needs them and so gets them from the lock's own query; `calendars`: the
    scan's, read once per scan)."""

    def __init__(self, rule_ids, months, *, load: bool = False, calendars: dict | None = None):
        # Lock every version of the rules in id order: concurrent scanners cannot both fill the
        # same month's cap.
        series = SlaRule.objects.filter(_among("pk", rule_ids)).values(series=Coalesce("first_version_id", "pk"))
        locked = (
            SlaRule.objects.select_for_update(of=("self",))
            .filter(Q(pk__in=series) | Q(first_version_id__in=series))
            .order_by("pk")
        )
        columns = _RuleTerms.FIELDS if load else ("pk",)
        rows = list(locked.values_list(Coalesce("first_version_id", "pk"), *columns))
        self.series = {row[1]: row[0] for row in rows}  # rule id -> its series
        if load:
            self.rules = {row[1]: _RuleTerms(*row[1:]) for row in rows if row[1] in rule_ids}
            _attach_calendars(self.rules.values(), calendars)
        totals = (
            Breach.objects.filter(_among("sla_rule_id", self.series), penalty_month__in=months)
            .exclude(state=Breach.State.WAIVED)
            .values_list("sla_rule_id", "penalty_month")
            .annotate(total=Sum("penalty_amount"))
        )
        self.totals = defaultdict(lambda: ZERO)
        for rule_id, month, total in totals:
            self.totals[(self.series[rule_id], month)] += total
        self._full = {}  # (rule, currency, started units) -> penalty before the monthly cap: a batch repeats them
        self._terms = {}  # (rule, currency) -> (its per-unit clause's unit, monthly cap in the minor unit or None)

    def amount(self, rule: SlaRule, month: str, old_amount, overage_minutes: int, past_due: bool, currency: str):
        """The penalty of a breach that is not waived, within the rule's monthly cap, its old
        amount (0 for a new breach) given back first; the month's total moves by the difference."""
        key = (self.series[rule.pk], month)
        already = self.totals[key] - old_amount
        terms = self._terms.get((rule.pk, currency))
        if terms is None:
            monthly = rule.monthly_penalty_cap
            cap = None if monthly is None else cap_in_minor_unit(monthly, currency)
            terms = self._terms[(rule.pk, currency)] = (per_unit_minutes(rule.penalty), cap)
        unit, cap = terms
        if past_due:
            # The penalty before the cap follows the started units of overage, not the minutes.
            memo = (rule.pk, currency, started_units(overage_minutes, unit) if unit else 0)
            full = self._full.get(memo)
            if full is None:
                full = self._full[memo] = breach_penalty(rule.penalty, overage_minutes, currency)
        else:
            full = ZERO
        if cap is None or already + full <= cap:
            # What `within_monthly_cap` returns when the room covers it (`full` is in the minor unit).
            amount = full
        else:
            amount = within_monthly_cap(full, already, rule.monthly_penalty_cap, currency)
        self.totals[key] = already + amount
        return amount

    def price(self, breach: Breach, rule: SlaRule) -> None:
        """Set the breach's penalty within the rule's monthly cap (its old amount given back first,
        also when the breach just followed its clock to a new version of its rule: the versions
        share the month).

        A waived breach keeps the amount it was waived at and does not count toward the cap; a
        breach whose clock is no longer past due carries no penalty.
        """
        if breach.state == Breach.State.WAIVED:
            return
        old = breach.penalty_amount if breach.pk else ZERO
        breach.penalty_amount = self.amount(
            rule, breach.penalty_month, old, breach.overage_minutes, breach.past_due, breach.currency
        )


def _past_due(clock_row: SlaClock, now: dt.datetime) -> bool:
    """Whether the clock is (still) breached: stopped after its due time or running past it (a
    correction of the job's times may have moved it back within its target)."""
    if clock_row.due_at is None:
        return False
    return (clock_row.stopped_at or now) > clock_row.due_at


def _measure(breach: Breach, clock_row: SlaClock, now: dt.datetime, holds=None) -> None:
    """Set the breach's figures from its clock at `now`; `breach.past_due` (not stored) tells
    `_PenaltyBook.price` whether the clock is still breached."""
    breach.measured_at = now
    # A cancelled clock (its job left the rule's priority band) no longer applies: the breach is
    # final, with the time the clock ran until then (which the clock keeps).
    cancelled = clock_row.state == SlaClock.State.CANCELLED
    if holds is None:
        holds = list(clock_row.work_order.holds.all())
    seconds = live_elapsed_seconds(clock_row, holds, now)
    breach.actual_minutes = _minutes(seconds)
    breach.overage_minutes = max(0, breach.actual_minutes - breach.target_minutes)
    breach.clock_stopped_at = clock_row.stopped_at
    breach.final = cancelled or clock_row.stopped_at is not None
    breach.past_due = cancelled or _past_due(clock_row, now)
    if clock_row.due_at is not None:
        breach.due_at = clock_row.due_at  # a replayed hold may have moved it


# `Breach(organization_id=..., penalty_month=...)` through Django's positional `__init__` (a scan
# builds one per clock past due; see `config.bulk_insert.builder`).
_NEW_BREACH = builder(
    Breach,
    ("organization_id", "clock_id", "contract_id", "sla_rule_id", "work_order_id", "metric", "target_minutes",
     "currency", "due_at", "detected_at", "penalty_month"),
)  # fmt: skip


def _new_breach(clock_row, now: dt.datetime, holds=None, month: str | None = None) -> Breach:
    """The breach of a clock (an `SlaClock`, or a scan's `_ClaimedClock`) with its rule and the
    rule's contract on it; `month`: the penalty month at `now` if known (the scan's, per contract)."""
    rule = clock_row.rule
    breach = _NEW_BREACH(
        clock_row.organization_id, clock_row.pk, rule.contract_id, rule.pk, clock_row.work_order_id,
        clock_row.metric, clock_row.target_minutes, rule.contract.currency, clock_row.due_at, now,
        month or _month(rule.contract, now),
    )  # fmt: skip
    _measure(breach, clock_row, now, holds)
    return breach


def _penalty(breach: Breach):
    """The penalty as money is written everywhere: in the currency's minor unit ("17.50", not "17.5000")."""
    return quantize(breach.penalty_amount, breach.currency)


def _subject(breach: Breach) -> dict:
    """What every breach event names, so that a consumer knows the job, the contract, the rule and
    the metric without a GET of the breach (`breach.waived` named none of them, `.acknowledged` and
    `.finalized` no contract: found in the eleventh round's sweep)."""
    return {
        "work_order": breach.work_order_id,
        "contract": breach.contract_id,
        "sla_rule": breach.sla_rule_id,
        "metric": breach.metric,
    }


def _detected_payload(breach: Breach) -> dict:
    return {
        **_subject(breach),
        "due_at": breach.due_at,
        "overage_minutes": breach.overage_minutes,
        "penalty_amount": _penalty(breach),
        "currency": breach.currency,
    }


def _detection_payload(breach: Breach, clock_row) -> dict:
    """`breach.detected`: the figures, and what a person reading a notification needs to place
    it (the job, the contract, the target) without a lookup. The breach's clock comes with its
    job's reference and its rule with its contract (`_claimed_clocks`, `detection_query`), so this
    costs no query."""
    contract = clock_row.rule.contract
    return {
        **_detected_payload(breach),
        "work_order_reference": _job_label(clock_row.work_order_id, clock_row.job_reference),
        "work_order_summary": clock_row.job_summary,
        "contract": contract.pk,
        "contract_reference": contract.reference,
        "target_minutes": breach.target_minutes,
        "actual_minutes": breach.actual_minutes,
    }


def _finalised(breach: Breach, actor=None, now=None) -> None:
    record_event(
        type="breach.finalized",
        obj=breach,
        actor=actor,
        payload={**_detected_payload(breach), "actual_minutes": breach.actual_minutes},
        occurred_at=now,
    )


@transaction.atomic
def record_breach(*, clock_row: SlaClock, now: dt.datetime, actor=None) -> Breach | None:
    """Record the breach of one clock (at once, from a job update); None if already recorded."""
    clock_row = _claimed_clocks(SlaClock.objects.select_for_update(of=("self",))).get(pk=clock_row.pk)
    if Breach.objects.filter(clock=clock_row).exists() or clock_row.due_at is None:
        return None
    breach = _new_breach(clock_row, now)
    _PenaltyBook({clock_row.rule_id}, {breach.penalty_month}).price(breach, clock_row.rule)
    try:
        with transaction.atomic():
            breach.save()
    except IntegrityError:
        return None  # a scanner recorded it in the meantime
    record_event(
        type="breach.detected", obj=breach, actor=actor, payload=_detection_payload(breach, clock_row), occurred_at=now
    )
    if breach.final:
        _finalised(breach, actor, now)
    return breach


@transaction.atomic
def settle_breach(*, clock_row: SlaClock, now: dt.datetime, actor=None, cancelled: bool = True) -> Breach | None:
    """A breached clock stopped: fix the breach's figures and penalty (once). A clock cancelled
    past its due time because its job left the rule's band gets its final breach here, if no
    scan recorded it while it ran (else changing the priority or the contract would erase a
    missed target). `cancelled=False`: the caller knows the clock stopped rather than being
    cancelled (its event says so), and no such breach needs looking for."""
    breach = Breach.objects.select_for_update().filter(clock_id=clock_row.pk, final=False).first()
    if breach is None and not cancelled:
        return None
    if breach is None:
        # Past due when it stopped applying: it had run longer than its target by then.
        state, elapsed, target = SlaClock.objects.values_list("state", "elapsed_seconds", "target_minutes").get(
            pk=clock_row.pk
        )
        if state == SlaClock.State.CANCELLED and elapsed > target * 60:
            return record_breach(clock_row=clock_row, now=now, actor=actor)
        return None
    clock_row = _claimed_clocks(SlaClock.objects).get(pk=clock_row.pk)
    _follow_clock_rule(breach, clock_row.rule_id, clock_row.target_minutes)
    _measure(breach, clock_row, now)
    _PenaltyBook({breach.sla_rule_id}, {breach.penalty_month}).price(breach, clock_row.rule)
    breach.save()
    if breach.final:
        _finalised(breach, actor, now)
    return breach


def _follow_clock_rule(breach: Breach, rule_id: int, target_minutes: int) -> None:
    """A breach that is not final follows its clock to a new version of its rule (an amendment,
    back-dated, that applies to the job: `workorders.services._follow_new_versions`): the new
    version's target, clause and monthly cap from then on. A final breach keeps its figures (a
    settled measurement)."""
    breach.sla_rule_id, breach.target_minutes = rule_id, target_minutes


# --- handlers of the work orders' clock events (registered in BreachesConfig.ready) -------------


def on_clock_breached(event) -> bool:
    return record_breach(clock_row=SlaClock(pk=event.object_id), now=event.occurred_at, actor=event.actor) is not None


def on_clock_stopped(event) -> bool:
    cancelled = event.payload.get("state") == SlaClock.State.CANCELLED  # no query for a clock that stopped
    clock_row = SlaClock(pk=event.object_id)
    return settle_breach(clock_row=clock_row, now=event.occurred_at, actor=event.actor, cancelled=cancelled) is not None


# --- acknowledging and waiving ------------------------------------------------------------------


@transaction.atomic
def acknowledge_breach(*, breach: Breach, actor, now: dt.datetime | None = None) -> Breach:
    """Acknowledge an open breach (409 once acknowledged or waived)."""
    now = now or timezone.now()
    breach = locked(Breach, breach)
    if breach.state != Breach.State.OPEN:
        raise Conflict(f"Only an open breach can be acknowledged; this one is {breach.state}.")
    breach.state, breach.acknowledged_by, breach.acknowledged_at = Breach.State.ACKNOWLEDGED, actor, now
    breach.save(update_fields=["state", "acknowledged_by", "acknowledged_at", "updated_at"])
    payload = _subject(breach)
    record_event(type="breach.acknowledged", obj=breach, actor=actor, payload=payload, occurred_at=now)
    return breach


@transaction.atomic
def waive_breach(*, breach: Breach, actor, reason: str, now: dt.datetime | None = None) -> Breach:
    """Waive a breach (open or acknowledged), with a reason: its penalty no longer counts toward
    the month's cap and stays at the amount waived (with the ledger, a posted one is reversed)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise Unprocessable("A waiver needs a reason.", {"reason": ["This field may not be blank."]})
    breach = locked(Breach, breach)
    if breach.state == Breach.State.WAIVED:
        raise Conflict(f"The breach was already waived at {breach.waived_at.isoformat()}.")
    breach.state, breach.waived_by, breach.waived_at, breach.waiver_reason = Breach.State.WAIVED, actor, now, reason
    breach.save(update_fields=["state", "waived_by", "waived_at", "waiver_reason", "updated_at"])
    record_event(
        type="breach.waived",
        obj=breach,
        actor=actor,
        payload={**_subject(breach), "reason": reason, "penalty_amount": _penalty(breach), "currency": breach.currency},
        occurred_at=now,
    )
    return breach


# --- the scan -----------------------------------------------------------------------------------


@dataclass
class ScanSummary:
    clocks_past_due: int = 0  # running clocks past due, claimed by this scan
    clocks_escalating: int = 0  # running clocks past their next escalation level, claimed by this scan
    new_breaches: int = 0
    escalations: int = 0
    refreshed: int = 0
    finalized: int = 0
    seconds: float = 0.0
    # Where the time went (the bench's figures): each phase, and the open breaches the refresh read.
    breaches_read: int = 0
    refresh_seconds: float = 0.0
    detect_seconds: float = 0.0
    escalate_seconds: float = 0.0
    # The rules the scan skipped (one line each): a rule whose calendar or contract cannot be read.
    failures: list[str] = field(default_factory=list)

    @property
    def clocks_examined(self) -> int:
        return self.clocks_past_due + self.clocks_escalating


def _scope(queryset, organization):
    return queryset if organization is None else queryset.filter(organization=organization)


def _rule_scope(queryset, rule_field: str, skip=(), only: int | None = None):
    """The scan's rows less those of the rules it skips (`skip`), or those of one rule (`only`):
    the failure path (`_RuleFailures`); the normal path passes neither and gets the same SQL."""
    if only is not None:
        queryset = queryset.filter(**{rule_field: only})
    if skip:
        queryset = queryset.exclude(**{f"{rule_field}__in": skip})
    return queryset


def _hold_order_of(candidates, batch_size: int) -> list[int]:
    """Hold the event order of the organizations of a batch's first `batch_size` candidates (read
    without a lock), before the batch locks any row (events.feed, "Lock order"): a job update holds
    the order and then locks the job's clocks, and settling a breach locks it. Their ids, sorted."""
    organizations = sorted(set(candidates.values_list("organization_id", flat=True)[:batch_size]))
    hold_order(organizations)
    return organizations


def past_due_clocks(*, now: dt.datetime, organization=None):
    """Running clocks still running after their stored due time, in due order: one query on the
    partial index `clock_running_due`, never a walk over the open jobs."""
    due = SlaClock.objects.filter(state=SlaClock.State.RUNNING, due_at__lt=now)
    return _scope(due, organization).order_by("due_at", "pk")


def escalating_clocks(*, now: dt.datetime, organization=None):
    """Running clocks past their next escalation level (the partial index `clock_next_escalation`)."""
    due = SlaClock.objects.filter(next_escalation_at__lte=now, stopped_at__isnull=True)
    return _scope(due, organization).order_by("next_escalation_at", "pk")


class _ClaimedClock(NamedTuple):
    """A clock a scan batch claimed, read as a plain row (no model instance per clock), with its
    rule (and the rule's contract and calendar) from the scan's `_ScanRules`: what `_new_breach`,
    `_measure` and the payloads read of an `SlaClock`."""

    pk: int
    organization_id: int
    work_order_id: int
    rule_id: int
    metric: str
    target_minutes: int
    started_at: dt.datetime
    due_at: dt.datetime | None
    stopped_at: dt.datetime | None
    state: str
    elapsed_seconds: int
    job_reference: str
    job_summary: str
    rule: SlaRule


# What a detection batch reads of each clock it claims, in `_ClaimedClock`'s order (less the rule).
_DETECTION_READ = (
    "pk", "organization_id", "work_order_id", "rule_id", "metric", "target_minutes", "started_at", "due_at",
    "stopped_at", "state", "elapsed_seconds", "job_reference", "job_summary",
)  # fmt: skip


def detection_query(*, now: dt.datetime, organization=None, skip=(), only: int | None = None, organizations=None):
    """What a detection batch claims: the running clocks past due (`past_due_clocks`) that no other
    scanner holds, locked, as rows (`_DETECTION_READ`) with their job's reference (their rules are
    the scan's, their holds read per batch). `skip`, `only`: `_rule_scope`; `organizations`: only
    theirs (those whose order the batch holds)."""
    due = _rule_scope(past_due_clocks(now=now, organization=organization), "rule_id", skip, only)
    if organizations is not None:
        due = due.filter(_among("organization_id", organizations))
    due = due.select_for_update(skip_locked=True, of=("self",))
    return due.annotate(job_reference=F("work_order__reference"), job_summary=F("work_order__summary")).values_list(
        *_DETECTION_READ
    )


class _ScanRules:
    """The rules one scan meets, each read once per scan with its contract and calendar (a scan's
    batches share most of them: a batch of 1,000 clocks meets about as many rules), and what the
    scan derives from each once: a contract's penalty month at `now`, a rule's escalation levels.

    A batch asks for its rules: one query for those no earlier batch of the scan read, none when
    all are known. Within the statements a batch makes (as before), never more. The calendars
    (`calendars`, by id) likewise, shared with the scan's refresh batches: a calendar edited
    during a scan applies from the next one, as a rule does."""

    def __init__(self, now: dt.datetime):
        self.now = now
        self.calendars: dict[int, Calendar] = {}
        self._rules: dict[int, SlaRule] = {}
        self._months: dict[int, str] = {}
        self._levels: dict[int, list[dict]] = {}

    def of(self, rule_ids) -> dict[int, SlaRule]:
        missing = set(rule_ids).difference(self._rules)
        if missing:
            self._rules.update(_rules(missing, self.calendars))
        return self._rules

    def month(self, rule: SlaRule) -> str:
        """The penalty month of a breach detected now under this rule (its contract's time zone)."""
        month = self._months.get(rule.contract_id)
        if month is None:
            month = self._months[rule.contract_id] = _month(rule.contract, self.now)
        return month

    def levels(self, rule: SlaRule) -> list[dict]:
        """The rule's escalation levels in at_percent order."""
        levels = self._levels.get(rule.pk)
        if levels is None:
            levels = self._levels[rule.pk] = sorted(rule.escalation or [], key=lambda level: level["at_percent"])
        return levels


def _detect_batch(
    *, now, organization, batch_size, rules: _ScanRules | None = None, skip=(), only: int | None = None
) -> tuple[int, int]:
    """Claim up to `batch_size` running clocks past due and record their breaches.

    The organizations' order is held first (`_hold_order_of`), then only their clocks are claimed.
    Rows another scanner holds are skipped; the claimed ones flip to breached in the same
    transaction, so no other scanner claims them again. `rules`: the scan's (a new one if None).
    """
    rules = rules or _ScanRules(now)
    with transaction.atomic():
        due = _rule_scope(past_due_clocks(now=now, organization=organization), "rule_id", skip, only)
        organizations = _hold_order_of(due, batch_size)
        if not organizations:
            return 0, 0
        claim = detection_query(now=now, organization=organization, skip=skip, only=only, organizations=organizations)
        rows = list(claim[:batch_size])
        if not rows:
            return 0, 0
        claimed = [row[0] for row in rows]
        SlaClock.objects.filter(_among("pk", claimed)).update(state=SlaClock.State.BREACHED, updated_at=now)
        recorded = set(Breach.objects.filter(_among("clock_id", claimed)).values_list("clock_id", flat=True))
        rows = [row for row in rows if row[0] not in recorded]
        known = rules.of({row[3] for row in rows})
        holds = _holds_by_job({row[2] for row in rows})
        clocks = [_ClaimedClock(*row, known[row[3]]) for row in rows]
        fresh = [
            _new_breach(clock_row, now, holds.get(clock_row.work_order_id, []), rules.month(clock_row.rule))
            for clock_row in clocks
        ]
        book = _PenaltyBook({b.sla_rule_id for b in fresh}, {b.penalty_month for b in fresh})
        for breach, clock_row in sorted(zip(fresh, clocks, strict=True), key=lambda bc: (bc[0].due_at, bc[0].clock_id)):
            book.price(breach, clock_row.rule)
        bulk_insert(Breach, fresh)
        items = [(b, _detection_payload(b, clock_row)) for b, clock_row in zip(fresh, clocks, strict=True)]
        record_events(type="breach.detected", items=items, occurred_at=now)
        return len(rows), len(fresh)


def _job_label(pk: int, reference: str) -> str:
    """A job as `str(work_order)` names it, from its reference alone (no instance per clock)."""
    return reference or f"work order {pk}"


# What a scan reads of a rule and its contract (`_new_breach`, `_measure`, the payloads, the penalty,
# the escalation levels): not their other columns (names, JSON priorities, dates, ~30 of the contract).
_SCAN_RULE_FIELDS = (
    "organization", "contract", "calendar", "metric", "target_minutes", "pause_on_hold", "escalation", "penalty",
    "monthly_penalty_cap", "contract__organization", "contract__reference", "contract__currency",
    "contract__time_zone",
)  # fmt: skip


def _rules(rule_ids, calendars: dict | None = None) -> dict[int, SlaRule]:
    """Rules with their contracts and calendars: one instance per rule (the clocks of a scan share
    them), instead of a joined copy of each per clock; only the columns the scan reads."""
    rules = SlaRule.objects.select_related("contract").only(*_SCAN_RULE_FIELDS).in_bulk(rule_ids)
    _attach_calendars(rules.values(), calendars)
    return rules


class _ClockSubject(NamedTuple):
    """What `record_events` reads of the object an event is about (organization, model, pk): an
    escalated clock read as a row, without a model instance per clock (12,000 at 1M jobs)."""

    organization_id: int
    pk: int
    _meta = SlaClock._meta


# What an escalation batch reads of each clock it claims.
_ESCALATION_READ = (
    "pk", "organization_id", "work_order_id", "rule_id", "metric", "target_minutes", "started_at", "due_at",
    "escalations_sent", "next_escalation_at", "job_reference", "job_summary",
)  # fmt: skip


def _escalate_batch(
    *, now, organization, batch_size, rules: _ScanRules | None = None, skip=(), only: int | None = None
) -> tuple[int, int]:
    """Announce each escalation level a running clock has passed, once per clock and level.

    A constant number of statements per batch: the clocks' organizations and their order lock
    (`_hold_order_of`), the clocks (with their jobs' summaries, as rows), their rules not yet read
    by this scan, their jobs' holds, one UPDATE of every clock's bookkeeping, and the events."""
    rules = rules or _ScanRules(now)
    with transaction.atomic():
        due = _rule_scope(escalating_clocks(now=now, organization=organization), "rule_id", skip, only)
        organizations = _hold_order_of(due, batch_size)
        if not organizations:
            return 0, 0
        due = due.filter(_among("organization_id", organizations)).select_for_update(skip_locked=True, of=("self",))
        jobs = {"job_reference": F("work_order__reference"), "job_summary": F("work_order__summary")}
        rows = list(due.annotate(**jobs).values_list(*_ESCALATION_READ)[:batch_size])
        if not rows:
            return 0, 0
        known = rules.of({row[3] for row in rows})
        holds = _holds_by_job({row[2] for row in rows})
        announcements, bookkeeping = [], []
        for pk, org_id, job_id, rule_id, metric, target, started_at, due_at, sent, next_at, reference, summary in rows:
            rule = known[rule_id]
            levels = rules.levels(rule)
            pauses = pauses_for(rule, holds.get(job_id, ()))
            subject = _ClockSubject(org_id, pk)
            while next_at is not None and next_at <= now:
                level = levels[sent]
                announcements.append(
                    (
                        subject,
                        {
                            "work_order": job_id,
                            "sla_rule": rule.pk,
                            "level": level["name"],
                            "at_percent": level["at_percent"],
                            "notify": level.get("notify", []),
                            "reached_at": next_at,
                            # What a notification names (no lookup: the clock comes with them).
                            "work_order_reference": _job_label(job_id, reference),
                            "work_order_summary": summary,
                            "contract": rule.contract_id,
                            "contract_reference": rule.contract.reference,
                            "metric": metric,
                            "target_minutes": target,
                            "due_at": due_at,
                        },
                    )
                )
                sent += 1
                next_at = next_escalation(rule, started_at, pauses, sent)
            bookkeeping.append((pk, sent, next_at))
        # The levels announced and the next one, for the whole batch in one statement.
        update_from_values(
            SlaClock, ["escalations_sent", "next_escalation_at"], bookkeeping, set_also={"updated_at": timezone.now()}
        )
        record_events(type="sla.escalation", items=announcements, occurred_at=now)
        return len(rows), len(announcements)


_REFRESHED = ("actual_minutes", "overage_minutes", "penalty_amount", "clock_stopped_at", "final", "due_at")
# Figures are whole minutes: re-measuring a running breach more often than this changes nothing.
REFRESH_EVERY = dt.timedelta(minutes=1)
# What the refresh reads of each open breach and its clock: plain tuples, no model instances, and
# few instants to decode per row (each costs more than all the other columns of a row together).
_REFRESH_READ = (
    "pk", "organization_id", "sla_rule_id", "work_order_id", "metric", "currency", "penalty_month", "state",
    "target_minutes", "penalty_amount", *_REFRESHED[:2], *_REFRESHED[3:5],
    "clock__state", "start_epoch", "clock__stopped_at", "clock__elapsed_seconds",
    "past_due", "moved_due", "final_due", "clock__rule_id", "clock__target_minutes",
)  # fmt: skip


class _EpochSeconds(Func):
    """Whole UTC epoch seconds of a datetime column, as `slas.clock.epoch` converts an instant (a
    fraction of a second dropped): an integer for the client to decode rather than a datetime."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection):
        return self.as_sql(compiler, connection, template="FLOOR(DATE_PART('epoch', %(expressions)s))::bigint")

    def as_sqlite(self, compiler, connection):
        # Django stores UTC text there ('YYYY-MM-DD HH:MM:SS[.ffffff]'): the fraction cut off, as
        # strftime would round it; '%%%%s' ends as strftime's '%s' once the driver's '%%' is undone.
        template = "CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER)"
        return self.as_sql(compiler, connection, template=template)


def _key_after(key: tuple[int, int]) -> RawSQL:
    """`(sla_rule_id, id) > key`: the keyset of the refresh's walk, one range of `breach_open_by_rule`."""
    table = Breach._meta.db_table
    return RawSQL(f'("{table}"."sla_rule_id", "{table}"."id") > (%s, %s)', key, output_field=BooleanField())


def _refresh_figures(now: dt.datetime) -> dict:
    """What the database tells of each breach's clock at `now` (as `_past_due` and `_measure` do)
    without sending its instants: whether it is past due, its due time only where it moved (a
    replayed hold), and the breach's due time where the breach becomes final (its event's)."""
    ends = Q(clock__stopped_at__isnull=False) | Q(clock__state=SlaClock.State.CANCELLED)
    return {
        "past_due": Case(
            When(
                Q(clock__state=SlaClock.State.CANCELLED)
                | Q(clock__due_at__lt=Coalesce("clock__stopped_at", Value(now, output_field=DateTimeField()))),
                then=Value(True),
            ),
            default=Value(False),
        ),
        "moved_due": Case(When(~Q(clock__due_at=F("due_at")), then="clock__due_at")),
        "final_due": Case(When(ends, then=Coalesce("clock__due_at", "due_at"))),
        "start_epoch": _EpochSeconds("clock__started_at"),
    }


def _holds_by_job(work_order_ids) -> dict[int, list]:
    """The holds of these jobs (one query), by job, in their model order: rows with the `kind`,
    `start` and `end` that `pauses_for` reads, not model instances."""
    holds = defaultdict(list)
    if work_order_ids:
        rows = Hold.objects.filter(_among("work_order_id", work_order_ids)).values_list(
            "work_order_id", "kind", "start", "end", named=True
        )
        for hold in rows:
            holds[hold.work_order_id].append(hold)
    return holds


def _refresh_batch(
    *, now, organization, after: tuple[int, int], batch_size, calendars: dict | None = None, skip=(), only=None
) -> tuple[int, int, tuple, int]:
    """Refresh the figures of breaches whose clocks run; finalise those whose clocks stopped.

    Set-based: a constant number of statements per batch whatever its size (the breaches' keys and
    organizations, their organizations' order lock, the breaches with their clocks, the rules
    locked, the calendars the scan has not read yet (`calendars`: the scan's, by id), the month's
    totals, the holds of the running ones, one UPDATE of every row, and for the finalised ones
    their events). The figures are those of `_measure` and `_PenaltyBook.price`, computed over
    plain tuples in (rule, pk) order (each rule's in pk order: the order of its monthly cap's
    room), the business time by the same pure clock. `after`: the (rule, pk) of the last breach
    the previous batch read; returned for this one's (a batch holds few rules, each with its
    breaches together: fewer rules to lock and fewer month totals to read than a batch in pk
    order, where each rule's breaches are spread over every batch).
    """
    with transaction.atomic():
        due = Breach.objects.filter(
            Q(measured_at__isnull=True) | Q(measured_at__lte=now - REFRESH_EVERY), _key_after(after), final=False
        )
        due = _rule_scope(_scope(due, organization), "sla_rule_id", skip, only).order_by("sla_rule_id", "pk")
        # The batch's breaches read first without a lock, to hold their organizations' order
        # before locking any (events.feed, "Lock order"); then those, locked. The walk goes on
        # after the last one read, locked or not (another scanner's are skipped, as before).
        window = list(due.values_list("sla_rule_id", "pk", "organization_id")[:batch_size])
        if not window:
            return 0, 0, after, 0
        hold_order({org_id for _rule_id, _pk, org_id in window})
        end = window[-1][:2]
        open_breaches = due.filter(_among("pk", [pk for _rule_id, pk, _org_id in window]))
        open_breaches = open_breaches.select_for_update(skip_locked=True, of=("self",))
        rows = list(open_breaches.annotate(**_refresh_figures(now)).values_list(*_REFRESH_READ))
        if not rows:
            return 0, 0, end, 0
        # The rules of the breaches' clocks (a breach follows its clock to a new version of its rule).
        book = _PenaltyBook({row[21] for row in rows}, {row[6] for row in rows}, load=True, calendars=calendars)
        cancelled_state, waived = SlaClock.State.CANCELLED, Breach.State.WAIVED
        rules = book.rules
        # Only a clock that still runs is measured again (a stopped or cancelled one keeps its
        # figure), so only the jobs of those need their holds.
        holds = _holds_by_job({r[3] for r in rows if r[16] is None and r[14] != cancelled_state})
        # The business time as `clock.business_seconds` computes it, through the epoch API: `now`
        # converted once, each rule's calendar and each job's pauses once per batch.
        now_epoch = clock.epoch(now)
        compiled, pauses_memo = {}, {}
        updates, finalized, followed = [], [], []
        changed = 0
        for row in rows:
            (pk, org_id, breach_rule_id, job_id, metric, currency, month, state, target, old_amount,
             old_actual, old_overage, old_stopped, old_final,
             clock_state, start, stopped_at, elapsed, past_due, moved_due, final_due,
             rule_id, clock_target) = row  # fmt: skip
            rule = rules[rule_id]
            if rule_id != breach_rule_id:  # `_follow_clock_rule`, for a batch (rare)
                followed.append((pk, rule_id, clock_target))
                target = clock_target
            cancelled = clock_state == cancelled_state
            if stopped_at is not None or cancelled:
                seconds = elapsed
            else:
                calendar = compiled.get(rule_id)
                if calendar is None:
                    calendar = compiled[rule_id] = clock.compile_calendar(calendar_of(rule))
                job_holds = holds.get(job_id)
                if job_holds is None:  # most jobs: no hold, nothing pauses the clock
                    pauses = ()
                else:
                    key = (rule_id, job_id)
                    pauses = pauses_memo.get(key)
                    if pauses is None:
                        pauses = pauses_memo[key] = clock.epoch_pauses(pauses_for(rule, job_holds))
                seconds = calendar.business_seconds(start, now_epoch, pauses)
            actual = _minutes(seconds)
            overage = max(0, actual - target)
            final = cancelled or stopped_at is not None
            # A waived breach keeps the amount it was waived at, outside the month's cap.
            if state == waived:
                amount = old_amount
            else:
                amount = book.amount(rule, month, old_amount, overage, past_due, currency)
            moved = moved_due is not None or rule_id != breach_rule_id or (
                actual, overage, amount, stopped_at, final
            ) != (old_actual, old_overage, old_amount, old_stopped, old_final)  # fmt: skip
            changed += moved
            # The penalty and the due time only where they moved (None: the row keeps its own).
            new_amount = None if amount == old_amount else amount
            updates.append((pk, actual, overage, new_amount, stopped_at, final, moved_due, moved))
            if final:
                finalized.append(
                    Breach(
                        pk=pk,
                        organization_id=org_id,
                        contract_id=rule.contract_id,
                        sla_rule_id=rule_id,
                        work_order_id=job_id,
                        metric=metric,
                        currency=currency,
                        due_at=final_due,
                        overage_minutes=overage,
                        actual_minutes=actual,
                        penalty_amount=amount,
                    )  # fmt: skip
                )
        touched = {"touch": "updated_at", "touch_at": timezone.now()}  # only the rows whose figures moved
        kept = ("penalty_amount", "due_at")
        update_from_values(
            Breach, list(_REFRESHED), updates, set_also={"measured_at": now}, keep_if_none=kept, **touched
        )
        update_from_values(Breach, ["sla_rule", "target_minutes"], followed)  # none in most batches: no statement
        if finalized:
            items = [(b, {**_detected_payload(b), "actual_minutes": b.actual_minutes}) for b in finalized]
            record_events(type="breach.finalized", items=items, occurred_at=now)
        else:
            _commit_without_waiting_for_the_disk()
        return changed, len(finalized), end, len(rows)


def _commit_without_waiting_for_the_disk() -> None:
    """A refresh batch that only re-measured figures (no event, nothing posted to the ledger)
    commits without waiting for its WAL to reach the disk: PostgreSQL's `synchronous_commit = off`
    for this transaction alone (the flush of ~1,000 rewritten rows was ~10% of a batch). A crash
    can lose the last fraction of a second of such batches, each whole (no breach half refreshed,
    no month total off), never an event; the next scan measures them again from the same clocks.
    A batch that finalises a breach commits durably as before, which flushes every earlier one.
    Not inside a caller's transaction (the setting would be the caller's whole transaction's)."""
    connection = transaction.get_connection()
    # Only when the batch's transaction is its own: inside a caller's (a test's), it would be theirs.
    if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


class _RuleFailures:
    """The rules a scan skips, and why. A rule whose rows a batch cannot process (its calendar's
    time zone removed by a tzdata upgrade, its contract's) failed the whole scan, every run, for
    every organization (found by an outside sweep). A batch that raises is rolled back and done
    again one rule at a time; the rule that raises is reported (its id, organization, contract,
    calendar) and left out of the rest of the scan. The normal path runs the same statements."""

    def __init__(self, log):
        self.log = log
        self.rules: set[int] = set()
        self.messages: list[str] = []

    def one_rule_at_a_time(self, rule_ids, run) -> list[tuple]:
        """`run(only=rule_id)` for each rule until it reports nothing more; the results."""
        results = []
        for rule_id in sorted(rule_ids):
            try:
                while True:
                    result = run(only=rule_id)
                    results.append(result)
                    if not result[0]:
                        break
            except Exception as exc:  # whatever it is, it is this rule's rows'
                self._skip(rule_id, exc)
        return results

    def _skip(self, rule_id: int, exc: Exception) -> None:
        self.rules.add(rule_id)
        rule = SlaRule.objects.select_related("organization", "contract").filter(pk=rule_id).first()
        where = (
            f"rule {rule_id}"
            if rule is None
            else f"rule {rule_id} of {rule.contract.reference} (organization {rule.organization.slug}, "
            f"calendar {rule.calendar_id or 'none'})"
        )
        message = f"{where}: {type(exc).__name__}: {exc}"
        logger.error("scan_breaches skipped %s", message, exc_info=exc)
        self.log(f"skipped {message}")
        self.messages.append(message)


def scan_breaches(*, now: dt.datetime, organization=None, batch_size: int = 1000, log=lambda message: None):
    """Refresh running breaches, announce escalations, record new breaches; safe to run anywhere at once.

    Each batch is its own transaction; memory stays flat whatever the number of clocks. A rule
    whose rows cannot be processed is skipped and reported (`ScanSummary.failures`, `_RuleFailures`).
    """
    started = time.monotonic()
    summary = ScanSummary()
    failures = _RuleFailures(log)
    # The rules and calendars the scan reads once: the calendars for its refresh batches too, the
    # rules (with their contracts) for its detection and escalation batches.
    rules = _ScanRules(now)
    after = (0, 0)
    while True:
        try:
            refreshed, finalized, last, read = _refresh_batch(
                now=now,
                organization=organization,
                after=after,
                batch_size=batch_size,
                calendars=rules.calendars,
                skip=failures.rules,
            )
        except Exception:
            # The batch's rules (in the walk's order), each walked on its own to its end; the
            # walk then goes on after the last of them.
            batch = _scope(Breach.objects.filter(_key_after(after), final=False), organization)
            batch = _rule_scope(batch, "sla_rule_id", failures.rules).order_by("sla_rule_id", "pk")
            rule_ids = set(batch.values_list("sla_rule_id", flat=True)[:batch_size])
            refreshed = finalized = read = 0
            for rule_id in sorted(rule_ids):
                walked = [(0, 0, (rule_id, 0) if rule_id != after[0] else after)]

                def walk(only, walked=walked):
                    changed, final, key, count = _refresh_batch(
                        now=now,
                        organization=organization,
                        after=walked[-1][2],
                        batch_size=batch_size,
                        calendars=rules.calendars,
                        only=only,
                    )
                    walked.append((changed, final, key, count))
                    return (count, changed, final)

                for count, changed, final in failures.one_rule_at_a_time([rule_id], walk):
                    refreshed, finalized, read = refreshed + changed, finalized + final, read + count
            last = (max(rule_ids), 2**63 - 1) if rule_ids else after
        if last == after:
            break
        summary.refreshed += refreshed
        summary.finalized += finalized
        summary.breaches_read += read
        log(f"open breaches: {summary.refreshed} refreshed, {summary.finalized} finalised")
        after = last
    escalating = time.monotonic()
    summary.refresh_seconds = escalating - started
    # Escalation before detection: a clock the scan finds past due for the first time (a late scan,
    # a job pushed with a past reported_at) passed its levels (all at or before its due time, at
    # most 100 %) before its breach, so the log, the streams, webhooks and mails say so in order.
    summary.clocks_escalating, summary.escalations = _claim_batches(
        _escalate_batch, escalating_clocks, now, organization, batch_size, rules, failures,
        lambda total: log(f"escalations: {total[1]} of {total[0]} clocks"),
    )  # fmt: skip
    detecting = time.monotonic()
    summary.escalate_seconds = detecting - escalating
    summary.clocks_past_due, summary.new_breaches = _claim_batches(
        _detect_batch, past_due_clocks, now, organization, batch_size, rules, failures,
        lambda total: log(f"breaches: {total[1]} new of {total[0]} clocks past due"),
    )  # fmt: skip
    summary.seconds = time.monotonic() - started
    summary.detect_seconds = started + summary.seconds - detecting
    summary.failures = failures.messages
    return summary


def _claim_batches(batch, candidates, now, organization, batch_size, rules, failures, progress) -> tuple[int, int]:
    """Detection's or escalation's batches until one comes back short: (clocks, what they made).
    A batch that raises: its rules one at a time (`_RuleFailures`), then the batches go on."""
    total = [0, 0]

    def run(**scope):
        return batch(now=now, organization=organization, batch_size=batch_size, rules=rules, **scope)

    while True:
        try:
            examined, made = run(skip=failures.rules)
        except Exception:
            due = _rule_scope(candidates(now=now, organization=organization), "rule_id", failures.rules)
            rule_ids = set(due.values_list("rule_id", flat=True)[:batch_size])
            for examined, made in failures.one_rule_at_a_time(rule_ids, run):
                total[0], total[1] = total[0] + examined, total[1] + made
            progress(total)
            if not rule_ids:
                return total[0], total[1]
            continue  # the next batch, without the rules skipped
        total[0], total[1] = total[0] + examined, total[1] + made
        if examined:
            progress(total)
        if examined < batch_size:
            return total[0], total[1]

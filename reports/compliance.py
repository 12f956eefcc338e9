"""SLA compliance (issue 11): decided, met and breached clocks per group, computed in SQL.

A clock counts in the period in which it was **decided**: a met clock when it stopped, a breached
clock when it passed its due time (whether or not it has stopped since). Cancelled clocks (the job
left the rule's band, or ended without the stop this clock waits for and within its target) are
never decided, except one cancelled after running longer than its target (the job left the band
past the due time): it breached, at its due time, and its final breach is settled when it was
cancelled. A row's figures are what was known at the end of the row's period (its month or
week when grouped by time, else the report's `to`), so a closed period keeps its answer. For each
group:

- `decided`, `met`, `breached`, `achieved_percent` (met / decided, one decimal, half-up; null
  when nothing was decided);
- business minutes to stop (`minutes.mean`, `p50`, `p90`, `max`) over the decided clocks that
  stopped in the row's period (a clock still running had no time to stop yet), one decimal: a
  clock that breached in October and stopped in November has its time in November's row, as its
  overage (below), not in no row at all;
- `overage_minutes` and `penalties` (per currency, after the per-breach and monthly caps) count
  each breach once, in the row of the period in which its figures became final: the stop its
  breach was settled with (`Breach.clock_stopped_at`), whatever period the clock was decided in;
  a penalty waived by the end of that period is excluded. A breach still running counts in no row
  yet (its figures grow every scan); one that breached in October and stopped in November is in
  November's row. A penalty waived after its row's period closed is subtracted in the row of the
  period of the waiver (a correction, so a row's penalties may be negative), as the ledger reverses
  it then. So the rows of a report grouped by month add up to the report over the months, and a
  closed period's figures never move. `waived`: how many breaches were waived in the row's period
  (whichever period their clocks were decided or settled in);
- `open_at_end`: clocks started before the end of the row's period (the month or week of the
  row when grouped by time, else the report's `to`) and not decided by then, nor cancelled by then
  (a clock cancelled later was open at that end: its `sla_clock.stopped` event dates it).

Every figure comes from one aggregate query over the decided clocks, one over the settled
breaches and one over the waivers (penalties as one conditional sum per currency the
organization's breaches use, read first), plus one grouped query for the clocks open at each
period's end; `percentile_cont` runs in the database on both PostgreSQL and SQLite (see
`reports.sql`). Months and weeks are local to `time_zone`; weeks are ISO weeks ("2026-W41", Monday to Sunday).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Avg, Case, Count, DateTimeField, F, Max, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Least, TruncMonth, TruncWeek
from django.db.models.lookups import LessThan, LessThanOrEqual

from breaches.models import Breach
from events.models import Event
from tenancy.currencies import quantize
from workorders.models import SlaClock

from .sql import PercentilesCont, parse_percentiles

GROUPS = ("contract", "counterparty", "sla_rule", "metric", "priority", "month", "week")
TIME_GROUPS = ("month", "week")
# group key -> (ORM path of its value, ORM path of its name for references)
_PATHS = {
    "contract": ("rule__contract_id", "rule__contract__name"),
    "counterparty": ("rule__contract__counterparty_id", "rule__contract__counterparty__name"),
    "sla_rule": ("rule_id", "rule__name"),
    "metric": ("metric", None),
    "priority": ("work_order__priority", None),
}
FILTERS = {
    "contract": "rule__contract_id__in",
    "counterparty": "rule__contract__counterparty_id__in",
    "metric": "metric__in",
    "priority": "work_order__priority__in",
}

S = SlaClock.State

# Four IANA zones whose names are also time zone abbreviations, which PostgreSQL's AT TIME ZONE
# looks up first: there "CET" is +01:00 all year, so a report in CET put the clocks of a summer
# month's first hour in the month before (SQLite's functions read the zone). tzdata links them to
# these zones since 2024b (the same offsets from 2000 on); the database is given those names.
_SHADOWED_BY_ABBREVIATIONS = {
    "CET": "Europe/Brussels",
    "MET": "Europe/Brussels",
    "EET": "Europe/Athens",
    "WET": "Europe/Lisbon",
}


@dataclass(frozen=True)
class ComplianceQuery:
    date_from: dt.date
    date_to: dt.date  # inclusive
    time_zone: str
    group_by: tuple[str, ...] = ()
    filters: dict[str, list] = field(default_factory=dict)  # only those given; [] selects nothing

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def database_zone(self) -> ZoneInfo:
        """The zone as the database's truncations are given it (see `_SHADOWED_BY_ABBREVIATIONS`)."""
        return ZoneInfo(_SHADOWED_BY_ABBREVIATIONS.get(self.time_zone, self.time_zone))

    def trunc(self, unit: str, instant: str):
        """The local month or ISO week (its first instant) of `instant`, in SQL."""
        return (TruncMonth if unit == "month" else TruncWeek)(instant, tzinfo=self.database_zone)

    @property
    def start(self) -> dt.datetime:
        return local_midnight(self.date_from, self.zone)

    @property
    def end(self) -> dt.datetime:
        return local_midnight(self.date_to + dt.timedelta(days=1), self.zone)


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def decided_at(now: dt.datetime):
    """When a clock was decided (see the module docstring); NULL while it is not."""
    # A breached clock was decided when it passed its due time, not at a later stop: a past
    # period's breach must not move to the month of the job's resolution.
    return Case(
        When(stopped_at__isnull=False, state=S.MET, then=F("stopped_at")),
        When(state=S.BREACHED, then=F("due_at")),
        When(stopped_at__isnull=True, state=S.RUNNING, due_at__lt=now, then=F("due_at")),
        # Cancelled after running longer than its target (its job left the rule's band past the due
        # time): breached, with the final breach `breaches.services.settle_breach` records for it by
        # the same test. Not counted, its breach and penalty were in no row of the report.
        When(state=S.CANCELLED, elapsed_seconds__gt=F("target_minutes") * 60, then=F("due_at")),
        default=None,
        output_field=DateTimeField(),
    )


def decision_instant():
    """The earlier of the stop and the due time: equal to `decided_at` on every decided clock (a
    met clock stops at or before its due time, a breached one after it), and indexed
    (`clock_decided`, organization first), so a period's decided clocks are one index range scan
    rather than a pass over every clock of the organization. Without parameters, so that the
    query's expression is the index's on PostgreSQL; the outer COALESCE because SQLite's MIN()
    of a NULL is NULL where PostgreSQL's LEAST skips it."""
    return Coalesce(Least("stopped_at", "due_at"), "stopped_at", "due_at")


def round1(value) -> float | None:
    """One decimal, half-up (the figures a person reads)."""
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def achieved(met: int, decided: int) -> float | None:
    """`met` of `decided` in percent, one decimal, half up (away from zero), as Decimal's
    ROUND_HALF_UP gives it: in whole numbers, a fifth of the Decimal's time, for the at-risk
    report's `percent_used` of every clock of a page (and every row here)."""
    if not decided:
        return None
    tenths = met * 1000  # of a percent, times `decided`
    rounded = (2 * abs(tenths) + decided) // (2 * decided)
    return (rounded if tenths >= 0 else -rounded) / 10


def minutes(seconds) -> float | None:
    return None if seconds is None else round1(Decimal(str(seconds)) / 60)


def period_buckets(query: ComplianceQuery, unit: str) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """The months or ISO weeks that meet [from, to], each as (label, start, end) local instants."""
    zone, buckets = query.zone, []
    if unit == "month":
        day = query.date_from.replace(day=1)
        while day <= query.date_to:
            following = (day + dt.timedelta(days=32)).replace(day=1)
            buckets.append((day.strftime("%Y-%m"), local_midnight(day, zone), local_midnight(following, zone)))
            day = following
    else:
        day = query.date_from - dt.timedelta(days=query.date_from.weekday())
        while day <= query.date_to:
            year, week, _ = day.isocalendar()
            following = day + dt.timedelta(days=7)
            buckets.append((f"{year}-W{week:02d}", local_midnight(day, zone), local_midnight(following, zone)))
            day = following
    return buckets


def _label(unit: str, value: dt.datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone) if value.tzinfo else value
    if unit == "month":
        return local.strftime("%Y-%m")
    year, week, _ = local.date().isocalendar()
    return f"{year}-W{week:02d}"


def _scoped(organization, query: ComplianceQuery, now: dt.datetime):
    clocks = SlaClock.objects.filter(organization=organization)
    for name, values in query.filters.items():  # each given filter applies: an empty list selects nothing
        clocks = clocks.filter(**{FILTERS[name]: values})
    return clocks.annotate(decision=decision_instant(), decided_at=decided_at(now))


def _keys(query: ComplianceQuery, instant: str = "decided_at") -> tuple[list[str], dict]:
    """The `values()` names of the group keys (aliases) and their annotations; a month or week is
    that of `instant` (the clock's decision, or for the breaches' figures their settling stop)."""
    names, annotations = [], {}
    for key in query.group_by:
        if key in TIME_GROUPS:
            annotations[key] = query.trunc(key, instant)
            names.append(key)
        else:
            value, label = _PATHS[key]
            annotations[f"key_{key}"] = F(value)
            names.append(f"key_{key}")
            if label:
                annotations[f"key_{key}_name"] = F(label)
                names.append(f"key_{key}_name")
    # Grouped by nothing, the report is one row: group by a constant (a bare values() would
    # group by every column).
    if not names:
        annotations["everything"] = Value(1)
        names.append("everything")
    return names, annotations


def _group_of(row: dict, query: ComplianceQuery) -> tuple:
    out = []
    for key in query.group_by:
        if key in TIME_GROUPS:
            out.append(_label(key, row[key], query.zone))
        elif _PATHS[key][1]:
            out.append({"id": row[f"key_{key}"], "name": row[f"key_{key}_name"]})
        else:
            out.append(row[f"key_{key}"])
    return tuple(out)


def _hashable(group: tuple) -> tuple:
    return tuple(item["id"] if isinstance(item, dict) else item for item in group)


def known_by_end(instant: str, query: ComplianceQuery, row_instant: str = "decided_at"):
    """`instant` (a clock's stop, a breach's waiver) came before the end of the row's period:
    the month or week of `row_instant` (the clock's decision, or the breach's settling stop) when
    grouped by time, else the report's end. The same truncation as the group key, so no period end
    is computed per row."""
    time_key = next((key for key in query.group_by if key in TIME_GROUPS), None)
    if time_key is None:
        return LessThan(F(instant), Value(query.end))
    return LessThanOrEqual(query.trunc(time_key, instant), query.trunc(time_key, row_instant))


def decided_in_period(clocks, query: ComplianceQuery):
    """The clocks (of `_scoped`) decided in the report's period. The range on the indexed
    expression picks the period; `decided_at` then keeps only the decided clocks."""
    return clocks.filter(decision__gte=query.start, decision__lt=query.end, decided_at__isnull=False)


def decided_clocks(*, organization, query: ComplianceQuery, now: dt.datetime):
    """The clocks the report's figures are computed from (for EXPLAIN and tests)."""
    return decided_in_period(_scoped(organization, query, now), query)


@transaction.atomic
def compliance_report(*, organization, query: ComplianceQuery, now: dt.datetime) -> list[dict]:
    """The report's rows, sorted by the group keys (in `group_by` order)."""
    if connection.vendor == "postgresql":
        # The percentiles sort every decided clock's time: let this transaction sort in memory
        # rather than spill to disk (the default work_mem is 4 MB).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
    clocks = _scoped(organization, query, now)
    decided = decided_in_period(clocks, query)
    names, annotations = _keys(query)
    grouped = decided.annotate(**annotations).values(*names)
    rows = grouped.annotate(decided=Count("id"), met=Count("id", filter=Q(state=S.MET))).order_by(*names)

    results: dict[tuple, dict] = {}
    for row in rows:
        group = _group_of(row, query)
        entry = _empty(query, group)
        entry.update(
            decided=row["decided"],
            met=row["met"],
            breached=row["decided"] - row["met"],
            achieved_percent=achieved(row["met"], row["decided"]),
        )
        results[_hashable(group)] = entry
    _add_minutes(clocks, query, results)
    currencies = sorted(
        Breach.objects.filter(organization=organization).values_list("currency", flat=True).distinct().order_by()
    )
    _add_settled(clocks, query, results, currencies)
    _add_waivers(clocks, query, results, currencies)
    _add_open_at_end(clocks, query, results)
    return [results[key] for key in sorted(results, key=_sort_key)]


def _add_minutes(clocks, query: ComplianceQuery, results: dict[tuple, dict]) -> None:
    """Minutes to stop: over the decided clocks that stopped in the row's period, in the row of
    their stop. Before, a row took the clocks decided in it and stopped by its end, so a clock that
    breached in October and stopped in November (the longest times of all) was in no row of a
    report grouped by month, while the report over both months had it: every month's `max` was
    below the two months' `max`. A stop is past once it happened: a closed period keeps its answer.
    One grouped query."""
    names, annotations = _keys(query, "stopped_at")
    rows = (
        # The period's stops off their index (`clock_org_stopped`): a month's report over a year of
        # clocks read the whole year's decided clocks by the decision's (34 ms → 4.5 ms, 38,000 clocks).
        clocks.filter(decision__lt=query.end, decided_at__isnull=False)
        .filter(stopped_at__gte=query.start, stopped_at__lt=query.end)
        .annotate(**annotations)
        .values(*names)
    )
    seconds = F("elapsed_seconds")
    stats = {"mean": Avg(seconds), "percentiles": PercentilesCont(seconds, (0.5, 0.9)), "max": Max(seconds)}
    for row, entry in _grouped(rows, names, query, results, **stats):
        p50, p90 = parse_percentiles(row["percentiles"], 2)
        entry["minutes"] = {
            "mean": minutes(row["mean"]),
            "p50": minutes(p50),
            "p90": minutes(p90),
            "max": minutes(row["max"]),
        }


SETTLED_AT = "settled_at"


def with_settled_at(clocks):
    """`settled_at`: when the clock's breach became final, the stop it was settled with
    (`Breach.clock_stopped_at`) or, for a clock cancelled past its due time (no stop), the moment
    it was cancelled, when the breach was measured for the last time and its penalty posted."""
    return clocks.alias(settled_at=Coalesce("breach__clock_stopped_at", "breach__measured_at"))


def settled_in_period(clocks, query: ComplianceQuery):
    """The decided clocks (of `_scoped`) whose breach was settled in the report's period: final, with
    its `settled_at` in [start, end)."""
    return with_settled_at(clocks).filter(
        decided_at__isnull=False,
        breach__final=True,
        settled_at__gte=query.start,
        settled_at__lt=query.end,
    )


def _add_settled(clocks, query: ComplianceQuery, results: dict[tuple, dict], currencies: list[str]) -> None:
    """`overage_minutes` and `penalties`: a breach's figures count once, in the row of the period
    in which they became final (the stop its breach was settled with), whichever period its clock
    was decided in; a waiver by the end of that period excludes its penalty. One grouped query.

    So every breach's overage and penalty lands in exactly one row (an October breach still
    running on 1 November is in November's row, or in the row of the month its job stops), and a
    closed period's figures never move: a running breach is counted in no row until it stops, and a
    stop or waiver after a period's end lands in a later row."""
    names, annotations = _keys(query, SETTLED_AT)
    # Penalties per currency as conditional sums of the same query (the organization's breaches
    # come in a few currencies).
    waived = Q(known_by_end("breach__waived_at", query, SETTLED_AT))
    # Not waived by the end: never waived, or waived after it (a NULL comparison is not false).
    owed = Q(breach__waived_at__isnull=True) | ~waived
    money_sums = {
        f"penalty_{index}": Sum("breach__penalty_amount", filter=owed & Q(breach__currency=currency))
        for index, currency in enumerate(currencies)
    }
    rows = settled_in_period(clocks, query).annotate(**annotations).values(*names)
    for row, entry in _grouped(rows, names, query, results, overage=Sum("breach__overage_minutes"), **money_sums):
        entry["overage_minutes"] = row["overage"] or 0
        entry["penalties"] = {
            currency: str(quantize(row[f"penalty_{index}"], currency))
            for index, currency in enumerate(currencies)
            if row[f"penalty_{index}"] is not None
        }


def _grouped(rows, names: list[str], query: ComplianceQuery, results: dict[tuple, dict], **aggregates):
    """Each grouped row of `rows` (a `values()` of the group keys) with its aggregates, and the
    report's entry of its group (a new, empty one if no earlier query had the group)."""
    for row in rows.annotate(**aggregates).order_by(*names):
        group = _group_of(row, query)
        entry = results.get(_hashable(group))
        if entry is None:
            entry = results[_hashable(group)] = _empty(query, group)
        yield row, entry


WAIVED_AT = "breach__waived_at"


def settled_before_row(query: ComplianceQuery):
    """The breach was settled in a period before the row's, the row being that of its waiver: the
    waiver came after the settled row's period had closed (when grouped by time, an earlier month
    or week; else before the report's start)."""
    time_key = next((key for key in query.group_by if key in TIME_GROUPS), None)
    if time_key is None:
        return LessThan(F(SETTLED_AT), Value(query.start))
    return LessThan(query.trunc(time_key, SETTLED_AT), query.trunc(time_key, WAIVED_AT))


def _add_waivers(clocks, query: ComplianceQuery, results: dict[tuple, dict], currencies: list[str]) -> None:
    """`waived`: the waivers made in the row's period (of the breaches of decided clocks), and the
    correction they bring to `penalties`: a penalty settled in an earlier period (so counted in its
    closed row) and waived in this one is subtracted here, in the period of the waiver. A closed
    period keeps its answer, and the rows add up to the report over them (as the ledger's penalty
    and its reversal do). One grouped query."""
    names, annotations = _keys(query, WAIVED_AT)
    earlier = Q(breach__final=True) & Q(settled_before_row(query))
    corrections = {
        f"waived_{index}": Sum("breach__penalty_amount", filter=earlier & Q(breach__currency=currency))
        for index, currency in enumerate(currencies)
    }
    rows = (
        with_settled_at(clocks)
        .filter(
            decided_at__isnull=False,
            breach__state=Breach.State.WAIVED,
            breach__waived_at__gte=query.start,
            breach__waived_at__lt=query.end,
        )
        .annotate(**annotations)
        .values(*names)
    )
    for row, entry in _grouped(rows, names, query, results, waived=Count("breach__id"), **corrections):
        entry["waived"] = row["waived"]
        for index, currency in enumerate(currencies):
            correction = row[f"waived_{index}"]
            if correction is not None:
                owed = Decimal(entry["penalties"].get(currency, 0)) - correction
                entry["penalties"][currency] = str(quantize(owed, currency))
        entry["penalties"] = dict(sorted(entry["penalties"].items()))


def _sort_key(key: tuple) -> tuple:
    return tuple((0, item) if isinstance(item, int) else (1, str(item)) for item in key)


def _empty(query: ComplianceQuery, group: tuple) -> dict:
    entry = dict(zip(query.group_by, group, strict=True))
    entry.update(
        decided=0,
        met=0,
        breached=0,
        achieved_percent=None,
        minutes={"mean": None, "p50": None, "p90": None, "max": None},
        overage_minutes=0,
        penalties={},
        waived=0,
        open_at_end=0,
    )
    return entry


def _add_open_at_end(clocks, query: ComplianceQuery, results: dict[tuple, dict]) -> None:
    """Clocks started before each period's end and not decided by then, in one grouped query; then
    the cancelled clocks never decided that were open at a period's end (`_add_cancelled_later`)."""
    time_key = next((key for key in query.group_by if key in TIME_GROUPS), None)
    ends = period_buckets(query, time_key) if time_key else [(None, query.start, query.end)]
    plain_keys = tuple(key for key in query.group_by if key not in TIME_GROUPS)
    plain = ComplianceQuery(query.date_from, query.date_to, query.time_zone, plain_keys)
    names, annotations = _keys(plain)
    counts = {
        f"open_{index}": Count(
            "id", filter=Q(started_at__lt=end) & (Q(decided_at__isnull=True) | Q(decided_at__gte=end))
        )
        for index, (_, _, end) in enumerate(ends)
    }
    open_rows = (
        clocks.exclude(state=S.CANCELLED, decided_at__isnull=True)  # a cancelled clock counts once breached
        .filter(started_at__lt=ends[-1][2])
        .annotate(**annotations)
        .values(*names)
        .annotate(**counts)
        .order_by()
    )
    for row in open_rows:
        plain_group = _group_of(row, plain)
        for index, (label, _, _) in enumerate(ends):
            count = row[f"open_{index}"]
            group = _with_time(query, plain_group, time_key, label)
            key = _hashable(group)
            if key not in results:
                if not count:
                    continue
                results[key] = _empty(query, group)
            results[key]["open_at_end"] = count
    _add_cancelled_later(clocks, query, results, plain, time_key, ends)
    if not query.group_by and () not in results:
        results[()] = _empty(query, ())


def cancelled_at():
    """When a cancelled clock stopped counting: its last `sla_clock.stopped` event (the clock stores
    no such instant; every cancellation writes one, `workorders.services`). NULL without one. The
    event's instant is when the cancellation was known, so a closed period keeps its answer."""
    stops = Event.objects.filter(
        organization_id=OuterRef("organization_id"),
        object_type=SlaClock._meta.model_name,
        object_id=OuterRef("pk"),
        type="sla_clock.stopped",
    ).order_by("-id")
    return Subquery(stops.values("occurred_at")[:1])


def _add_cancelled_later(clocks, query: ComplianceQuery, results: dict[tuple, dict], plain, time_key, ends) -> None:
    """A clock cancelled within its target (never decided) was open until it was cancelled: at the
    end of each period it started before and was cancelled after. Before, it was in no period's
    `open_at_end`, so a period's answer dropped it when its job was cancelled or left the rule's
    band after the period's end. One grouped query over those clocks only, by the periods of their
    start and of their cancellation, so a clock's event is read by the clock, not by each period."""
    names, annotations = _keys(plain)
    if time_key is not None:
        annotations |= {
            "started": query.trunc(time_key, "started_at"),
            "cancelled": query.trunc(time_key, "cancelled_at"),
        }
        names += ["started", "cancelled"]
    rows = (
        clocks.filter(state=S.CANCELLED, decided_at__isnull=True, started_at__lt=ends[-1][2])
        # A clock is written when it is cancelled (and `updated_at` only grows): one last written
        # before the first end was cancelled before it, and needs no look at its events. A month's
        # report then reads the events of the clocks touched since, not of every cancelled clock.
        .filter(updated_at__gte=ends[0][2])
        .alias(cancelled_at=cancelled_at())
        .filter(cancelled_at__gte=ends[0][2])  # open at one end at least
        .annotate(**annotations)
        .values(*names)
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        plain_group = _group_of(row, plain)
        for label, _, _ in ends:
            # Started before the period's end, cancelled at or after it: the same truncation as the
            # rows' keys, compared by label (months and ISO weeks sort as text).
            if time_key is not None and not (
                _label(time_key, row["started"], query.zone) <= label < _label(time_key, row["cancelled"], query.zone)
            ):
                continue
            group = _with_time(query, plain_group, time_key, label)
            entry = results.get(_hashable(group))
            if entry is None:
                entry = results[_hashable(group)] = _empty(query, group)
            entry["open_at_end"] += row["count"]


def _with_time(query: ComplianceQuery, plain_group: tuple, time_key: str | None, label: str | None) -> tuple:
    if time_key is None:
        return plain_group
    items = iter(plain_group)
    return tuple(label if key == time_key else next(items) for key in query.group_by)

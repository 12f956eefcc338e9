"""`workorders.clocks.evaluate` against the clock's general path, no database (issue 15, clock).

`evaluate` takes shortcuts that the datetime API does not (the calendar row's memo, the instants
converted once, no pauses when a job has no hold, the states and the result's tuple bound once,
the escalation's percentages sorted without a key function). Hypothesis draws rules, jobs, holds and
instants (unsaved model instances, as loaded), and every field of the result, and its types, must be
those of `reference`: the same clock written the plain way, with `slas.clock.due` and
`slas.clock.business_seconds` on datetimes.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slas import clock
from slas.models import Calendar, SlaRule
from workorders.clocks import STOPS, ClockState, calendar_of, evaluate
from workorders.models import Hold, SlaClock, WorkOrder

UTC = dt.UTC
AMS = ZoneInfo("Europe/Amsterdam")
STAMP = dt.datetime(2026, 1, 1, tzinfo=UTC)
WEEKDAYS = [{"weekday": d, "start": "08:00", "end": "17:00"} for d in range(1, 6)]
SPLIT = [{"weekday": d, "start": s, "end": e} for d in range(1, 6) for s, e in (("09:00", "12:00"), ("13:00", "17:30"))]
CALENDARS = [
    None,
    Calendar(pk=1, name="NL office", time_zone="Europe/Amsterdam", hours=WEEKDAYS, holidays=[], holiday_country="NL",
             updated_at=STAMP),
    Calendar(pk=2, name="Sydney", time_zone="Australia/Sydney", updated_at=STAMP, holidays=[],
             hours=[{"weekday": d, "start": "07:00", "end": "19:00"} for d in range(1, 7)]),
    Calendar(pk=3, name="New York split", time_zone="America/New_York", hours=SPLIT, updated_at=STAMP,
             holidays=[{"date": "2026-07-03", "name": "observed"}]),
    Calendar(pk=4, name="never open", time_zone="UTC", hours=[], holidays=[], updated_at=STAMP),  # never due
]  # fmt: skip
FIRST = int(dt.datetime(2026, 1, 1, tzinfo=UTC).timestamp())
# Around both of Amsterdam's and New York's DST changes, and anywhere in 2026.
TRANSITIONS = [
    int(t.timestamp()) for t in (dt.datetime(2026, 3, 29, 1, tzinfo=UTC), dt.datetime(2026, 11, 1, 6, tzinfo=UTC))
]


def reference(rule: SlaRule, job: WorkOrder, holds: list[Hold], now: dt.datetime, sent: int, was_breached: bool):
    """The clock as DESIGN §6 states it, through the datetime API (the general path)."""
    calendar = calendar_of(rule)
    target = rule.target_minutes
    start = job.reported_at
    stop = getattr(job, STOPS[rule.metric])
    pauses = [
        (hold.start, hold.end)
        for hold in holds
        if (hold.kind == Hold.Kind.ON_HOLD and rule.pause_on_hold) or hold.kind == Hold.Kind.REOPENED
    ]

    def clipped(until):
        return [(s, until if e is None or e > until else e) for s, e in pauses if s < until]

    if stop is not None:
        due_at = clock.due(calendar, start, target, clipped(stop))
        elapsed = clock.business_seconds(calendar, start, stop, clipped(stop))
        state = SlaClock.State.MET if due_at is None or stop <= due_at else SlaClock.State.BREACHED
        return (start, due_at, stop, state, elapsed, None)
    ended = None
    if job.status == WorkOrder.Status.CANCELLED:
        ended = job.status_changed_at
    elif (
        job.status in (WorkOrder.Status.RESOLVED, WorkOrder.Status.CLOSED) and rule.metric != SlaRule.Metric.RESOLUTION
    ):
        ended = job.resolved_at or job.status_changed_at
    if ended is not None:
        until = max(ended, start)
        due_at = clock.due(calendar, start, target, clipped(until))
        elapsed = clock.business_seconds(calendar, start, until, clipped(until))
        if due_at is not None and due_at < until:
            return (start, due_at, until, SlaClock.State.BREACHED, elapsed, None)
        return (start, due_at, None, SlaClock.State.CANCELLED, elapsed, None)
    due_at = clock.due(calendar, start, target, pauses)
    elapsed = clock.business_seconds(calendar, start, max(now, start), pauses)
    if due_at is not None and due_at < now:
        state = SlaClock.State.BREACHED if was_breached else SlaClock.State.RUNNING
    elif any(end is None and begin <= now for begin, end in pauses):
        state = SlaClock.State.PAUSED
    else:
        state = SlaClock.State.RUNNING
    levels = sorted(rule.escalation, key=lambda level: level["at_percent"])
    escalation = None
    if sent < len(levels):
        minutes = max(1, math.ceil(target * levels[sent]["at_percent"] / 100))
        escalation = clock.due(calendar, start, minutes, pauses)
    return (start, due_at, None, state, elapsed, escalation)


seconds = st.one_of(
    st.integers(FIRST, FIRST + 365 * 86400),
    st.builds(lambda t, d: t + d, st.sampled_from(TRANSITIONS), st.integers(-3 * 86400, 3 * 86400)),
)
offsets = st.integers(-3600, 4 * 86400)  # after the report (and a little before it: bad data)


@st.composite
def cases(draw):
    def instant(t: int) -> dt.datetime:
        # Mostly UTC, as the database gives them; some in a zone, some with a fraction of a second.
        value = dt.datetime.fromtimestamp(t, draw(st.sampled_from([UTC, UTC, AMS])))
        return value.replace(microsecond=draw(st.sampled_from([0, 0, 999_999])))

    metric = draw(st.sampled_from(list(SlaRule.Metric)))
    levels = draw(st.lists(st.integers(1, 150), max_size=3))
    rule = SlaRule(
        pk=1, metric=draw(st.sampled_from([metric, metric.value])), target_minutes=draw(st.integers(1, 3000)),
        escalation=[{"at_percent": p, "name": f"l{n}"} for n, p in enumerate(levels)],
        pause_on_hold=draw(st.booleans()), calendar=draw(st.sampled_from(CALENDARS)),
    )  # fmt: skip
    reported = draw(seconds)
    stamp = {name: draw(st.one_of(st.none(), offsets)) for name in ("responded_at", "on_site_at", "resolved_at")}
    job = WorkOrder(
        pk=1, reported_at=instant(reported), status=draw(st.sampled_from(list(WorkOrder.Status))),
        status_changed_at=instant(reported + draw(offsets)),
        **{name: None if offset is None else instant(reported + offset) for name, offset in stamp.items()},
    )  # fmt: skip
    holds = []
    for _ in range(draw(st.integers(0, 3))):
        begin = reported + draw(offsets)
        end = draw(st.one_of(st.none(), st.integers(0, 2 * 86400)))
        kind = draw(st.sampled_from(list(Hold.Kind)))
        holds.append(Hold(kind=kind, start=instant(begin), end=None if end is None else instant(begin + end)))
    now = instant(reported + draw(st.integers(-3600, 6 * 86400)))
    return rule, job, holds, now, draw(st.integers(0, 3)), draw(st.booleans())


@settings(max_examples=400, deadline=None)
@given(cases())
def test_evaluate_gives_the_general_paths_clock(case):
    rule, job, holds, now, sent, was_breached = case
    result = evaluate(rule, job, holds, now, sent=sent, was_breached=was_breached)
    expected = reference(rule, job, holds, now, sent, was_breached)
    assert type(result) is ClockState
    assert tuple(result) == expected
    assert type(result.state) is SlaClock.State  # the enum member, as stored and compared
    for got in (result.due_at, result.next_escalation_at):
        assert got is None or got.tzinfo is UTC  # due times come back in UTC, as the datetime API's
    assert type(result.elapsed_seconds) is int


@pytest.mark.parametrize("target", [0, 1.5, None])
def test_a_target_that_is_not_a_whole_number_of_minutes_is_rejected(target):
    job = WorkOrder(pk=1, reported_at=STAMP, status="open", status_changed_at=STAMP)
    rule = SlaRule(pk=1, metric="response", target_minutes=target, escalation=[], pause_on_hold=False)
    with pytest.raises(ValueError, match="whole number of minutes"):
        evaluate(rule, job, [], STAMP)


def test_a_calendar_rows_memo_is_its_compiled_calendar_while_it_keeps_its_id():
    row = Calendar(pk=7, name="memo", time_zone="Europe/Amsterdam", hours=WEEKDAYS, holidays=[], updated_at=STAMP)
    compiled = row.compiled
    assert row.compiled is compiled  # the memo
    assert row.compiled is clock.compile_keyed(("calendar", 7), STAMP, lambda: None)
    # A copy made from the row (pk cleared, hours edited, not saved yet) is compiled from its spec,
    # as before the memo was read first.
    row.pk = None
    row.hours = [{"weekday": 1, "start": "10:00", "end": "11:00"}]
    assert row.compiled is clock.compile_calendar(row.spec)
    assert row.compiled is not compiled
    # An edit saved moves `updated_at`: compiled again.
    row.pk, row.updated_at = 7, STAMP + dt.timedelta(seconds=1)
    assert row.compiled is not compiled
    assert row.compiled.spec == row.spec

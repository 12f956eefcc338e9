"""Issue 15: a page of work orders writes its jobs' holds and clocks from rows read once per page
(`workorders.api.JobsHoldsAndClocks`), not from prefetched model instances.

The list must show for every job what reading the job alone shows, and what the clock functions
compute from the model instances (the way the clocks were written before), for the tricky
clocks: paused by an open hold, paused earlier by a closed one, reopened, stopped in time or
late, cancelled, running past due, not yet due, 24x7 and with a blank rule name. Its queries must
not grow with the rows, and leaving the clocks out (`?fields=`) leaves their queries out.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.api import pagination
from config.api.serializers import reference_of
from slas import clock
from slas.models import Calendar, SlaRule
from tests.contracts.factories import make_contract
from tests.slas.factories import ams, iso, make_calendar, make_rule
from tests.workorders.factories import change, freeze_now, make_job
from workorders import clocks as workorder_clocks
from workorders.api import JobsHoldsAndClocks, WorkOrderSerializer
from workorders.clocks import clocks_by_job, live_elapsed_seconds, shown_state
from workorders.models import SlaClock, WorkOrder

from .test_clocks import FRIDAY_16, MONDAY, at

URL = "/api/v1/work_orders"
TUESDAY = ams(2026, 1, 13, 0, 0)


@pytest.fixture
def now(monkeypatch):
    return freeze_now(monkeypatch)


@pytest.fixture
def jobs(org, now):
    """Jobs whose clocks cover the tricky cases (see the module docstring)."""
    office = make_contract(org, status="active")
    calendar = make_calendar(org)
    make_rule(office, metric="response", target_minutes=120, calendar=calendar)
    make_rule(office, metric="on_site", target_minutes=240, calendar=calendar, pause_on_hold=True)
    make_rule(office, metric="resolution", target_minutes=480, calendar=calendar)  # pauses on hold
    always = make_contract(org, status="active")
    make_rule(always, metric="resolution", target_minutes=600, name="")  # 24x7, a blank name
    made = {}
    made["open_hold"] = make_job(org, contract=office, reported_at=FRIDAY_16)
    change(made["open_hold"], status="on_hold", hold_reason="Parts", status_changed_at=at(MONDAY, 10))
    made["closed_hold"] = make_job(org, contract=office, reported_at=FRIDAY_16)
    change(made["closed_hold"], status="on_hold", hold_reason="Access", status_changed_at=at(MONDAY, 9))
    change(made["closed_hold"], status="in_progress", status_changed_at=at(MONDAY, 11))
    made["in_time"] = make_job(
        org, contract=office, reported_at=FRIDAY_16, responded_at=at(FRIDAY_16, 16, 30), on_site_at=at(MONDAY, 8)
    )
    change(made["in_time"], status="resolved", status_changed_at=at(MONDAY, 9))
    made["late"] = make_job(org, contract=office, reported_at=FRIDAY_16)
    change(made["late"], status="resolved", status_changed_at=at(TUESDAY, 16))
    made["cancelled"] = make_job(org, contract=office, reported_at=FRIDAY_16)
    change(made["cancelled"], status="cancelled", status_changed_at=at(MONDAY, 12))
    made["reopened"] = make_job(org, contract=office, reported_at=FRIDAY_16, responded_at=at(FRIDAY_16, 16, 10))
    change(made["reopened"], status="resolved", status_changed_at=at(MONDAY, 10))
    change(made["reopened"], status="in_progress", status_changed_at=at(TUESDAY, 9))
    made["not_due"] = make_job(org, contract=always, reported_at=now - dt.timedelta(minutes=30), now=now)
    made["past_due"] = make_job(org, contract=always, reported_at=FRIDAY_16)
    made["no_contract"] = make_job(org, reported_at=FRIDAY_16)
    return made


def readable() -> str:
    return ",".join(WorkOrderSerializer.readable_field_names())


def expected_clocks(job: WorkOrder, now: dt.datetime) -> list[dict]:
    """The clocks as the model instances give them (the way the list wrote them before issue 15)."""
    holds = list(job.holds.all())
    clocks = []
    for row in job.sla_clocks.select_related("rule__calendar").order_by("id"):
        seconds = live_elapsed_seconds(row, holds, now)
        clocks.append(
            {
                "id": row.pk,
                "sla_rule": reference_of(row.rule),
                "metric": row.metric,
                "target_minutes": row.target_minutes,
                "started_at": iso(row.started_at),
                "due_at": row.due_at and iso(row.due_at),
                "stopped_at": row.stopped_at and iso(row.stopped_at),
                "state": shown_state(row, now),
                "elapsed_minutes": math.ceil(seconds / 60),
                "remaining_minutes": row.target_minutes - math.ceil(seconds / 60),
            }
        )
    return clocks


def expected_holds(job: WorkOrder) -> list[dict]:
    return [
        {"start": iso(h.start), "end": h.end and iso(h.end), "reason": h.reason, "kind": h.kind}
        for h in job.holds.all()
    ]


@pytest.mark.django_db
def test_the_cases_are_covered(api, jobs, now):
    listed = api("viewer").get(URL, {"per_page": 100}).json()
    states = {c["state"] for item in listed for c in item["sla_clocks"]}
    assert states == {"running", "paused", "met", "breached", "cancelled"}
    assert any(c["sla_rule"]["name"] == " (resolution 600 min)" for item in listed for c in item["sla_clocks"])
    assert any(c["due_at"] is None for item in listed for c in item["sla_clocks"])  # paused by the open hold


@pytest.mark.django_db
def test_the_list_shows_each_job_as_reading_it_alone(api, jobs, now):
    client = api("viewer")
    listed = client.get(URL, {"per_page": 100, "fields": readable()}).json()
    assert sorted(item["id"] for item in listed) == sorted(job.pk for job in jobs.values())
    for item in listed:
        assert client.get(f"{URL}/{item['id']}").json() == item
    # A page of a few jobs (other rules and holds beside them on other pages) says the same.
    for page in (1, 2, 3):
        for item in client.get(URL, {"per_page": 4, "page": page, "fields": readable()}).json():
            assert item == next(i for i in listed if i["id"] == item["id"])


@pytest.mark.django_db
def test_the_clocks_and_holds_are_those_the_models_give(api, jobs, now):
    listed = api("viewer").get(URL, {"per_page": 100, "fields": "holds,sla_clocks"}).json()
    for item in listed:
        job = WorkOrder.objects.get(pk=item["id"])
        assert item["sla_clocks"] == expected_clocks(job, now), item["id"]
        assert item["holds"] == expected_holds(job), item["id"]


@pytest.mark.parametrize(
    ("fields", "queries"),
    [
        # count, ids, the page's jobs, their clocks with their rules, their holds (which pause running clocks)
        (None, 5),
        ("holds,sla_clocks", 5),
        ("holds", 4),  # the holds, not the clocks
        ("reference,status", 3),  # neither: no query for them, and no figures computed
    ],
)
@pytest.mark.django_db
def test_queries_do_not_grow_with_the_rows(api, jobs, now, fields, queries):
    client = api("viewer")
    params = {"fields": fields} if fields else {}
    assert client.get(URL, {"per_page": 1, **params}).status_code == 200  # caches the membership
    counts = []
    for per_page in (1, 100):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(URL, {"per_page": per_page, **params})
        assert response.status_code == 200
        counts.append(len(captured))
    assert counts == [queries, queries], [q["sql"] for q in captured.captured_queries]


@pytest.mark.django_db
def test_calendars_this_process_has_not_compiled_are_read_in_one_query(api, jobs, now):
    client = api("viewer")
    warm = client.get(URL, {"per_page": 100}).json()
    clock.clear_cache()  # as in a fresh worker, or after the calendar changed elsewhere
    with CaptureQueriesContext(connection) as captured:
        cold = client.get(URL, {"per_page": 100}).json()
    assert cold == warm
    assert len(captured) == 6  # one more than warm: the page's calendars
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL, {"per_page": 100}).json() == warm
    assert len(captured) == 5


@pytest.mark.django_db
def test_an_edited_calendar_counts_at_once(api, org, now):
    contract = make_contract(org, status="active")
    calendar = make_calendar(org)
    make_rule(contract, metric="response", target_minutes=120, calendar=calendar)
    job = make_job(org, contract=contract, reported_at=FRIDAY_16)
    client = api("viewer")
    before = client.get(URL).json()[0]["sla_clocks"][0]["elapsed_minutes"]
    # Every day, all day: with a new updated_at (time stands still in this test), the page reads
    # the calendar again and compiles it.
    Calendar.objects.filter(pk=calendar.pk).update(
        hours=[{"weekday": day, "start": "00:00", "end": "24:00"} for day in range(1, 8)],
        updated_at=now + dt.timedelta(seconds=1),
    )
    after = client.get(URL).json()[0]["sla_clocks"][0]
    assert after["elapsed_minutes"] > before
    assert after == expected_clocks(WorkOrder.objects.get(pk=job.pk), now)[0]


@pytest.mark.django_db
def test_a_rule_shared_by_clocks_is_one_reference_left_as_built(api, jobs, now):
    """A rule's `{id, name}` is built for its first clock of the page and shared by the others
    (`ClocksPage.references`): the same dict, equal to the rule's own reference (a blank name
    included), and unchanged once the page has been written."""
    read = JobsHoldsAndClocks([job.pk for job in jobs.values()], holds=True, clocks=True, now=now)
    by_rule: dict[int, list[dict]] = {}
    for clocks in read.by_field["sla_clocks"].values():
        for item in clocks:
            by_rule.setdefault(item["sla_rule"]["id"], []).append(item["sla_rule"])
    assert any(len(refs) > 1 for refs in by_rule.values())  # the office's rules time several jobs
    assert len(by_rule) == SlaRule.objects.count()
    for rule in SlaRule.objects.all():
        refs = by_rule[rule.pk]
        assert all(ref is refs[0] for ref in refs)
        assert refs[0] == reference_of(rule)
    blank = SlaRule.objects.get(name="")
    assert by_rule[blank.pk][0] == {"id": blank.pk, "name": " (resolution 600 min)"}
    # Written through the API, every clock still shows its own rule's reference.
    listed = api("viewer").get(URL, {"per_page": 100, "fields": "holds,sla_clocks"}).json()
    for item in listed:
        for shown in item["sla_clocks"]:
            assert shown["sla_rule"] == reference_of(SlaClock.objects.get(pk=shown["id"]).rule)
    assert [r[0] for r in by_rule.values()] == [reference_of(SlaRule.objects.get(pk=pk)) for pk in by_rule]


@pytest.mark.django_db
def test_stopped_clocks_need_no_calendar(jobs, now):
    """Jobs whose clocks have all stopped (met, breached or cancelled) show their stored figures:
    their calendars are neither compiled nor read, even in a process that has none."""
    finished = [jobs[name] for name in ("in_time", "late", "cancelled")]
    assert not SlaClock.objects.filter(work_order__in=finished, stopped_at__isnull=True).exclude(state="cancelled")
    clock.clear_cache()
    with CaptureQueriesContext(connection) as captured:
        read = JobsHoldsAndClocks([job.pk for job in finished], holds=False, clocks=True, now=now)
    assert len(captured) == 1  # the clocks with their rules; no calendar, no holds
    for job in finished:
        assert read.by_field["sla_clocks"][job.pk] == expected_clocks(job, now)
    # A job still counting on the same calendar needs it: read in one more query.
    with CaptureQueriesContext(connection) as captured:
        JobsHoldsAndClocks([jobs["closed_hold"].pk], holds=False, clocks=True, now=now)
    assert len(captured) == 3  # clocks, the calendar, the holds (a resolution clock pauses on them)


@pytest.mark.django_db
def test_the_clocks_query_is_compiled_once(jobs, now, monkeypatch):
    """The clocks query is built and compiled once per connection (`config.api.pagination.IdsQuery`;
    on PostgreSQL the jobs' ids are one array, so one query serves every page) and sent through
    Django's cursor: logged and counted like any query, the same clocks as the ORM reads."""
    monkeypatch.setattr(pagination, "_ROWS_QUERIES", type(pagination._ROWS_QUERIES)())
    built = []
    monkeypatch.setattr(workorder_clocks, "IdsQuery", lambda *args: built.append(args) or pagination.IdsQuery(*args))
    ids = [job.pk for job in jobs.values()]
    expected = {
        pk: list(SlaClock.objects.filter(work_order_id=pk).order_by("id").values_list("pk", flat=True)) for pk in ids
    }
    for _ in range(2):
        clock.clear_cache()
        with CaptureQueriesContext(connection) as captured:
            grouped, _ = clocks_by_job(ids)
        assert len(captured) == 2  # the clocks, then the calendar of those still counting
        assert 'FROM "workorders_slaclock"' in captured.captured_queries[0]["sql"]
        assert {pk: [row.pk for row in rows] for pk, rows in grouped.items()} == expected
        # The same figures as the ORM's own rows of those clocks (instants converted as it does).
        first = grouped[ids[0]][0]
        assert (first.started_at, first.due_at, first.state) == SlaClock.objects.filter(pk=first.pk).values_list(
            "started_at", "due_at", "state"
        ).get()
    assert len(built) == 1
    clocks_by_job(ids[:2])  # fewer ids: the same query on PostgreSQL, one of its own elsewhere
    assert len(built) == (1 if connection.vendor == "postgresql" else 2)
    assert clocks_by_job([]) == ({}, {None: clock.TWENTY_FOUR_SEVEN})


@pytest.mark.django_db
def test_sorting_by_priority_follows_urgency(api, org):
    # Found by an outside sweep: the bands sorted as text (critical, high, low, medium, planned).
    for priority in ("low", "planned", "critical", "medium", "high", "critical"):
        make_job(org, priority=priority)
    client = api("viewer")
    ascending = [job["priority"] for job in client.get("/api/v1/work_orders?sort=priority&fields=priority").json()]
    assert ascending == ["critical", "critical", "high", "medium", "low", "planned"]
    descending = client.get("/api/v1/work_orders?sort=-priority,reference&fields=priority").json()
    assert [job["priority"] for job in descending] == ["planned", "low", "medium", "high", "critical", "critical"]

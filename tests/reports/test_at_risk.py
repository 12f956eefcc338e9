"""`GET /api/v1/reports/at_risk`: running clocks due within the window, past due first.

The collection conventions come from the shared API test base; the figures (business minutes
remaining, percent used, next escalation level) and the window are checked on top. Jobs are
reported relative to the real clock, since the report is about now.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from breaches.services import scan_breaches
from config.api.serializers import reference_of
from reports.at_risk import at_risk_clocks, escalation_levels, risk_figures
from slas.models import SlaRule
from tests.api_base import ResourceAPITests
from tests.breaches.factories import active_contract, make_job, make_rule, update_job
from tests.slas.factories import iso, make_calendar
from tests.workorders.factories import freeze_now
from workorders.models import SlaClock

URL = "/api/v1/reports/at_risk"
LEVELS = [{"at_percent": 50, "name": "Dispatcher"}, {"at_percent": 90, "name": "Duty manager"}]


def _ago(minutes: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)


class TestAtRiskAPI(ResourceAPITests):
    url = URL
    default_fields = [
        "id", "work_order", "contract", "sla_rule", "metric", "priority", "target_minutes", "started_at",
        "due_at", "remaining_minutes", "percent_used", "next_escalation",
    ]  # fmt: skip
    sort_keys = ["due_at", "started_at", "target_minutes"]
    default_sort = "due_at"
    # count, the page's ids (issue 15), the page's clocks with their rules, contracts and jobs (one
    # values() query), and their jobs' holds (a reopened job's hold pauses any rule's clock).
    list_queries = 4
    malformed_filters = [("contract_id", "x"), ("priority", "urgent"), ("metric", "speed")]

    def sort_value(self, key, item):
        return item[key]

    def setup_method(self):
        self.rules = {}
        self.rng = random.Random(7)

    def _rule(self, org):
        if org.pk not in self.rules:
            contract = active_contract(org)
            self.rules[org.pk] = make_rule(contract, target_minutes=60, escalation=LEVELS)
        return self.rules[org.pk]

    def factory(self, org, **overrides):
        rule = self._rule(org)
        reported = _ago(self.rng.uniform(1, 50))
        job = make_job(rule.contract, reported, now=timezone.now(), priority=overrides.get("priority", "high"))
        return SlaClock.objects.get(work_order=job, rule=rule)

    def filter_objects(self, org):
        first = active_contract(org)
        second = active_contract(org)
        r1 = make_rule(first, target_minutes=60)
        r2 = make_rule(second, target_minutes=90, metric="resolution")
        now = timezone.now()
        jobs = {
            "a": make_job(first, _ago(10), now=now, priority="critical"),
            "b": make_job(first, _ago(20), now=now, priority="low"),
            "c": make_job(second, _ago(30), now=now, priority="critical"),
        }
        return {
            "a": SlaClock.objects.get(work_order=jobs["a"], rule=r1),
            "b": SlaClock.objects.get(work_order=jobs["b"], rule=r1),
            "c": SlaClock.objects.get(work_order=jobs["c"], rule=r2),
            "first": first,
            "second": second,
            "r2": r2,
        }

    filter_cases = [
        ("contract_id", lambda o: str(o["first"].pk), ["a", "b"]),
        ("counterparty_id", lambda o: str(o["second"].counterparty_id), ["c"]),
        ("sla_rule_id", lambda o: str(o["r2"].pk), ["c"]),
        ("work_order_id", lambda o: str(o["a"].work_order_id), ["a"]),
        ("priority", "critical", ["a", "c"]),
        ("priority", "!critical", ["b"]),
        ("metric", "resolution", ["c"]),
        ("ids", "a,c", ["a", "c"]),
    ]


@pytest.mark.django_db
def test_the_window_past_due_first_and_the_figures(api, org):
    contract = active_contract(org)
    rule = make_rule(contract, target_minutes=60, escalation=LEVELS)
    now = timezone.now()
    late = make_job(contract, now - dt.timedelta(minutes=75), now=now)  # 15 minutes past due
    soon = make_job(contract, now - dt.timedelta(minutes=40), now=now)  # due in 20 minutes
    later = make_job(contract, now - dt.timedelta(minutes=1), now=now)  # due in 59 minutes
    done = make_job(contract, now - dt.timedelta(minutes=30), now=now)
    update_job(done, now, responded_at=now - dt.timedelta(minutes=5))  # stopped: never at risk
    client = api("viewer")
    body = client.get(URL, {"within_minutes": "30"}).json()
    assert [item["work_order"]["id"] for item in body] == [late.pk, soon.pk]
    first, second = body
    assert first["remaining_minutes"] in (-16, -15) and first["percent_used"] >= 125
    assert 19 <= second["remaining_minutes"] <= 20 and 65 <= second["percent_used"] <= 68
    assert second["next_escalation"]["name"] in ("Dispatcher", "Duty manager")
    assert first["contract"] == {"id": contract.pk, "name": contract.name}
    assert first["sla_rule"]["id"] == rule.pk and first["priority"] == "high"
    wide = client.get(URL, {"within_minutes": "120"}).json()
    assert [item["work_order"]["id"] for item in wide] == [late.pk, soon.pk, later.pk]
    # The scan records the late clock's breach: still running, still listed (first).
    scan_breaches(now=timezone.now())
    assert SlaClock.objects.get(work_order=late, rule=rule).state == "breached"
    assert client.get(URL, {"within_minutes": "30"}).json()[0]["work_order"]["id"] == late.pk
    default = client.get(URL).json()  # within_minutes defaults to 120
    assert [item["id"] for item in default] == [item["id"] for item in wide]


@pytest.mark.django_db
def test_csv_streams_every_row_without_the_page_limit(api, org):
    contract = active_contract(org)
    make_rule(contract, target_minutes=60)
    now = timezone.now()
    jobs = [make_job(contract, now - dt.timedelta(minutes=i % 50), now=now, reference=f"J{i}") for i in range(105)]
    response = api("viewer").get(URL, {"format": "csv", "sort": "-due_at"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,work_order_id,work_order_name,contract_id,contract_name,sla_rule_id")
    assert len(lines) == 1 + len(jobs)
    json_ids = [item["id"] for item in api("viewer").get(URL, {"per_page": "100", "sort": "-due_at"}).json()]
    assert [int(line.split(",")[0]) for line in lines[1:101]] == json_ids


@pytest.mark.django_db
def test_one_indexed_query_finds_the_clocks(api, org):
    contract = active_contract(org)
    make_rule(contract, target_minutes=60)
    make_job(contract, _ago(10), now=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        api("viewer").get(URL)
    selects = [q["sql"] for q in queries.captured_queries if 'FROM "workorders_slaclock"' in q["sql"]]
    # The count, the page's ids (issue 15: ids first), and the page's rows with their rules,
    # contracts and jobs joined.
    assert len(selects) == 3
    if connection.vendor == "postgresql":
        clocks = at_risk_clocks(organization=org, now=timezone.now(), within_minutes=120)
        page_ids = clocks.order_by("due_at", "id").values_list("pk", flat=True)[40:60]
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index applies
            plans = [clocks.explain(), page_ids.explain()]
            cursor.execute("RESET enable_seqscan")
        assert all("clock_open_due_id" in plan for plan in plans), plans
        # A page's ids are read off the index in the report's order (due_at, id): no sort of the window.
        assert "Sort" not in plans[1], plans[1]


# Blank: it was the default window (found by an outside sweep), where `within_days=` is a 400.
@pytest.mark.parametrize("value", ["-1", "x", "1.5", "600000", "\u0663", "9" * 5000, ""])
@pytest.mark.django_db
def test_bad_window_is_400(api, org, value):
    response = api("viewer").get(URL, {"within_minutes": value})
    assert response.status_code == 400 and "within_minutes" in response.json()["errors"]


# --- issue 15: a page written from rows ----------------------------------------------------------


@pytest.fixture
def frozen(monkeypatch):
    return freeze_now(monkeypatch)


@pytest.fixture
def risky(org, frozen):
    """Clocks at risk of every kind: past due and not, on an office calendar and 24x7, paused
    earlier by a hold, reopened, escalations left or all sent, blank rule and contract names."""
    office = make_calendar(org)
    first = active_contract(org)
    unnamed = active_contract(org, name="")
    response = make_rule(first, target_minutes=60, escalation=LEVELS)
    resolution = make_rule(first, metric="resolution", target_minutes=600, calendar=office, pause_on_hold=True)
    blank = make_rule(unnamed, name="", target_minutes=90)
    made = [
        make_job(first, frozen - dt.timedelta(minutes=75), now=frozen),  # past due (response)
        make_job(first, frozen - dt.timedelta(minutes=20), now=frozen),  # due in 40 minutes
        make_job(unnamed, frozen - dt.timedelta(minutes=30), now=frozen),
    ]
    held = make_job(first, frozen - dt.timedelta(days=3), now=frozen - dt.timedelta(days=3))
    update_job(held, frozen - dt.timedelta(days=2), status="on_hold", hold_reason="Parts")
    update_job(held, frozen - dt.timedelta(days=1), status="in_progress")
    reopened = make_job(first, frozen - dt.timedelta(days=2), now=frozen - dt.timedelta(days=2))
    update_job(reopened, frozen - dt.timedelta(days=1, hours=20), status="resolved")
    update_job(reopened, frozen - dt.timedelta(hours=2), status="in_progress")
    scan_breaches(now=frozen)  # records the late clocks' breaches and sends their escalations
    return {"rules": (response, resolution, blank), "jobs": [*made, held, reopened]}


def as_models_give(clock_row, now) -> dict:
    """A listed clock as the model instances give it (the way the report was written before)."""
    figures = risk_figures(clock_row, now)
    return {
        "id": clock_row.pk,
        "work_order": reference_of(clock_row.work_order),
        "contract": reference_of(clock_row.rule.contract),
        "sla_rule": reference_of(clock_row.rule),
        "metric": clock_row.metric,
        "priority": clock_row.work_order.priority,
        "target_minutes": clock_row.target_minutes,
        "started_at": iso(clock_row.started_at),
        "due_at": iso(clock_row.due_at),
        **figures,
        "next_escalation": figures["next_escalation"]
        and {**figures["next_escalation"], "at": iso(figures["next_escalation"]["at"])},
    }


@pytest.mark.django_db
def test_the_page_is_what_each_clock_alone_and_the_models_give(api, org, risky, frozen):
    client = api("viewer")
    listed = client.get(URL, {"within_minutes": "525600", "per_page": "100"}).json()
    expected = at_risk_clocks(organization=org, now=frozen, within_minutes=525600).order_by("due_at", "id")
    assert listed == [as_models_give(row, frozen) for row in expected]
    assert len(listed) >= 6  # the tricky cases are there ...
    assert {item["sla_rule"]["id"] for item in listed} == {rule.pk for rule in risky["rules"]}
    assert {item["contract"]["name"] for item in listed} >= {"Maintenance of the fleet"}
    assert any(item["next_escalation"] is None for item in listed)
    assert any(item["next_escalation"] is not None for item in listed)
    assert any(item["remaining_minutes"] < 0 for item in listed) and any(i["remaining_minutes"] > 0 for i in listed)
    for item in listed:  # ... and each reads the same alone
        assert client.get(f"{URL}/{item['id']}", {"within_minutes": "525600"}).json() == item
    for page in (1, 2):
        part = client.get(URL, {"within_minutes": "525600", "per_page": "4", "page": str(page)}).json()
        assert part == listed[(page - 1) * 4 : page * 4]


@pytest.mark.parametrize(
    ("rule", "fields", "queries"),
    [
        # count, ids, the page's clocks with their rules, contracts and jobs, and their holds (a
        # reopened job's hold pauses a response rule's clock too, even one that does not pause on hold)
        (1, None, 4),
        (0, None, 4),
        (1, "work_order,due_at", 3),  # no figure shown: no holds read
    ],
)
@pytest.mark.django_db
def test_queries_do_not_grow_with_the_rows(api, risky, rule, fields, queries):
    client = api("viewer")
    params = {"within_minutes": "525600", "sla_rule_id": str(risky["rules"][rule].pk)}
    params.update({"fields": fields} if fields else {})
    assert client.get(URL, {**params, "per_page": "1"}).status_code == 200  # caches the membership
    counts, rows = [], []
    for per_page in ("1", "100"):
        with CaptureQueriesContext(connection) as captured:
            rows.append(len(client.get(URL, {**params, "per_page": per_page}).json()))
        counts.append(len(captured))
    assert rows[0] == 1 and rows[1] >= 2
    assert counts == [queries, queries], [q["sql"] for q in captured.captured_queries]


def test_escalation_levels_are_sorted_without_touching_the_rule():
    """A rule's levels in at_percent order, whatever order the rule lists them in; the rule's own
    list (shared by the page's clocks of that rule) is left as it was."""
    listed = [{"at_percent": 90, "name": "Duty manager"}, {"at_percent": 50, "name": "Dispatcher"}]
    rule = SlaRule(escalation=listed)
    assert escalation_levels(rule) == [listed[1], listed[0]]
    assert [level["at_percent"] for level in rule.escalation] == [90, 50]
    assert escalation_levels(SlaRule(escalation=[])) == [] and escalation_levels(SlaRule(escalation=None)) == []


@pytest.mark.django_db
def test_levels_listed_out_of_order_escalate_in_percent_order(api, org, frozen):
    contract = active_contract(org)
    make_rule(contract, target_minutes=100, escalation=[LEVELS[1], LEVELS[0]])
    make_job(contract, frozen - dt.timedelta(minutes=10), now=frozen)
    (item,) = api("viewer").get(URL, {"within_minutes": "525600"}).json()
    assert item["next_escalation"]["name"] == "Dispatcher"  # 50% before 90%
    assert item["percent_used"] == 10.0 and item["remaining_minutes"] == 90
    assert api("viewer").get(f"{URL}/{item['id']}", {"within_minutes": "525600"}).json() == item


@pytest.mark.django_db
def test_percent_used_rounds_half_up_as_every_percentage_of_the_reports(api, org, frozen):
    """81 seconds of a 60-minute target is 2.25 % used: 2.3 half up (the compliance report's
    `achieved_percent` rounding). Python's `round` on the float read 2.2 (half even), in REST, the
    CSV and GraphQL alike."""
    contract = active_contract(org)
    make_rule(contract, target_minutes=60)
    make_job(contract, frozen - dt.timedelta(seconds=81), now=frozen)
    client = api("viewer")
    (item,) = client.get(URL, {"within_minutes": "525600"}).json()
    assert item["percent_used"] == 2.3 and item["remaining_minutes"] == 58  # 3519 s left, floored
    csv_text = b"".join(client.get(URL, {"within_minutes": "525600", "format": "csv"}).streaming_content).decode()
    header, row = csv_text.splitlines()[:2]
    assert dict(zip(header.split(","), row.split(","), strict=True))["percent_used"] == "2.3"
    query = "{ slaAtRisk(withinMinutes: 525600) { items { percentUsed } } }"
    body = client.post("/api/graphql", {"query": query}, format="json").json()
    assert body["data"]["slaAtRisk"]["items"] == [{"percentUsed": 2.3}]

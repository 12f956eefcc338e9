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
from tests.api_base import ResourceAPITests
from tests.breaches.factories import active_contract, make_job, make_rule, update_job
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
    # count, the page's ids (issue 15), page of clocks with joins, prefetch of holds
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
    assert len(selects) == 3  # the count, the page's ids (issue 15: ids first) and the page
    if connection.vendor == "postgresql":
        from reports.at_risk import at_risk_clocks

        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index applies
            plan = at_risk_clocks(organization=org, now=timezone.now(), within_minutes=120).explain()
            cursor.execute("RESET enable_seqscan")
        assert "clock_open_due" in plan


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "600000"])
@pytest.mark.django_db
def test_bad_window_is_400(api, org, value):
    response = api("viewer").get(URL, {"within_minutes": value})
    assert response.status_code == 400 and "within_minutes" in response.json()["errors"]

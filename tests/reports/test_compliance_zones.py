"""The compliance report's months and weeks in every IANA zone a report may name, on both databases.

Found by a sweep of odd zones (twelfth round): CET, MET, EET and WET are IANA zones (with summer
time) and also time zone abbreviations, which PostgreSQL's AT TIME ZONE reads first (a fixed
+01:00 for CET); a report in CET counted a clock decided in the first hour of August in July on
PostgreSQL, in August on SQLite.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db.models import DateTimeField, Value
from django.db.models.functions import TruncMonth

from config import dates
from reports.compliance import ComplianceQuery
from tenancy.models import Organization
from tests.breaches.factories import make_rule
from tests.contracts.factories import make_contract
from workorders.services import create_work_order

pytestmark = pytest.mark.django_db
URL = "/api/v1/reports/sla_compliance"
UTC = dt.UTC

# (zone, the instant a response clock is met, its local month and ISO week there)
CASES = [
    ("CET", dt.datetime(2026, 7, 31, 22, 30, tzinfo=UTC), "2026-08", "2026-W31"),  # 00:30 CEST, Saturday 1 August
    ("MET", dt.datetime(2026, 7, 31, 22, 30, tzinfo=UTC), "2026-08", "2026-W31"),
    ("EET", dt.datetime(2026, 7, 31, 21, 30, tzinfo=UTC), "2026-08", "2026-W31"),  # 00:30 EEST
    ("WET", dt.datetime(2026, 7, 31, 23, 30, tzinfo=UTC), "2026-08", "2026-W31"),  # 00:30 WEST
    ("CET", dt.datetime(2026, 8, 2, 22, 30, tzinfo=UTC), "2026-08", "2026-W32"),  # 00:30 CEST, Monday 3 August
    ("Etc/GMT+10", dt.datetime(2026, 8, 1, 9, 30, tzinfo=UTC), "2026-07", "2026-W31"),  # 23:30 on 31 July (UTC-10)
    ("Asia/Kathmandu", dt.datetime(2026, 7, 31, 18, 20, tzinfo=UTC), "2026-08", "2026-W31"),  # 00:05 (+05:45)
]


@pytest.mark.parametrize(("zone", "responded", "month", "week"), CASES)
def test_a_clock_counts_in_its_local_month_and_week(api, org, zone, responded, month, week):
    contract = make_contract(org, status="active", currency="EUR", time_zone="UTC")
    make_rule(contract, metric="response", target_minutes=60)
    create_work_order(
        organization=org, actor=None, now=responded,
        data={"contract_id": contract.pk, "priority": "high", "reported_at": responded - dt.timedelta(minutes=30),
              "summary": "Pump", "status": "in_progress", "responded_at": responded},
    )  # fmt: skip
    client = api("viewer")
    period = {"from": "2026-07-01", "to": "2026-08-31", "time_zone": zone}
    months = client.get(URL, {**period, "group_by": "month"})
    assert months.status_code == 200, months.content
    assert [(row["month"], row["decided"]) for row in months.json() if row["decided"]] == [(month, 1)]
    weeks = client.get(URL, {**period, "group_by": "week"}).json()
    assert [(row["week"], row["decided"]) for row in weeks if row["decided"]] == [(week, 1)]


@pytest.mark.parametrize(
    "instant", [dt.datetime(2026, 1, 31, 23, 30, tzinfo=UTC), dt.datetime(2026, 7, 31, 22, 30, tzinfo=UTC)]
)
def test_the_database_reads_every_zone_as_python_does(org, instant):
    # Every zone a report may name (`config.dates`), winter and summer: the month the database
    # truncates an instant to in the report's zone is the local month Python computes.
    zones = sorted(dates._time_zones())
    at = Value(instant, output_field=DateTimeField())
    for chunk in range(0, len(zones), 100):  # SQLite's default limit of columns in a result
        names = zones[chunk : chunk + 100]
        truncations = {
            f"z{index}": TruncMonth(at, tzinfo=ComplianceQuery(instant.date(), instant.date(), name).database_zone)
            for index, name in enumerate(names)
        }
        row = Organization.objects.filter(pk=org.pk).annotate(**truncations).values_list(*truncations)
        got = dict(zip(names, row.get(), strict=True))
        wrong = {
            name: got[name].astimezone(zoneinfo.ZoneInfo(name)).strftime("%Y-%m")
            for name in names
            if got[name].astimezone(zoneinfo.ZoneInfo(name)).strftime("%Y-%m")
            != instant.astimezone(zoneinfo.ZoneInfo(name)).strftime("%Y-%m")
        }
        assert wrong == {}

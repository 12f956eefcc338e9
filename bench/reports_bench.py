"""Benchmark: the reports (issue 11) on PostgreSQL at scale.

The data set is the breach scan's (`bench/scan.py`: built with COPY from generators, the same
clocks, holds and final breaches the product would store) at BENCH_REPORTS_SIZE work orders
(default 1,000,000, about 1.6 million clocks), in its own database (BENCH_REPORTS_DB, default
`sla_bench_reports`, dropped and recreated). Then, so that each figure is about one
organization's data as the issue asks:

- the first 1,000,000 clocks (and their breaches) are moved to organization 1, the rest to
  organization 2: the **compliance report** runs over exactly 1,000,000 clocks of one
  organization, for a year, with several groupings (each run three times, the median kept;
  the first run's EXPLAIN ANALYZE is printed);
- every work order is moved to organization 1: the **CSV export** of `/api/v1/work_orders`
  (`?format=csv&fields=...`) streams every row through Django's test client in a child process
  whose peak RSS comes from `os.wait4`, once for all rows and once for a tenth of them
  (`?priority=critical`), so one sees whether memory grows with the rows;
- 100,000 work orders are moved to contract 4 (office-hours calendar on three of its four
  rules): the **backtest** of a proposed target (and of a proposed calendar) over a year,
  through `POST /api/v1/backtests` and through `reports.backtest.run_backtest` directly.

The machine is shared: figures are as quiet as `load_average_1m` says.
Run alone: `.venv/bin/python bench/reports_bench.py` (BENCH_DATABASE_URL as for `make bench`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time

import benchdb
import scan

DATABASE = os.environ.get("BENCH_REPORTS_DB", "sla_bench_reports")
SIZE = int(os.environ.get("BENCH_REPORTS_SIZE", "1000000"))
CLOCKS = int(os.environ.get("BENCH_REPORTS_CLOCKS", "1000000"))
BACKTEST_JOBS = int(os.environ.get("BENCH_REPORTS_BACKTEST_JOBS", "100000"))
BACKTEST_CONTRACT = 4  # every 4th contract runs three of its rules on the office calendar
NOW = scan.NOW

CSV_FIELDS = "id,reference,contract,priority,status,reported_at,resolved_at,created_at"

CHILD = r"""
import os, sys, time, json
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from tenancy.auth import issue_tokens
from tenancy.models import Membership, Organization

org = Organization.objects.get(pk=1)
user, _ = get_user_model().objects.get_or_create(username="bench-reader")
membership, _ = Membership.objects.get_or_create(user=user, organization=org, defaults={"role": "viewer"})
token = issue_tokens(membership)["access"]
started = time.monotonic()
response = Client().get(sys.argv[1], HTTP_AUTHORIZATION=f"Bearer {token}")
rows = size = 0
for piece in response.streaming_content:
    size += len(piece)
    rows += piece.count(b"\n")
print(json.dumps({"status": response.status_code, "rows": rows - 1, "bytes": size,
                  "seconds": time.monotonic() - started}))
"""


def run(database_url: str) -> dict:
    url = benchdb.database_url(database_url, DATABASE)
    errors = 0
    benchdb.reset_database(url)
    benchdb.migrate(url)
    started = time.monotonic()
    counts = scan.build(url, SIZE)
    print(f"  built {counts} in {time.monotonic() - started:.0f} s", flush=True)
    figures: dict = {"work_orders": counts["work_orders"], "clocks_total": counts["clocks"]}

    with benchdb.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE workorders_slaclock SET organization_id = CASE WHEN id <= %s THEN 1 ELSE 2 END", (CLOCKS,))
        conn.execute(
            "UPDATE breaches_breach b SET organization_id = c.organization_id FROM workorders_slaclock c"
            " WHERE c.id = b.clock_id"
        )
    benchdb.vacuum_analyze(url)
    figures.update(compliance(url))

    with benchdb.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE workorders_workorder SET organization_id = 1")
    benchdb.vacuum_analyze(url)
    for label, query in (("all", ""), ("tenth", "&priority=critical")):
        path = f"/api/v1/work_orders?format=csv&fields={CSV_FIELDS}{query}"
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "LOG_LEVEL": "WARNING"}
        code, seconds, rss, output = benchdb.run_measured([sys.executable, "-c", CHILD, path], env)
        try:
            result = json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(output[-3000:], file=sys.stderr)
            errors += 1
            continue
        print(f"  CSV {label}: {result['rows']:,} rows, {result['bytes'] / 1e6:.0f} MB in {result['seconds']:.1f} s,"
              f" peak RSS {rss:.0f} MB", flush=True)  # fmt: skip
        if code != 0 or result["status"] != 200:
            errors += 1
        figures[f"csv_{label}_rows"] = result["rows"]
        figures[f"csv_{label}_seconds"] = result["seconds"]
        figures[f"csv_{label}_rows_per_second"] = result["rows"] / result["seconds"]
        figures[f"csv_{label}_peak_rss_mb"] = rss
    if figures.get("csv_all_rows") != counts["work_orders"]:
        errors += 1

    with benchdb.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE workorders_workorder SET contract_id = %s WHERE id <= %s", (BACKTEST_CONTRACT, BACKTEST_JOBS)
        )
    benchdb.vacuum_analyze(url)
    result = backtests(url)
    errors += result.pop("errors")
    figures.update(result)
    figures["load_average_1m"] = os.getloadavg()[0]
    figures["errors"] = errors
    return figures


def _median_seconds(call, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def compliance(url: str) -> dict:
    benchdb.use_django(url)
    from django.db import connections

    from reports.compliance import ComplianceQuery, compliance_report, decided_clocks
    from tenancy.models import Organization
    from workorders.models import SlaClock

    org = Organization.objects.get(pk=1)
    clocks = SlaClock.objects.filter(organization=org).count()
    print(f"  compliance over {clocks:,} clocks of one organization", flush=True)
    figures = {"compliance_clocks": clocks}
    year = (dt.date(2025, 11, 18), dt.date(2026, 11, 18))
    for label, group_by in (
        ("total", ()),
        ("by_month", ("month",)),
        ("by_contract", ("contract",)),
        ("by_contract_month", ("contract", "month")),
        ("by_metric_priority", ("metric", "priority")),
    ):
        query = ComplianceQuery(date_from=year[0], date_to=year[1], time_zone="Europe/Amsterdam", group_by=group_by)
        seconds, rows = _median_seconds(lambda q=query: compliance_report(organization=org, query=q, now=NOW))
        decided = sum(row["decided"] for row in rows)
        print(f"  compliance {label}: {len(rows):,} rows, {decided:,} decided, median {seconds:.2f} s", flush=True)
        figures[f"compliance_{label}_seconds"] = seconds
        figures[f"compliance_{label}_rows"] = len(rows)
    # The report's own query (`decided_clocks`): a narrow period is an index range on the decision
    # instant (`clock_decided`), the whole year may rightly prefer a scan.
    for label, period in (("one week", (dt.date(2026, 10, 5), dt.date(2026, 10, 11))), ("the year", year)):
        query = ComplianceQuery(date_from=period[0], date_to=period[1], time_zone="Europe/Amsterdam")
        plan = decided_clocks(organization=org, query=query, now=NOW).values("rule__contract_id").explain(analyze=True)
        print(f"  EXPLAIN ANALYZE (decided clocks of {label}, by contract):")
        for line in plan.splitlines()[:14]:
            print(f"    {line}")
        figures[f"compliance_plan_{label.replace(' ', '_')}_uses_clock_decided"] = "clock_decided" in plan
    connections.close_all()
    return figures


def backtests(url: str) -> dict:
    benchdb.use_django(url)
    from django.db import connections
    from rest_framework.test import APIClient

    from contracts.models import Contract
    from reports.backtest import run_backtest
    from slas.models import SlaRule
    from tenancy.auth import issue_tokens
    from tenancy.models import Membership
    from workorders.models import WorkOrder

    errors = 0
    contract = Contract.objects.get(pk=BACKTEST_CONTRACT)
    rules = list(SlaRule.objects.select_related("contract", "calendar").filter(contract=contract).order_by("pk"))
    window = (NOW - dt.timedelta(days=380), NOW)
    jobs = WorkOrder.objects.filter(contract=contract, reported_at__gte=window[0], reported_at__lt=window[1]).count()
    figures = {"backtest_jobs_in_window": jobs}
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="bench-manager")
    membership, _ = Membership.objects.get_or_create(
        user=user, organization=contract.organization, defaults={"role": "manager"}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(membership)['access']}")
    proposals = {
        "target": {"target_minutes": 120},
        "calendar": {
            "calendar": {
                "time_zone": "Europe/Amsterdam",
                "hours": [{"weekday": d, "start": "07:00", "end": "19:00"} for d in range(1, 7)],
                "holidays": ["2026-01-01"],
            },
            "pause_on_hold": False,
        },
    }
    for label, proposed in proposals.items():
        body = {
            "contract_id": contract.pk,
            "from": window[0].isoformat(),
            "to": window[1].isoformat(),
            "proposed": proposed,
        }
        seconds, response = _median_seconds(lambda b=body: client.post("/api/v1/backtests", b, format="json"))
        if response.status_code != 200:
            print(response.content[:2000], file=sys.stderr)
            errors += 1
            continue
        result = response.json()
        print(
            f"  backtest {label} (HTTP): {result['jobs']:,} jobs, {result['changed_total']:,} outcomes change,"
            f" median {seconds:.2f} s; current {result['current']['achieved_percent']}%,"
            f" proposed {result['proposed']['achieved_percent']}%",
            flush=True,
        )
        figures[f"backtest_{label}_http_seconds"] = seconds
        figures[f"backtest_{label}_jobs"] = result["jobs"]
        if result["jobs"] < BACKTEST_JOBS * 0.9:
            errors += 1
    from reports.api import ProposedSerializer

    form = ProposedSerializer(data=proposals["target"])
    form.is_valid(raise_exception=True)
    cpu_started = time.process_time()
    seconds, _ = _median_seconds(
        lambda: run_backtest(
            rules=rules, window_from=window[0], window_to=window[1], proposed=form.validated_data, now=NOW
        )
    )
    cpu = (time.process_time() - cpu_started) / 3  # this process's CPU per run: the load does not inflate it
    print(f"  backtest target (service): median {seconds:.2f} s wall, {cpu:.2f} s CPU per run", flush=True)
    figures["backtest_target_service_seconds"] = seconds
    figures["backtest_target_service_cpu_seconds"] = cpu
    connections.close_all()
    figures["errors"] = errors
    return figures


if __name__ == "__main__":
    base_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench")
    for key, value in run(base_url).items():
        print(f"  {key:<40} {value:.2f}" if isinstance(value, float) else f"  {key:<40} {value}")

"""Benchmark: the deep contract query at 100 contracts, GraphQL beside the REST call sequence.

What is measured, in process through the real views (Django's test client, real JWTs), on
PostgreSQL: one `POST /api/graphql` asking for 100 contracts with their counterparty, SLA rules,
each rule's clocks and their breaches, work orders with their clocks, and ledger entries; and the
REST sequence that fetches the same: `GET /contracts?per_page=100`, then per contract
`GET /sla_rules?contract_id=`, `/work_orders?contract_id=` (with clocks), `/breaches?contract_id=`
and `/ledger_entries?contract_id=` (401 calls). Reported: SQL queries and p50/p99 latency of each.

Setup: drop and recreate the bench database, migrate, then 100 active contracts, each with two
rules and three jobs written through the services (so clocks and breaches are real).
Run it with `make bench` or `.venv/bin/python bench/run.py graphql_bench` (machine shared: figures
are indicative).
"""

import datetime as dt
import statistics
import time

import benchdb

CONTRACTS = 100
GRAPHQL_RUNS = 20
REST_RUNS = 3
T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)

DEEP = """{ contracts(pagination: {limit: 100}) { totalCount results {
  id name counterparty { name }
  slaRules { id name targetMinutes clocks { id state dueAt breach { id state } } }
  workOrders { id reference status slaClocks { state dueAt } }
  breaches { id state penaltyAmount } ledgerEntries { hours entryType } } } }"""


def _seed():
    from django.contrib.auth import get_user_model

    from slas.services import create_rule
    from tenancy.models import Membership, Organization
    from tests.contracts.factories import make_contract
    from workorders.services import create_work_order

    org = Organization.objects.create(slug="bench", name="Bench", default_currency="EUR", default_time_zone="UTC")
    user = get_user_model().objects.create_user(username="bench-viewer", password="x")
    membership = Membership.objects.create(user=user, organization=org, role="manager")
    for index in range(CONTRACTS):
        contract = make_contract(org, name=f"Contract {index:03d}", status="active")
        for metric, minutes in (("response", 60), ("resolution", 480)):
            create_rule(
                organization=org,
                actor=None,
                data={
                    "contract": contract, "name": f"{metric} {index}", "metric": metric,
                    "priorities": ["critical", "high", "medium", "low", "planned"], "target_minutes": minutes,
                    "effective_from": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                },
            )  # fmt: skip
        for job in range(3):
            reported = T0 + dt.timedelta(hours=job)
            data = {"contract": contract, "reported_at": reported, "priority": "high"}
            if job == 0:
                data["responded_at"] = reported + dt.timedelta(minutes=90)  # a response breach
            create_work_order(organization=org, actor=None, data=data, now=reported + dt.timedelta(hours=2))
    return membership


def _timed(call):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
    return elapsed * 1000, len(captured.captured_queries)


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(database_url: str) -> dict:
    benchdb.reset_database(database_url)
    benchdb.migrate(database_url)
    benchdb.use_django(database_url)
    from django.test import Client
    from django.test.utils import override_settings

    from tenancy.auth import issue_tokens

    membership = _seed()
    benchdb.vacuum_analyze(database_url)
    token = issue_tokens(membership)["access"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    errors = 0

    def graphql():
        nonlocal errors
        body = client.post("/api/graphql", {"query": DEEP}, content_type="application/json").json()
        if body.get("errors") or body["data"]["contracts"]["totalCount"] != CONTRACTS:
            errors += 1

    def rest():
        nonlocal errors
        response = client.get("/api/v1/contracts?per_page=100")
        if response.status_code != 200:
            errors += 1
            return
        for contract in response.json():
            for path in ("sla_rules", "work_orders", "breaches", "ledger_entries"):
                if client.get(f"/api/v1/{path}?contract_id={contract['id']}&per_page=100").status_code != 200:
                    errors += 1

    with override_settings(DEBUG=False, REST_FRAMEWORK={**__import__("django.conf").conf.settings.REST_FRAMEWORK,
                                                        "DEFAULT_THROTTLE_CLASSES": []}):  # fmt: skip
        graphql()  # warm-up
        g = [_timed(graphql) for _ in range(GRAPHQL_RUNS)]
        r = [_timed(rest) for _ in range(REST_RUNS)]
    figures = {
        "graphql_queries": g[-1][1],
        "graphql_p50_ms": round(statistics.median(x for x, _ in g), 1),
        "graphql_p99_ms": round(_percentile([x for x, _ in g], 0.99), 1),
        "rest_calls": 1 + 4 * CONTRACTS,
        "rest_queries": r[-1][1],
        "rest_p50_ms": round(statistics.median(x for x, _ in r), 1),
        "rest_p99_ms": round(_percentile([x for x, _ in r], 0.99), 1),
        "errors": errors,
    }
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return figures

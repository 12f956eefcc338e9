"""Benchmark (issue 13): contract matching with 10,000 contracts with coverage polygons in one
organization, and generating a year of planned visits for 1,000 plans, on PostgreSQL.

The data set, built fresh each run in its own database (BENCH_DATABASE_URL's server, database
`<its name>_agreements`, dropped WITH (FORCE), recreated and migrated):

- one organization, a manager, 100 counterparties with 20 assets each (a point each);
- 10,000 active contracts: 9,000 spread over 99 counterparties (about 91 each) and 1,000 on one
  "big" counterparty (the worst case: every candidate must be scored). Each has a coverage area
  (a random convex polygon of 8-16 vertices, 5-40 km across, somewhere in the Netherlands) with
  its bounding box, and covers 0-2 of its counterparty's assets;
- 40 enabled contract rules ahead of scoring (summary, priority, asset kind and `within`
  criteria that rarely all hold), so every match also evaluates the rules.

Measured:

1. `workorders.matching.match_contract` for MATCHES random jobs (a counterparty or an asset, a
   point, a priority and a summary; reported now): p50/p99/max ms, separately for jobs of the
   spread counterparties and of the big one. No warm-up beyond the first 20 calls (not counted).
2. `POST /api/v1/work_orders/match` through Django's test client in this process (real JWT,
   serializers, every candidate in the response): p50/p99 ms for the big counterparty.
3. 1,000 visit plans on 100 of the contracts (250 weekly, 500 monthly, 250 quarterly; each
   contract has a response rule for `planned`, so every job gets its clock), created one year
   before `NOW` is checked: one `generate_visits` run with a 366-day horizon (a year of visits
   at once) - seconds, jobs made, jobs/s - then a second run at the same instant (must make 0:
   exactly once), and a daily run a day later (the steady state of cron).

Run it with `make bench` (bench/run.py calls `run()`), or alone: `.venv/bin/python bench/agreements.py`.
For a quick try: BENCH_AGREEMENT_CONTRACTS=1000 BENCH_VISIT_PLANS=100.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import benchdb

ROOT = Path(__file__).resolve().parent.parent

SEED = 20261129
CONTRACTS = int(os.environ.get("BENCH_AGREEMENT_CONTRACTS", "10000"))
BIG_SHARE = 0.1  # of the contracts, on one counterparty
COUNTERPARTIES = 100
ASSETS_PER_PARTY = 20
RULES = 40
MATCHES = int(os.environ.get("BENCH_MATCHES", "1000"))
API_MATCHES = 200
PLANS = int(os.environ.get("BENCH_VISIT_PLANS", "1000"))
PLAN_CONTRACTS = 100
NL = (3.4, 50.8, 7.2, 53.5)  # lon/lat box


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def polygon(rng: random.Random) -> dict:
    lon0, lat0 = rng.uniform(NL[0], NL[2]), rng.uniform(NL[1], NL[3])
    radius = rng.uniform(0.03, 0.3)
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(8, 16)))
    ring = [[round(lon0 + radius * math.cos(a) * 1.6, 5), round(lat0 + radius * math.sin(a), 5)] for a in angles]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def seed(rng: random.Random):
    from django.contrib.auth import get_user_model

    from contracts.geo import bounding_box
    from contracts.models import Asset, Contract, Counterparty
    from slas.models import SlaRule
    from tenancy.models import Membership, Organization
    from workorders.models import ContractRule

    org = Organization.objects.create(slug="bench", name="Bench", default_currency="EUR", default_time_zone="UTC")
    user = get_user_model().objects.create_user(username="bench-operator", password="x")
    membership = Membership.objects.create(user=user, organization=org, role="operator")
    parties = Counterparty.objects.bulk_create(
        Counterparty(organization=org, name=f"Party {n:03d}") for n in range(COUNTERPARTIES)
    )
    assets = Asset.objects.bulk_create(
        Asset(
            organization=org,
            counterparty=party,
            name=f"Asset {party.pk}-{n}",
            kind=rng.choice(["pump", "hydrant", "vehicle", "alarm panel"]),
            location={"type": "Point", "coordinates": [rng.uniform(NL[0], NL[2]), rng.uniform(NL[1], NL[3])]},
        )
        for party in parties
        for n in range(ASSETS_PER_PARTY)
    )
    assets_of = {}
    for asset in assets:
        assets_of.setdefault(asset.counterparty_id, []).append(asset)
    big = parties[0]
    big_count = int(CONTRACTS * BIG_SHARE)
    today = dt.date.today()
    contracts = []
    for n in range(CONTRACTS):
        party = big if n < big_count else parties[1 + n % (COUNTERPARTIES - 1)]
        area = polygon(rng)
        box = bounding_box(area)
        contracts.append(
            Contract(
                organization=org,
                reference=f"B-{n:05d}",
                name=f"Contract {n}",
                contract_type="service_contract",
                counterparty=party,
                counterparty_role="customer",
                status="active",
                start_date=today - dt.timedelta(days=rng.randint(400, 700)),
                expiry_date=today + dt.timedelta(days=rng.randint(400, 1500)),
                time_zone="Europe/Amsterdam",
                currency="EUR",
                coverage_areas=area,
                coverage_min_lon=box[0],
                coverage_min_lat=box[1],
                coverage_max_lon=box[2],
                coverage_max_lat=box[3],
            )  # fmt: skip
        )
    contracts = Contract.objects.bulk_create(contracts, batch_size=1000)
    through = Contract.covered_assets.through
    through.objects.bulk_create(
        (
            through(contract_id=contract.pk, asset_id=asset.pk)
            for contract in contracts
            for asset in rng.sample(assets_of[contract.counterparty_id], rng.randint(0, 2))
        ),
        batch_size=5000,
    )
    ContractRule.objects.bulk_create(
        ContractRule(
            organization=org,
            name=f"Rule {n}",
            sequence=n,
            criteria=[
                {"field": "summary", "operator": "contains", "value": f"code {n}"},
                {"field": "priority", "operator": "in", "value": ["critical", "high"]},
                {"field": "location", "operator": "within", "value": rng.choice(contracts).pk},
            ]
            if n % 2
            else [{"field": "asset_kind", "operator": "equals", "value": f"kind {n}"}],
            contract=rng.choice(contracts),
        )
        for n in range(RULES)
    )
    SlaRule.objects.bulk_create(
        SlaRule(
            organization=org,
            contract=contract,
            name="Planned visit response",
            metric="response",
            priorities=["planned"],
            target_minutes=240,
            pause_on_hold=False,
            effective_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )  # fmt: skip
        for contract in contracts[-PLAN_CONTRACTS:]
    )
    return org, membership, parties, assets_of, big, contracts


def random_job(rng, parties, assets_of, party):
    from contracts.models import Counterparty
    from workorders.matching import Job

    asset = rng.choice(assets_of[party.pk]) if rng.random() < 0.7 else None
    point = {"type": "Point", "coordinates": [rng.uniform(NL[0], NL[2]), rng.uniform(NL[1], NL[3])]}
    return Job(
        reported_at=dt.datetime.now(dt.UTC),
        priority=rng.choice(["critical", "high", "medium", "low"]),
        counterparty=None if asset else Counterparty(pk=party.pk),
        asset=asset,
        summary=rng.choice(["Pump leaks", "Alarm fault", "Door stuck"]),
        location=point,
    )


def time_matches(org, jobs) -> tuple[list[float], list[float]]:
    """Wall ms and this process's CPU ms of each match (the difference is mostly waiting for the
    database, and for the CPU on a shared machine)."""
    from workorders.matching import match_contract

    timings, cpu = [], []
    for n, job in enumerate(jobs):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = match_contract(organization=org, job=job)
        elapsed, cpu_elapsed = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000
        assert result.method in ("rule", "entitlement", "none")
        if n >= 20:
            timings.append(elapsed)
            cpu.append(cpu_elapsed)
    return timings, cpu


def time_api(membership, rng, big, assets_of) -> tuple[list[float], int]:
    from rest_framework.test import APIClient

    from tenancy.auth import issue_tokens

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(membership)['access']}")
    timings, errors = [], 0
    for n in range(API_MATCHES + 20):
        body = {
            "asset_id": rng.choice(assets_of[big.pk]).pk,
            "location": {"type": "Point", "coordinates": [rng.uniform(NL[0], NL[2]), rng.uniform(NL[1], NL[3])]},
            "priority": "high",
        }
        started = time.perf_counter()
        response = client.post("/api/v1/work_orders/match", body, format="json")
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or not response.json()["candidates"]:
            errors += 1
        if n >= 20:
            timings.append(elapsed)
    return timings, errors


def make_plans(contracts, rng) -> None:
    from workorders import rules

    year_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    kinds = (
        ["FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"] * 1
        + ["FREQ=MONTHLY;BYDAY=1TU;BYHOUR=8", "FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=13"] * 1
        + ["FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=7"]
    )  # 1 weekly : 2 monthly : 1 quarterly
    targets = contracts[-PLAN_CONTRACTS:]
    for n in range(PLANS):
        contract = targets[n % len(targets)]
        rules.create_visit_plan(
            contract=contract,
            actor=None,
            data={
                "summary": f"Inspection {n}",
                "recurrence": kinds[n % len(kinds)],
                "generate_days_in_advance": 366,
                "active_from": contract.local_today(year_ago),
            },
            now=year_ago,
        )


def run(database_url: str) -> dict:
    name = urlsplit(database_url).path.lstrip("/") + "_agreements"
    url = benchdb.database_url(database_url, name)
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    rng = random.Random(SEED)

    started = time.monotonic()
    org, membership, parties, assets_of, big, contracts = seed(rng)
    figures: dict = {"contracts": len(contracts), "seed_seconds": time.monotonic() - started}
    benchdb.vacuum_analyze(url)

    spread = [random_job(rng, parties, assets_of, rng.choice(parties[1:])) for _ in range(MATCHES + 20)]
    timings, cpu = time_matches(org, spread)
    figures.update(
        match_spread_p50_ms=statistics.median(timings),
        match_spread_p99_ms=percentile(timings, 99),
        match_spread_max_ms=max(timings),
        match_spread_cpu_p50_ms=statistics.median(cpu),
    )
    heavy = [random_job(rng, parties, assets_of, big) for _ in range(MATCHES // 4 + 20)]
    timings, cpu = time_matches(org, heavy)
    figures.update(
        match_big_party_p50_ms=statistics.median(timings),
        match_big_party_p99_ms=percentile(timings, 99),
        match_big_party_cpu_p50_ms=statistics.median(cpu),
        big_party_contracts=sum(1 for c in contracts if c.counterparty_id == big.pk),
    )
    timings, errors = time_api(membership, rng, big, assets_of)
    figures.update(api_match_big_p50_ms=statistics.median(timings), api_match_big_p99_ms=percentile(timings, 99))

    from workorders.models import SlaClock, WorkOrder
    from workorders.visits import generate_visits

    make_plans(contracts, rng)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=365) + dt.timedelta(minutes=1)
    started, cpu_started = time.monotonic(), time.process_time()
    made = generate_visits(now=now)
    seconds = time.monotonic() - started
    figures["year_of_visits_cpu_seconds"] = time.process_time() - cpu_started
    clocks = SlaClock.objects.count()
    figures.update(
        plans=PLANS,
        year_of_visits_jobs=made,
        year_of_visits_seconds=seconds,
        year_of_visits_jobs_per_s=made / seconds if seconds else 0.0,
    )
    started = time.monotonic()
    again = generate_visits(now=now)
    figures["rerun_same_instant_seconds"] = time.monotonic() - started
    started = time.monotonic()
    figures["daily_run_jobs"] = generate_visits(now=now + dt.timedelta(days=1))
    figures["daily_run_seconds"] = time.monotonic() - started
    duplicates = WorkOrder.objects.count() - len(set(WorkOrder.objects.values_list("visit_plan_id", "occurrence")))
    errors += (again != 0) + (duplicates != 0) + (clocks != made)
    figures["errors"] = errors
    figures["load_average_1m"] = os.getloadavg()[0]
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench")
    for key, value in run(base).items():
        print(f"  {key:<28} {value:.1f}" if isinstance(value, float) else f"  {key:<28} {value}")

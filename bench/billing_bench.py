"""Benchmark: the billing periods of a contract with 100,000 ledger entries over 36 monthly periods.

(Named billing_bench, not billing: bench/run.py puts bench/ first on sys.path, so a bench/billing.py
would shadow the `billing` Django app.)

The data set, built fresh each run in its own database (BENCH_DATABASE_URL's server, database
BENCH_BILLING_DB, default `sla_bench_billing`, dropped WITH (FORCE), recreated and migrated):

- one organization; one active contract with a monthly billing plan that began 36 months ago
  (Europe/Amsterdam): 20 included hours a month, 50% rollover, overage at 100.00, a charge of
  1,000.00 a month with a 3% annual increase;
- ENTRIES work entries (0.25-4 h, charged = hours) written with COPY, spread over the 36 months;
- then `billing.services.bill_contract` (the product's path, what `run_lifecycle` calls) opens
  and closes the 36 periods: included lots, expiries, rollover lots, overage settlements and
  the billing lines (the overage lines link their period's work entries).

Measured:

1. `close_all_seconds`: the one `bill_contract` call that opens and closes all 36 periods (cron
   catching up three years at once; each close replays the ledger up to its end, twice).
2. `periods_ms_median` / `periods_ms_best`: `billing.periods.compute(contract, now)` (what
   `GET /api/v1/contracts/{id}/periods` returns), REPETITIONS times; and `periods_api_ms`:
   the same through the REST endpoint with a real JWT (one request, after the others).
3. `entries` and `periods` (37: the 36 closed ones and the open one) for the record, and the
   machine's 1-minute load average (the machine is shared).

Run it with `make bench`, or alone:
`BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/x BENCH_BILLING_DB=mydb .venv/bin/python bench/billing_bench.py`.
For a quick try: BENCH_BILLING_ENTRIES=5000.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import time
from decimal import Decimal

import benchdb

ENTRIES = int(os.environ.get("BENCH_BILLING_ENTRIES", "100000"))
MONTHS = 36
REPETITIONS = 5
SEED = 12


def run(database_url: str) -> dict:
    url = benchdb.database_url(database_url, os.environ.get("BENCH_BILLING_DB", "sla_bench_billing"))
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    from django.test import Client
    from django.utils import timezone

    from billing import periods, services
    from contracts.models import Contract
    from ledger.services import running_balance_errors
    from tenancy.auth import issue_tokens

    contract, membership = seed(url)
    now = timezone.now()
    started = time.monotonic()
    closed = services.bill_contract(Contract.objects.get(pk=contract), now=now)
    close_all = time.monotonic() - started
    benchdb.vacuum_analyze(url)
    target = Contract.objects.get(pk=contract)
    timings, figures = [], None
    for _ in range(REPETITIONS):
        started = time.monotonic()
        figures = periods.compute(target, now=now)
        timings.append((time.monotonic() - started) * 1000)
    client = Client()
    token = issue_tokens(membership)["access"]
    started = time.monotonic()
    response = client.get(f"/api/v1/contracts/{contract}/periods", HTTP_AUTHORIZATION=f"Bearer {token}")
    api_ms = (time.monotonic() - started) * 1000
    errors = 0
    if response.status_code != 200 or len(response.json()) != len(figures):
        errors += 1
    if closed != MONTHS or len(figures) != MONTHS + 1 or running_balance_errors():
        errors += 1
    return {
        "entries": target.ledger_entries.count(),
        "periods": len(figures),
        "close_all_seconds": round(close_all, 1),
        "periods_ms_median": round(statistics.median(timings)),
        "periods_ms_best": round(min(timings)),
        "periods_api_ms": round(api_ms),
        "load_average_1m": os.getloadavg()[0],
        "errors": errors,
    }


def seed(url: str) -> tuple[int, object]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from contracts.models import Contract, Counterparty
    from contracts.services import add_months
    from tenancy.models import Membership, Organization, Role
    from workorders.models import WorkOrder

    today = timezone.now().date()
    start = add_months(today.replace(day=1), -MONTHS)
    org = Organization.objects.create(slug="bench-billing", name="Bench billing", default_currency="EUR")
    user = get_user_model().objects.create(username="bench-billing")
    membership = Membership.objects.create(user=user, organization=org, role=Role.MANAGER)
    contract = Contract.objects.create(
        organization=org,
        reference="BILL-0001",
        name="Managed service",
        contract_type=Contract.Type.MANAGED_SERVICE,
        counterparty=Counterparty.objects.create(organization=org, name="Bench customer"),
        counterparty_role=Contract.Role.CUSTOMER,
        status=Contract.Status.ACTIVE,
        start_date=start,
        expiry_date=add_months(start, MONTHS + 12) - dt.timedelta(days=1),
        time_zone="Europe/Amsterdam",
        currency="EUR",
        billing_period="monthly",
        hours_per_period=Decimal("20.00"),
        rollover_percent=50,
        overage_rate=Decimal("100.00"),
        period_charge=Decimal("1000.00"),
        annual_increase_percent=Decimal("3.00"),
        allow_overrun=True,
    )
    first = contract.start_of_day(start)
    work_orders = [
        w.pk
        for w in WorkOrder.objects.bulk_create(
            WorkOrder(
                organization=org,
                contract=contract,
                reference=f"WO-{i:04d}",
                priority=WorkOrder.Priority.MEDIUM,
                status=WorkOrder.Status.IN_PROGRESS,
                reported_at=first,
                status_changed_at=first,
            )
            for i in range(500)
        )
    ]
    rng = random.Random(SEED)
    span = (contract.start_of_day(add_months(start, MONTHS)) - first).total_seconds()
    instants = sorted(first + dt.timedelta(seconds=rng.uniform(60, span - 60)) for _ in range(ENTRIES))
    columns = (
        "organization_id, contract_id, entry_type, reason_code, hours, charged_hours, work_order_id, description, "
        "occurred_at, system_key, currency, created_at"
    )
    with benchdb.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ledger_ledgerentry ({columns}) FROM STDIN") as copy:
            for instant in instants:
                hours = Decimal(rng.randrange(1, 17)) / 4
                work_order = work_orders[rng.randrange(len(work_orders))]
                row = (org.pk, contract.pk, "work", "", hours, hours, work_order, "", instant, "", "", instant)
                copy.write_row(row)
        cur.execute(
            "UPDATE contracts_contract SET remaining_hours = -(SELECT sum(charged_hours) FROM ledger_ledgerentry"
            " WHERE contract_id = %s) WHERE id = %s",
            (contract.pk, contract.pk),
        )
    benchdb.vacuum_analyze(url)
    print(f"  contract {contract.reference}: {ENTRIES:,} work entries over {MONTHS} months", flush=True)
    return contract.pk, membership


if __name__ == "__main__":
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench")
    print(json.dumps(run(base), indent=2))

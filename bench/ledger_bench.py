"""Benchmark: the hour ledger on PostgreSQL: a balance over 100,000 entries, and concurrent postings.

(Named ledger_bench, not ledger: bench/run.py puts bench/ first on sys.path, so a bench/ledger.py
would shadow the `ledger` Django app.)

The data set, built fresh each run in its own database (BENCH_DATABASE_URL's server, database
`sla_bench_ledger`, dropped WITH (FORCE), recreated and migrated):

- one organization and user; a "big" active contract (EUR, no overrun) with 1,000 work orders and
  100,000 entries written with COPY, in time order over 2023-01-02 .. yesterday: the initial
  allocation (2023, expiring 2024-01-01) and a yearly credit for 2024, 2025 and 2026 (each expiring on
  the next 1 January), 12 credits without expiry, 200 adjustments, 300 penalties (money), the rest
  work (0.25-4 h). Its running balance is set to the fresh sum, then `ledger.services.expire_lots`
  (the product's path) posts the expiry of the three expired lots;
- 8 "small" active contracts, each with 10 work orders and an initial allocation of 10,000 hours.

Measured:

1. `ledger.services.balance(contract)` and `ledger.services.replay(contract)` on the big contract,
   REPETITIONS times each (no warm-up: expire_lots has just read the entries into PostgreSQL's cache):
   median and best ms. The balance must agree with the contract's running balance (else an error).
2. Postings per second: CLIENTS client processes (each its own Django and DB connection, started
   and connected before the clock starts, then released at once) each call
   `ledger.services.post_entry` for POSTINGS work entries of 0.25 h:
   - `single_big`: one client on the big contract (the uncontended baseline);
   - `same_big`: 8 clients on the big contract (all serialised by the contract's row lock);
   - `same_small`: 8 clients on one small contract (the lock alone, without 100,000 entries);
   - `spread`: 8 clients each on its own small contract.
   Reported: postings/s (all postings / wall time from release to the last client done), and the
   p50/p99 latency of one posting in ms. Afterwards every contract's running balance must equal
   the fresh sum of its entries (`running_balance_errors`) and every posting must be there; a
   failed posting, a missing one or a balance mismatch is an error.
3. EXPLAIN ANALYZE of the "books closed" lookup every posting makes (`check_entry`: the latest
   lot expiry of the contract) on the big and on a small contract, to show what it costs per posting;
   the median latency of a one-row INSERT + COMMIT (`commit_median_ms`: the WAL flush each posting
   waits for, under the contract lock); the machine's 1-minute load average (`load_average_1m`).
4. `unbooked_expiry_posting_ms`: one work posting on the big contract (median of UNBOOKED_POSTINGS, one
   at a time) while a credit lot has expired (an hour ago) but run_lifecycle has not yet booked its
   expiry; `expire_lots` then books it (exactly one, else an error).

Run it with `make bench` (bench/run.py calls `run()`), or alone: `.venv/bin/python bench/ledger_bench.py`.
For a quick try: BENCH_LEDGER_ENTRIES=3000 BENCH_LEDGER_POSTINGS=10.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import benchdb

ROOT = Path(__file__).resolve().parent.parent

DATABASE = "sla_bench_ledger"
SEED = 20261123
ENTRIES = int(os.environ.get("BENCH_LEDGER_ENTRIES", "100000"))  # on the big contract
BIG_WORK_ORDERS = 1_000
SMALL_CONTRACTS = 8
SMALL_WORK_ORDERS = 10
CLIENTS = 8
POSTINGS = int(os.environ.get("BENCH_LEDGER_POSTINGS", "200"))  # per client
UNBOOKED_POSTINGS = 3
REPETITIONS = 3  # balance and replay take seconds each on 100,000 entries
YEARLY_HOURS = Decimal("55000.00")
CREDITS, ADJUSTMENTS, PENALTIES = 12, 200, 300
START = dt.datetime(2023, 1, 2, tzinfo=dt.UTC)


def run(database_url: str) -> dict:
    url = benchdb.database_url(database_url, DATABASE)
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    started = time.monotonic()
    ids = seed(url)
    figures: dict = {"entries_big_contract": ids["entries"], "build_seconds": time.monotonic() - started}
    figures["expire_lots_seconds"] = ids["expire_lots_seconds"]
    benchdb.vacuum_analyze(url)
    errors = 0

    figures.update(time_balance(ids["big"]))
    if figures.pop("balance_mismatch"):
        errors += 1
    figures.update(explain_books_closed(ids["big"], ids["small"][0]))
    figures["commit_median_ms"] = commit_latency(url)
    figures["load_average_1m"] = os.getloadavg()[0]

    scenarios = [
        ("single_big", [ids["big"]]),
        ("same_big", [ids["big"]] * CLIENTS),
        ("same_small", [ids["small"][0]] * CLIENTS),
        ("spread", ids["small"][:CLIENTS]),
    ]
    for name, contracts in scenarios:
        result = post_concurrently(url, name, contracts, ids)
        errors += result.pop("errors")
        figures.update(result)
    result = post_with_unbooked_expiry(ids)
    errors += result.pop("errors")
    figures.update(result)

    from django.db import connections

    from contracts.models import Contract
    from ledger.models import LedgerEntry
    from ledger.services import running_balance_errors

    mismatches = running_balance_errors(Contract.objects.all())
    for pk, kept, summed in mismatches:
        print(f"  error: contract {pk}: running balance {kept}, sum of entries {summed}")
    errors += len(mismatches)
    expected = {ids["big"]: ids["entries"] + POSTINGS + CLIENTS * POSTINGS + 2 + UNBOOKED_POSTINGS}
    expected[ids["small"][0]] = 1 + CLIENTS * POSTINGS + POSTINGS  # allocation, same_small, its spread client
    for pk in ids["small"][1:CLIENTS]:
        expected[pk] = 1 + POSTINGS
    for pk, count in expected.items():
        found = LedgerEntry.objects.filter(contract_id=pk).count()
        if found != count:
            print(f"  error: contract {pk} has {found} entries, expected {count}")
            errors += 1
    connections.close_all()
    figures["running_balance_mismatches"] = len(mismatches)
    figures["errors"] = errors
    return figures


# --- data ----------------------------------------------------------------------------------------


def seed(url: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from contracts.models import Contract, Counterparty
    from ledger.models import LedgerEntry
    from ledger.services import expire_lots
    from tenancy.models import Membership, Organization, Role
    from workorders.models import WorkOrder

    now = timezone.now()
    org = Organization.objects.create(slug="bench-ledger", name="Bench ledger", default_currency="EUR")
    user = get_user_model().objects.create(username="bench-ledger")
    Membership.objects.create(user=user, organization=org, role=Role.MANAGER)
    counterparty = Counterparty.objects.create(organization=org, name="Bench customer")

    def contract(reference: str) -> Contract:
        return Contract.objects.create(
            organization=org,
            reference=reference,
            name=f"Contract {reference}",
            contract_type=Contract.Type.SERVICE_CONTRACT,
            counterparty=counterparty,
            counterparty_role=Contract.Role.CUSTOMER,
            status=Contract.Status.ACTIVE,
            start_date=START.date(),
            expiry_date=dt.date(2027, 12, 31),
            time_zone="Europe/Amsterdam",
            currency="EUR",
        )

    def work_orders(target: Contract, count: int) -> list[int]:
        rows = [
            WorkOrder(
                organization=org,
                contract=target,
                reference=f"{target.reference}-{i:04d}",
                priority=WorkOrder.Priority.MEDIUM,
                status=WorkOrder.Status.IN_PROGRESS,
                reported_at=START,
                status_changed_at=START,
            )
            for i in range(count)
        ]
        return [w.pk for w in WorkOrder.objects.bulk_create(rows)]

    big = contract("BIG-0001")
    big_work_orders = work_orders(big, BIG_WORK_ORDERS)
    small = [contract(f"SMALL-{i:04d}") for i in range(SMALL_CONTRACTS)]
    small_work_orders = [work_orders(c, SMALL_WORK_ORDERS) for c in small]

    rng = random.Random(SEED)
    columns = (
        "organization_id, contract_id, entry_type, reason_code, hours, charged_hours, amount, currency, work_order_id, "
        "description, occurred_at, expires_at, system_key, created_by_id, created_at"
    )

    def charged(row: tuple) -> tuple:  # no billing plan here: charged hours are the hours
        return row[:5] + (row[4],) + row[5:]

    with benchdb.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ledger_ledgerentry ({columns}) FROM STDIN") as copy:
            for row in big_entries(rng, org.pk, big.pk, user.pk, big_work_orders, now):
                copy.write_row(charged(row))
            for c in small:
                copy.write_row(
                    charged(
                        (org.pk, c.pk, "initial_allocation", "system", Decimal("10000.00"), None, "", None)
                        + ("Initial allocation", START, None, f"allocation:contract:{c.pk}", None, START)
                    )
                )
        cur.execute(
            "UPDATE contracts_contract c SET remaining_hours = coalesce((SELECT sum(CASE WHEN e.entry_type = 'work'"
            " THEN -e.hours ELSE e.hours END) FROM ledger_ledgerentry e WHERE e.contract_id = c.id), 0)"
        )
    started = time.monotonic()
    expired = expire_lots(now=now)
    expire_seconds = time.monotonic() - started
    entries = LedgerEntry.objects.filter(contract=big).count()
    print(f"  big contract: {entries:,} entries ({expired} lot expiries posted in {expire_seconds:.1f} s)", flush=True)
    return {
        "org": org.pk,
        "user": user.pk,
        "big": big.pk,
        "small": [c.pk for c in small],
        "work_orders": {
            big.pk: big_work_orders[0],
            **{c.pk: w[0] for c, w in zip(small, small_work_orders, strict=True)},
        },
        "entries": entries,
        "expire_lots_seconds": expire_seconds,
    }


def big_entries(rng: random.Random, org: int, contract: int, user: int, work_orders: list[int], now: dt.datetime):
    """The big contract's entries in time order, as COPY rows (streamed)."""
    yesterday = now - dt.timedelta(days=1)
    span = (yesterday - START).total_seconds()
    kinds = ["credit"] * CREDITS + ["adjustment"] * ADJUSTMENTS + ["penalty"] * PENALTIES
    kinds += ["work"] * (ENTRIES - 4 - len(kinds))  # the 4 yearly lots make up the rest
    rng.shuffle(kinds)
    instants = sorted(START + dt.timedelta(seconds=rng.uniform(3600, span)) for _ in kinds)
    lots = [
        (dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC))
        for year in (2023, 2024, 2025, 2026)
    ]
    yearly = iter(lots)
    upcoming = next(yearly)
    for instant, kind in zip(instants, kinds, strict=True):
        while upcoming is not None and upcoming[0] <= instant:
            occurred, expires = upcoming
            occurred = max(occurred, START)
            if occurred == START:
                head = ("initial_allocation", "system", YEARLY_HOURS, None, "", None, "Initial allocation")
                key = f"allocation:contract:{contract}"
            else:
                head = ("credit", "", YEARLY_HOURS, None, "", None, f"Hours for {occurred.year}")
                key = ""
            yield (org, contract, *head, occurred, expires, key, user, occurred)
            upcoming = next(yearly, None)
        work_order = work_orders[rng.randrange(len(work_orders))]
        if kind == "work":
            hours = Decimal(rng.randrange(1, 17)) / 4
            head = ("work", "", hours, None, "", work_order, "On-site work")
        elif kind == "credit":
            head = ("credit", "", Decimal("500.00"), None, "", None, "Goodwill credit")
        elif kind == "adjustment":
            hours = Decimal(rng.choice((-1, 1)) * rng.randrange(2, 33)) / 4
            head = ("adjustment", "", hours, None, "", work_order, "Correction of an earlier entry")
        else:
            amount = Decimal(rng.randrange(50, 1000))
            head = ("penalty", "", Decimal(0), amount, "EUR", work_order, "Penalty")
        yield (org, contract, *head, instant, None, "", user, instant)


# --- measurements --------------------------------------------------------------------------------


def time_balance(contract_id: int) -> dict:
    from contracts.models import Contract
    from ledger.services import balance, replay

    contract = Contract.objects.get(pk=contract_id)
    figures: dict = {}
    for name, call in (("balance", lambda: balance(contract)), ("replay", lambda: replay(contract))):
        samples, result = [], None
        for _ in range(REPETITIONS):
            started = time.perf_counter()
            result = call()
            samples.append((time.perf_counter() - started) * 1000)
        figures[f"{name}_median_ms"] = statistics.median(samples)
        figures[f"{name}_best_ms"] = min(samples)
        runs = ", ".join(f"{sample:.0f}" for sample in samples)
        print(f"  {name}: median {statistics.median(samples):.0f} ms over {REPETITIONS} runs ({runs})", flush=True)
        if name == "balance":
            mismatch = result["remaining_hours"] != contract.remaining_hours
            if mismatch:
                print(f"  error: balance {result['remaining_hours']} != running balance {contract.remaining_hours}")
            figures["balance_mismatch"] = mismatch
        else:
            figures["lots"] = len(result.lots)
    return figures


def explain_books_closed(big: int, small: int) -> dict:
    """EXPLAIN ANALYZE of check_entry's query: the latest lot expiry of the contract."""
    from django.db import connection

    figures = {}
    for name, pk in (("big", big), ("small", small)):
        with connection.cursor() as cur:
            cur.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT MAX(occurred_at) FROM ledger_ledgerentry"
                " WHERE contract_id = %s AND reason_code = 'lot_expired'",
                [pk],
            )
            plan = "\n".join(row[0] for row in cur.fetchall())
        print(f"  EXPLAIN ANALYZE of the books-closed lookup on the {name} contract:")
        for line in plan.splitlines():
            print(f"    {line}")
        match = re.search(r"Execution Time: ([\d.]+) ms", plan)
        figures[f"books_closed_query_{name}_ms"] = float(match.group(1)) if match else -1.0
    return figures


def post_with_unbooked_expiry(ids: dict) -> dict:
    """A credit lot of the big contract expired an hour ago and run_lifecycle has not booked its expiry
    yet: time UNBOOKED_POSTINGS single work postings in that window, then book the expiry (expire_lots)."""
    from django.contrib.auth import get_user_model
    from django.db.models import F
    from django.utils import timezone

    from contracts.models import Contract
    from ledger.models import LedgerEntry
    from ledger.services import expire_lots, post_entry
    from tenancy.models import Organization
    from workorders.models import WorkOrder

    now = timezone.now()
    org, user = Organization.objects.get(pk=ids["org"]), get_user_model().objects.get(pk=ids["user"])
    LedgerEntry.objects.create(  # as posted 40 days ago, when it was valid
        organization=org,
        contract_id=ids["big"],
        entry_type="credit",
        hours=Decimal("100.00"),
        charged_hours=Decimal("100.00"),  # what the ledger counts (a row written directly gets no default)
        description="Short-lived credit",
        occurred_at=now - dt.timedelta(days=40),
        expires_at=now - dt.timedelta(hours=1),
        created_by=user,
    )
    Contract.objects.filter(pk=ids["big"]).update(remaining_hours=F("remaining_hours") + Decimal("100.00"))
    contract = Contract.objects.get(pk=ids["big"])
    work_order = WorkOrder.objects.get(pk=ids["work_orders"][ids["big"]])
    samples, errors = [], 0
    for i in range(UNBOOKED_POSTINGS):
        data = {"contract": contract, "entry_type": "work", "hours": Decimal("0.25"), "work_order": work_order}
        started = time.perf_counter()
        try:
            post_entry(organization=org, actor=user, data={**data, "description": f"During an unbooked expiry {i}"})
        except Exception as exc:
            print(f"  error: posting during an unbooked expiry: {exc!r}")
            errors += 1
        samples.append((time.perf_counter() - started) * 1000)
    booked = expire_lots(now=timezone.now())
    if booked != 1:
        print(f"  error: expire_lots booked {booked} expiries, expected 1")
        errors += 1
    median = statistics.median(samples)
    runs = ", ".join(f"{sample:.0f}" for sample in samples)
    print(f"  one posting on the big contract while a lot's expiry is unbooked: median {median:.0f} ms ({runs})")
    return {"unbooked_expiry_posting_ms": median, "errors": errors}


def commit_latency(url: str, count: int = 200) -> float:
    """Median ms of a one-row INSERT committed on its own (the WAL flush every posting waits for)."""
    samples = []
    with benchdb.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigint)")
        for i in range(count):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_probe VALUES (%s)", (i,))
            samples.append((time.perf_counter() - started) * 1000)
    print(f"  a one-row INSERT + COMMIT: median {statistics.median(samples):.2f} ms")
    return statistics.median(samples)


def post_concurrently(url: str, name: str, contracts: list[int], ids: dict) -> dict:
    """Start one client process per contract in `contracts`, release them together, collect."""
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    clients = []
    for pk in contracts:
        command = [sys.executable, str(Path(__file__).resolve()), "--client", url, str(ids["org"]), str(ids["user"])]
        command += [str(pk), str(ids["work_orders"][pk]), str(POSTINGS)]
        clients.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    try:
        for client in clients:
            line = client.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a {name} client did not get ready: {line!r}")
        started = time.monotonic()
        for client in clients:
            client.stdin.write("go\n")
            client.stdin.flush()
        results = []
        for client in clients:
            out, _ = client.communicate()
            results.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()
    latencies = sorted(ms for result in results for ms in result["latencies_ms"])
    errors = sum(result["errors"] for result in results) + sum(client.returncode != 0 for client in clients)
    for result in results:
        if result["first_error"]:
            print(f"  {name}: {result['errors']} error(s), first: {result['first_error']}")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    rate = len(latencies) / elapsed
    print(
        f"  {name}: {len(contracts)} client(s) x {POSTINGS} postings in {elapsed:.2f} s: {rate:.0f} postings/s, "
        f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms",
        flush=True,
    )
    return {
        f"{name}_postings_per_second": rate,
        f"{name}_p50_ms": cuts[49],
        f"{name}_p99_ms": cuts[98],
        "errors": errors,
    }


def client(url: str, org_id: int, user_id: int, contract_id: int, work_order_id: int, count: int) -> None:
    """One posting client: set up, say ready, wait for go, post `count` work entries, print JSON."""
    benchdb.use_django(url)
    from django.contrib.auth import get_user_model

    from contracts.models import Contract
    from ledger.services import post_entry
    from tenancy.models import Organization
    from workorders.models import WorkOrder

    org = Organization.objects.get(pk=org_id)
    user = get_user_model().objects.get(pk=user_id)
    contract = Contract.objects.get(pk=contract_id)
    work_order = WorkOrder.objects.get(pk=work_order_id)
    print("ready", flush=True)
    sys.stdin.readline()
    latencies, errors, first_error = [], 0, ""
    started = time.perf_counter()
    for i in range(count):
        data = {
            "contract": contract,
            "entry_type": "work",
            "hours": Decimal("0.25"),
            "work_order": work_order,
            "description": f"Bench posting {i}",
        }
        begun = time.perf_counter()
        try:
            post_entry(organization=org, actor=user, data=data)
        except Exception as exc:
            errors += 1
            first_error = first_error or repr(exc)
            continue
        latencies.append((time.perf_counter() - begun) * 1000)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "latencies_ms": latencies, "errors": errors, "first_error": first_error}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, *numbers = sys.argv[2:]
        client(url, *map(int, numbers))
    else:
        base_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench")
        for key, value in run(base_url).items():
            print(f"  {key:<36} {value:.1f}" if isinstance(value, float) else f"  {key:<36} {value}")

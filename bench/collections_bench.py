"""Benchmark (issue 15): every collection beside the counterparty list and a plain DRF yardstick.

One run, one database, one gunicorn (2 sync workers, 4 client threads, real JWTs), 100 a page:

- the yardstick: a plain DRF + simplejwt `ModelViewSet` over the counterparty table
  (bench/yardstick.py, served only here through bench/yardstick_settings.py);
- the counterparty list, and every other collection of the API (config/urls.py and the routers
  it includes), each with 10,000 rows in the bench organization (nested collections: 10,000 under
  one parent) and 1,000 more in another organization.

Each collection is measured three ways: the pages spread over all 100 (throughput and p99), in
rounds that alternate with rounds of the counterparty list (the ratios of neighbouring windows,
their median: see ROUNDS), page 1 alone and page 99 alone (median latency). Printed: each target
with its measured ratio and "met" / "NOT met". Figures are printed, never asserted (bench/run.py fails only on errors:
a status other than 200, a page without 100 items, a total other than 10,000).

Setup is bulk SQL: one `INSERT ... SELECT ... FROM generate_series` per table (columns the seed
does not name take the model field's default), then VACUUM ANALYZE.

Alone: `.venv/bin/python bench/collections_bench.py` (BENCH_DATABASE_URL; BENCH_REDIS_URL, when
set, gives the server a shared Redis cache as production has; otherwise each worker caches in memory;
BENCH_COLLECTIONS=work_orders,breaches measures only those beside the yardstick and counterparties).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT / "bench"), str(ROOT)) if p not in sys.path]

import benchdb  # noqa: E402 - bench/ on the path first
from list_counterparties import free_port, stop, wait_for_health  # noqa: E402 - bench/ on the path first

ROWS = 10_000
OTHER_ROWS = 1_000
PER_PAGE = 100
PAGES = ROWS // PER_PAGE
DEEP_PAGE = 99
WORKERS = 2
CLIENT_THREADS = 4
WARMUP = 20
BASE_REQUESTS = 320  # the counterparty list alone (its own row of the table)
# Each other collection (and the yardstick) is measured in ROUNDS rounds, each of ROUND_REQUESTS
# requests spread over the pages, and beside each round as many of the counterparty list, in
# alternating order: its ratios are those of neighbouring windows, their median the figure, so a
# drift of the machine during the run (other work, PostgreSQL's background writer) moves both sides
# of a ratio alike. One measurement of the counterparty list for the whole run made every ratio of
# a run follow that one window: 0.65x and 0.76x for breaches in two runs a minute apart (docs).
ROUNDS = 5
ROUND_REQUESTS = 64
PAGE_REQUESTS = 40  # page 1 alone, page 99 alone
TIME_CAP_SECONDS = 60

THROUGHPUT_TARGET = 0.8  # of the counterparty list
P99_TARGET = 2.0  # times the counterparty list's p99, at most
DEEP_TARGET = 1.5  # page 99's median latency over page 1's, at most
YARDSTICK_TARGET = 1.0  # counterparty list over the yardstick, at least


def run(base_url: str) -> dict:
    url = base_url  # reset here, as every benchmark resets it
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    started = time.monotonic()
    token, ids = seed()
    benchdb.vacuum_analyze(url)
    seed_seconds = time.monotonic() - started
    from django.db import connections

    connections.close_all()

    targets = collections(ids)
    port = free_port()
    command, env = gunicorn(url, port)
    results: dict[str, dict] = {}
    errors: list[str] = []
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_health(server, port)
            base = next((path, kind) for name, path, kind in targets if name == "counterparties")
            for name, path, kind in targets:
                beside = None if name == "counterparties" else base
                results[name] = r = measure(port, token, name, path, kind, errors, beside)
                # As it goes (a run cut short still shows what it measured).
                print(f"  measured {name:<20} {r['rps']:7.1f} req/s  p99 {r['p99_ms']:7.1f} ms", flush=True)
        except Exception:
            log.seek(0)
            print(log.read().decode(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop(server)
    for message in sorted({e.split(" page ")[0]: e for e in errors}.values()):  # one per collection
        print(f"  error: {message}", file=sys.stderr)
    figures = report(results)
    figures.update({"seed_seconds": seed_seconds, "errors": len(errors)})
    return figures


def gunicorn(url: str, port: int, **environment: str) -> tuple[list[str], dict]:
    """The command and environment of the bench's server (bench/cpu_per_request.py serves the same)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.yardstick_settings",
        "ALLOWED_HOSTS": "127.0.0.1",
        "THROTTLE_USER_RATE": "100000000/min",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", ""),
        # The membership cache on, as production has it with REDIS_URL (at local-memory speed
        # without BENCH_REDIS_URL; nothing changes a membership during a run).
        "MEMBERSHIP_CACHE": "true",
        "CACHE_KEY_PREFIX": "bench-collections",
        **environment,
    }
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-w", str(WORKERS)]
    return [*command, "-b", f"127.0.0.1:{port}"], env


# --- targets ----------------------------------------------------------------------------------


def collections(ids: dict) -> list[tuple[str, str, str]]:
    """(name, path with {page}, kind): kind "yardstick" (DRF's envelope) or "api" (bare array)."""
    # Each nested collection under a contract of its own (a contract with 10,000 line items
    # would make every read of its terms, e.g. the approval requests' terms hash, read them all).
    contract, webhook = ids["contract"], ids["webhook"]
    api = [
        ("counterparties", "/api/v1/counterparties"),
        ("contracts", "/api/v1/contracts"),
        ("work_orders", "/api/v1/work_orders"),
        ("breaches", "/api/v1/breaches"),
        ("ledger_entries", "/api/v1/ledger_entries"),
        ("events", "/api/v1/events"),
        ("sla_rules", "/api/v1/sla_rules"),
        ("calendars", "/api/v1/calendars"),
        ("assets", "/api/v1/assets"),
        ("contract_rules", "/api/v1/contract_rules"),
        ("billing_lines", "/api/v1/billing_lines"),
        ("billing_exports", "/api/v1/billing_exports"),
        ("contract_templates", "/api/v1/contract_templates"),
        ("webhooks", "/api/v1/webhooks"),
        ("members", "/api/v1/members"),
        ("reports/at_risk", "/api/v1/reports/at_risk"),
        ("line_items", f"/api/v1/contracts/{contract}/line_items"),
        ("amendments", f"/api/v1/contracts/{contract + 1}/amendments"),
        ("terms", f"/api/v1/contracts/{contract + 2}/terms"),
        ("visit_plans", f"/api/v1/contracts/{contract + 3}/visit_plans"),
        ("approval_requests", f"/api/v1/contracts/{contract + 4}/approval_requests"),
        ("webhook_deliveries", f"/api/v1/webhooks/{webhook}/deliveries"),
    ]
    # BENCH_COLLECTIONS=work_orders,breaches: only those (beside the yardstick and counterparties).
    only = {name for name in os.environ.get("BENCH_COLLECTIONS", "").split(",") if name}
    if only - {name for name, _ in api}:
        raise SystemExit(f"BENCH_COLLECTIONS: unknown {sorted(only - {name for name, _ in api})}")
    api = [(name, path) for name, path in api if not only or name in only or name == "counterparties"]
    targets = [("yardstick", "/bench/yardstick/counterparties?page={page}", "yardstick")]
    targets += [(name, f"{path}?per_page={PER_PAGE}&page={{page}}", "api") for name, path in api]
    return targets


def measure(port: int, token: str, name: str, path: str, kind: str, errors: list[str], base=None) -> dict:
    """Throughput and latencies of one collection; with `base` (the counterparty list's path and
    kind) also its ratios to it, measured in rounds beside it (see ROUNDS)."""
    drive(port, token, path, kind, WARMUP, lambda i: i % PAGES + 1, errors, name)
    if base is None:
        started = time.monotonic()
        latencies = drive(port, token, path, kind, BASE_REQUESTS, lambda i: i * 37 % PAGES + 1, errors, name)
        elapsed, paired = time.monotonic() - started, {}
    else:
        latencies, elapsed, paired = paired_rounds(port, token, name, (path, kind), base, errors)
    first = drive(port, token, path, kind, PAGE_REQUESTS, lambda i: 1, errors, name)
    deep = drive(port, token, path, kind, PAGE_REQUESTS, lambda i: DEEP_PAGE, errors, name)
    return {
        "rps": len(latencies) / elapsed,
        "p99_ms": p99_ms(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "page1_ms": statistics.median(first) * 1000,
        "page99_ms": statistics.median(deep) * 1000,
        **paired,
    }


def paired_rounds(port, token, name, own, base, errors) -> tuple[list[float], float, dict]:
    """ROUNDS rounds of this collection and of the counterparty list, in alternating order: this
    collection's latencies and time, the median of the rounds' throughput ratios and the ratio of
    the p99s over all rounds."""
    drive(port, token, *base, WARMUP, lambda i: i % PAGES + 1, errors, "counterparties")
    latencies: dict[int, list[float]] = {0: [], 1: []}
    seconds = [0.0, 0.0]
    ratios = []
    for r in range(ROUNDS):
        rates = [0.0, 0.0]
        for side in (0, 1) if r % 2 == 0 else (1, 0):  # 0: this collection, 1: the counterparty list
            path, kind = own if side == 0 else base
            started = time.monotonic()
            done = drive(port, token, path, kind, ROUND_REQUESTS, partial(round_page, r), errors, name)
            elapsed = time.monotonic() - started
            latencies[side] += done
            seconds[side] += elapsed
            rates[side] = len(done) / elapsed
        ratios.append(rates[0] / rates[1])
    paired = {"ratio": statistics.median(ratios), "p99_ratio": p99_ms(latencies[0]) / p99_ms(latencies[1])}
    return latencies[0], seconds[0], paired


def round_page(r: int, i: int) -> int:
    """The page of a round's i-th request: each round its own spread over the pages."""
    return (r * ROUND_REQUESTS + i) * 37 % PAGES + 1


def p99_ms(latencies: list[float]) -> float:
    return statistics.quantiles([s * 1000 for s in latencies], n=100, method="inclusive")[98]


def drive(port, token, path, kind, count, page_of, errors, name) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    deadline = time.monotonic() + TIME_CAP_SECONDS

    def client(first: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(first, count, CLIENT_THREADS):
            if time.monotonic() > deadline:
                break
            page = page_of(i)
            started = time.perf_counter()
            try:
                conn.request("GET", path.format(page=page), headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                errors.append(f"{name} page {page}: {exc!r}")
                continue
            latencies.append(time.perf_counter() - started)
            problem = check(response, body, kind)
            if problem:
                errors.append(f"{name} page {page}: {problem}")
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(latencies) < 2:
        raise RuntimeError(f"{name}: only {len(latencies)} request(s) completed; errors: {errors[-3:]}")
    return latencies


def check(response, body: bytes, kind: str) -> str | None:
    if response.status != 200:
        return f"status {response.status}: {body[:200]!r}"
    data = json.loads(body)
    if kind == "yardstick":
        items, total = data["results"], data["count"]
    else:
        items, total = data, int(response.getheader("X-Pagination-Total-Entries") or -1)
    if len(items) != PER_PAGE or total != ROWS:
        return f"{len(items)} items of {total} instead of {PER_PAGE} of {ROWS}"
    return None


def report(results: dict[str, dict]) -> dict:
    yard = results["yardstick"]
    figures: dict = {}
    unmet = 0

    def target(label: str, value: float, limit: float, at_least: bool) -> None:
        nonlocal unmet
        met = value >= limit if at_least else value <= limit
        unmet += not met
        sign = ">=" if at_least else "<="
        print(f"  {label:<46} {value:6.2f}x  (target {sign} {limit}x)  {'met' if met else 'NOT met'}")

    # req/s and latencies: each collection's own; "x cp": its throughput ratio to the counterparty
    # list measured beside it (the median of the rounds), which the targets use.
    header = f"{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'page1 ms':>10}{'page99 ms':>11}{'x cp':>7}"
    print(f"  {'collection':<22}{header}")
    for name, r in results.items():
        cells = f"{r['rps']:8.1f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}{r['page1_ms']:10.1f}{r['page99_ms']:11.1f}"
        print(f"  {name:<22}{cells}{r['ratio']:7.2f}" if "ratio" in r else f"  {name:<22}{cells}")
    target("counterparties / yardstick throughput", 1 / yard["ratio"], YARDSTICK_TARGET, True)
    for name, r in results.items():
        if name == "yardstick":
            continue
        if name != "counterparties":
            target(f"{name} / counterparties throughput", r["ratio"], THROUGHPUT_TARGET, True)
            target(f"{name} p99 / counterparties p99", r["p99_ratio"], P99_TARGET, False)
        target(f"{name} page 99 / page 1", r["page99_ms"] / r["page1_ms"], DEEP_TARGET, False)
        figures[f"{name}_rps"] = r["rps"]
    figures["yardstick_rps"] = yard["rps"]
    figures["targets_not_met"] = unmet
    return figures


# --- data ---------------------------------------------------------------------------------------


def seed() -> tuple[str, dict]:
    """Both organizations' rows; the bench admin's access token and the nested parents' ids."""
    from django.contrib.auth import get_user_model

    from tenancy.auth import issue_tokens
    from tenancy.models import Membership, Organization, Role

    org = Organization.objects.create(slug="bench", name="Bench")
    other = Organization.objects.create(slug="bench-other", name="Bench other")
    user = get_user_model()(username="bench-admin")
    user.set_unusable_password()
    user.save()
    membership = Membership.objects.create(user=user, organization=org, role=Role.ADMIN)  # members need the admin role
    ids = seed_organization(org.pk, ROWS, "b")
    seed_organization(other.pk, OTHER_ROWS, "o")
    return issue_tokens(membership)["access"], ids


def insert(model, n: int, org_id: int | None, values: dict[str, str]) -> int:
    """INSERT n rows of `model` in one statement; `values` maps columns to SQL over `g` (0..n-1);
    other NOT NULL columns take the field's default. Returns the first id (ids are consecutive)."""
    from django.db import connection
    from django.db.models import NOT_PROVIDED

    columns, exprs, params = [], [], []
    if org_id is not None:
        values = {"organization_id": str(org_id), **values}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column in values:
            columns.append(field.column)
            exprs.append(values[field.column])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            columns.append(field.column)
            exprs.append("now()")
        elif field.default is not NOT_PROVIDED:
            columns.append(field.column)
            exprs.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
        elif not field.null:
            raise ValueError(f"{model.__name__}.{field.column}: no default, give it a value")
    table = model._meta.db_table
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} "
        f"FROM generate_series(0, {n - 1}) AS g RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        new = sorted(row[0] for row in cursor.fetchall())
    assert new[-1] - new[0] == n - 1, f"{table}: ids not consecutive"
    return new[0]


def seed_organization(org: int, n: int, tag: str) -> dict:
    from django.contrib.auth import get_user_model

    from billing.models import BillingLine, ContractTemplate, ExportBatch
    from breaches.models import Breach
    from contracts.models import Amendment, Asset, Contract, Counterparty, LineItem, TermVersion
    from events.models import Event
    from ledger.models import LedgerEntry
    from notifications.models import WebhookDelivery, WebhookEndpoint
    from signing.models import SignatureRequest
    from slas.models import Calendar, SlaRule
    from tenancy.models import Membership
    from workorders.models import ContractRule, SlaClock, VisitPlan, WorkOrder

    spread = min(n, 1000)  # parents the 10,000 children are spread over
    at = "(now() - g * interval '1 minute')"  # distinct instants, newest first by id
    by = f"mod(g, {spread})"
    contract_type = Contract._meta.get_field("contract_type").choices[0][0]
    cp = insert(Counterparty, n, org, {"name": f"'{tag} counterparty ' || lpad(g::text, 5, '0')",
                                        "reference": "'REF-' || g", "email": "'c' || g || '@example.com'"})  # fmt: skip
    cal = insert(Calendar, n, org, {"name": f"'{tag} calendar ' || lpad(g::text, 5, '0')",
                                    "time_zone": "'Europe/Amsterdam'"})  # fmt: skip
    ct = insert(Contract, n, org, {
        "reference": f"'{tag}-C-' || g", "name": f"'{tag} contract ' || lpad(g::text, 5, '0')",
        "contract_type": f"'{contract_type}'", "counterparty_id": f"{cp} + g",
        "counterparty_role": f"'{Contract._meta.get_field('counterparty_role').choices[0][0]}'",
        "time_zone": "'Europe/Amsterdam'", "currency": "'EUR'",
    })  # fmt: skip
    rule = insert(SlaRule, n, org, {
        "contract_id": f"{ct} + g", "calendar_id": f"{cal} + g", "name": f"'{tag} rule ' || lpad(g::text, 5, '0')",
        "metric": "'response'", "priorities": "'[]'::jsonb", "target_minutes": "60", "pause_on_hold": "false",
        "effective_from": "'2026-01-01T00:00:00Z'",
    })  # fmt: skip
    wo = insert(WorkOrder, n, org, {
        "contract_id": f"{ct} + {by}", "counterparty_id": f"{cp} + {by}",
        "reference": f"'{tag}-WO-' || g", "reported_at": at, "status_changed_at": at,
    })  # fmt: skip
    clock = insert(SlaClock, n, org, {
        "work_order_id": f"{wo} + g", "rule_id": f"{rule} + {by}", "metric": "'response'",
        "target_minutes": "60", "started_at": at, "due_at": f"{at} + interval '60 minutes'",
    })  # fmt: skip
    insert(Breach, n, org, {
        "clock_id": f"{clock} + g", "contract_id": f"{ct} + {by}", "sla_rule_id": f"{rule} + {by}",
        "work_order_id": f"{wo} + g", "metric": "'response'", "target_minutes": "60", "actual_minutes": "90",
        "overage_minutes": "30", "currency": "'EUR'", "due_at": at, "detected_at": at, "penalty_month": "'2026-11'",
    })  # fmt: skip
    insert(LedgerEntry, n, org, {
        "contract_id": f"{ct} + {by}", "occurred_at": at,
        "entry_type": f"'{LedgerEntry._meta.get_field('entry_type').choices[0][0]}'",
    })  # fmt: skip
    ev = insert(Event, n, org, {"type": "'contract.updated'", "object_type": "'contract'",
                                "object_id": f"{ct} + {by}", "occurred_at": at})  # fmt: skip
    insert(Amendment, n, org, {"contract_id": str(ct + 1), "number": "g + 1", "effective_date": "'2026-01-01'",
                               "changes": "'{}'::jsonb", "reason": "'Bench'"})  # fmt: skip
    insert(TermVersion, n, org, {"contract_id": str(ct + 2), "effective_from": "date '2000-01-01' + g",
                                 "terms": "'{}'::jsonb", "origin": "'amendment'"})  # fmt: skip
    insert(Asset, n, org, {"name": f"'{tag} asset ' || lpad(g::text, 5, '0')", "counterparty_id": f"{cp} + {by}"})
    insert(VisitPlan, n, org, {"contract_id": str(ct + 3), "summary": "'Visit ' || g", "recurrence": "'FREQ=WEEKLY'",
                               "active_from": "'2026-01-01'", "generated_until": "now()"})  # fmt: skip
    insert(BillingLine, n, org, {
        "contract_id": f"{ct} + {by}", "kind": "'period_charge'", "description": "'Line ' || g",
        "quantity": "1", "unit_price": "10", "amount": "10", "currency": "'EUR'", "date": "'2026-11-01'",
        "key": f"'{tag}-line-' || g",
    })  # fmt: skip
    insert(ExportBatch, n, org, {"contract_id": f"{ct} + {by}"})
    insert(ContractTemplate, n, org, {"name": f"'{tag} template ' || lpad(g::text, 5, '0')",
                                      "contract_type": f"'{contract_type}'", "currency": "'EUR'"})
    hook = insert(WebhookEndpoint, n, org, {"url": "'https://example.com/hook/' || g", "secret": "'s'"})
    insert(WebhookDelivery, n, org, {"event_id": f"{ev} + g", "endpoint_id": str(hook)})
    insert(ContractRule, n, org, {"name": f"'{tag} rule ' || lpad(g::text, 5, '0')", "sequence": "g",
                                  "outcome": "'not_covered'"})  # fmt: skip
    insert(SignatureRequest, n, org, {
        "contract_id": str(ct + 4), "approval_round": "1", "name": "'Signer ' || g",
        "email": "'s' || g || '@example.com'",
        "token_hash": f"'{tag}-token-' || g", "terms_hash": "'x'", "expires_at": "now() + interval '7 days'",
    })  # fmt: skip
    insert(LineItem, n, org, {"contract_id": str(ct), "description": "'Item ' || g"})
    # The admin is the n+1st member of the bench organization: seed n - 1 others.
    username = f"'{tag}-member-' || lpad(g::text, 5, '0')"  # the membership keeps a copy (its sort key)
    members = n - 1 if tag == "b" else n
    users = insert(get_user_model(), members, None, {
        "password": "'!'", "first_name": "''", "last_name": "''", "email": "''", "date_joined": "now()",
        "username": username,
    })  # fmt: skip
    insert(Membership, members, org, {"user_id": f"{users} + g", "role": "'viewer'", "username": username})
    return {"contract": ct, "webhook": hook}


if __name__ == "__main__":
    benchdb.main(run)

"""Benchmark: list counterparties, 100 a page out of 10,000, on PostgreSQL through gunicorn.

What is measured: GET /api/v1/counterparties?per_page=100&page=N, authenticated with a real
JWT, served by `gunicorn config.wsgi:application -w 2` on 127.0.0.1, with the pages spread
over all 100 pages. A few client threads (http.client, one keep-alive connection each; the
sync worker closes it after every response, so http.client reconnects, as a real client would)
send a warm-up that is not counted, then a bounded number of requests
under a time cap. Reported: requests per second, p50/p90/p99 latency in ms (request sent to
body read), and the error count (anything but a 200 with 100 items out of 10,000).

Setup, each run: drop and recreate the bench database (BENCH_DATABASE_URL, its own database),
`manage.py migrate`, then bulk-insert an organization with a manager and 10,000 counterparties,
plus 1,000 in a second organization so the tenancy filter has something to filter out, and
VACUUM ANALYZE so the planner has statistics, as autovacuum would have given a live table.

Run it with `make bench` (bench/run.py calls `run()`).
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent

COUNTERPARTIES = 10_000
OTHER_ORG_COUNTERPARTIES = 1_000
PER_PAGE = 100
PAGES = COUNTERPARTIES // PER_PAGE
WORKERS = 2  # gunicorn processes; the machine has 2 cores
CLIENT_THREADS = 4
WARMUP_REQUESTS = 50
REQUESTS = 2_000
TIME_CAP_SECONDS = 120


def run(database_url: str) -> dict:
    reset_database(database_url)
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    token = seed(database_url)
    vacuum_analyze(database_url)

    port = free_port()
    server_env = {
        **env,
        "ALLOWED_HOSTS": "127.0.0.1",
        "THROTTLE_USER_RATE": "100000000/min",  # the throttle must not cut the run
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-w", str(WORKERS)]
    command += ["-b", f"127.0.0.1:{port}"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_health(server, port)
            drive(port, token, WARMUP_REQUESTS, time.monotonic() + TIME_CAP_SECONDS)
            started = time.monotonic()
            latencies, errors = drive(port, token, REQUESTS, started + TIME_CAP_SECONDS)
            elapsed = time.monotonic() - started
        except Exception:
            log.seek(0)
            print(log.read().decode(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop(server)

    for message in errors[:5]:
        print(f"  error: {message}", file=sys.stderr)
    if len(latencies) < 2:
        raise RuntimeError(f"only {len(latencies)} request(s) completed; errors: {errors[:5]}")
    cuts = statistics.quantiles([seconds * 1000 for seconds in latencies], n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "client_threads": CLIENT_THREADS,
        "gunicorn_workers": WORKERS,
        "seconds": elapsed,
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": cuts[49],
        "p90_ms": cuts[89],
        "p99_ms": cuts[98],
        "errors": len(errors),
    }


def reset_database(database_url: str) -> None:
    """Drop and recreate the bench database, through the server's maintenance database."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(scheme="postgresql", path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def vacuum_analyze(database_url: str) -> None:
    url = urlsplit(database_url)._replace(scheme="postgresql").geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def seed(database_url: str) -> str:
    """Insert the data through the ORM (bulk) and return an access token of the manager."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections

    from contracts.models import Counterparty
    from tenancy.auth import issue_tokens
    from tenancy.models import Membership, Organization, Role

    org = Organization.objects.create(slug="bench", name="Bench")
    other = Organization.objects.create(slug="bench-other", name="Bench other")
    user = get_user_model()(username="bench-manager")
    user.set_unusable_password()
    user.save()
    membership = Membership.objects.create(user=user, organization=org, role=Role.MANAGER)

    kinds = list(Counterparty.Kind)
    rows = [
        Counterparty(
            organization=organization,
            name=f"{prefix} counterparty {i:05d}",
            kind=kinds[i % len(kinds)],
            reference=f"REF-{i:05d}",
            email=f"contact{i}@example.com",
            phone="+31 20 555 0100",
            address=f"{i} Bench Street\n1011 AB Amsterdam",
        )
        for organization, prefix, count in [(org, "Bench", COUNTERPARTIES), (other, "Other", OTHER_ORG_COUNTERPARTIES)]
        for i in range(count)
    ]
    Counterparty.objects.bulk_create(rows, batch_size=1000)
    token = issue_tokens(membership)["access"]
    connections.close_all()  # hold no connection to the bench database after setup
    return token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(server: subprocess.Popen, port: int, timeout: float = 120) -> None:
    # A deadline for a server that never comes up, not a time limit: on a loaded machine (a test suite
    # beside other work) gunicorn took more than 30 s to import Django and answer its first request.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode} before it was healthy")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn was not healthy on port {port} within {timeout:.0f} s")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def drive(port: int, token: str, count: int, deadline: float) -> tuple[list[float], list[str]]:
    """Send `count` list requests from CLIENT_THREADS threads; the latencies (s) and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def client(first: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(first, count, CLIENT_THREADS):
            if time.monotonic() > deadline:
                break
            page = i * 37 % PAGES + 1  # 37 is coprime with 100: every page, in a spread order
            started = time.perf_counter()
            try:
                conn.request("GET", f"/api/v1/counterparties?per_page={PER_PAGE}&page={page}", headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                errors.append(f"page {page}: {exc!r}")
                continue
            latencies.append(time.perf_counter() - started)
            problem = check(response, body)
            if problem:
                errors.append(f"page {page}: {problem}")
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def check(response: http.client.HTTPResponse, body: bytes) -> str | None:
    if response.status != 200:
        return f"status {response.status}: {body[:200]!r}"
    items = json.loads(body)
    if len(items) != PER_PAGE:
        return f"{len(items)} items instead of {PER_PAGE}"
    total = response.getheader("X-Pagination-Total-Entries")
    if total != str(COUNTERPARTIES):
        return f"X-Pagination-Total-Entries {total} instead of {COUNTERPARTIES}"
    return None
